//! Rate limits' buckets in Redis, for deployments that would rather not put a write per request
//! on PostgreSQL: the same GCRA as the database's `rate_limits` ([`crate::sql::SqlStore`]), run as
//! one Lua script so concurrent takes from any number of servers never both get the last cell.
//! A bucket is one string key, `<prefix>rate:<row>`, holding its theoretical arrival time, and
//! expires when it would be full again: Redis keeps only live buckets, with no pruning.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::Secret;
use crate::error::{Error, Result};
use crate::ratelimit::RateStore;

/// GCRA: `tat` is when the bucket's next cell would be due were it empty; a take moves it one
/// interval on and is refused when that would put it more than the tolerance (interval × burst)
/// ahead of now. Returns -1 when taken, else the milliseconds until a cell is.
const TAKE: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - tolerance <= now then
  redis.call('SET', KEYS[1], next_tat, 'PX', math.max(next_tat - now, 1))
  return -1
end
return next_tat - tolerance - now
";

/// The Redis the deployment's servers share.
#[derive(Clone)]
pub struct RedisRates {
    connection: ConnectionManager,
    prefix: String,
    script: redis::Script,
}

impl std::fmt::Debug for RedisRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRates")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A Redis failure as the error a caller can act on: the server is out of reach (503).
fn unavailable(e: redis::RedisError) -> Error {
    Error::Unavailable(format!("redis: {e}"))
}

impl RedisRates {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db]`, or `redis+unix:///path`);
    /// keys start with `prefix`. Fails at once when the server cannot be reached, so a
    /// misconfigured deployment does not start.
    pub async fn connect(url: &Secret, prefix: &str, timeout: Duration) -> Result<Self> {
        let client = redis::Client::open(url.expose()).map_err(|e| {
            // the URL may hold a password: say what is wrong, never the URL
            Error::InvalidInput(format!("redis.url is not a Redis URL ({:?})", e.kind()))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            script: redis::Script::new(TAKE),
        })
    }
}

#[async_trait]
impl RateStore for RedisRates {
    async fn take(
        &self,
        key: &str,
        interval_ms: i64,
        burst: u32,
        now_ms: i64,
    ) -> Result<Option<u64>> {
        let tolerance = interval_ms.saturating_mul(i64::from(burst));
        let mut connection = self.connection.clone();
        let wait: i64 = self
            .script
            .key(format!("{}rate:{key}", self.prefix))
            .arg(now_ms)
            .arg(interval_ms)
            .arg(tolerance)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok((wait >= 0).then(|| u64::try_from(wait).unwrap_or(0).max(1)))
    }
}
