//! Test support shared by the end-to-end tests (tests/e2e) and the store conformance suite
//! (knowledge/service/tests/store_suite.rs): a fresh PostgreSQL database per test run, and a
//! PostgreSQL server with pgvector started per test ([`PgVectorServer`]), and the machine's Redis.

use sqlx::{AssertSqlSafe, Connection};

/// A fresh PostgreSQL database on the server at `LARIAT_TEST_POSTGRES_URL` (default
/// `postgres://postgres@127.0.0.1:5432/postgres`), dropped by [`PgDatabase::drop_db`].
#[derive(Debug)]
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let admin_url = std::env::var("LARIAT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        Self::create_on(&admin_url).await
    }

    /// A fresh database on the server whose maintenance database is at `admin_url`.
    pub async fn create_on(admin_url: &str) -> Self {
        let name = format!("lariat_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {admin_url}: {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(admin_url)
            .to_owned();
        Self {
            url: format!("{base}/{name}"),
            admin_url: admin_url.to_owned(),
            name,
        }
    }

    pub async fn drop_db(self) {
        let mut conn = sqlx::PgConnection::connect(&self.admin_url)
            .await
            .expect("PostgreSQL reachable");
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .expect("drop the test database");
    }
}

pub mod fake_stripe;
mod pgvector;
pub mod qdrant;
pub mod rodeo_site;

pub use pgvector::PgVectorServer;
pub use qdrant::QdrantTestServer;

/// The Redis the tests use: `LARIAT_TEST_REDIS_URL`, default the machine's at 127.0.0.1:6379.
pub fn redis_url() -> String {
    std::env::var("LARIAT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test run uses, so runs share the one Redis without seeing each other.
pub fn redis_prefix() -> String {
    format!("lariat-test:{}:", uuid::Uuid::new_v4().simple())
}

/// The keys of the test Redis that start with `prefix`, each with the milliseconds it has left
/// to live (-1: it never expires).
pub async fn redis_keys(prefix: &str) -> Vec<(String, i64)> {
    let mut connection = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis must be reachable at {}: {e}", redis_url()));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        out.push((key, ttl));
    }
    out
}
