//! The models the service can score with, and the one it does: loaded at start, listed, and
//! switched without a restart. A switch swaps an `Arc`: requests in flight finish on the model
//! they started with, new ones get the new model, and none waits or fails.

use crate::scorecard::Artifact;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use utoipa::ToSchema;

/// A loaded, verified model.
#[derive(Debug)]
pub struct ActiveModel {
    /// The directory name under the models directory.
    pub version: String,
    pub artifact: Artifact,
}

/// Why a model cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    NotFound(String),
    /// The artifact is corrupted, truncated, or built for another feature catalog.
    Invalid(String),
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelError::NotFound(m) | ModelError::Invalid(m) => f.write_str(m),
        }
    }
}

/// What the registry knows of one model directory.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelInfo {
    #[schema(example = "sc-2026.11-sim42")]
    pub version: String,
    pub active: bool,
    /// Whether the artifact verifies (checksum, format, feature catalog).
    pub valid: bool,
    /// Why it does not, when it does not.
    pub problem: Option<String>,
    pub created_at: Option<String>,
    pub feature_catalog_version: Option<String>,
    pub artifact_sha256: Option<String>,
    pub training_rows: Option<u64>,
    pub training_default_rate: Option<f64>,
    /// The artifact's evaluation metrics as trained (AUC, KS, calibration …).
    #[schema(value_type = Option<Object>)]
    pub metrics: Option<serde_json::Value>,
}

impl ModelInfo {
    /// What is known of a model that loaded and verified.
    pub fn of(m: &ActiveModel, active: bool) -> ModelInfo {
        ModelInfo {
            version: m.version.clone(),
            active,
            valid: true,
            problem: None,
            created_at: Some(m.artifact.created_at.clone()),
            feature_catalog_version: Some(m.artifact.feature_catalog_version.clone()),
            artifact_sha256: Some(m.artifact.artifact_sha256.clone()),
            training_rows: Some(m.artifact.data.rows),
            training_default_rate: Some(m.artifact.data.default_rate),
            metrics: Some(m.artifact.metrics.clone()),
        }
    }
}

pub struct ModelRegistry {
    dir: PathBuf,
    active: RwLock<Option<Arc<ActiveModel>>>,
}

impl std::fmt::Debug for ModelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ModelRegistry({}, active: {:?})",
            self.dir.display(),
            self.current().map(|m| m.version.clone())
        )
    }
}

/// A version names a directory: the safe id alphabet only, so it cannot leave the models
/// directory.
fn check_version(version: &str) -> Result<(), ModelError> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !version.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ModelError::NotFound(format!(
            "{version:?} is not a model version"
        )))
    }
}

impl ModelRegistry {
    pub fn new(dir: impl Into<PathBuf>) -> ModelRegistry {
        ModelRegistry {
            dir: dir.into(),
            active: RwLock::new(None),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads and verifies a model without making it active.
    pub fn load(&self, version: &str) -> Result<Arc<ActiveModel>, ModelError> {
        check_version(version)?;
        let path = self.dir.join(version);
        if !path.join("model.json").is_file() {
            return Err(ModelError::NotFound(format!(
                "there is no model {version} in {}",
                self.dir.display()
            )));
        }
        let artifact = Artifact::load(&path).map_err(|e| ModelError::Invalid(e.to_string()))?;
        artifact
            .check_catalog()
            .map_err(|e| ModelError::Invalid(e.to_string()))?;
        Ok(Arc::new(ActiveModel {
            version: version.to_string(),
            artifact,
        }))
    }

    /// Verifies a model and makes it the one new requests score with. A model that does not
    /// verify is refused and the active one keeps serving.
    pub fn activate(&self, version: &str) -> Result<Arc<ActiveModel>, ModelError> {
        let model = self.load(version)?;
        self.set_active(model.clone());
        Ok(model)
    }

    /// Makes an already loaded model the active one.
    pub fn set_active(&self, model: Arc<ActiveModel>) {
        let mut active = self
            .active
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *active = Some(model);
    }

    /// The model new requests score with.
    pub fn current(&self) -> Option<Arc<ActiveModel>> {
        self.active
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Versions present in the models directory, sorted.
    pub fn versions(&self) -> Vec<String> {
        let mut versions: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().join("model.json").is_file())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|v| check_version(v).is_ok())
                    .collect()
            })
            .unwrap_or_default();
        versions.sort();
        versions
    }

    /// Every model with what is known of it.
    pub fn list(&self) -> Vec<ModelInfo> {
        let active = self.current().map(|m| m.version.clone());
        self.versions()
            .into_iter()
            .map(|version| match self.load(&version) {
                Ok(m) => ModelInfo::of(&m, active.as_deref() == Some(version.as_str())),
                Err(e) => ModelInfo {
                    active: false,
                    valid: false,
                    problem: Some(e.to_string()),
                    created_at: None,
                    feature_catalog_version: None,
                    artifact_sha256: None,
                    training_rows: None,
                    training_default_rate: None,
                    metrics: None,
                    version,
                },
            })
            .collect()
    }

    /// Activates the first of `preferred` that verifies, else the newest valid version; returns
    /// what was activated, and the problems met on the way.
    pub fn activate_first(&self, preferred: &[&str]) -> (Option<Arc<ActiveModel>>, Vec<String>) {
        let mut problems = Vec::new();
        let newest_first: Vec<String> = self.versions().into_iter().rev().collect();
        for version in preferred
            .iter()
            .copied()
            .chain(newest_first.iter().map(String::as_str))
        {
            match self.activate(version) {
                Ok(m) => return (Some(m), problems),
                Err(e) => problems.push(format!("{version}: {e}")),
            }
        }
        (None, problems)
    }
}
