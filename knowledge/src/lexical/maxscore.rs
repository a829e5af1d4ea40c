//! The best passages without scoring every match: MaxScore (Turtle and Flood, 1995). Each
//! question word (in each field) has a bound, the most it adds to any entry's score in the
//! scope; once the best `limit` entries found so far outscore what the least weighty words
//! could give together, an entry matching only those words cannot enter, so only the weightier
//! words' posting lists are walked and the others are looked up in the entries they find.
//!
//! A passage's score blends its document's (`document_weight`), which no word's bound covers.
//! The documents are ranked first, by the same method: the best few hundred are known exactly,
//! and every other document scores at most the last of them (its floor). A passage of a known
//! document carries its document's score above the floor as one more list; every other passage
//! is bounded by the floor, and the few whose bound still reaches the best ones have their
//! documents scored exactly at the end. The result is the exhaustive ranking's, not an
//! approximation of it (tested against it).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use rustc_hash::FxHashMap;
use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED, Term};

use super::scoring::{Members, Ranking, Scope, document_keys, idf};

/// How many documents are ranked exactly before the passages (the rest are bounded by the
/// last of them).
pub(super) const DOCUMENTS_RANKED: usize = 256;

/// Bounds are computed with the scores' own arithmetic, but summed in another order: this
/// much room keeps a rounding from pruning an entry that ties.
const ROUNDING: Score = 1e-4;

/// The best `limit` passages of `passages` for `terms`, each passage's BM25 blended with its
/// document's (`ranking.document_weight`) when `documents` is given; `ranked` documents are
/// ranked exactly first; each thread walks at most `piece` entries of a segment at a time
/// ([`piece_entries`]).
pub(super) fn top_passages(
    passages: &Scope,
    documents: Option<&Scope>,
    terms: &[(String, u32)],
    ranking: Ranking,
    limit: usize,
    ranked: usize,
    piece: u32,
) -> tantivy::Result<Vec<(Score, DocAddress)>> {
    let w = ranking.document_weight;
    let blend = documents.filter(|_| w > 0.0);
    let share = if blend.is_some() { 1.0 - w } else { 1.0 };
    let passage_clauses = clauses(passages, terms, ranking, share)?;
    let Some(documents) = blend else {
        return Ok(best(passages, &passage_clauses, limit, piece)?.into_sorted());
    };

    // the documents: the best `ranked` exactly, the rest at most `floor`
    let document_clauses = clauses(documents, terms, ranking, 1.0)?;
    let best_documents = best(documents, &document_clauses, ranked.max(1), piece)?;
    // with fewer than `ranked` matching, every matching document is known: the others score 0
    let all_known = best_documents.worst().is_none();
    let floor = best_documents.worst().unwrap_or(0.0);
    let keys = segments(documents)
        .map(|(_, reader)| document_keys(reader))
        .collect::<tantivy::Result<Vec<_>>>()?;
    let known: FxHashMap<u64, Score> = best_documents
        .into_sorted()
        .into_iter()
        .map(|(score, a)| (keys[a.segment_ord as usize].get_val(a.doc_id), score))
        .collect();

    // the passages: a known document's above the floor is one more list; every other
    // passage's document is bounded by the floor, and scored once its bound is in reach
    let fields = passages.inner.fields;
    let reached = Reached::default();
    let found = each_piece(passages, piece, |ordinal, reader, range| {
        let mut top = Top::new(limit);
        let mut pending: Vec<(Score, DocAddress, u64)> = Vec::new();
        let mut members = passages.members(reader)?;
        let keys = document_keys(reader)?;
        let mut cursors = cursors(reader, &passage_clauses)?;
        let above_floor = entries_of(reader, fields.document_key, known.keys().copied())?
            .into_iter()
            .map(|(doc, key)| (doc, w * (known[&key] - floor)))
            .collect::<Vec<_>>();
        if !above_floor.is_empty() {
            cursors.push(Cursor::listed(above_floor));
        }
        max_score(
            &mut cursors,
            range,
            w * floor,
            reached.get(),
            &mut |doc, score, matched| {
                // (a passage of a known document that says none of the words is no match)
                if matched && members.contains(doc) && !reader.is_deleted(doc) {
                    let address = DocAddress::new(ordinal, doc);
                    let key = keys.get_val(doc);
                    if all_known || known.contains_key(&key) {
                        top.offer(score + w * floor, address);
                    } else {
                        pending.push((score, address, key));
                    }
                }
                reached.raise(top.threshold())
            },
        );
        Ok((top, pending))
    })?;
    let (tops, pending): (Vec<Top>, Vec<_>) = found.into_iter().unzip();
    let mut top = Top::merge(limit, tops);
    let threshold = top.threshold();
    let mut pending: Vec<(Score, DocAddress, u64)> = pending.into_iter().flatten().collect();
    pending.retain(|(score, ..)| score + w * floor >= threshold);
    let scores = document_scores(
        documents,
        &document_clauses,
        pending.iter().map(|p| p.2).collect(),
    )?;
    for (score, address, key) in pending {
        top.offer(
            score + w * scores.get(&key).copied().unwrap_or(0.0),
            address,
        );
    }
    Ok(top.into_sorted())
}

/// The best `limit` entries of `scope` by `clauses` alone, walked in pieces of `piece` entries.
fn best(scope: &Scope, clauses: &[Clause], limit: usize, piece: u32) -> tantivy::Result<Top> {
    let reached = Reached::default();
    let tops = each_piece(scope, piece, |ordinal, reader, range| {
        let mut top = Top::new(limit);
        let mut members = scope.members(reader)?;
        let mut cursors = cursors(reader, clauses)?;
        max_score(
            &mut cursors,
            range,
            0.0,
            reached.get(),
            &mut |doc, score, _| {
                if members.contains(doc) && !reader.is_deleted(doc) {
                    top.offer(score, DocAddress::new(ordinal, doc));
                }
                reached.raise(top.threshold())
            },
        );
        Ok(top)
    })?;
    Ok(Top::merge(limit, tops))
}

/// The fewest entries of a segment worth a thread of their own.
const PIECE_MIN_ENTRIES: u32 = 65_536;

/// How many of a segment's entries one thread walks: the largest segment's share of the cores,
/// so that one search of a large scope uses every core (pieces share their threshold), and never
/// fewer than [`PIECE_MIN_ENTRIES`].
pub(super) fn piece_entries(searcher: &Searcher) -> u32 {
    // (asked once: on Linux the answer is read from the cgroup files)
    static THREADS: std::sync::LazyLock<u32> = std::sync::LazyLock::new(|| {
        std::thread::available_parallelism().map_or(1, |n| n.get()) as u32
    });
    let threads = *THREADS;
    let largest = searcher
        .segment_readers()
        .iter()
        .map(SegmentReader::max_doc)
        .max()
        .unwrap_or(0);
    largest.div_ceil(threads).max(PIECE_MIN_ENTRIES)
}

/// `search` of each piece of the scope's segments (a segment's ordinal and reader, and a range
/// of at most `piece` of its entries), on the cores' threads (tantivy's executor).
fn each_piece<R: Send>(
    scope: &Scope,
    piece: u32,
    search: impl Fn(u32, &SegmentReader, Range<DocId>) -> tantivy::Result<R> + Sync,
) -> tantivy::Result<Vec<R>> {
    let piece = piece.max(1);
    let pieces = segments(scope).flat_map(|(ordinal, reader)| {
        let entries = reader.max_doc();
        (0..entries.div_ceil(piece)).map(move |i| {
            let start = i * piece;
            (ordinal, reader, start..entries.min(start + piece))
        })
    });
    scope.searcher.index().search_executor().map(
        |(ordinal, reader, range)| search(ordinal, reader, range),
        pieces,
    )
}

/// The highest threshold a piece's search has reached, shared with the others': an entry
/// under any piece's best `limit` so far cannot be in the best `limit` of all. (Scores are
/// never negative, and a positive float's bits order as it does: 0 is none.)
#[derive(Default)]
struct Reached(AtomicU32);

impl Reached {
    fn get(&self) -> Score {
        f32::from_bits(self.0.load(Relaxed))
    }

    /// Shares `threshold`, and returns the highest shared.
    fn raise(&self, threshold: Score) -> Score {
        if threshold > 0.0 {
            self.0.fetch_max(threshold.to_bits(), Relaxed);
        }
        self.get().max(threshold)
    }
}

/// The scope's segments with their ordinals.
fn segments<'s>(scope: &'s Scope) -> impl Iterator<Item = (u32, &'s SegmentReader)> {
    scope
        .searcher
        .segment_readers()
        .iter()
        .enumerate()
        .map(|(i, r)| (i as u32, r))
}

/// One question word in one field, within a scope.
pub(super) struct Clause {
    term: Term,
    /// `boost · idf · (k1 + 1) · share`.
    weight: Score,
    /// BM25's length normalisation at each encoded length (`k1·(1 − b + b·len/avglen)`).
    norms: Box<[Score; 256]>,
    /// The most it adds to one entry's score.
    bound: Score,
}

impl Clause {
    /// [`Bm25::saturation`] times the weight, its length normalisation looked up.
    fn score(&self, tf: u32, length: u8) -> Score {
        let tf = tf as Score;
        self.weight * (tf / (tf + self.norms[usize::from(length)]))
    }
}

/// The clauses of `terms` over `scope`, each score multiplied by `share`; words the scope
/// does not hold have none.
fn clauses(
    scope: &Scope,
    terms: &[(String, u32)],
    ranking: Ranking,
    share: Score,
) -> tantivy::Result<Vec<Clause>> {
    let f = scope.text();
    let params = ranking.bm25;
    let mut clauses = Vec::new();
    for (t, n) in terms {
        let said = ranking.bm25.query_weight(*n) * share;
        for (field, boost) in [(f.title, ranking.title_boost * said), (f.body, said)] {
            let term = Term::from_field_text(field, t);
            let counts = scope.term_counts(&term)?;
            // (a word weighing nothing still makes an entry a match)
            if counts.matches == 0 {
                continue;
            }
            let average_length =
                super::scoring::average_length(scope.tokens(field), scope.sizes.docs);
            let weight = boost * idf(scope.sizes.docs, counts.matches) * (params.k1 + 1.0);
            let bound = weight * counts.saturation_bound(params, average_length);
            let norms = std::array::from_fn(|id| {
                params.norm(FieldNormReader::id_to_fieldnorm(id as u8), average_length)
            });
            clauses.push(Clause {
                term,
                weight,
                norms: Box::new(norms),
                bound: bound * (1.0 + ROUNDING) + ROUNDING,
            });
        }
    }
    Ok(clauses)
}

/// Where a walk stands in one list: a clause's postings, or given entries with their scores.
enum Cursor<'c> {
    Word {
        /// (boxed: 1.9 KB of decoded block)
        postings: Box<SegmentPostings>,
        lengths: FieldNormReader,
        clause: &'c Clause,
    },
    Listed {
        entries: Vec<(DocId, Score)>,
        at: usize,
        bound: Score,
    },
}

impl Cursor<'_> {
    fn listed(mut entries: Vec<(DocId, Score)>) -> Self {
        entries.sort_unstable_by_key(|e| e.0);
        let bound = entries.iter().map(|e| e.1).fold(0.0, Score::max);
        Cursor::Listed {
            entries,
            at: 0,
            bound: bound * (1.0 + ROUNDING) + ROUNDING,
        }
    }

    fn doc(&self) -> DocId {
        match self {
            Cursor::Word { postings, .. } => postings.doc(),
            Cursor::Listed { entries, at, .. } => entries.get(*at).map_or(TERMINATED, |e| e.0),
        }
    }

    fn advance(&mut self) {
        match self {
            Cursor::Word { postings, .. } => {
                postings.advance();
            }
            Cursor::Listed { at, .. } => *at += 1,
        }
    }

    /// To the first entry at or past `target`.
    fn seek(&mut self, target: DocId) {
        if self.doc() >= target {
            return;
        }
        match self {
            Cursor::Word { postings, .. } => {
                postings.seek(target);
            }
            Cursor::Listed { entries, at, .. } => {
                *at += entries[*at..].partition_point(|e| e.0 < target);
            }
        }
    }

    fn score(&self) -> Score {
        match self {
            Cursor::Word {
                postings,
                lengths,
                clause,
            } => clause.score(postings.term_freq(), lengths.fieldnorm_id(postings.doc())),
            Cursor::Listed { entries, at, .. } => entries[*at].1,
        }
    }

    fn is_word(&self) -> bool {
        matches!(self, Cursor::Word { .. })
    }

    fn bound(&self) -> Score {
        match self {
            Cursor::Word { clause, .. } => clause.bound,
            Cursor::Listed { bound, .. } => *bound,
        }
    }
}

/// `clauses`' cursors in `segment` (those it holds).
fn cursors<'c>(segment: &SegmentReader, clauses: &'c [Clause]) -> tantivy::Result<Vec<Cursor<'c>>> {
    let mut cursors = Vec::with_capacity(clauses.len());
    for clause in clauses {
        let field: Field = clause.term.field();
        if let Some(postings) = segment
            .inverted_index(field)?
            .read_postings(&clause.term, IndexRecordOption::WithFreqs)?
        {
            cursors.push(Cursor::Word {
                postings: Box::new(postings),
                lengths: segment.get_fieldnorms_reader(field)?,
                clause,
            });
        }
    }
    Ok(cursors)
}

/// Walks `cursors` in document order over the entries of `range`, calling `found(doc, score,
/// matched)` with the sum of the lists' scores, and whether a word's list holds the entry, for
/// every entry whose score plus `floor` may reach the threshold (`threshold` at
/// first, then what `found` returns: what an entry must reach to enter the best so far). An
/// entry that cannot reach it is skipped, and so are the lists it would need to be found in.
fn max_score(
    cursors: &mut [Cursor],
    range: Range<DocId>,
    floor: Score,
    mut threshold: Score,
    found: &mut impl FnMut(DocId, Score, bool) -> Score,
) {
    cursors.sort_by(|a, b| a.bound().total_cmp(&b.bound()));
    // the most lists 0..=i add together
    let up_to: Vec<Score> = cursors
        .iter()
        .scan(0.0, |sum, c| {
            *sum += c.bound();
            Some(*sum)
        })
        .collect();
    // the lists before it cannot lift an entry to the threshold on their own
    let essential = |threshold: Score| up_to.partition_point(|&u| u + floor < threshold);
    let mut first = essential(threshold);
    for cursor in cursors[first..].iter_mut() {
        cursor.seek(range.start);
    }
    while first < cursors.len() {
        let doc = cursors[first..]
            .iter()
            .map(Cursor::doc)
            .min()
            .unwrap_or(TERMINATED);
        if doc >= range.end {
            break;
        }
        let (mut score, mut matched) = (0.0, false);
        for cursor in cursors[first..].iter().filter(|c| c.doc() == doc) {
            score += cursor.score();
            matched |= cursor.is_word();
        }
        let mut reachable = true;
        for i in (0..first).rev() {
            if score + up_to[i] + floor < threshold {
                reachable = false;
                break;
            }
            let cursor = &mut cursors[i];
            cursor.seek(doc);
            if cursor.doc() == doc {
                score += cursor.score();
                matched |= cursor.is_word();
            }
        }
        if reachable && score + floor >= threshold {
            let now = found(doc, score, matched);
            if now > threshold {
                threshold = now;
                first = essential(threshold);
            }
        }
        for cursor in &mut cursors[first..] {
            if cursor.doc() == doc {
                cursor.advance();
            }
        }
    }
}

/// The entries of `segment` carrying one of `keys` in `field` (an indexed number), in order.
fn entries_of(
    segment: &SegmentReader,
    field: Field,
    keys: impl Iterator<Item = u64>,
) -> tantivy::Result<Vec<(DocId, u64)>> {
    let index = segment.inverted_index(field)?;
    let mut entries = Vec::new();
    for key in keys {
        if let Some(mut postings) =
            index.read_postings(&Term::from_field_u64(field, key), IndexRecordOption::Basic)?
        {
            while postings.doc() != TERMINATED {
                entries.push((postings.doc(), key));
                postings.advance();
            }
        }
    }
    entries.sort_unstable();
    Ok(entries)
}

/// The scores of the documents `keys` name, by `clauses` (0 when none matches).
fn document_scores(
    documents: &Scope,
    clauses: &[Clause],
    mut keys: Vec<u64>,
) -> tantivy::Result<FxHashMap<u64, Score>> {
    keys.sort_unstable();
    keys.dedup();
    let mut scores = FxHashMap::default();
    if keys.is_empty() {
        return Ok(scores);
    }
    let field = documents.inner.fields.document_key;
    for (_, reader) in segments(documents) {
        let entries = entries_of(reader, field, keys.iter().copied())?;
        if entries.is_empty() {
            continue;
        }
        let mut members: Members = documents.members(reader)?;
        let mut cursors = cursors(reader, clauses)?;
        for (doc, key) in entries {
            if !members.contains(doc) || reader.is_deleted(doc) {
                continue;
            }
            let mut score = 0.0;
            for cursor in &mut cursors {
                cursor.seek(doc);
                if cursor.doc() == doc {
                    score += cursor.score();
                }
            }
            scores.insert(key, score);
        }
    }
    Ok(scores)
}

/// The best `limit` entries offered, by score, then address (the first wins a tie).
struct Top {
    limit: usize,
    /// The worst on top.
    heap: BinaryHeap<Ranked>,
}

#[derive(PartialEq)]
struct Ranked(Score, DocAddress);

impl Eq for Ranked {}

impl Ord for Ranked {
    /// Worse is greater.
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Top {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            heap: BinaryHeap::with_capacity(limit + 1),
        }
    }

    fn offer(&mut self, score: Score, address: DocAddress) {
        let entry = Ranked(score, address);
        if self.heap.len() < self.limit {
            self.heap.push(entry);
        } else if self.heap.peek().is_some_and(|worst| entry < *worst) {
            self.heap.pop();
            self.heap.push(entry);
        }
    }

    /// The best `limit` of several.
    fn merge(limit: usize, tops: Vec<Top>) -> Self {
        let mut merged = Top::new(limit);
        for Ranked(score, address) in tops.into_iter().flat_map(|t| t.heap) {
            merged.offer(score, address);
        }
        merged
    }

    /// The last one's score once there are `limit`.
    fn worst(&self) -> Option<Score> {
        self.heap
            .peek()
            .filter(|_| self.heap.len() >= self.limit)
            .map(|worst| worst.0)
    }

    /// What an entry must reach to enter (less a rounding: a tie may still enter).
    fn threshold(&self) -> Score {
        self.worst().map_or(Score::NEG_INFINITY, |w| w - ROUNDING)
    }

    fn into_sorted(self) -> Vec<(Score, DocAddress)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Ranked(s, a)| (s, a))
            .collect()
    }
}
