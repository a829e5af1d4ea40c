//! One suite for the stores of the rate limits servers share: the SQL database (SQLite and
//! PostgreSQL, a fresh database per run at LARIAT_TEST_POSTGRES_URL) and Redis (the server at
//! LARIAT_TEST_REDIS_URL, default redis://127.0.0.1:6379, under a key prefix of its own per run).

use std::time::Duration;

use base::ErrorCode;
use base::config::Secret;
use base::ratelimit::RateStore;
use base::redis::RedisRates;
use base::sql::SqlStore;
use lariat_tests::PgDatabase;

/// Rate limits' buckets: GCRA as a token bucket, each key its own, never more cells than the
/// burst however many servers take at once.
async fn rates_suite(store: &dyn RateStore) {
    let t = 1_000_000_000_000i64;
    for _ in 0..3 {
        assert_eq!(store.take("a", 1000, 3, t).await.unwrap(), None);
    }
    assert_eq!(store.take("a", 1000, 3, t).await.unwrap(), Some(1000));
    assert_eq!(store.take("a", 1000, 3, t + 400).await.unwrap(), Some(600));
    assert_eq!(
        store.take("b", 1000, 3, t).await.unwrap(),
        None,
        "its own bucket"
    );
    // a cell comes back each interval, and only one
    assert_eq!(store.take("a", 1000, 3, t + 1000).await.unwrap(), None);
    assert!(store.take("a", 1000, 3, t + 1000).await.unwrap().is_some());
    // a bucket left alone fills up again, to the burst and no further
    for _ in 0..3 {
        assert_eq!(store.take("a", 1000, 3, t + 60_000).await.unwrap(), None);
    }
    assert!(
        store
            .take("a", 1000, 3, t + 60_000)
            .await
            .unwrap()
            .is_some()
    );
    // many takes at once (as from many servers) get exactly the burst
    let takes = futures::future::join_all((0..20).map(|_| store.take("c", 60_000, 5, t))).await;
    let granted = takes
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_none())
        .count();
    assert_eq!(granted, 5);
}

#[tokio::test]
async fn sqlite_rates_pass_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("lariat.db"))
        .await
        .unwrap();
    rates_suite(&store).await;
}

#[tokio::test]
async fn postgres_rates_pass_the_suite() {
    let db = PgDatabase::create().await;
    let store = SqlStore::open_postgres(&db.url).await.unwrap();
    rates_suite(&store).await;
    store.close().await;
    db.drop_db().await;
}

async fn redis(prefix: &str) -> RedisRates {
    RedisRates::connect(
        &Secret::new(lariat_tests::redis_url()),
        prefix,
        Duration::from_secs(2),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn redis_rates_pass_the_suite() {
    let prefix = lariat_tests::redis_prefix();
    let store = redis(&prefix).await;
    rates_suite(&store).await;
    // every bucket it wrote expires on its own: Redis keeps live buckets only
    let keys = lariat_tests::redis_keys(&prefix).await;
    assert!(!keys.is_empty());
    for (key, ttl) in keys {
        assert!(ttl > 0, "{key} expires ({ttl})");
    }
    // two deployments on one Redis, told apart by their prefixes, never share a bucket
    let other = redis(&lariat_tests::redis_prefix()).await;
    let t = 1_000_000_000_000i64;
    assert_eq!(other.take("c", 60_000, 5, t).await.unwrap(), None);
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error() {
    let err = RedisRates::connect(
        &Secret::new("redis://:hunter2@127.0.0.1:1/0"),
        "x:",
        Duration::from_secs(1),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = RedisRates::connect(
        &Secret::new("redis://:hunter2@[::1"),
        "x:",
        Duration::from_secs(1),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
