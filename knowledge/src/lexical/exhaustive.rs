//! Every entry matching a question word scored, by tantivy's own boolean query (a BM25 term
//! query per word and field, our `k1` and `b`), the documents' scores collected whole and
//! blended into every matching passage's: the search of small scopes, where it is quicker than
//! pruning, and the oracle the pruned search is held to.

use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector, TopDocs};
use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::query::{
    Bm25StatisticsProvider, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyScorer, EnableScoring,
    Explanation, Occur, Query, Scorer, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{
    DocAddress, DocId, DocSet, Score, SegmentOrdinal, SegmentReader, Term, columnar::ColumnValues,
};

use super::scoring::{Bm25, Ranking, Scope, average_length, document_keys, filter, idf};

/// The scope's own statistics, as a plain BM25 over an index of just its entries would have
/// them (deleted entries not counted).
impl Bm25StatisticsProvider for Scope<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        Ok(self.tokens(field))
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.sizes.docs)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        Ok(self.term_counts(term)?.matches)
    }
}

/// The BM25 query of `terms` over the scope's entries, scored with their own statistics.
fn search<C: Collector>(
    scope: &Scope,
    terms: &[(String, u32)],
    ranking: Ranking,
    collector: &C,
) -> tantivy::Result<C::Fruit> {
    let f = scope.inner.fields;
    let text = scope.text();
    let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for (t, n) in terms {
        let weight = ranking.bm25.query_weight(*n);
        for (field, boost) in [
            (text.title, ranking.title_boost * weight),
            (text.body, weight),
        ] {
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
            Box::new(ConstScoreQuery::new(Box::new(filter(f, &scope.key)), 0.0)),
        ),
    ]);
    scope
        .searcher
        .search_with_statistics_provider(&query, collector, scope)
}

/// The best `limit` passages by scoring every match: each passage's BM25 blended with its
/// document's (`ranking.document_weight`), when `documents` is given.
pub(super) fn top_passages(
    passages: &Scope,
    documents: Option<&Scope>,
    terms: &[(String, u32)],
    ranking: Ranking,
    limit: usize,
) -> tantivy::Result<Vec<(Score, DocAddress)>> {
    let Some(documents) = documents.filter(|_| ranking.document_weight > 0.0) else {
        return search(
            passages,
            terms,
            ranking,
            &TopDocs::with_limit(limit).order_by_score(),
        );
    };
    let scores = Arc::new(search(documents, terms, ranking, &DocumentScores)?);
    let w = ranking.document_weight;
    search(
        passages,
        terms,
        ranking,
        &TopDocs::with_limit(limit).tweak_score(move |segment: &SegmentReader| {
            let keys = document_keys(segment).ok();
            let scores = scores.clone();
            move |doc: DocId, score: Score| {
                let document = keys
                    .as_ref()
                    .and_then(|k| scores.get(&k.get_val(doc)))
                    .copied()
                    .unwrap_or(0.0);
                (1.0 - w) * score + w * document
            }
        }),
    )
}

/// Every match's score by its document key (whole-document entries: one per document).
struct DocumentScores;

struct SegmentDocumentScores {
    keys: Arc<dyn ColumnValues<u64>>,
    scores: Vec<(u64, Score)>,
}

impl Collector for DocumentScores {
    type Fruit = rustc_hash::FxHashMap<u64, Score>;
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
        Ok(fruits.into_iter().flatten().collect())
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
/// and 0.75), with the statistics the search is given.
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
                let docs = stats.total_num_docs()?;
                (
                    idf(docs, stats.doc_freq(&self.term)?),
                    average_length(stats.total_num_tokens(self.term.field())?, docs),
                )
            }
            EnableScoring::Disabled { .. } => (1.0, 1.0),
        };
        Ok(Box::new(Bm25TermWeight {
            term: self.term.clone(),
            params: self.params,
            idf,
            average_length,
        }))
    }
}

struct Bm25TermWeight {
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

struct Bm25TermScorer {
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
        let doc = self.postings.doc();
        self.weight
            * self.params.saturation(
                self.postings.term_freq(),
                self.lengths.fieldnorm(doc),
                self.average_length,
            )
    }
}
