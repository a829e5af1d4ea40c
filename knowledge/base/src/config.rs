//! What every concern's settings share: secrets that are never printed, and where lariat keeps its
//! data and finds its model assets. Each concern's crate owns its own sections; `service`
//! composes them into the one layered `Config`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A value that must never be printed (database URLs carry passwords).
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where `make setup` installs the model and ONNX Runtime.
pub fn default_assets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LARIAT_ASSETS_DIR") {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("lariat")
        .join("assets")
}

/// The default data directory: `$XDG_DATA_HOME/lariat` (or the platform's equivalent).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("lariat")
}
