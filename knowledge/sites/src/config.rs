//! Sites' settings: one `[sites.DOMAIN]` section per external site agents act on.

use std::path::PathBuf;

use base::config::Secret;
use base::principal::Role;
use base::{Error, Result};
use serde::Deserialize;

/// The operator's settings for one domain's external site. What the site looks like (paths,
/// forms, selectors) is in the `layout` file; credentials are set here or in `LARIAT_SITES__…`
/// variables, never passed by the agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteSettings {
    /// The site's layout: a TOML file (see deploy/domains/rodeo/sites/).
    pub layout: Option<PathBuf>,
    /// Overrides the layout's base URL (a staging copy, a test fixture).
    pub base_url: Option<String>,
    /// The member account lariat signs in as.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Entries and withdrawals are refused unless the operator turns this on.
    pub writes_enabled: bool,
    /// Writes return the request that would have been sent, and send nothing.
    pub dry_run: bool,
    /// Requests per minute lariat makes to the site (all callers together).
    pub requests_per_minute: u32,
    /// The longest `Retry-After` lariat waits out before answering "rate limited".
    pub max_retry_wait_secs: u64,
    pub timeout_secs: u64,
    /// How long a preview's confirm token stays valid.
    pub confirm_ttl_secs: u64,
    /// The least role that may use the site tools: they act with the operator's member account.
    pub min_role: Role,
}

impl Default for SiteSettings {
    fn default() -> Self {
        Self {
            layout: None,
            base_url: None,
            username: None,
            password: None,
            writes_enabled: false,
            dry_run: false,
            requests_per_minute: 30,
            max_retry_wait_secs: 30,
            timeout_secs: 20,
            confirm_ttl_secs: 600,
            min_role: Role::Curator,
        }
    }
}

impl SiteSettings {
    /// Checks the settings of the site `name`.
    pub fn validate(&self, name: &str) -> Result<()> {
        if self.requests_per_minute == 0 || self.timeout_secs == 0 || self.confirm_ttl_secs == 0 {
            return Err(Error::InvalidInput(format!(
                "sites.{name}: requests_per_minute, timeout_secs and confirm_ttl_secs must be positive"
            )));
        }
        Ok(())
    }
}
