//! Scoring: BM25's parameters, and the searched collections' own statistics (entries, tokens,
//! and what they hold of each word), counted once per index generation.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use tantivy::columnar::ColumnValues;
use tantivy::postings::Postings;
use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query, Scorer, TermQuery, Weight};
use tantivy::schema::{Field, IndexRecordOption};

use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED, Term};

use super::{Fields, Inner, Kind, ScopeKey, Text};

/// How many live entries (of one kind) a set of collections holds, and their tokens per field.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sizes {
    pub(super) docs: u64,
    title_tokens: u64,
    body_tokens: u64,
}

/// BM25's parameters: term-frequency saturation (`k1`), length normalisation (`b`) and the
/// saturation of a term repeated in the query (`k3`, Okapi's: a term said `n` times weighs
/// `(k3 + 1)·n / (k3 + n)`; 0 counts it once, a large value `n` times).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25 {
    pub k1: f32,
    pub b: f32,
    pub k3: f32,
}

impl Bm25 {
    /// The weight of a query term said `n` times.
    pub(super) fn query_weight(&self, n: u32) -> f32 {
        let n = n as f32;
        (self.k3 + 1.0) * n / (self.k3 + n)
    }

    /// How much of its most a word said `tf` times gives an entry `length` long:
    /// `tf / (tf + k1·(1 − b + b·length/average_length))`.
    pub(super) fn saturation(&self, tf: u32, length: u32, average_length: f32) -> f32 {
        let tf = tf as f32;
        tf / (tf + self.norm(length, average_length))
    }

    /// The length normalisation of an entry `length` long: `k1·(1 − b + b·length/average_length)`.
    pub(super) fn norm(&self, length: u32, average_length: f32) -> f32 {
        self.k1 * (1.0 - self.b + self.b * length as f32 / average_length)
    }
}

/// How the lexical index ranks passages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranking {
    pub bm25: Bm25,
    /// The boost of the title field (title and heading path) over the body.
    pub title_boost: f32,
    /// The share of a passage's score that is its whole document's BM25 score against the
    /// other documents (the rest is the passage's own against the other passages); 0 ranks
    /// passages alone.
    pub document_weight: f32,
}

/// The entries of one kind in the searched collections, with their statistics.
pub(super) struct Scope<'a> {
    pub(super) inner: &'a Inner,
    pub(super) searcher: &'a Searcher,
    /// Which entries are in the scope.
    filter: Box<dyn Weight>,
    generation: u64,
    pub(super) key: ScopeKey,
    pub(super) sizes: Sizes,
}

impl<'a> Scope<'a> {
    pub(super) fn new(
        inner: &'a Inner,
        searcher: &'a Searcher,
        collections: &[String],
        kind: Kind,
    ) -> tantivy::Result<Self> {
        let mut names = collections.to_vec();
        names.sort();
        names.dedup();
        let key = (kind, names);
        let filter =
            filter(inner.fields, &key).weight(EnableScoring::disabled_from_searcher(searcher))?;
        let generation = searcher.generation().generation_id();
        let sizes = inner.counted(
            generation,
            &key,
            |c| c.sizes,
            || sizes(searcher, &*filter, inner.fields.text(kind)),
            |c, s| c.sizes = Some(s),
        )?;
        Ok(Self {
            inner,
            searcher,
            filter,
            generation,
            key,
            sizes,
        })
    }

    /// Which of `segment`'s entries are in the scope, as a set to seek in.
    pub(super) fn members(&self, segment: &SegmentReader) -> tantivy::Result<Members> {
        Ok(Members(self.filter.scorer(segment, 1.0)?))
    }

    /// How many entries of the scope `term` matches, and the most it weighs in one, counted
    /// once per index generation.
    pub(super) fn term_counts(&self, term: &Term) -> tantivy::Result<Arc<TermCounts>> {
        self.inner.counted(
            self.generation,
            &self.key,
            |c| c.terms.get(term).cloned(),
            || Ok(Arc::new(TermCounts::count(self, term)?)),
            |c, n| {
                c.terms.insert(term.clone(), n);
            },
        )
    }

    /// The fields the scope's entries are scored on.
    pub(super) fn text(&self) -> Text {
        self.inner.fields.text(self.key.0)
    }

    /// The tokens of `field` in the scope's entries.
    pub(super) fn tokens(&self, field: Field) -> u64 {
        let f = self.text();
        if field == f.title {
            self.sizes.title_tokens
        } else if field == f.body {
            self.sizes.body_tokens
        } else {
            0
        }
    }
}

/// The entries of the scope `key` names: of its kind, in one of its collections.
pub(super) fn filter(f: Fields, (kind, collections): &ScopeKey) -> BooleanQuery {
    let term = |field, value: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        ))
    };
    // one collection (the usual search) is its term alone: a union of one still merges
    // its postings block by block through a bitset, on every match of every query word
    let in_collections = match collections.as_slice() {
        [one] => term(f.collection, one),
        _ => Box::new(BooleanQuery::new(
            collections
                .iter()
                .map(|c| (Occur::Should, term(f.collection, c)))
                .collect(),
        )),
    };
    BooleanQuery::new(vec![
        (Occur::Must, in_collections),
        (Occur::Must, term(f.kind, kind.name())),
    ])
}

/// A segment's entries in a scope, asked in increasing order.
pub(super) struct Members(Box<dyn Scorer>);

impl Members {
    /// Whether `doc` is one; `doc` never below the last asked.
    pub(super) fn contains(&mut self, doc: DocId) -> bool {
        if self.0.doc() < doc {
            self.0.seek(doc);
        }
        self.0.doc() == doc
    }
}

/// What the scope's entries hold of one word in one field: how many match it, and the pairs
/// (times said, length) of the matches no other beats on both (says it more often and is no
/// longer, or as often and shorter): whatever BM25's parameters, the most the word adds to one
/// entry's score is at one of them.
#[derive(Debug, Default)]
pub(super) struct TermCounts {
    pub(super) matches: u64,
    pub(super) frontier: Box<[(u32, u32)]>,
}

impl TermCounts {
    fn count(scope: &Scope, term: &Term) -> tantivy::Result<Self> {
        // the shortest length seen at each term frequency
        let mut shortest: FxHashMap<u32, u32> = FxHashMap::default();
        let mut matches = 0;
        for segment in scope.searcher.segment_readers() {
            let Some(mut postings) = segment
                .inverted_index(term.field())?
                .read_postings(term, IndexRecordOption::WithFreqs)?
            else {
                continue;
            };
            let lengths = segment.get_fieldnorms_reader(term.field())?;
            let mut members = scope.members(segment)?;
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if members.contains(doc) && !segment.is_deleted(doc) {
                    matches += 1;
                    let length = lengths.fieldnorm(doc);
                    shortest
                        .entry(postings.term_freq())
                        .and_modify(|l| *l = (*l).min(length))
                        .or_insert(length);
                }
                // skip to the next member past this one
                doc = match members.0.doc() {
                    next if next > doc => postings.seek(next),
                    _ => postings.advance(),
                };
            }
        }
        let mut pairs: Vec<(u32, u32)> = shortest.into_iter().collect();
        pairs.sort_unstable_by(|a, b| b.cmp(a));
        let mut frontier = Vec::new();
        let mut shortest_so_far = u32::MAX;
        for (tf, length) in pairs {
            if length < shortest_so_far {
                frontier.push((tf, length));
                shortest_so_far = length;
            }
        }
        Ok(Self {
            matches,
            frontier: frontier.into(),
        })
    }

    /// The most the word's saturation (`tf / (tf + k1·(1 − b + b·len/avglen))`) reaches in one
    /// of the matches.
    pub(super) fn saturation_bound(&self, params: Bm25, average_length: Score) -> Score {
        self.frontier
            .iter()
            .map(|&(tf, length)| params.saturation(tf, length, average_length))
            .fold(0.0, Score::max)
    }
}

/// `ln(1 + (N − df + ½)/(df + ½))`.
pub(super) fn idf(entries: u64, matches: u64) -> Score {
    let (n, df) = (entries as Score, matches as Score);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// Tokens per entry (1 in an empty scope, never 0).
pub(super) fn average_length(tokens: u64, entries: u64) -> Score {
    let average = if entries > 0 {
        tokens as Score / entries as Score
    } else {
        1.0
    };
    average.max(Score::EPSILON)
}

/// The document key of each entry in a segment.
pub(super) fn document_keys(
    segment: &SegmentReader,
) -> tantivy::Result<Arc<dyn ColumnValues<u64>>> {
    Ok(segment
        .fast_fields()
        .u64("document_key")?
        .first_or_default_col(0))
}

/// Counts the live documents `filter` matches and their tokens in the title and body.
fn sizes(searcher: &Searcher, filter: &dyn Weight, f: Text) -> tantivy::Result<Sizes> {
    let mut sizes = Sizes::default();
    for reader in searcher.segment_readers() {
        let (title, body) = (
            reader.get_fieldnorms_reader(f.title)?,
            reader.get_fieldnorms_reader(f.body)?,
        );
        filter.for_each_no_score(reader, &mut |docs| {
            for &doc in docs {
                if !reader.is_deleted(doc) {
                    sizes.docs += 1;
                    sizes.title_tokens += u64::from(title.fieldnorm(doc));
                    sizes.body_tokens += u64::from(body.fieldnorm(doc));
                }
            }
        })?;
    }
    Ok(sizes)
}
