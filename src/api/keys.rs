//! API keys over HTTP, for admins: list, issue, revoke, rotate. (`smecredit keys …` does the same
//! from the command line.)

use super::{ApiError, AppState, CommonErrors, Problem, read_json};
use crate::keys::{self, KeyError, KeyInfo, Role};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid { field, message } => ApiError::invalid_field(field, message),
            KeyError::NotFound(id) => ApiError::NotFound(format!(
                "no key has the id {}",
                id.chars().take(64).collect::<String>()
            )),
            KeyError::Random(m) => ApiError::Internal(anyhow::anyhow!(m)),
            KeyError::Store(e) => e.into(),
        }
    }
}

/// What a new key is for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "merchant", "merchant_id": "m-0001", "name": "m-0001 in the merchant app"}))]
pub struct NewKeyRequest {
    pub role: Role,
    /// Required for a merchant key (the only merchant it reads), refused for the others.
    pub merchant_id: Option<String>,
    /// 1–100 characters to recognise the key by (default: the role, and the merchant).
    pub name: Option<String>,
}

/// A key just issued. `key` is shown this once: only its hash is stored.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"key": "smk_5d1c0e7f2a9b4c3d8e6f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
    "key_id": "key_3f9a2c1b7d4e", "name": "acme-bank scoring", "role": "lender", "merchant_id": null,
    "principal": "key_3f9a2c1b7d4e", "created_at": "2026-11-22T08:00:00Z", "revoked_at": null}))]
pub struct IssuedKey {
    /// The secret key, to send as `Authorization: Bearer …`.
    pub key: String,
    #[serde(flatten)]
    pub info: KeyInfo,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Oldest first, revoked ones included; never a secret.
    pub keys: Vec<KeyInfo>,
}

fn issued(new: keys::NewKey) -> HttpResponse {
    HttpResponse::Created()
        // The body holds a secret: no cache may keep it.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(IssuedKey {
            key: new.secret.expose().to_string(),
            info: new.info,
        })
}

/// Every API key, without secrets.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", operation_id = "list_keys",
    responses((status = 200, description = "The keys", body = KeyList), CommonErrors))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = keys::list(&state.store).await?;
    Ok(HttpResponse::Ok().json(KeyList { keys }))
}

/// Issue a new API key; the answer holds the key, which is never shown again.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", operation_id = "create_key",
    request_body = NewKeyRequest,
    responses(
        (status = 201, description = "Issued", body = IssuedKey),
        (status = 400, description = "The body cannot be read (an unknown role, an unknown field)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A merchant key without its merchant, or another key with one; a bad name", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn create(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input: NewKeyRequest = read_json(&req, body, state.limits.max_body_bytes).await?;
    let new = keys::create(
        &state.store,
        input.role,
        input.merchant_id.as_deref(),
        input.name.as_deref(),
    )
    .await?;
    Ok(issued(new))
}

/// Revoke a key: it is refused from now on by this replica, and by every replica within the
/// key cache's lifetime (`auth_cache_secs`, 5 s by default). Revoking a revoked key changes
/// nothing.
#[utoipa::path(post, path = "/v1/keys/{key_id}/revoke", tag = "keys",
    params(("key_id" = String, Path, description = "The key's public id")),
    responses(
        (status = 200, description = "Revoked", body = KeyInfo),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn revoke(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let info = keys::revoke(&state.store, &path).await?;
    state.keys.forget(&info.key_id);
    tracing::info!(revoked_key_id = %info.key_id, "api key revoked");
    Ok(HttpResponse::Ok().json(info))
}

/// Rotate a key: a new key with the same role, merchant, name and principal (a lender's new key
/// reads the decisions of the old one). The old key keeps working until it is revoked: deploy
/// the new key, then revoke the old one.
#[utoipa::path(post, path = "/v1/keys/{key_id}/rotate", tag = "keys",
    params(("key_id" = String, Path, description = "The public id of the key to replace")),
    responses(
        (status = 201, description = "The new key", body = IssuedKey),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn rotate(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let new = keys::rotate(&state.store, &path).await?;
    Ok(issued(new))
}
