//! Building the application: the store, the HTTP server bound to its listener, and the port it
//! got (port 0 in tests).

use crate::api::rate_limit::RateLimits;
use crate::api::{self, ACTIVE_MODEL_SETTING, ApiDoc, AppState, RequestSpan};
use crate::config::Settings;
use crate::keys::KeyRing;
use crate::policy::Policy;
use crate::scoring::ModelRegistry;
use crate::store::{DecisionLog, Store};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

pub struct Application {
    server: Server,
    port: u16,
    /// The listener serving only `/metrics`, without a key, when `metrics_bind` is set.
    metrics_server: Option<(Server, u16)>,
    store: Store,
    decisions: DecisionLog,
    shutdown_timeout_secs: u64,
}

impl Application {
    /// Connects to the store (applying migrations) and binds the listener.
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        let store = Store::connect(&settings.store_options())
            .await
            .with_context(|| format!("opening the database {}", redact(&settings.database_url)))?;
        Self::with_store(settings, store).await
    }

    /// Binds the listener for a store that is already open.
    pub async fn with_store(settings: &Settings, store: Store) -> anyhow::Result<Application> {
        let policy = match &settings.policy_file {
            Some(path) => Policy::load(path)?,
            None => Policy::default_policy(),
        };
        let models = Arc::new(ModelRegistry::new(&settings.models_dir));
        let persisted = store.setting(ACTIVE_MODEL_SETTING).await?;
        let preferred: Vec<&str> = persisted
            .iter()
            .chain(settings.model.iter())
            .map(String::as_str)
            .collect();
        let (model, problems) = models.activate_first(&preferred);
        for problem in problems {
            tracing::warn!(%problem, "model not loaded");
        }
        match model {
            Some(m) => {
                tracing::info!(model = %m.version, policy = %policy.version, "scoring with model")
            }
            None => {
                tracing::warn!(dir = %settings.models_dir.display(), "no model could be loaded: scoring and /readyz answer 503")
            }
        }
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let decisions =
            DecisionLog::start(store.clone()).context("starting the audit log's writer")?;
        let state = web::Data::new(AppState {
            store: store.clone(),
            decisions: decisions.clone(),
            limits: settings.limits(),
            models,
            policy: Arc::new(policy),
            keys: Arc::new(KeyRing::new(store.clone(), settings.auth_cache_ttl())),
            rate_limits: Arc::new(RateLimits::new(&settings.rate_limits())),
            idempotency: settings.idempotency(),
            metrics: Arc::new(crate::metrics::Metrics::new()),
        });
        let metrics_server = match &settings.metrics_bind {
            Some(bind) => Some(metrics_server(bind, state.clone())?),
            None => None,
        };
        let openapi = ApiDoc::openapi();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(api::timeout::limit_duration))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(api::request_id::tag_request))
                .wrap(from_fn(api::metrics::count_request))
                .app_data(state.clone())
                .app_data(api::query_config())
                .configure(api::configure)
                .service(web::resource("/docs").to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header(("Location", "/docs/"))
                        .finish()
                }))
                .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
                .default_service(web::to(api::not_found))
        })
        .max_connections(settings.http_max_connections)
        .listen(listener)?
        .shutdown_timeout(settings.shutdown_timeout_secs)
        .shutdown_signal(stop_signal(settings.shutdown_timeout_secs));
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        Ok(Application {
            server: server.run(),
            port,
            metrics_server,
            store,
            decisions,
            shutdown_timeout_secs: settings.shutdown_timeout_secs,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener, when `metrics_bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting connections, lets in-flight requests
    /// finish (for at most `shutdown_timeout_secs`), waits until the audit log has committed
    /// every decision handed to it, and closes the store.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics_server.map(|(server, _)| {
            let handle = server.handle();
            (tokio::spawn(server), handle)
        });
        let result = self.server.await;
        if let Some((task, handle)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        tracing::info!(
            within_secs = self.shutdown_timeout_secs,
            "HTTP server stopped; flushing the audit log"
        );
        self.decisions.close().await;
        self.store.close().await;
        tracing::info!("shutdown complete");
        result
    }
}

/// A small server of its own for `GET /metrics` without a key: it listens where only the
/// scraper should reach (`metrics_bind`), stops with the main server, and shares its state, so
/// it shows the same counters. Its own requests are not counted.
fn metrics_server(bind: &str, state: web::Data<AppState>) -> anyhow::Result<(Server, u16)> {
    let listener =
        TcpListener::bind(bind).with_context(|| format!("binding the metrics address {bind}"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .service(web::resource("/metrics").route(web::get().to(api::metrics::metrics)))
            .default_service(web::to(api::not_found))
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .run();
    Ok((server, port))
}

/// Resolves on the first SIGTERM or SIGINT: the server then stops gracefully.
async fn stop_signal(within_secs: u64) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => (term, int),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT; stop the process with SIGKILL");
                return std::future::pending().await;
            }
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            within_secs,
            "stopping: no new connections; finishing in-flight requests"
        );
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!(
            within_secs,
            "stopping: no new connections; finishing in-flight requests"
        );
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
