use super::exhaustive::Bm25Term;
use super::*;
use tantivy::Searcher;
use tantivy::collector::TopDocs;
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
            doc.add_text(f.passage.body, body);
            writer.add_document(doc).unwrap();
        }
        writer.commit().unwrap();
    }
    inner.reader.reload().unwrap();
    let searcher = inner.reader.searcher();
    let term = Term::from_field_text(f.passage.body, "rope");
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
    let word = |i: usize| Term::from_field_text(inner.fields.passage.body, &format!("w{i}"));
    let doc_freq = |generation: u64, i: usize, n: u64| {
        let term = word(i);
        inner
            .counted(
                generation,
                &key,
                |c| c.terms.get(&term).map(|t| t.matches),
                || Ok(n),
                |c, n| {
                    let counts = TermCounts {
                        matches: n,
                        ..TermCounts::default()
                    };
                    c.terms.insert(term.clone(), Arc::new(counts));
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
    let held: usize = counts.scopes.values().map(|s| s.terms.len()).sum();
    assert_eq!(held, counts.words);
}

/// The default ranking.
const RANKING: Ranking = Ranking {
    bm25: Bm25 {
        k1: 1.2,
        b: 0.55,
        k3: 1.0,
    },
    title_boost: 0.25,
    document_weight: 0.5,
};

/// A deterministic generator (splitmix64).
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A word of a Zipf-like vocabulary of `n`: the first ones far more often.
    fn word(&mut self, n: usize) -> String {
        let r = self.below(n * n);
        format!("w{}", n - 1 - r.isqrt())
    }

    fn text(&mut self, n: usize, words: usize) -> String {
        (0..words)
            .map(|_| self.word(n))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[test]
fn pruned_search_ranks_exactly_as_scoring_every_match() {
    let dir = tempfile::tempdir().unwrap();
    let index = TantivyIndex::open(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut draw = Draw(7);
    const VOCABULARY: usize = 60;
    // several commits (segments), two collections, replaced and deleted documents
    for round in 0..6 {
        let docs: Vec<LexicalDocument> = (0..80)
            .map(|i| {
                let n = round * 80 + i;
                let id = format!("d{}", if round == 5 { i * 3 } else { n });
                let title_words = 1 + draw.below(3);
                let passages = 1 + draw.below(6);
                LexicalDocument {
                    document_id: id.clone(),
                    collection: ["a", "b"][n % 2].to_owned(),
                    title: draw.text(VOCABULARY, title_words),
                    passages: (0..passages)
                        .map(|p| {
                            let words = 3 + draw.below(40);
                            LexicalPassage {
                                chunk_id: format!("{id}#{p}"),
                                title: draw.text(VOCABULARY, 2),
                                heading: draw.text(VOCABULARY, 1),
                                text: draw.text(VOCABULARY, words),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        let delete: Vec<String> = (0..10).map(|i| format!("d{}", round * 37 + i)).collect();
        runtime.block_on(index.replace(&delete, docs)).unwrap();
    }
    let inner = index.inner();
    let searcher = inner.reader.searcher();
    assert!(searcher.segment_readers().len() > 1);
    let default = RANKING;
    let rankings = [
        default,
        Ranking {
            document_weight: 0.0,
            ..default
        },
        Ranking {
            document_weight: 1.0,
            title_boost: 0.0,
            ..default
        },
        Ranking {
            bm25: Bm25 {
                k1: 2.0,
                b: 1.0,
                k3: 0.0,
            },
            title_boost: 1.5,
            document_weight: 0.2,
        },
    ];
    let mut compared = 0;
    for q in 0..60 {
        let words = 1 + draw.below(9);
        let query = draw.text(VOCABULARY, words);
        let terms = query_terms(&query);
        let collections: Vec<String> = match q % 3 {
            0 => vec!["a".into()],
            1 => vec!["b".into(), "a".into()],
            _ => vec!["b".into(), "missing".into()],
        };
        let ranking = rankings[q % rankings.len()];
        let scope = |kind| Scope::new(&inner, &searcher, &collections, kind).unwrap();
        let (passages, documents) = (scope(Kind::Passage), scope(Kind::Document));
        for limit in [1, 10, 100, 5000] {
            let oracle =
                exhaustive::top_passages(&passages, Some(&documents), &terms, ranking, limit)
                    .unwrap();
            // a segment walked whole, or in pieces side by side
            for (ranked, piece) in [
                (1, u32::MAX),
                (4, 37),
                (
                    maxscore::DOCUMENTS_RANKED,
                    maxscore::piece_entries(&searcher),
                ),
                (maxscore::DOCUMENTS_RANKED, 100),
            ] {
                let pruned = maxscore::top_passages(
                    &passages,
                    Some(&documents),
                    &terms,
                    ranking,
                    limit,
                    ranked,
                    piece,
                )
                .unwrap();
                let context = format!(
                    "{query:?} in {collections:?}, {ranking:?}, top {limit}, {ranked} documents ranked, pieces of {piece}"
                );
                assert_eq!(pruned.len(), oracle.len(), "{context}");
                let close = |a: f32, b: f32| (a - b).abs() <= 1e-3 * a.abs().max(1.0);
                for ((s, _), (o, _)) in pruned.iter().zip(&oracle) {
                    assert!(close(*s, *o), "{s} against {o}: {context}");
                }
                // the same entries, but where a tie at the end lets either in
                let last = oracle.last().map_or(0.0, |o| o.0);
                for (s, address) in &pruned {
                    if !close(*s, last) {
                        assert!(
                            oracle.iter().any(|(o, a)| a == address && close(*s, *o)),
                            "{address:?} scored {s} is not the oracle's: {context}"
                        );
                    }
                }
                compared += pruned.len();
            }
        }
    }
    assert!(compared > 10_000, "{compared} entries compared");
}

#[test]
fn an_index_an_earlier_build_wrote_with_other_fields_is_emptied_to_be_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        // the fields of an earlier build (document keys not indexed), its format file even
        // claiming this build's
        let mut b = Schema::builder();
        b.add_text_field("chunk_id", STRING | STORED);
        b.add_u64_field("document_key", FAST);
        Index::create_in_dir(dir.path(), b.build()).unwrap();
        std::fs::write(dir.path().join(VERSION_FILE), INDEX_FORMAT).unwrap();
    }
    let index = TantivyIndex::open(dir.path()).unwrap();
    assert!(!index.is_current(), "an emptied index must be rebuilt");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let doc = LexicalDocument {
        document_id: "d".into(),
        collection: "c".into(),
        title: "Ropes".into(),
        passages: vec![LexicalPassage {
            chunk_id: "d#0".into(),
            title: "Ropes".into(),
            heading: "Ropes".into(),
            text: "A heading rope is 30 to 35 feet long.".into(),
        }],
    };
    runtime.block_on(index.replace(&[], vec![doc])).unwrap();
    let ranking = RANKING;
    let found = runtime
        .block_on(index.search("heading rope", &["c".to_owned()], 5, ranking))
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "d#0");
}
