//! One suite for upload jobs' rows on SQLite and PostgreSQL (a fresh database per run at
//! LARIAT_TEST_POSTGRES_URL): progress and heartbeat, a cancel asked for from anywhere, how a job
//! ends (once), lost jobs, retention and erasure.

use base::sql::SqlStore;
use lariat_tests::PgDatabase;
use operations::sources::ProgressSnapshot;
use operations::store::{
    PrivacyStore, RetentionStore, UPLOADS_KEPT_MS, UploadJob, UploadStatus, UploadStore,
};

fn job(id: &str, collection: &str, user: &str, at: i64) -> UploadJob {
    UploadJob {
        id: id.into(),
        collection: collection.into(),
        user_id: user.into(),
        filename: "big.jsonl".into(),
        bytes: 31_000_000,
        status: UploadStatus::Running,
        progress: ProgressSnapshot::default(),
        report: serde_json::Value::Null,
        error: String::new(),
        cancel_requested: false,
        created_at: at,
        updated_at: at,
        finished_at: None,
    }
}

async fn uploads_suite(store: &SqlStore) {
    let t = 1_700_000_000_000i64;
    store
        .insert_upload(&job("j1", "rodeo", "u1", t))
        .await
        .unwrap();
    store
        .insert_upload(&job("j2", "rodeo", "u2", t + 10))
        .await
        .unwrap();
    store
        .insert_upload(&job("j3", "other", "u1", t + 20))
        .await
        .unwrap();
    assert_eq!(store.upload("nope").await.unwrap(), None);

    // progress is written with the heartbeat; no cancel asked for yet
    let p = ProgressSnapshot {
        documents_total: 1,
        documents_done: 0,
        passages_total: 40_000,
        passages_done: 1_024,
    };
    assert!(!store.upload_progress("j1", &p, t + 2_000).await.unwrap());
    let j1 = store.upload("j1").await.unwrap().unwrap();
    assert_eq!((j1.progress, j1.updated_at), (p, t + 2_000));
    assert_eq!(j1.status, UploadStatus::Running);

    // a collection's jobs, newest first, its own only
    let listed: Vec<String> = store
        .uploads("rodeo", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(listed, ["j2", "j1"]);
    assert_eq!(store.uploads("rodeo", 1).await.unwrap().len(), 1);

    // a cancel asked for (from any server) is read back by the runner's next heartbeat
    assert!(store.cancel_upload("j1").await.unwrap());
    assert!(store.upload_progress("j1", &p, t + 4_000).await.unwrap());
    let done = ProgressSnapshot {
        passages_done: 2_048,
        ..p
    };
    store
        .finish_upload(
            "j1",
            UploadStatus::Cancelled,
            &done,
            &serde_json::Value::Null,
            "cancelled",
            t + 4_100,
        )
        .await
        .unwrap();
    let j1 = store.upload("j1").await.unwrap().unwrap();
    assert_eq!(j1.status, UploadStatus::Cancelled);
    assert!(j1.cancel_requested);
    assert_eq!(j1.progress.passages_done, 2_048);
    assert_eq!(j1.finished_at, Some(t + 4_100));
    // an ended job cannot be cancelled, and ends once: a second end changes nothing
    assert!(!store.cancel_upload("j1").await.unwrap());
    store
        .finish_upload(
            "j1",
            UploadStatus::Succeeded,
            &done,
            &serde_json::json!({"chunks": 1}),
            "",
            t + 5_000,
        )
        .await
        .unwrap();
    assert_eq!(
        store.upload("j1").await.unwrap().unwrap().status,
        UploadStatus::Cancelled
    );
    // a runner whose job ended elsewhere (or vanished) is told to stop
    assert!(store.upload_progress("j1", &p, t + 6_000).await.unwrap());
    assert!(store.upload_progress("nope", &p, t + 6_000).await.unwrap());

    // a job that succeeded keeps its report
    let report = serde_json::json!({"collection": "other", "added": 1, "chunks": 40000});
    store
        .finish_upload("j3", UploadStatus::Succeeded, &done, &report, "", t + 7_000)
        .await
        .unwrap();
    assert_eq!(store.upload("j3").await.unwrap().unwrap().report, report);

    // a running job whose heartbeat stopped was lost with its server
    assert_eq!(
        store
            .interrupt_stale_uploads(t + 5, t + 60_000)
            .await
            .unwrap(),
        0,
        "j2's heartbeat (t + 10) is not older than t + 5"
    );
    assert_eq!(
        store
            .interrupt_stale_uploads(t + 30_000, t + 60_000)
            .await
            .unwrap(),
        1
    );
    let j2 = store.upload("j2").await.unwrap().unwrap();
    assert_eq!(j2.status, UploadStatus::Interrupted);
    assert!(j2.error.contains("upload the file again"), "{}", j2.error);
    assert_eq!(j2.finished_at, Some(t + 60_000));

    // erasure takes the user's jobs (their file names are theirs); retention the old ended ones
    store
        .erase_user("u2", "erased@erased.invalid")
        .await
        .unwrap();
    assert_eq!(store.upload("j2").await.unwrap(), None);
    store
        .insert_upload(&job("j4", "rodeo", "u1", t))
        .await
        .unwrap();
    let purged = store
        .purge_expired(t + 20 + UPLOADS_KEPT_MS + 1)
        .await
        .unwrap();
    assert_eq!(purged.uploads, 2, "j1 and j3 ended; j4 still runs");
    assert!(store.upload("j4").await.unwrap().is_some());
}

#[tokio::test]
async fn sqlite_upload_jobs_pass_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("lariat.db"))
        .await
        .unwrap();
    uploads_suite(&store).await;
}

#[tokio::test]
async fn postgres_upload_jobs_pass_the_suite() {
    let db = PgDatabase::create().await;
    let store = SqlStore::open_postgres(&db.url).await.unwrap();
    uploads_suite(&store).await;
    store.close().await;
    db.drop_db().await;
}
