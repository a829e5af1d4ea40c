//! The derived indexes on real qdrant-edge and tantivy: writes, filters, deletes, persistence.

use std::collections::HashMap;

use base::ErrorCode;
use knowledge::config::QdrantConfig;
use knowledge::config::{RetrievalConfig, VectorPrecision};
use knowledge::lexical::{
    Bm25, LexicalDocument, LexicalIndex, LexicalPassage, QdrantLexicalIndex, Ranking,
    SqlLexicalIndex, TantivyIndex,
};
use knowledge::qdrant::QdrantEngine;

/// BM25 as most engines default it, passages ranked alone, titles doubled.
const PLAIN: Ranking = Ranking {
    bm25: Bm25 {
        k1: 1.2,
        b: 0.75,
        k3: 0.0,
    },
    title_boost: 2.0,
    document_weight: 0.0,
};
use base::sql::SqlStore;
use knowledge::vector::{
    EdgeVectorStore, PgVectorStore, QdrantVectorStore, VectorPoint, VectorStore,
};
use lariat_tests::qdrant::QdrantTarget;
use lariat_tests::{PgDatabase, PgVectorServer};

/// A client for `target`'s server, its collections under `prefix`.
fn qdrant(target: &QdrantTarget, prefix: &str) -> QdrantEngine {
    QdrantEngine::connect(&QdrantConfig {
        url: target.url.clone(),
        collection_prefix: prefix.into(),
        ..QdrantConfig::default()
    })
    .unwrap()
}

fn unit(v: [f32; 3]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn point(n: u128, doc: &str, collection: &str, v: [f32; 3]) -> VectorPoint {
    VectorPoint {
        chunk_id: uuid::Uuid::from_u128(n),
        document_id: doc.into(),
        collection: collection.into(),
        vector: unit(v),
    }
}

/// How far a stored component may come back from what was written: 32-bit floats exactly (but
/// for the text round trip of some wire formats), 16-bit ones to within half a unit in their
/// eleventh significant bit.
fn tolerance(precision: VectorPrecision) -> f32 {
    match precision {
        VectorPrecision::Float32 => 1e-5,
        VectorPrecision::Float16 => 1e-3,
    }
}

/// The conformance suite every `VectorStore` backend passes, its vectors stored at `precision`.
async fn vector_suite(store: &dyn VectorStore, precision: VectorPrecision) {
    let tolerance = tolerance(precision);
    store
        .replace(
            &[],
            vec![
                point(1, "d1", "a", [1.0, 0.0, 0.0]),
                point(2, "d1", "a", [0.9, 0.1, 0.0]),
                point(3, "d2", "a", [0.0, 1.0, 0.0]),
                point(4, "d3", "b", [1.0, 0.0, 0.01]),
            ],
        )
        .await
        .unwrap();
    let hits = store
        .search(unit([1.0, 0.0, 0.0]), &["a".into()], 10)
        .await
        .unwrap();
    let ids: Vec<String> = hits.iter().map(|h| h.0.clone()).collect();
    assert_eq!(ids[0], uuid::Uuid::from_u128(1).to_string());
    assert_eq!(
        ids.len(),
        3,
        "collection b is filtered out inside the query"
    );
    assert!(
        (hits[0].1 - 1.0).abs() < 1e-4,
        "cosine of identical vectors"
    );
    let both = store
        .search(unit([1.0, 0.0, 0.0]), &["a".into(), "b".into()], 2)
        .await
        .unwrap();
    assert_eq!(both.len(), 2);

    // asked for, each neighbour brings its stored vector (the feedback pass rescores them);
    // otherwise none is sent
    let near = store
        .nearest(unit([0.0, 1.0, 0.0]), &["a".into()], 2, true)
        .await
        .unwrap();
    assert_eq!(near[0].chunk_id, uuid::Uuid::from_u128(3).to_string());
    let stored = [unit([0.0, 1.0, 0.0]), unit([0.9, 0.1, 0.0])];
    for (n, want) in near.iter().zip(&stored) {
        assert_eq!(n.vector.len(), 3, "{n:?}");
        for (got, want) in n.vector.iter().zip(want) {
            assert!((got - want).abs() < tolerance, "{n:?} against {want:?}");
        }
    }
    let bare = store
        .nearest(unit([0.0, 1.0, 0.0]), &["a".into()], 2, false)
        .await
        .unwrap();
    assert!(bare.iter().all(|n| n.vector.is_empty()), "{bare:?}");
    assert_eq!(
        bare.iter()
            .map(|n| (&n.chunk_id, n.score))
            .collect::<Vec<_>>(),
        near.iter()
            .map(|n| (&n.chunk_id, n.score))
            .collect::<Vec<_>>()
    );

    // replacing a document removes all its old points
    store
        .replace(&["d1".into()], vec![point(5, "d1", "a", [0.0, 0.0, 1.0])])
        .await
        .unwrap();
    let mut all = store.chunk_ids().await.unwrap();
    all.sort();
    let expected: Vec<String> = [3u128, 4, 5]
        .iter()
        .map(|n| uuid::Uuid::from_u128(*n).to_string())
        .collect();
    assert_eq!(all, expected);
    store
        .replace(&["d2".into(), "d3".into()], vec![])
        .await
        .unwrap();
    assert_eq!(store.chunk_ids().await.unwrap().len(), 1);
    store.flush().await.unwrap();
    store.reset(3).await.unwrap();
    assert!(store.chunk_ids().await.unwrap().is_empty());
}

#[tokio::test]
async fn edge_vector_store_passes_the_suite_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vectors");
    let config = RetrievalConfig::default();
    {
        let store = EdgeVectorStore::open(&path, 3, &config).unwrap();
        vector_suite(&store, config.vector_precision).await;
        store
            .replace(&[], vec![point(9, "d9", "a", [0.0, 1.0, 1.0])])
            .await
            .unwrap();
    }
    let store = EdgeVectorStore::open(&path, 3, &config).unwrap();
    assert_eq!(
        store.chunk_ids().await.unwrap(),
        vec![uuid::Uuid::from_u128(9).to_string()]
    );
    drop(store);
    let err = EdgeVectorStore::open(&path, 4, &config).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
}

/// The precision is chosen when the store is created: a store made with 32-bit floats keeps them
/// when opened with 16-bit set, and one made with 16-bit floats rounds what is written to them
/// (each at its own precision when reset).
#[tokio::test]
async fn an_edge_store_keeps_the_precision_it_was_made_with() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vectors");
    let at = |vector_precision| RetrievalConfig {
        vector_precision,
        ..RetrievalConfig::default()
    };
    // a component 16 bits cannot hold: 1/3's error there is about 1e-4
    let written = [1.0f32 / 3.0, 0.5, 0.2];
    let stored = |store: EdgeVectorStore| async move {
        store
            .replace(&[], vec![point(1, "d", "a", written)])
            .await
            .unwrap();
        let near = store
            .nearest(unit(written), &["a".into()], 1, true)
            .await
            .unwrap();
        let error = near[0]
            .vector
            .iter()
            .zip(unit(written))
            .map(|(got, want)| (got - want).abs())
            .fold(0.0f32, f32::max);
        (store, error)
    };
    vector_suite(
        &EdgeVectorStore::open(&path, 3, &at(VectorPrecision::Float32)).unwrap(),
        VectorPrecision::Float32,
    )
    .await;
    let (store, error) =
        stored(EdgeVectorStore::open(&path, 3, &at(VectorPrecision::Float32)).unwrap()).await;
    assert!(error < 1e-7, "32-bit: {error}");
    drop(store);
    let (store, error) =
        stored(EdgeVectorStore::open(&path, 3, &at(VectorPrecision::Float16)).unwrap()).await;
    assert!(
        error < 1e-7,
        "made with 32-bit, opened with 16-bit set: {error}"
    );
    drop(store);
    std::fs::remove_dir_all(&path).unwrap();
    let (store, error) =
        stored(EdgeVectorStore::open(&path, 3, &at(VectorPrecision::Float16)).unwrap()).await;
    assert!(error > 1e-6 && error < 1e-3, "16-bit: {error}");
    store.reset(3).await.unwrap();
    let (_, error) = stored(store).await;
    assert!(
        error > 1e-6 && error < 1e-3,
        "16-bit after a reset: {error}"
    );
}

/// 1,500 points on the upper half of the unit sphere, spread by a fixed rule.
fn spread(first: u128, n: u128, collection: &str) -> Vec<VectorPoint> {
    (first..first + n)
        .map(|i| {
            let (a, b) = (i as f32 * 0.618, i as f32 * 0.377);
            point(
                i,
                &format!("doc{}", i / 10),
                collection,
                [a.cos(), a.sin(), b.sin().abs() + 0.01],
            )
        })
        .collect()
}

#[tokio::test]
async fn the_edge_store_indexes_itself_once_it_outgrows_exact_search() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vectors");
    // 1,500 points on a 3-d sphere lie closer to each other than 16-bit components can tell
    // apart (real embeddings spread their length over hundreds): this checks the graph, at 32
    let config = RetrievalConfig {
        exact_search_below: 200,
        vector_precision: VectorPrecision::Float32,
        ..RetrievalConfig::default()
    };
    let queries = [[1.0, 0.2, 0.1], [0.0, 1.0, 0.3], [-0.7, 0.5, 0.9]];
    let points = spread(1, 1500, "a");
    let brute_force = |q: [f32; 3]| -> Vec<String> {
        let q = unit(q);
        let mut scored: Vec<(f32, String)> = points
            .iter()
            .map(|p| {
                let s: f32 = p.vector.iter().zip(&q).map(|(a, b)| a * b).sum();
                (s, p.chunk_id.to_string())
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(5).map(|(_, id)| id).collect()
    };
    {
        let store = EdgeVectorStore::open(&path, 3, &config).unwrap();
        for batch in points.chunks(500) {
            store.replace(&[], batch.to_vec()).await.unwrap();
        }
        store.settle().await.unwrap();
        let (held, indexed) = store.indexed().unwrap();
        assert_eq!(held, 1500);
        assert!(
            indexed >= 1000,
            "the big segments have their graph: {indexed}"
        );
        for q in queries {
            let ids: Vec<String> = store
                .search(unit(q), &["a".into()], 5)
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.0)
                .collect();
            assert_eq!(ids, brute_force(q), "HNSW finds the exact top 5 for {q:?}");
        }
        store.flush().await.unwrap();
    }
    // the built index persists; reopening finds every point and the same answers
    let store = EdgeVectorStore::open(&path, 3, &config).unwrap();
    store.settle().await.unwrap();
    assert_eq!(store.chunk_ids().await.unwrap().len(), 1500);
    assert!(store.indexed().unwrap().1 >= 1000);
    let ids: Vec<String> = store
        .search(unit(queries[0]), &["a".into()], 5)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.0)
        .collect();
    assert_eq!(ids, brute_force(queries[0]));
    // a reset while the indexer may be at work waits for it and leaves an empty store
    store.replace(&[], spread(5000, 1000, "b")).await.unwrap();
    store.reset(3).await.unwrap();
    assert!(store.chunk_ids().await.unwrap().is_empty());
    store.replace(&[], spread(9000, 10, "c")).await.unwrap();
    assert_eq!(
        store
            .search(unit([1.0, 0.0, 0.0]), &["c".into()], 20)
            .await
            .unwrap()
            .len(),
        10
    );
}

#[tokio::test]
async fn pgvector_store_passes_the_suite_exact_and_by_hnsw() {
    let server = PgVectorServer::start();
    let db = server.database().await;
    let sql = SqlStore::open_postgres(&db.url).await.unwrap();
    let exact = RetrievalConfig::default();
    let hnsw = RetrievalConfig {
        exact_search_below: 0,
        ..RetrievalConfig::default()
    };
    // pgvector keeps 32-bit floats whatever the setting
    let f32 = VectorPrecision::Float32;
    vector_suite(&PgVectorStore::open(&sql, 3, &exact).await.unwrap(), f32).await;
    let store = PgVectorStore::open(&sql, 3, &hnsw).await.unwrap();
    vector_suite(&store, f32).await;

    // A collection filter that rejects nearly every nearest point still fills the list, in
    // order: 1,200 points of `crowd` surround the query, the 5 of `few` lie further out (the
    // index scan goes on past `hnsw_ef` candidates).
    let crowd: Vec<VectorPoint> = (0..1200u128)
        .map(|i| {
            let t = i as f32 / 1200.0;
            point(
                100 + i,
                &format!("crowd{}", i / 10),
                "crowd",
                [1.0, t * 0.1, 0.0],
            )
        })
        .collect();
    let few: Vec<VectorPoint> = (0..5u128)
        .map(|i| point(10 + i, "few", "few", [1.0, 1.0 + i as f32, 1.0]))
        .collect();
    store.replace(&[], crowd).await.unwrap();
    store.replace(&[], few).await.unwrap();
    let hits = store
        .search(unit([1.0, 0.0, 0.0]), &["few".into()], 5)
        .await
        .unwrap();
    let ids: Vec<String> = hits.iter().map(|h| h.0.clone()).collect();
    let expected: Vec<String> = (10..15u128)
        .map(|n| uuid::Uuid::from_u128(n).to_string())
        .collect();
    assert_eq!(ids, expected, "nearest first");
    assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));

    // what one server wrote, another sees at once (nothing is kept in the process)
    let other_sql = SqlStore::open_postgres(&db.url).await.unwrap();
    let other = PgVectorStore::open(&other_sql, 3, &exact).await.unwrap();
    assert_eq!(other.chunk_ids().await.unwrap().len(), 1205);
    store.replace(&["few".into()], vec![]).await.unwrap();
    assert!(
        other
            .search(unit([1.0, 0.0, 0.0]), &["few".into()], 5)
            .await
            .unwrap()
            .is_empty()
    );

    // another model's dimension is a conflict until the store is reset for it
    let err = PgVectorStore::open(&other_sql, 4, &exact)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    other.reset(4).await.unwrap();
    let four = PgVectorStore::open(&other_sql, 4, &exact).await.unwrap();
    assert!(four.chunk_ids().await.unwrap().is_empty());

    // vectors cannot be shared from SQLite
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqlStore::open_sqlite(&dir.path().join("lariat.db"))
        .await
        .unwrap();
    let err = PgVectorStore::open(&sqlite, 3, &exact).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    sql.close().await;
    other_sql.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn qdrant_vector_store_passes_the_suite_exact_and_by_hnsw() {
    let target = QdrantTarget::new();
    // the default, 16-bit vectors (the server is asked for them), in collections of their own
    let half = target.prefix();
    let default = RetrievalConfig::default();
    vector_suite(
        &QdrantVectorStore::open(qdrant(&target, &half), 3, &default)
            .await
            .unwrap(),
        default.vector_precision,
    )
    .await;
    qdrant(&target, &half).drop_all().await.unwrap();
    // below, neighbours closer than 16 bits tell apart: 32-bit vectors
    let exact = RetrievalConfig {
        vector_precision: VectorPrecision::Float32,
        ..RetrievalConfig::default()
    };
    let hnsw = RetrievalConfig {
        exact_search_below: 0,
        ..exact.clone()
    };
    let prefix = target.prefix();
    vector_suite(
        &QdrantVectorStore::open(qdrant(&target, &prefix), 3, &exact)
            .await
            .unwrap(),
        exact.vector_precision,
    )
    .await;
    let store = QdrantVectorStore::open(qdrant(&target, &prefix), 3, &hnsw)
        .await
        .unwrap();
    vector_suite(&store, hnsw.vector_precision).await;

    // what one server wrote, another sees at once
    store
        .replace(
            &[],
            (0..300u128)
                .map(|i| {
                    point(
                        100 + i,
                        &format!("d{}", i / 3),
                        "many",
                        [1.0, i as f32 / 300.0, 0.5],
                    )
                })
                .collect(),
        )
        .await
        .unwrap();
    let other = QdrantVectorStore::open(qdrant(&target, &prefix), 3, &exact)
        .await
        .unwrap();
    assert_eq!(
        other.chunk_ids().await.unwrap().len(),
        300,
        "scrolled past a page"
    );
    let hits = other
        .search(unit([1.0, 0.0, 0.5]), &["many".into()], 5)
        .await
        .unwrap();
    assert_eq!(hits[0].0, uuid::Uuid::from_u128(100).to_string());
    assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));
    assert!(
        other
            .search(unit([1.0, 0.0, 0.5]), &[], 5)
            .await
            .unwrap()
            .is_empty()
    );

    // another model's dimension is a conflict until the store is reset for it
    let err = QdrantVectorStore::open(qdrant(&target, &prefix), 4, &exact)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    other.reset(4).await.unwrap();
    let four = QdrantVectorStore::open(qdrant(&target, &prefix), 4, &exact)
        .await
        .unwrap();
    assert!(four.chunk_ids().await.unwrap().is_empty());
    qdrant(&target, &prefix).drop_all().await.unwrap();

    // a server that does not answer is unavailable, not a crash
    let gone = QdrantEngine::connect(&QdrantConfig {
        url: "http://127.0.0.1:9".into(),
        timeout_secs: 2,
        ..QdrantConfig::default()
    })
    .unwrap();
    let err = QdrantVectorStore::open(gone, 3, &exact).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
}

/// A document of passages `texts`, numbered from `n` (chunk ids `c{n}`, `c{n+1}`, …).
fn lex_passages(
    n: u32,
    doc: &str,
    collection: &str,
    title: &str,
    texts: &[&str],
) -> LexicalDocument {
    LexicalDocument {
        document_id: doc.into(),
        collection: collection.into(),
        title: title.into(),
        passages: texts
            .iter()
            .zip(n..)
            .map(|(text, i)| LexicalPassage {
                chunk_id: format!("c{i}"),
                title: title.into(),
                heading: title.into(),
                text: (*text).into(),
            })
            .collect(),
    }
}

fn lex(n: u32, doc: &str, collection: &str, title: &str, text: &str) -> LexicalDocument {
    lex_passages(n, doc, collection, title, &[text])
}

/// A collection is scored as if it were alone in the index: another collection's documents (and
/// deleted ones) change neither its scores nor its order.
async fn scores_each_collection_by_its_own_statistics(f: &mut Fresh) {
    let index = f.open().await;
    let docs = |collection: &str, offset: u32| {
        vec![
            lex(
                offset + 1,
                &format!("{collection}1"),
                collection,
                "Steer wrestling",
                "The bulldogger drops onto the steer.",
            ),
            lex(
                offset + 2,
                &format!("{collection}2"),
                collection,
                "Tie-down roping",
                "The roper ties three legs of the calf.",
            ),
            lex(
                offset + 3,
                &format!("{collection}3"),
                collection,
                "Rules",
                "A steer must be caught before the roper ties it.",
            ),
        ]
    };
    index.replace(&[], docs("alone", 0)).await.unwrap();
    let before = index
        .search("steer roper", &["alone".into()], 10, PLAIN)
        .await
        .unwrap();
    assert_eq!(before.len(), 3);
    // a crowd of another collection's documents, most of them about steers, and a deletion
    let crowd: Vec<LexicalDocument> = (0..200)
        .map(|i| {
            lex(
                100 + i,
                &format!("crowd{i}"),
                "crowd",
                "Steers",
                "steer steer steer roper",
            )
        })
        .collect();
    index.replace(&[], crowd).await.unwrap();
    index.replace(&[], docs("gone", 500)).await.unwrap();
    index
        .replace(&["gone1".into(), "gone2".into()], vec![])
        .await
        .unwrap();
    let after = index
        .search("steer roper", &["alone".into()], 10, PLAIN)
        .await
        .unwrap();
    assert_same(&after, &before);
    // the same collection under another index holding only it scores the same
    let solo = f.open().await;
    solo.replace(&[], docs("alone", 0)).await.unwrap();
    assert_same(
        &solo
            .search("steer roper", &["alone".into()], 10, PLAIN)
            .await
            .unwrap(),
        &before,
    );
}

async fn ranks_filters_and_replaces(f: &mut Fresh) {
    let index = f.open().await;
    index
        .replace(
            &[],
            vec![
                lex(
                    1,
                    "d1",
                    "a",
                    "Team roping",
                    "The heeler ropes both hind feet of the steer.",
                ),
                lex(
                    2,
                    "d2",
                    "a",
                    "Barrel racing",
                    "Three barrels in a cloverleaf pattern.",
                ),
                lex(
                    3,
                    "d3",
                    "b",
                    "Heel ropes",
                    "Heel ropes are longer than head ropes.",
                ),
                lex(4, "d4", "a", "Misc", "Nothing about the subject."),
            ],
        )
        .await
        .unwrap();
    let hits = index
        .search("heeling ropes", &["a".into()], 10, PLAIN)
        .await
        .unwrap();
    assert_eq!(
        hits.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
        vec!["c1"],
        "stemmed match, b filtered"
    );
    let hits = index
        .search("heel ropes", &["a".into(), "b".into()], 10, PLAIN)
        .await
        .unwrap();
    assert_eq!(hits[0].0, "c3", "title matches are boosted");
    assert!(
        index
            .search("the of and", &["a".into()], 10, PLAIN)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        index
            .search("ropes", &[], 10, PLAIN)
            .await
            .unwrap()
            .is_empty()
    );
    // punctuation and query syntax are plain text, never errors
    assert!(
        index
            .search("AND OR (\"barrels:", &["a".into()], 10, PLAIN)
            .await
            .is_ok()
    );

    index
        .replace(
            &["d1".into()],
            vec![lex(5, "d1", "a", "Team roping", "Headers dally.")],
        )
        .await
        .unwrap();
    let mut ids = index.chunk_ids().await.unwrap();
    ids.sort();
    assert_eq!(ids, vec!["c2", "c3", "c4", "c5"]);
    // adding a document again replaces it, even when the write does not say so
    index
        .replace(
            &[],
            vec![lex(6, "d1", "a", "Team roping", "Headers dally twice.")],
        )
        .await
        .unwrap();
    let mut ids = index.chunk_ids().await.unwrap();
    ids.sort();
    assert_eq!(ids, vec!["c2", "c3", "c4", "c6"]);
    assert!(!index.is_current(), "a new index was never marked");
    index.mark_current().await.unwrap();
    drop(index);
    let reopened = f.reopen_last().await;
    assert!(reopened.is_current());
    assert_eq!(reopened.chunk_ids().await.unwrap().len(), 4);
    reopened.reset().await.unwrap();
    assert!(reopened.chunk_ids().await.unwrap().is_empty());
    assert!(
        reopened
            .search("ropes", &["a".into(), "b".into()], 10, PLAIN)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A passage's score mixes its own BM25 (against the other passages) with its whole document's
/// (against the other documents), exactly: the document's score is what an index holding each
/// document as a single passage gives it.
async fn mixes_each_passage_with_its_whole_documents_score(f: &mut Fresh) {
    let corpus: [(&str, &str, &[&str]); 4] = [
        (
            "wrestling",
            "Steer wrestling",
            &[
                "The bulldogger rides alongside the steer.",
                "He drops from the horse and wrestles it to the ground.",
                "A hazer keeps the steer running straight.",
            ],
        ),
        (
            "roping",
            "Tie-down roping",
            &[
                "The roper catches the calf.",
                "Steer steer steer: the word alone.",
            ],
        ),
        ("barrels", "Barrel racing", &["Three barrels, no steer."]),
        (
            "rules",
            "Rules",
            &["A steer must be wrestled down within the time."],
        ),
    ];
    let split = f.open().await;
    let whole = f.open().await;
    let mut n = 0;
    for (doc, title, texts) in corpus {
        split
            .replace(&[], vec![lex_passages(n, doc, "a", title, texts)])
            .await
            .unwrap();
        whole
            .replace(&[], vec![lex(n, doc, "a", title, &texts.join(" "))])
            .await
            .unwrap();
        n += 10;
    }
    async fn search(index: &dyn LexicalIndex, w: f32) -> HashMap<String, f32> {
        let ranking = Ranking {
            document_weight: w,
            ..PLAIN
        };
        let hits = index
            .search("steer wrestling", &["a".into()], 50, ranking)
            .await
            .unwrap();
        hits.into_iter().collect()
    }
    let passages = search(&*split, 0.0).await;
    // the whole index numbers each document by its first passage
    let documents = search(&*whole, 0.0).await;
    let document_of = |chunk: &str| {
        let n: u32 = chunk[1..].parse().unwrap();
        format!("c{}", n / 10 * 10)
    };
    for w in [0.3, 0.8, 1.0] {
        let mixed = search(&*split, w).await;
        assert_eq!(mixed.len(), passages.len(), "the same passages match");
        for (chunk, score) in &mixed {
            let expected = (1.0 - w) * passages[chunk] + w * documents[&document_of(chunk)];
            assert!(
                (score - expected).abs() < 1e-4 * expected.max(1.0),
                "{chunk} at {w}: {score} vs {expected}"
            );
        }
    }
    // every passage of the document about wrestling steers outranks the passage that only
    // repeats "steer"
    let mixed = search(&*split, 0.8).await;
    assert!(
        ["c0", "c1", "c2"].iter().all(|c| mixed[*c] > mixed["c11"]),
        "{mixed:?}"
    );
    // replacing and deleting a document replaces and deletes its whole-document entry too
    split
        .replace(
            &["wrestling".into()],
            vec![lex(0, "wrestling", "a", "Misc", "Nothing here.")],
        )
        .await
        .unwrap();
    let after = search(&*split, 0.8).await;
    assert!(after.keys().all(|c| document_of(c) != "c0"), "{after:?}");
    split.replace(&["roping".into()], vec![]).await.unwrap();
    let after = search(&*split, 0.8).await;
    assert!(after.keys().all(|c| document_of(c) != "c10"), "{after:?}");
}

/// Statistics a search counts and keeps (entries and tokens per set of collections) hold only for
/// the index generation they were counted on and their own set: a search after a change scores
/// exactly as an index that never served the earlier searches.
async fn statistics_follow_every_change_and_each_set_of_collections(f: &mut Fresh) {
    let first = || {
        vec![
            lex(0, "d0", "a", "Steer", "A steer runs."),
            lex(
                10,
                "d1",
                "b",
                "Calf",
                "The calf and the steer and the steer.",
            ),
        ]
    };
    let more = || {
        vec![
            lex(20, "d2", "a", "Runs", "Steer runs and steer runs again."),
            lex(30, "d3", "a", "Other", "Nothing of the kind."),
        ]
    };
    let ranking = Ranking {
        document_weight: 0.5,
        ..PLAIN
    };
    let sets: [Vec<String>; 2] = [vec!["a".into()], vec!["a".into(), "b".into()]];
    let warm = f.open().await;
    warm.replace(&[], first()).await.unwrap();
    let mut before = Vec::new();
    for set in &sets {
        let hits = warm.search("steer runs", set, 10, ranking).await.unwrap();
        before.push(hits.into_iter().collect::<HashMap<_, _>>());
    }
    assert_ne!(
        before[0]["c0"], before[1]["c0"],
        "each set of collections is scored with its own statistics"
    );

    warm.replace(&[], more()).await.unwrap();
    let cold = f.open().await;
    cold.replace(&[], first()).await.unwrap();
    cold.replace(&[], more()).await.unwrap();
    for (set, before) in sets.iter().zip(&before) {
        let warm = warm.search("steer runs", set, 10, ranking).await.unwrap();
        let cold = cold.search("steer runs", set, 10, ranking).await.unwrap();
        assert_same(&warm, &cold);
        let c0 = warm.iter().find(|h| h.0 == "c0").unwrap().1;
        assert_ne!(
            c0, before["c0"],
            "{set:?}: the new documents changed the statistics"
        );
    }
}

/// Where one backend's indexes live: each [`Fresh::open`] makes a new, empty one.
enum Place {
    Dir(tempfile::TempDir),
    Sql(SqlStore, Option<PgDatabase>),
    Qdrant(String),
}

/// Opens fresh lexical indexes of one backend for a suite test, and cleans up after it.
struct Fresh {
    backend: &'static str,
    places: Vec<Place>,
    qdrant: Option<QdrantTarget>,
}

impl Fresh {
    fn new(backend: &'static str) -> Self {
        Self {
            backend,
            places: Vec::new(),
            qdrant: (backend == "qdrant").then(QdrantTarget::new),
        }
    }

    async fn open(&mut self) -> Box<dyn LexicalIndex> {
        let place = match self.backend {
            "tantivy" => Place::Dir(tempfile::tempdir().unwrap()),
            "sqlite" => {
                let dir = tempfile::tempdir().unwrap();
                let sql = SqlStore::open_sqlite(&dir.path().join("lariat.db"))
                    .await
                    .unwrap();
                self.places.push(Place::Dir(dir));
                Place::Sql(sql, None)
            }
            "postgres" => {
                let db = PgDatabase::create().await;
                Place::Sql(SqlStore::open_postgres(&db.url).await.unwrap(), Some(db))
            }
            "qdrant" => Place::Qdrant(self.qdrant.as_ref().unwrap().prefix()),
            other => panic!("no lexical backend {other}"),
        };
        self.places.push(place);
        self.reopen_last().await
    }

    async fn reopen_last(&self) -> Box<dyn LexicalIndex> {
        match self.places.last().unwrap() {
            Place::Dir(dir) => Box::new(TantivyIndex::open(&dir.path().join("lexical")).unwrap()),
            Place::Sql(sql, _) => Box::new(SqlLexicalIndex::open(sql).await.unwrap()),
            Place::Qdrant(prefix) => Box::new(
                QdrantLexicalIndex::open(qdrant(self.qdrant.as_ref().unwrap(), prefix), &PLAIN)
                    .await
                    .unwrap(),
            ),
        }
    }

    async fn finish(self) {
        for place in self.places {
            match place {
                Place::Sql(sql, db) => {
                    sql.close().await;
                    if let Some(db) = db {
                        db.drop_db().await;
                    }
                }
                Place::Qdrant(prefix) => {
                    qdrant(self.qdrant.as_ref().unwrap(), &prefix)
                        .drop_all()
                        .await
                        .unwrap();
                }
                Place::Dir(_) => {}
            }
        }
    }
}

/// The same hits with the same scores, to float precision (SQL sums in another order).
fn assert_same(a: &[(String, f32)], b: &[(String, f32)]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for ((a_id, a), (b_id, b)) in a.iter().zip(b) {
        assert_eq!(a_id, b_id, "{a:?} vs {b:?}");
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "{a_id}: {a} vs {b}"
        );
    }
}

/// The lexical suite, each test on fresh indexes, for every backend: tantivy in a folder, the
/// term tables on SQLite and on PostgreSQL, and sparse vectors on Qdrant.
macro_rules! lexical_suite {
    ($($backend:ident),+ => $tests:tt) => {
        $(lexical_suite!(@one $backend $tests);)+
    };
    (@one $backend:ident [$($test:ident),+]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() {
                    let mut fresh = super::Fresh::new(stringify!($backend));
                    super::$test(&mut fresh).await;
                    fresh.finish().await;
                }
            )+
        }
    };
}

lexical_suite!(tantivy, sqlite, postgres, qdrant => [
    scores_each_collection_by_its_own_statistics,
    ranks_filters_and_replaces,
    mixes_each_passage_with_its_whole_documents_score,
    statistics_follow_every_change_and_each_set_of_collections
]);
