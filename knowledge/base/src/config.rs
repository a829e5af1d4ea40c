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

/// Redis, for the rate limits every server of a deployment shares (`[redis]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]` or `redis+unix:///path/to/socket`. Unset: a
    /// deployment whose stores are all in PostgreSQL keeps the shared limits there.
    pub url: Option<Secret>,
    /// What every key Lariat writes starts with, so deployments can share one Redis.
    pub key_prefix: String,
    /// How long connecting and each command may take before the request fails (503).
    pub timeout_secs: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "lariat:".into(),
            timeout_secs: 2,
        }
    }
}

impl RedisConfig {
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |why: &str| Err(crate::Error::InvalidInput(format!("redis.{why}")));
        if self.timeout_secs == 0 || self.timeout_secs > 60 {
            return bad("timeout_secs is between 1 and 60");
        }
        let Some(url) = &self.url else {
            return Ok(());
        };
        let scheme = url.expose().split_once("://").map(|(s, _)| s);
        match scheme {
            Some("redis" | "redis+unix" | "unix") => Ok(()),
            Some("rediss") => bad(
                "url: TLS to Redis (rediss://) is not supported; reach Redis over a private network, or through a local TLS tunnel (stunnel, spiped)",
            ),
            _ => bad("url must start with redis://, redis+unix:// or unix://"),
        }
    }
}
