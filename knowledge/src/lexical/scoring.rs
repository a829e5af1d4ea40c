//! Scoring: BM25 over the searched collections alone (their own statistics, counted once per
//! index generation), and the collector that adds a document's score to its passages'.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use tantivy::collector::{Collector, Count, SegmentCollector};
use tantivy::columnar::ColumnValues;
use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::query::{
    Bm25StatisticsProvider, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyScorer, EnableScoring,
    Explanation, Occur, Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};

use tantivy::{DocId, DocSet, Score, Searcher, SegmentOrdinal, SegmentReader, Term};

use super::{Fields, Inner, Kind, ScopeKey};

/// How many live entries (of one kind) a set of collections holds, and their tokens per field.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sizes {
    docs: u64,
    title_tokens: u64,
    body_tokens: u64,
}

/// BM25 statistics of the searched collections alone, as a plain BM25 over an index of just them
/// would have them (deleted documents not counted).
impl Bm25StatisticsProvider for Scope<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        let (fields, sizes) = (self.inner.fields, self.sizes);
        Ok(if field == fields.title {
            sizes.title_tokens
        } else if field == fields.body {
            sizes.body_tokens
        } else {
            0
        })
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.sizes.docs)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        self.inner.counted(
            self.generation,
            &self.key,
            |c| c.doc_freqs.get(term).copied(),
            || {
                let within = BooleanQuery::new(vec![
                    (
                        Occur::Must,
                        Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic)),
                    ),
                    (Occur::Must, Box::new(self.filter.clone())),
                ]);
                Ok(self.searcher.search(&within, &Count)? as u64)
            },
            |c, n| {
                c.doc_freqs.insert(term.clone(), n);
            },
        )
    }
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
    inner: &'a Inner,
    searcher: &'a Searcher,
    filter: BooleanQuery,
    generation: u64,
    key: ScopeKey,
    sizes: Sizes,
}

impl<'a> Scope<'a> {
    pub(super) fn new(
        inner: &'a Inner,
        searcher: &'a Searcher,
        collections: &[String],
        kind: Kind,
    ) -> tantivy::Result<Self> {
        let f = inner.fields;
        let term = |field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            ))
        };
        // one collection (the usual search) is its term alone: a union of one still merges
        // its postings block by block through a bitset, on every match of every query word
        let in_collections = match collections {
            [one] => term(f.collection, one),
            _ => Box::new(BooleanQuery::new(
                collections
                    .iter()
                    .map(|c| (Occur::Should, term(f.collection, c)))
                    .collect(),
            )),
        };
        let filter = BooleanQuery::new(vec![
            (Occur::Must, in_collections),
            (Occur::Must, term(f.kind, kind.name())),
        ]);
        let mut names = collections.to_vec();
        names.sort();
        names.dedup();
        let key = (kind, names);
        let generation = searcher.generation().generation_id();
        let sizes = inner.counted(
            generation,
            &key,
            |c| c.sizes,
            || sizes(searcher, &filter, f),
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

    /// The BM25 query of `terms` over these entries, scored with their own statistics, into
    /// `collector`.
    pub(super) fn search<C: Collector>(
        &self,
        terms: &[(String, u32)],
        ranking: Ranking,
        collector: &C,
    ) -> tantivy::Result<C::Fruit> {
        let f = self.inner.fields;
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (t, n) in terms {
            let weight = ranking.bm25.query_weight(*n);
            for (field, boost) in [(f.title, ranking.title_boost * weight), (f.body, weight)] {
                let term: Box<dyn Query> = Box::new(Bm25Term {
                    term: Term::from_field_text(field, t),
                    params: ranking.bm25,
                });
                should.push((Occur::Should, Box::new(BoostQuery::new(term, boost))));
            }
        }
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(BooleanQuery::new(should))),
            (
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(self.filter.clone()), 0.0)),
            ),
        ]);
        self.searcher
            .search_with_statistics_provider(&query, collector, self)
    }
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

/// Every match's score by its document key (whole-document entries: one per document). The
/// keys are hashes already: a multiplicative hash suffices, where the default SipHash took a
/// third of a search at 100,000 passages (every passage matching a word looks its document up).
pub(super) struct DocumentScores;

/// Scores by document key.
pub(super) type ScoresByDocument = FxHashMap<u64, Score>;

pub(super) struct SegmentDocumentScores {
    keys: Arc<dyn ColumnValues<u64>>,
    scores: Vec<(u64, Score)>,
}

impl Collector for DocumentScores {
    type Fruit = ScoresByDocument;
    type Child = SegmentDocumentScores;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentDocumentScores> {
        Ok(SegmentDocumentScores {
            keys: document_keys(segment)?,
            scores: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(u64, Score)>>) -> tantivy::Result<Self::Fruit> {
        let mut scores = ScoresByDocument::with_capacity_and_hasher(
            fruits.iter().map(Vec::len).sum(),
            Default::default(),
        );
        scores.extend(fruits.into_iter().flatten());
        Ok(scores)
    }
}

impl SegmentCollector for SegmentDocumentScores {
    type Fruit = Vec<(u64, Score)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.scores.push((self.keys.get_val(doc), score));
    }

    fn harvest(self) -> Self::Fruit {
        self.scores
    }
}

/// One term scored by BM25 with chosen `k1` and `b` (tantivy's own term query fixes them at 1.2
/// and 0.75): `idf · tf·(k1+1) / (tf + k1·(1 − b + b·len/avglen))`, idf `ln(1 + (N − df + ½)/(df
/// + ½))`, with the statistics the search is given.
#[derive(Debug, Clone)]
pub(super) struct Bm25Term {
    pub(super) term: Term,
    pub(super) params: Bm25,
}

impl Query for Bm25Term {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let (idf, average_length) = match scoring {
            EnableScoring::Enabled {
                statistics_provider: stats,
                ..
            } => {
                let docs = stats.total_num_docs()? as f32;
                let df = stats.doc_freq(&self.term)? as f32;
                let tokens = stats.total_num_tokens(self.term.field())? as f32;
                (
                    (1.0 + (docs - df + 0.5) / (df + 0.5)).ln(),
                    if docs > 0.0 { tokens / docs } else { 1.0 },
                )
            }
            EnableScoring::Disabled { .. } => (1.0, 1.0),
        };
        Ok(Box::new(Bm25TermWeight {
            term: self.term.clone(),
            params: self.params,
            idf,
            average_length: average_length.max(f32::EPSILON),
        }))
    }
}

pub(super) struct Bm25TermWeight {
    term: Term,
    params: Bm25,
    idf: f32,
    average_length: f32,
}

impl Weight for Bm25TermWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let field = self.term.field();
        let Some(postings) = reader
            .inverted_index(field)?
            .read_postings(&self.term, IndexRecordOption::WithFreqs)?
        else {
            return Ok(Box::new(EmptyScorer));
        };
        Ok(Box::new(Bm25TermScorer {
            postings,
            lengths: reader.get_fieldnorms_reader(field)?,
            weight: boost * self.idf * (self.params.k1 + 1.0),
            params: self.params,
            average_length: self.average_length,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new("bm25", scorer.score()))
    }
}

pub(super) struct Bm25TermScorer {
    postings: SegmentPostings,
    lengths: FieldNormReader,
    /// `boost · idf · (k1 + 1)`.
    weight: f32,
    params: Bm25,
    average_length: f32,
}

impl DocSet for Bm25TermScorer {
    fn advance(&mut self) -> DocId {
        self.postings.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.postings.seek(target)
    }

    fn doc(&self) -> DocId {
        self.postings.doc()
    }

    fn size_hint(&self) -> u32 {
        self.postings.size_hint()
    }
}

impl Scorer for Bm25TermScorer {
    fn score(&mut self) -> Score {
        let tf = self.postings.term_freq() as f32;
        let length = self.lengths.fieldnorm(self.postings.doc()) as f32;
        let Bm25 { k1, b, .. } = self.params;
        self.weight * tf / (tf + k1 * (1.0 - b + b * length / self.average_length))
    }
}

/// Counts the live documents `filter` matches and their tokens in the title and body.
pub(super) fn sizes(searcher: &Searcher, filter: &dyn Query, f: Fields) -> tantivy::Result<Sizes> {
    let weight = filter.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut sizes = Sizes::default();
    for reader in searcher.segment_readers() {
        let (title, body) = (
            reader.get_fieldnorms_reader(f.title)?,
            reader.get_fieldnorms_reader(f.body)?,
        );
        weight.for_each_no_score(reader, &mut |docs| {
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
