use super::scores::model_problem;
use super::{ApiError, AppState, CommonErrors, Problem};
use crate::scoring::ModelInfo;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

/// The key under which the active model version is kept, so that it survives a restart.
pub const ACTIVE_MODEL_SETTING: &str = "active_model";

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// The version new requests score with.
    pub active: Option<String>,
    pub models: Vec<ModelInfo>,
}

/// The model artifacts the service can score with, verified, with their metrics.
#[utoipa::path(get, path = "/v1/models", tag = "models", operation_id = "list_models",
    responses((status = 200, description = "The models", body = ModelList)))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // Loading verifies every artifact's checksum: file I/O and hashing, off the async workers.
    let models = state.models.clone();
    let list = web::block(move || ModelList {
        active: models.current().map(|m| m.version.clone()),
        models: models.list(),
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("listing models: {e}")))?;
    Ok(HttpResponse::Ok().json(list))
}

/// Verify a model (checksum, feature catalog) and switch to it without a restart.
///
/// Requests in flight finish on the model they started with; none fails. A model that does not
/// verify is refused and the active one keeps serving. The choice survives a restart.
#[utoipa::path(post, path = "/v1/models/{version}/activate", tag = "models",
    params(("version" = String, Path, description = "The model version (its directory under models/)")),
    responses(
        (status = 200, description = "Active", body = ModelInfo),
        (status = 404, description = "No such model", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The artifact does not verify; the active model keeps serving", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn activate(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let version = path.into_inner();
    let registry = state.models.clone();
    let loading = version.clone();
    let model = web::block(move || registry.load(&loading))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("loading a model: {e}")))?
        .map_err(model_problem)?;
    state
        .store
        .set_setting(ACTIVE_MODEL_SETTING, &version)
        .await?;
    let info = ModelInfo::of(&model, true);
    state.models.set_active(model);
    tracing::info!(model = %version, "model activated");
    Ok(HttpResponse::Ok().json(info))
}
