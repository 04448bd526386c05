use reqwest::Method;
use serde_json::{Value, json};
use smecredit::config::{LogFormat, Settings};
use smecredit::keys::Role;
use smecredit::startup::Application;
use smecredit::store::{Store, StoreOptions};
use sqlx::Connection;
use std::collections::HashMap;
use std::sync::{Mutex, Once};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server URL tests create their databases on, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn postgres_url() -> Option<String> {
    std::env::var("SMECREDIT_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Generates, for each named `async fn name(backend: Backend)`, a test per backend:
/// `…::sqlite::name` and `…::postgres::name` (the latter passes with a note when no PostgreSQL
/// is configured; `.ci/run` always configures one).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if $crate::helpers::postgres_url().is_none() {
                        eprintln!("SMECREDIT_TEST_POSTGRES_URL is not set; PostgreSQL variant not run");
                        return;
                    }
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A database of its own for one test, removed when the test ends.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                TestDatabase {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                }
            }
            Backend::Postgres => {
                let server = postgres_url().expect("SMECREDIT_TEST_POSTGRES_URL");
                let name = format!("smecredit_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&server)
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let base = server
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(&server)
                    .to_string();
                TestDatabase {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    postgres: Some((server, name)),
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((server, name)) = self.postgres.take() {
            // Drop runs outside any async context we can rely on: use a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&server).await.ok()?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await
                    .ok()
                })
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub db: TestDatabase,
    /// One key per role but merchant, issued at spawn.
    pub platform_key: String,
    pub lender_key: String,
    pub admin_key: String,
    /// Merchant keys by merchant id, issued when first needed.
    merchant_keys: Mutex<HashMap<String, String>>,
}

static TRACING: Once = Once::new();

pub fn test_settings(url: &str) -> Settings {
    Settings {
        database_url: url.to_string(),
        bind: "127.0.0.1:0".to_string(),
        log_format: LogFormat::Plain,
        // Tests are quiet unless TEST_LOG is set.
        log_filter: if std::env::var("TEST_LOG").is_ok() {
            "info"
        } else {
            "off"
        }
        .to_string(),
        sqlite_synchronous: "normal".to_string(),
        workers: Some(1),
        models_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/models").into(),
        ..Settings::default()
    }
    // Rate limits have tests of their own; elsewhere they would only make tests flaky.
    .without_rate_limits()
}

/// Issues a key straight through the library, as `smecredit keys create` does.
pub async fn issue_key(store: &Store, role: Role, merchant: Option<&str>) -> String {
    smecredit::keys::create(store, role, merchant, Some(&format!("test {role}")))
        .await
        .expect("issue a key")
        .secret
        .expose()
        .to_string()
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDatabase::new(backend).await;
    let mut settings = test_settings(&db.url);
    tweak(&mut settings);
    let (address, store) = start_app(&settings).await;
    TestApp {
        address,
        client: reqwest::Client::new(),
        platform_key: issue_key(&store, Role::Platform, None).await,
        lender_key: issue_key(&store, Role::Lender, None).await,
        admin_key: issue_key(&store, Role::Admin, None).await,
        merchant_keys: Mutex::new(HashMap::new()),
        store,
        db,
    }
}

/// The merchant a `/v1/merchants/{merchant_id}/…` path names.
fn merchant_in(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/merchants/")?
        .split(['/', '?'])
        .next()
}

/// Starts the application with these settings; its address and store.
pub async fn start_app(settings: &Settings) -> (String, Store) {
    TRACING.call_once(|| smecredit::telemetry::init(settings.log_format, &settings.log_filter));
    let app = Application::build(settings)
        .await
        .expect("build the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    tokio::spawn(app.run_until_stopped());
    (address, store)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A key bound to one merchant (issued on first use).
    pub async fn merchant_key(&self, merchant: &str) -> String {
        if let Some(k) = self.merchant_keys.lock().unwrap().get(merchant) {
            return k.clone();
        }
        let key = issue_key(&self.store, Role::Merchant, Some(merchant)).await;
        self.merchant_keys
            .lock()
            .unwrap()
            .insert(merchant.to_string(), key.clone());
        key
    }

    /// The key a well-behaved client of a route sends: the platform writes and reads merchants,
    /// payments and loans; a lender scores, reads decisions and features; a merchant reads its
    /// own eligibility; an admin handles models and keys. `None` for the open routes.
    pub async fn key_for(&self, method: &Method, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split(['/', '?']).collect();
        Some(match segments.get(1..3) {
            Some(["v1", "models" | "keys"]) => self.admin_key.clone(),
            Some(["v1", "scores" | "decisions" | "features"]) => self.lender_key.clone(),
            Some(["v1", "merchants"]) => match (*method == Method::GET, segments.get(4).copied()) {
                (true, Some("features")) => self.lender_key.clone(),
                (true, Some("eligibility")) => {
                    self.merchant_key(merchant_in(path).unwrap_or_default())
                        .await
                }
                _ => self.platform_key.clone(),
            },
            Some(["v1", "loans"]) => self.platform_key.clone(),
            _ => return None,
        })
    }

    /// A request carrying the key a well-behaved client of the route sends.
    pub async fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let key = self.key_for(&method, path).await;
        self.request_as(key.as_deref(), method, path)
    }

    /// A request carrying this key (or none).
    pub fn request_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let req = self.client.request(method, self.url(path));
        match key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.request(Method::POST, path)
            .await
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(Method::GET, path)
            .await
            .send()
            .await
            .expect("request")
    }

    pub async fn get_as(&self, key: &str, path: &str) -> reqwest::Response {
        self.request_as(Some(key), Method::GET, path)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json_as(&self, key: &str, path: &str, body: &Value) -> reqwest::Response {
        self.request_as(Some(key), Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn create_merchant(&self, id: &str) {
        let res = self.post_json("/v1/merchants", &merchant_json(id)).await;
        assert_eq!(
            res.status().as_u16(),
            201,
            "creating merchant {id}: {}",
            res.text().await.unwrap_or_default()
        );
    }

    pub async fn post_payments(&self, merchant: &str, payments: Vec<Value>) -> reqwest::Response {
        self.post_json(
            &format!("/v1/merchants/{merchant}/payments"),
            &json!({ "payments": payments }),
        )
        .await
    }

    /// Stored payments of a merchant, read straight from the store.
    pub async fn stored_count(&self, merchant: &str) -> i64 {
        let id = smecredit::domain::MerchantId::parse(merchant).unwrap();
        match self.store.merchant(&id).await.unwrap() {
            Some(m) => self.store.payment_count(m.key).await.unwrap(),
            None => 0,
        }
    }

    /// A second replica of the service on the same database; its address.
    pub async fn start_replica(&self, tweak: impl FnOnce(&mut Settings)) -> String {
        let mut settings = test_settings(&self.db.url);
        tweak(&mut settings);
        start_app(&settings).await.0
    }

    /// `SELECT COUNT(*)` of a table, straight from the database.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        if self.db.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.db.url).await.unwrap();
            // the audit log (`decisions`) lives in a file of its own
            let db = self.db.url.trim_start_matches("sqlite://");
            let audit = smecredit::store::sqlite_audit_file(std::path::Path::new(db));
            sqlx::query("ATTACH DATABASE ? AS audit")
                .bind(audit.to_string_lossy().into_owned())
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut conn)
                .await
                .unwrap()
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
    }

    /// A second, independent connection to the same database, as a restarted service would open.
    pub async fn reopen_store(&self) -> Store {
        Store::connect(&StoreOptions::new(&self.db.url))
            .await
            .expect("reopen store")
    }
}

pub fn merchant_json(id: &str) -> Value {
    json!({
        "merchant_id": id,
        "name": "老王早餐店",
        "category": "food_stall",
        "region_type": "county",
        "region_code": "330782",
        "currency": "CNY",
        "onboarded_on": "2024-03-01"
    })
}

/// A valid sale; tests change one field at a time.
pub fn payment_json(id: &str, occurred_at: &str, amount: &str) -> Value {
    json!({
        "payment_id": id,
        "occurred_at": occurred_at,
        "amount": {"amount": amount, "currency": "CNY"},
        "kind": "sale",
        "channel": "qr_code",
        "payer_ref": "wxp_1"
    })
}

pub async fn problem(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: Value = res.json().await.expect("a JSON body");
    assert_eq!(
        content_type, "application/problem+json",
        "status {status}: {body}"
    );
    assert_eq!(body["status"], status, "{body}");
    (status, body)
}

/// The `field`s of a problem's `errors`.
pub fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}
