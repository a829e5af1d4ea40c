use super::*;
use tantivy::Searcher;
use tantivy::query::{Query, TermQuery};

#[test]
fn the_analyzer_stems_and_drops_stop_words() {
    assert_eq!(
        query_terms("The Ropers are roping ropes"),
        vec![("roper".to_owned(), 1), ("rope".to_owned(), 2)]
    );
    assert!(query_terms("the and of").is_empty());
    // lone letters cut from possessives and contractions, and "I", are not terms; digits are
    assert_eq!(
        query_terms("I don't know the rider's class 1"),
        [
            ("don", 1),
            ("know", 1),
            ("rider", 1),
            ("class", 1),
            ("1", 1)
        ]
        .map(|(t, n)| (t.to_owned(), n))
    );
}

#[test]
fn consecutive_passages_lose_the_overlap_they_share() {
    let before = "The hazer rides on the far side of the steer, keeping it straight";
    let next = "the far side of the steer, keeping it straight. Then the bulldogger drops.";
    assert_eq!(after_overlap(before, next), ". Then the bulldogger drops.");
    // a short common stretch is chance, not overlap; nothing shared, nothing removed
    assert_eq!(
        after_overlap("roping the calf", "calf roping"),
        "calf roping"
    );
    assert_eq!(after_overlap("alpha", "beta"), "beta");
    assert_eq!(after_overlap("", "beta"), "beta");
    // multi-byte text is cut on character boundaries
    let long = "é".repeat(MAX_OVERLAP_BYTES);
    assert_eq!(after_overlap(&long, &format!("{}ü", "é".repeat(20))), "ü");
}

#[test]
fn a_documents_body_is_its_passages_once() {
    let passage = |heading: &str, text: &str| LexicalPassage {
        chunk_id: String::new(),
        title: heading.into(),
        heading: heading.into(),
        text: text.into(),
    };
    let doc = LexicalDocument {
        document_id: "d".into(),
        collection: "c".into(),
        title: "Guide".into(),
        passages: vec![
            passage(
                "Timing",
                "The clock starts when the barrier releases the steer",
            ),
            passage(
                "Timing",
                "the barrier releases the steer and stops at the throw.",
            ),
            passage("Penalties", "Penalties: ten seconds for a broken barrier."),
            passage("Scoring", "Each judge scores the ride."),
        ],
    };
    assert_eq!(
        doc.body(),
        [
            "Timing",
            "The clock starts when the barrier releases the steer",
            " and stops at the throw.",
            "Penalties: ten seconds for a broken barrier.",
            "Scoring",
            "Each judge scores the ride.",
        ]
    );
}

#[test]
fn a_word_said_again_counts_more_but_saturates() {
    let at = |k3| Bm25 {
        k1: 1.2,
        b: 0.55,
        k3,
    };
    assert_eq!(at(0.0).query_weight(3), 1.0);
    assert_eq!(at(1.0).query_weight(1), 1.0);
    assert!((at(1.0).query_weight(3) - 1.5).abs() < 1e-6);
    assert!((at(1000.0).query_weight(3) - 3.0).abs() < 0.01);
}

/// Each document's score for one term, by `query`, best first, with its number (its
/// chunk id).
fn scores(searcher: &Searcher, query: &dyn Query) -> Vec<(f32, u32)> {
    let f = schema().1;
    let mut top: Vec<(f32, u32)> = searcher
        .search(query, &TopDocs::with_limit(50).order_by_score())
        .unwrap()
        .into_iter()
        .map(|(score, addr)| {
            let doc: TantivyDocument = searcher.doc(addr).unwrap();
            let n = doc.get_first(f.chunk_id).and_then(|v| v.as_str()).unwrap();
            (score, n.parse().unwrap())
        })
        .collect();
    top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    top
}

#[test]
fn bm25_equals_tantivys_own_at_its_parameters_and_follows_k1_and_b() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Inner::open(dir.path()).unwrap();
    let f = inner.fields;
    {
        let mut writer = inner.writer.lock().unwrap();
        for (n, body) in [
            "rope",
            "rope rope rope",
            "a heel rope is longer than a head rope",
            "the barrel pattern is a cloverleaf around three barrels in the arena, with no rope",
            "rope burns, rope tricks and rope horns: everything about the rope",
        ]
        .iter()
        .enumerate()
        {
            let mut doc = TantivyDocument::default();
            doc.add_text(f.chunk_id, n.to_string());
            doc.add_text(f.body, body);
            writer.add_document(doc).unwrap();
        }
        writer.commit().unwrap();
    }
    inner.reader.reload().unwrap();
    let searcher = inner.reader.searcher();
    let term = Term::from_field_text(f.body, "rope");
    let theirs = scores(
        &searcher,
        &TermQuery::new(term.clone(), IndexRecordOption::WithFreqs),
    );
    let plain = Bm25Term {
        term: term.clone(),
        params: Bm25 {
            k1: 1.2,
            b: 0.75,
            k3: 0.0,
        },
    };
    let ours = scores(&searcher, &plain);
    assert_eq!(ours.len(), 5);
    for ((a, da), (b, db)) in theirs.iter().zip(&ours) {
        assert_eq!(da, db);
        assert!((a - b).abs() < 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }
    // without length normalisation a single mention scores the same in a short and a long
    // document; without saturation (k1 large) repetition counts almost linearly
    let flat = scores(
        &searcher,
        &Bm25Term {
            term: term.clone(),
            params: Bm25 {
                k1: 1.2,
                b: 0.0,
                k3: 0.0,
            },
        },
    );
    let of = |list: &[(f32, u32)], d: u32| list.iter().find(|(_, x)| *x == d).unwrap().0;
    assert!((of(&flat, 0) - of(&flat, 3)).abs() < 1e-6, "{flat:?}");
    assert!(
        of(&ours, 0) > of(&ours, 3),
        "the short one wins with b: {ours:?}"
    );
    assert!(of(&flat, 2) > of(&flat, 0), "two mentions beat one");
    let linear = scores(
        &searcher,
        &Bm25Term {
            term,
            params: Bm25 {
                k1: 100.0,
                b: 0.0,
                k3: 0.0,
            },
        },
    );
    assert!(
        (of(&linear, 1) / of(&linear, 0) - 3.0).abs() < 0.1,
        "{linear:?}"
    );
}

#[test]
fn counts_are_kept_for_their_generation_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Inner::open(dir.path()).unwrap();
    let key: ScopeKey = (Kind::Passage, vec!["c".to_owned()]);
    let word = |i: usize| Term::from_field_text(inner.fields.body, &format!("w{i}"));
    let doc_freq = |generation: u64, i: usize, n: u64| {
        let term = word(i);
        inner
            .counted(
                generation,
                &key,
                |c| c.doc_freqs.get(&term).copied(),
                || Ok(n),
                |c, n| {
                    c.doc_freqs.insert(term.clone(), n);
                },
            )
            .unwrap()
    };
    assert_eq!(doc_freq(1, 0, 7), 7);
    // counted once per generation: the second count is not asked
    assert_eq!(doc_freq(1, 0, 8), 7);
    // a search on an older searcher counts for itself and keeps the newer counts
    assert_eq!(doc_freq(0, 0, 9), 9);
    assert_eq!(doc_freq(1, 0, 8), 7);
    // a new generation starts afresh
    assert_eq!(doc_freq(2, 0, 8), 8);
    // a flood of distinct words never holds more than the bound
    for i in 1..=COUNTED_WORDS + 10 {
        doc_freq(2, i, 1);
    }
    let counts = inner.counts.lock().unwrap();
    assert!(counts.words <= COUNTED_WORDS, "{} words held", counts.words);
    assert!(counts.words > 0);
    let held: usize = counts.scopes.values().map(|s| s.doc_freqs.len()).sum();
    assert_eq!(held, counts.words);
}
