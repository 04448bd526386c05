//! API keys: who calls the service, and in which role.
//!
//! A key is `smk_` followed by 64 hex digits: 256 bits from the operating system's random source.
//! It is shown once, when it is created; the store keeps only its SHA-256. A plain hash is enough
//! because nothing about a key is guessable (slow password hashes protect secrets people choose),
//! and it lets a key be found by an index lookup on its hash: presenting an unknown key and
//! presenting a wrong one are the same work — hash, one lookup, one constant-time comparison.
//!
//! Keys are never deleted, only revoked, so that every caller in the audit log stays known. A
//! rotation issues a new key in the same role that continues the old one's *principal*: a
//! lender's decisions stay readable after its key is replaced.

use crate::domain::MerchantId;
use crate::store::{Store, StoreError, StoredKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// What a key may do; see the README's route table.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The payment platform: writes and reads merchants, payments and loans.
    Platform,
    /// A lender: scores merchants, reads its own decisions and merchants' features.
    Lender,
    /// One merchant: reads its own eligibility and features.
    Merchant,
    /// Operators: models and keys; reads every decision.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Platform, Role::Lender, Role::Merchant, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Platform => "platform",
            Role::Lender => "lender",
            Role::Merchant => "merchant",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every key starts with it, so that a leaked key is recognisable (and secret scanners can find it).
pub const KEY_PREFIX: &str = "smk_";
const SECRET_BYTES: usize = 32;
const ID_BYTES: usize = 6;
/// Longest key name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A key's secret. It is shown once and never logged: its `Debug` hides it.
pub struct Secret(String);

impl Secret {
    /// The key itself, to hand to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Whether `s` has the shape of a key: the prefix and 64 lowercase hex digits.
pub fn well_formed(s: &str) -> bool {
    s.strip_prefix(KEY_PREFIX).is_some_and(|hex| {
        hex.len() == SECRET_BYTES * 2
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The SHA-256 of a key, as stored (hex-encoded) and as cached.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Everything about a key but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"key_id": "key_3f9a2c1b7d4e", "name": "acme-bank scoring", "role": "lender",
    "merchant_id": null, "principal": "key_3f9a2c1b7d4e", "created_at": "2026-11-22T08:00:00Z", "revoked_at": null}))]
pub struct KeyInfo {
    /// The public id of the key: listed, logged, recorded as the caller in the audit log.
    pub key_id: String,
    pub name: String,
    pub role: Role,
    /// The merchant a merchant key speaks for.
    #[schema(value_type = Option<String>)]
    pub merchant_id: Option<MerchantId>,
    /// The first key of this key's rotation chain (the key's own id unless it was issued by a
    /// rotation). A lender key reads the decisions of every key of its chain.
    pub principal: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<StoredKey> for KeyInfo {
    fn from(k: StoredKey) -> Self {
        KeyInfo {
            key_id: k.key_id,
            name: k.name,
            role: k.role,
            merchant_id: k.merchant_id,
            principal: k.principal,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A key just issued: the secret (shown once) and what is stored about it.
#[derive(Debug)]
pub struct NewKey {
    pub secret: Secret,
    pub info: KeyInfo,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no key has the id {0:?}")]
    NotFound(String),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        field,
        message: message.into(),
    }
}

fn random_hex(bytes: usize) -> Result<String, KeyError> {
    use rand::TryRngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(hex::encode(buf))
}

/// Checks what a new key is for: a merchant key names one merchant, no other key does; a name is
/// 1–100 printable characters (default: the role, and the merchant).
pub fn check_spec(
    role: Role,
    merchant_id: Option<&str>,
    name: Option<&str>,
) -> Result<(Option<MerchantId>, String), KeyError> {
    let merchant = match (role, merchant_id) {
        (Role::Merchant, Some(m)) => {
            Some(MerchantId::parse(m).map_err(|e| invalid("merchant_id", e.to_string()))?)
        }
        (Role::Merchant, None) => {
            return Err(invalid(
                "merchant_id",
                "a merchant key needs the id of the merchant it speaks for",
            ));
        }
        (_, Some(_)) => {
            return Err(invalid(
                "merchant_id",
                format!("only a merchant key is bound to a merchant, not a {role} key"),
            ));
        }
        (_, None) => None,
    };
    let name = match name {
        Some(n) => n.trim().to_string(),
        None => match &merchant {
            Some(m) => format!("{role} {m}"),
            None => role.to_string(),
        },
    };
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(invalid(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters, got {chars}"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "must not contain control characters"));
    }
    Ok((merchant, name))
}

/// Issues a new key. The secret is returned once and cannot be recovered later.
pub async fn create(
    store: &Store,
    role: Role,
    merchant_id: Option<&str>,
    name: Option<&str>,
) -> Result<NewKey, KeyError> {
    let (merchant, name) = check_spec(role, merchant_id, name)?;
    issue(store, role, merchant, name, None).await
}

/// Issues a new key in the same role, for the same merchant, with the same name and principal
/// as `key_id`, which stays valid until it is revoked (revoke it once the new key is deployed; a
/// revoked key can be rotated too, to replace a leaked one).
pub async fn rotate(store: &Store, key_id: &str) -> Result<NewKey, KeyError> {
    let old = store
        .api_key(key_id)
        .await?
        .ok_or_else(|| KeyError::NotFound(key_id.to_string()))?;
    issue(
        store,
        old.role,
        old.merchant_id,
        old.name,
        Some(old.principal),
    )
    .await
}

/// Revokes a key; revoking a revoked key changes nothing.
pub async fn revoke(store: &Store, key_id: &str) -> Result<KeyInfo, KeyError> {
    store
        .revoke_api_key(key_id, Utc::now())
        .await?
        .map(KeyInfo::from)
        .ok_or_else(|| KeyError::NotFound(key_id.to_string()))
}

/// Every key, oldest first, without secrets (none are stored).
pub async fn list(store: &Store) -> Result<Vec<KeyInfo>, KeyError> {
    Ok(store
        .api_keys()
        .await?
        .into_iter()
        .map(KeyInfo::from)
        .collect())
}

async fn issue(
    store: &Store,
    role: Role,
    merchant_id: Option<MerchantId>,
    name: String,
    principal: Option<String>,
) -> Result<NewKey, KeyError> {
    let secret = Secret(format!("{KEY_PREFIX}{}", random_hex(SECRET_BYTES)?));
    let key_id = format!("key_{}", random_hex(ID_BYTES)?);
    let stored = StoredKey {
        key_hash: hex::encode(hash(secret.expose())),
        principal: principal.unwrap_or_else(|| key_id.clone()),
        key_id,
        name,
        role,
        merchant_id,
        // Microseconds, as stored, so that the answer equals what a later read gives.
        created_at: DateTime::from_timestamp_micros(Utc::now().timestamp_micros())
            .unwrap_or_default(),
        revoked_at: None,
    };
    store.insert_api_key(&stored).await?;
    tracing::info!(key_id = %stored.key_id, role = %role, "api key issued");
    Ok(NewKey {
        secret,
        info: stored.into(),
    })
}

/// Who is calling: a valid, unrevoked key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    pub principal: String,
    pub name: String,
    pub role: Role,
    /// For a merchant key: the only merchant it may read.
    pub merchant_id: Option<MerchantId>,
}

impl From<StoredKey> for Caller {
    fn from(k: StoredKey) -> Self {
        Caller {
            key_id: k.key_id,
            principal: k.principal,
            name: k.name,
            role: k.role,
            merchant_id: k.merchant_id,
        }
    }
}

/// Cached answers beyond this many are dropped (expired ones first).
const MAX_CACHED: usize = 10_000;

/// Authenticates keys against the store, remembering each answer (valid, unknown or revoked) for
/// `ttl`: a revocation takes effect on every replica within `ttl`, and at once on the replica
/// that revoked it over the API.
pub struct KeyRing {
    store: Store,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

struct Cached {
    at: Instant,
    caller: Option<Caller>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing").field("ttl", &self.ttl).finish()
    }
}

impl KeyRing {
    pub fn new(store: Store, ttl: Duration) -> Self {
        KeyRing {
            store,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The caller a presented key stands for; `None` for an unknown or revoked key.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Caller>, StoreError> {
        let digest = hash(presented);
        if let Some(caller) = self.cached(&digest) {
            return Ok(caller);
        }
        let row = self.store.api_key_by_hash(&hex::encode(digest)).await?;
        // The row was found by its hash already; comparing again, in constant time and against
        // zeros when nothing was found, makes a found and a missing key the same work.
        let stored: [u8; 32] = row
            .as_ref()
            .and_then(|r| hex::decode(&r.key_hash).ok())
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 32]);
        let same: bool = stored.ct_eq(&digest).into();
        let caller = row
            .filter(|r| same && r.revoked_at.is_none())
            .map(Caller::from);
        self.remember(digest, caller.clone());
        Ok(caller)
    }

    /// Drops what is cached for a key, so that a revocation made here applies at once.
    pub fn forget(&self, key_id: &str) {
        self.lock()
            .retain(|_, c| c.caller.as_ref().is_none_or(|c| c.key_id != key_id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Cached>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<Option<Caller>> {
        if self.ttl.is_zero() {
            return None;
        }
        let cache = self.lock();
        let hit = cache.get(digest)?;
        (hit.at.elapsed() < self.ttl).then(|| hit.caller.clone())
    }

    fn remember(&self, digest: [u8; 32], caller: Option<Caller>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            let ttl = self.ttl;
            cache.retain(|_, c| c.at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(
            digest,
            Cached {
                at: Instant::now(),
                caller,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&StoreOptions::new(&url)).await.unwrap();
        (dir, store)
    }

    #[test]
    fn a_key_has_its_prefix_and_256_bits_in_hex() {
        assert!(well_formed(&format!("smk_{}", "0a".repeat(32))));
        assert!(!well_formed(&format!("smk_{}", "0A".repeat(32))));
        assert!(!well_formed(&format!("smk_{}", "0a".repeat(31))));
        assert!(!well_formed(&format!("sk_{}", "0a".repeat(32))));
        assert!(!well_formed(""));
    }

    #[test]
    fn a_spec_binds_merchant_keys_and_only_them_to_a_merchant() {
        assert_eq!(
            check_spec(Role::Merchant, Some("m-1"), None).unwrap().1,
            "merchant m-1"
        );
        assert!(check_spec(Role::Merchant, None, None).is_err());
        assert!(check_spec(Role::Lender, Some("m-1"), None).is_err());
        assert!(check_spec(Role::Merchant, Some("bad id"), None).is_err());
        assert!(check_spec(Role::Admin, None, Some("  ")).is_err());
        assert!(check_spec(Role::Admin, None, Some("a\u{7}b")).is_err());
        assert!(check_spec(Role::Admin, None, Some(&"x".repeat(101))).is_err());
        assert_eq!(check_spec(Role::Admin, None, None).unwrap().1, "admin");
    }

    #[test]
    fn a_secret_does_not_show_in_debug_output() {
        let s = Secret("smk_0123".into());
        assert_eq!(format!("{s:?}"), "Secret(…)");
    }

    #[tokio::test]
    async fn keys_authenticate_until_revoked_and_rotation_keeps_the_principal() {
        let (_dir, store) = store().await;
        let ring = KeyRing::new(store.clone(), Duration::ZERO);
        let k = create(&store, Role::Lender, None, Some("acme"))
            .await
            .unwrap();
        assert!(well_formed(k.secret.expose()));
        assert!(k.info.key_id.starts_with("key_"));
        let caller = ring.authenticate(k.secret.expose()).await.unwrap().unwrap();
        assert_eq!(caller.key_id, k.info.key_id);
        assert_eq!(caller.role, Role::Lender);
        assert_eq!(
            ring.authenticate(&format!("smk_{}", "0".repeat(64)))
                .await
                .unwrap(),
            None
        );

        let next = rotate(&store, &k.info.key_id).await.unwrap();
        assert_ne!(next.info.key_id, k.info.key_id);
        assert_eq!(next.info.principal, k.info.key_id);
        assert_eq!(next.info.name, "acme");
        let revoked = revoke(&store, &k.info.key_id).await.unwrap();
        assert!(revoked.revoked_at.is_some());
        assert_eq!(ring.authenticate(k.secret.expose()).await.unwrap(), None);
        assert!(
            ring.authenticate(next.secret.expose())
                .await
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            revoke(&store, "key_nope").await,
            Err(KeyError::NotFound(_))
        ));
        let listed = list(&store).await.unwrap();
        assert_eq!(listed.len(), 2);
    }

    #[tokio::test]
    async fn a_cached_answer_lasts_the_ttl_unless_forgotten() {
        let (_dir, store) = store().await;
        let ring = KeyRing::new(store.clone(), Duration::from_secs(3600));
        let k = create(&store, Role::Admin, None, None).await.unwrap();
        assert!(
            ring.authenticate(k.secret.expose())
                .await
                .unwrap()
                .is_some()
        );
        store
            .revoke_api_key(&k.info.key_id, Utc::now())
            .await
            .unwrap();
        assert!(
            ring.authenticate(k.secret.expose())
                .await
                .unwrap()
                .is_some(),
            "still cached"
        );
        ring.forget(&k.info.key_id);
        assert_eq!(ring.authenticate(k.secret.expose()).await.unwrap(), None);
    }
}
