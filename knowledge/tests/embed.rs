//! The embedding model as ingestion runs it: passages embedded together (on every session at
//! once) come back in the order they were given, each with the vector it gets alone. One per
//! model call (the default) gives exactly that vector; in batches, the int8 model's activations
//! are quantized over the whole batch, so a passage's batch-mates move its vector a little.

use knowledge::config::EmbeddingConfig;
use knowledge::embed::{Embedder, FastEmbedder};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[tokio::test]
async fn passages_keep_their_order_and_their_vectors_one_at_a_time() {
    // one passage per call, spread over the sessions
    same_vectors_together_as_alone(1, 0.99999).await;
}

#[tokio::test]
async fn passages_keep_their_order_and_near_their_vectors_in_batches() {
    // several batches in one call, each sorted by length inside the embedder
    same_vectors_together_as_alone(2, 0.98).await;
}

async fn same_vectors_together_as_alone(batch_size: usize, at_least: f32) {
    let config = EmbeddingConfig {
        batch_size,
        ..EmbeddingConfig::default()
    };
    let embedder = tokio::task::spawn_blocking(move || FastEmbedder::load(&config))
        .await
        .unwrap()
        .unwrap();
    let long = "Bareback riders must stay aboard for eight seconds, holding the rigging with one \
                hand; the judges score the rider and the horse out of fifty points each, and a \
                rider who touches the animal with the free hand is disqualified. "
        .repeat(4);
    let texts: Vec<String> = vec![
        long.clone(),
        "Heel rope".into(),
        "Barrel racing is timed to the hundredth of a second.".into(),
        "Tie-down roping".into(),
        long[..200].to_owned(),
    ];
    let together = embedder.embed_passages(texts.clone()).await.unwrap();
    assert_eq!(together.len(), texts.len());
    for (i, text) in texts.iter().enumerate() {
        let alone = embedder
            .embed_passages(vec![text.clone()])
            .await
            .unwrap()
            .remove(0);
        let same = cosine(&alone, &together[i]);
        assert!(
            same > at_least,
            "passage {i} came back as another's vector ({same})"
        );
        for (j, other) in together.iter().enumerate().filter(|(j, _)| *j != i) {
            assert!(
                cosine(&alone, other) < same,
                "passage {i} is closer to passage {j}'s vector than to its own"
            );
        }
    }
}
