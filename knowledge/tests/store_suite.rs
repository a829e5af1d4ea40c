//! One conformance suite for the SQL store, run on SQLite and on PostgreSQL (a fresh database
//! per run on the server at LARIAT_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).

use knowledge::store::{SqlStore, Store};
use knowledge::{CollectionName, DocumentWrite, ErrorCode, Location, NewChunk};
use lariat_tests::PgDatabase;

fn doc(collection: &str, source: &str, hash: &str, texts: &[&str]) -> DocumentWrite {
    DocumentWrite {
        collection: CollectionName::parse(collection).unwrap(),
        source: source.to_owned(),
        title: format!("Title of {source}"),
        content_hash: hash.to_owned(),
        metadata: serde_json::json!({"k": "v"}),
        chunks: texts
            .iter()
            .enumerate()
            .map(|(i, t)| NewChunk {
                text: t.to_string(),
                location: Location {
                    pages: Some((i as u32 + 1, i as u32 + 1)),
                    headings: vec!["H".into()],
                },
                token_count: 3,
                embedding: vec![i as f32, 0.5, -1.0],
            })
            .collect(),
    }
}

async fn suite(store: &dyn Store) {
    let c = CollectionName::parse("docs").unwrap();
    store.ensure_collection(&c, "m", 3).await.unwrap();
    store.ensure_collection(&c, "m", 3).await.unwrap();
    let err = store.ensure_collection(&c, "other", 3).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert!(err.to_string().contains("lariat reindex"), "{err}");
    let v0 = store.collection(&c).await.unwrap().unwrap().version;

    // write: pending until marked indexed
    let a = doc("docs", "/x/a.md", "h1", &["alpha one", "alpha two"]);
    let b = doc("docs", "/x/b.jsonl#7", "h2", &["beta"]);
    store
        .write_documents(&[a.clone(), b.clone()])
        .await
        .unwrap();
    let mut pending = store.pending_documents().await.unwrap();
    pending.sort();
    let mut expected = vec![a.id(), b.id()];
    expected.sort();
    assert_eq!(pending, expected);
    store.mark_indexed(&[a.id(), b.id()]).await.unwrap();
    assert!(store.pending_documents().await.unwrap().is_empty());
    let states = store
        .document_states(&[a.id(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[&a.id()].content_hash, "h1");
    assert!(states[&a.id()].indexed);
    let coll = store.collection(&c).await.unwrap().unwrap();
    assert!(coll.version > v0, "writes bump the collection version");
    assert_eq!((coll.documents, coll.chunks), (2, 3));

    // chunks round-trip with embeddings and locations, ids match DocumentWrite::chunk_ids
    let chunks = store.chunks_of_documents(&[a.id()]).await.unwrap();
    assert_eq!(chunks.len(), 2);
    let ids: Vec<String> = a.chunk_ids().iter().map(|u| u.to_string()).collect();
    assert_eq!(chunks.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(chunks[1].embedding, vec![1.0, 0.5, -1.0]);
    assert_eq!(chunks[1].location.pages, Some((2, 2)));
    assert_eq!(chunks[0].title, "Title of /x/a.md");
    let views = store
        .chunk_views(&[ids[1].clone(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].text, "alpha two");
    assert_eq!(views[0].source, "/x/a.md");

    // rewrite replaces all chunks, no leftovers
    let a2 = doc("docs", "/x/a.md", "h1b", &["alpha new"]);
    store
        .write_documents(std::slice::from_ref(&a2))
        .await
        .unwrap();
    let chunks = store.chunks_of_documents(&[a.id()]).await.unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].text, "alpha new");
    assert_eq!(store.chunk_ids().await.unwrap().len(), 2);
    assert!(!store.document_states(&[a.id()]).await.unwrap()[&a.id()].indexed);

    // listing and lookup by source (records inside a file too)
    let docs = store.documents(Some(&c)).await.unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs.iter().map(|d| d.chunks).sum::<i64>(), 2);
    assert_eq!(
        store.documents_by_source("/x/b.jsonl").await.unwrap(),
        vec![b.id()]
    );
    assert_eq!(
        store.documents_by_source("/x/a.md").await.unwrap(),
        vec![a.id()]
    );
    assert!(store.documents_by_source("/x/a").await.unwrap().is_empty());

    // paging through every chunk
    let first = store.chunk_page(None, 1).await.unwrap();
    let second = store.chunk_page(Some(&first[0].id), 10).await.unwrap();
    assert_eq!(first.len() + second.len(), 2);
    assert!(second[0].id > first[0].id);

    // deletion leaves tombstones until cleared; a rewrite clears its tombstone
    assert_eq!(
        store
            .delete_documents(&[b.id(), "nope".into()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.tombstones().await.unwrap(), vec![b.id()]);
    assert!(
        store
            .chunks_of_documents(&[b.id()])
            .await
            .unwrap()
            .is_empty()
    );
    store
        .write_documents(std::slice::from_ref(&b))
        .await
        .unwrap();
    assert!(store.tombstones().await.unwrap().is_empty());
    store.delete_documents(&[b.id()]).await.unwrap();
    store.clear_tombstones(&[b.id()]).await.unwrap();
    assert!(store.tombstones().await.unwrap().is_empty());

    // re-embedding and rebuild bookkeeping
    let id = store.chunk_ids().await.unwrap()[0].clone();
    store
        .update_embeddings(&[(id.clone(), vec![9.0, 9.0])])
        .await
        .unwrap();
    store.set_collection_model("docs", "m2", 2).await.unwrap();
    let coll = store.collection(&c).await.unwrap().unwrap();
    assert_eq!((coll.model.as_str(), coll.dimension), ("m2", 2));
    let page = store.chunk_page(None, 10).await.unwrap();
    assert_eq!(
        page.iter().find(|c| c.id == id).unwrap().embedding,
        vec![9.0, 9.0]
    );
    store.mark_all_indexed().await.unwrap();
    assert!(store.pending_documents().await.unwrap().is_empty());
    assert_eq!(store.collections().await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("lariat.db"))
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    suite(&store).await;
    store.close().await;
    // reopening keeps the data and does not re-run migrations destructively
    let store = SqlStore::open_sqlite(&dir.path().join("lariat.db"))
        .await
        .unwrap();
    assert_eq!(store.chunk_ids().await.unwrap().len(), 1);
}

#[tokio::test]
async fn postgres_store_passes_the_suite() {
    let db = PgDatabase::create().await;
    let store = SqlStore::open_postgres(&db.url).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    suite(&store).await;
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_error() {
    let err = SqlStore::open_postgres("postgres://nobody@127.0.0.1:1/none")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
}
