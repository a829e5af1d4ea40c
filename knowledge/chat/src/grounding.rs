//! Whether an answer says what its sources say. A sentence is grounded in a passage when the
//! passage holds its facts (its numbers and names: "35 to 40 feet", "Cheyenne") and most of its
//! content words. A model's citations are put right sentence by sentence as its text streams
//! ([`Corrector`]): a marker moves to the passage that holds the sentence, a sentence drawing on
//! two passages cites both, and a sentence whose facts no passage holds loses its marker. An
//! answer none of which a passage bears out ends with a note that the sources do not say it. The
//! check then reports what the answer cites and which sentences their passages do not bear out.

use std::collections::HashSet;

use serde::Serialize;

use crate::answer::{
    Citation, STOP_WORDS, content_words, marker_len, markers, sentence_spans, sentences,
    strip_markers,
};

/// A sentence the passages do not bear out: its cited passages (or, uncited, none) lack its
/// facts or most of its words.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Unsupported {
    pub sentence: String,
    pub cited: Vec<usize>,
    /// Share of the sentence's content words found in the best cited passage, times the share
    /// of its facts the cited passages hold.
    pub support: f32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default, schemars::JsonSchema)]
pub struct CitationCheck {
    /// Sources the answer cites, in order of first use.
    pub cited: Vec<usize>,
    /// Markers dropped because they named no source.
    pub removed_markers: Vec<String>,
    pub checked_sentences: usize,
    pub unsupported: Vec<Unsupported>,
    /// Sentences whose citation was put right after generation (a model's answers only).
    pub reassigned: Vec<Reassigned>,
}

/// A sentence whose citation was put right after generation.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Reassigned {
    pub sentence: String,
    /// What the model cited (empty: nothing).
    pub from: Vec<usize>,
    /// What the sentence cites now: the sources that hold it (empty: none holds its facts, so
    /// it cites nothing and the check reports it).
    pub to: Vec<usize>,
    /// Share of the sentence's content words found in the best of those sources.
    pub support: f32,
}

/// An answer with its citations put right.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigned {
    pub text: String,
    pub reassigned: Vec<Reassigned>,
}

/// Content words a sentence without facts needs before its citation is judged: fewer ("I don't
/// know.", "In short:") say too little to map to a passage.
const MIN_ASSIGN_WORDS: usize = 3;

/// What a sentence claims: its content words and its facts.
struct Claim {
    words: HashSet<String>,
    facts: HashSet<String>,
}

impl Claim {
    fn of(sentence: &str) -> Self {
        let text = strip_markers(sentence);
        Self {
            words: content_words(&text).into_iter().collect(),
            facts: facts(&text),
        }
    }

    /// Too little to judge: no fact and only a word or two.
    fn is_slight(&self) -> bool {
        self.facts.is_empty() && self.words.len() < MIN_ASSIGN_WORDS
    }

    /// A sentence about the sources rather than the subject ("This is specified in source
    /// [2].", "The sources for this information are [1] and [2]."): it states nothing a passage
    /// could hold, and stands or falls with what the answer said before it.
    fn is_reference(&self) -> bool {
        self.facts.is_empty()
            && !self.words.is_empty()
            && self
                .words
                .iter()
                .all(|w| REFERENCE_WORDS.contains(&w.as_str()))
    }
}

/// The content words (cut as [`content_words`] cuts them) of a sentence that only points at the
/// sources.
const REFERENCE_WORDS: &[&str] = &[
    "sourc", "infor", "speci", "found", "state", "menti", "provi", "accor", "cited", "docum",
    "passa", "refer", "detai", "see", "liste", "descr", "expla", "given", "outli", "noted",
    "above", "here", "text",
];

/// Added to a model's answer when none of it is grounded: some sentence states what no passage
/// holds and no sentence is borne out by a passage. The answer stays as the model wrote it (and
/// its unsupported sentences are reported), but it does not pass for an answer from the
/// documents.
pub const UNGROUNDED_NOTE: &str =
    "\n\nThe sources do not say this, so I cannot answer it from the documents.";

/// What a source's passage offers: its content words, and every token of its title, headings
/// and text (for facts).
pub struct Evidence {
    words: HashSet<String>,
    tokens: HashSet<String>,
}

impl Evidence {
    pub fn of(sources: &[Citation]) -> Vec<Self> {
        sources
            .iter()
            .map(|s| {
                let p = &s.passage;
                let mut tokens: HashSet<String> = tokens(&p.text).collect();
                tokens.extend(tokens_of_heading(&p.title, &p.location_detail.headings));
                Self {
                    words: content_words(&p.text).into_iter().collect(),
                    tokens,
                }
            })
            .collect()
    }

    /// The share of the claim's content words this passage holds (all, for a claim of facts
    /// alone).
    fn support(&self, claim: &Claim) -> f32 {
        if claim.words.is_empty() {
            return 1.0;
        }
        claim
            .words
            .iter()
            .filter(|w| self.words.contains(*w))
            .count() as f32
            / claim.words.len() as f32
    }

    fn holds(&self, fact: &str) -> bool {
        self.tokens.contains(fact)
    }

    fn holds_all(&self, claim: &Claim) -> bool {
        claim.facts.iter().all(|f| self.holds(f))
    }
}

fn tokens_of_heading<'a>(
    title: &'a str,
    headings: &'a [String],
) -> impl Iterator<Item = String> + 'a {
    std::iter::once(title)
        .chain(headings.iter().map(String::as_str))
        .flat_map(tokens)
}

/// Lower-cased tokens: runs of letters and digits, a number keeping its decimal point and
/// losing its thousands separators ("1,500.5" is "1500.5").
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == ','))
        .flat_map(|run| {
            let run = run.trim_matches(['.', ',']);
            let numeric = run.chars().any(|c| c.is_ascii_digit());
            let pieces: Vec<String> = if numeric {
                vec![run.replace(',', "")]
            } else {
                run.split([',', '.'])
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            pieces
        })
        .filter(|t| !t.is_empty())
        .map(|t| t.to_lowercase())
}

/// The facts a sentence states, which a passage must hold for the sentence to cite it: its
/// numbers, and its names (capitalised words of three letters or more past its first word).
pub fn facts(sentence: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let raw = sentence.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == ','));
    let mut first = true;
    for run in raw {
        let run = run.trim_matches(['.', ',']);
        if run.is_empty() {
            continue;
        }
        let leading = std::mem::take(&mut first);
        if run.chars().any(|c| c.is_ascii_digit()) {
            out.insert(run.replace(',', "").to_lowercase());
        } else if !leading && run.chars().next().is_some_and(char::is_uppercase) {
            for piece in run.split([',', '.']) {
                let lower = piece.to_lowercase();
                if lower.chars().count() >= 3 && !STOP_WORDS.contains(&lower.as_str()) {
                    out.insert(lower);
                }
            }
        }
    }
    out
}

/// Checks each sentence against its passages: a cited sentence needs its cited passages to hold
/// its facts and one of them most of its words; an uncited one that states facts no passage
/// holds is reported too.
pub fn check_citations(
    answer: &str,
    sources: &[Citation],
    threshold: f32,
    removed: Vec<String>,
) -> CitationCheck {
    CitationCheck {
        removed_markers: removed,
        ..check(answer, &Evidence::of(sources), threshold)
    }
}

/// [`check_citations`] over the passages' evidence. A sentence that only points at the sources
/// is borne out when the passages it names bore out an earlier sentence.
fn check(answer: &str, evidence: &[Evidence], threshold: f32) -> CitationCheck {
    let mut check = CitationCheck::default();
    // the passages that bore out a sentence so far
    let mut grounded: HashSet<usize> = HashSet::new();
    for sentence in sentences(answer) {
        let cited: Vec<usize> = markers(&sentence)
            .into_iter()
            .filter(|n| *n >= 1 && *n <= evidence.len())
            .collect();
        for n in &cited {
            if !check.cited.contains(n) {
                check.cited.push(*n);
            }
        }
        let claim = Claim::of(&sentence);
        if claim.words.is_empty() && claim.facts.is_empty() {
            continue;
        }
        if claim.is_reference() {
            if !cited.is_empty() {
                check.checked_sentences += 1;
                if !cited.iter().all(|n| grounded.contains(n)) {
                    check.unsupported.push(Unsupported {
                        sentence,
                        cited,
                        support: 0.0,
                    });
                }
            }
            continue;
        }
        if cited.is_empty() {
            // an uncited sentence is reported only for facts that no passage holds
            if claim.facts.is_empty() || evidence.iter().any(|e| e.holds_all(&claim)) {
                continue;
            }
            check.checked_sentences += 1;
            check.unsupported.push(Unsupported {
                sentence,
                cited,
                support: 0.0,
            });
            continue;
        }
        check.checked_sentences += 1;
        let held = claim
            .facts
            .iter()
            .filter(|f| cited.iter().any(|&n| evidence[n - 1].holds(f)))
            .count();
        let coverage = if claim.facts.is_empty() {
            1.0
        } else {
            held as f32 / claim.facts.len() as f32
        };
        let words = cited
            .iter()
            .map(|&n| evidence[n - 1].support(&claim))
            .fold(0.0f32, f32::max);
        if coverage < 1.0 || words < threshold {
            check.unsupported.push(Unsupported {
                sentence,
                cited,
                support: words * coverage,
            });
        } else {
            grounded.extend(cited);
        }
    }
    check
}

/// Whether an answer, its citations put right, is grounded nowhere: some sentence states what
/// no passage holds, and none is borne out (with no passages, nothing is judged).
fn is_ungrounded(answer: &str, evidence: &[Evidence], threshold: f32) -> bool {
    if evidence.is_empty() {
        return false;
    }
    let check = check(answer, evidence, threshold);
    !check.unsupported.is_empty() && check.unsupported.len() == check.checked_sentences
}

/// Maps each sentence of a model's answer to the sources that hold it, so that the citations
/// shown are right even when the model's markers are not (small models cite badly, and any
/// model can swap two near-duplicate passages):
/// - a sentence keeps its markers when a cited passage holds its facts and at least `threshold`
///   of its content words (only those of its markers that do, when it names several);
/// - or, when its cited passages share its facts between them (and each most of its words),
///   all of them;
/// - otherwise it cites the passage that holds its facts and the most of its words, or the two
///   that hold its facts between them and each most of its words;
/// - a sentence whose facts no passage holds loses its markers (the check reports it); one
///   without facts that no passage supports keeps what it has, for the check to flag.
///
/// An answer none of which is then grounded gets [`UNGROUNDED_NOTE`].
pub fn assign_citations(answer: &str, sources: &[Citation], threshold: f32) -> Assigned {
    let evidence = Evidence::of(sources);
    let mut assigned = assign(answer, &evidence, threshold);
    if is_ungrounded(&assigned.text, &evidence, threshold) {
        assigned.text.push_str(UNGROUNDED_NOTE);
    }
    assigned
}

fn assign(answer: &str, evidence: &[Evidence], threshold: f32) -> Assigned {
    let mut text = String::with_capacity(answer.len() + 16);
    let mut reassigned = Vec::new();
    let mut copied = 0;
    for span in sentence_spans(answer) {
        let sentence = &answer[span.clone()];
        let mut cited: Vec<usize> = Vec::new();
        for n in markers(sentence) {
            if n >= 1 && n <= evidence.len() && !cited.contains(&n) {
                cited.push(n);
            }
        }
        let claim = Claim::of(sentence);
        let Some(to) = judge(&claim, &cited, evidence, threshold) else {
            continue;
        };
        text.push_str(&answer[copied..span.start]);
        text.push_str(&with_markers(sentence, &to));
        copied = span.end;
        reassigned.push(Reassigned {
            sentence: without_markers(sentence),
            support: to
                .iter()
                .map(|&n| evidence[n - 1].support(&claim))
                .fold(0.0f32, f32::max),
            from: cited,
            to,
        });
    }
    text.push_str(&answer[copied..]);
    Assigned { text, reassigned }
}

/// What a sentence should cite instead of `cited`, or `None` to leave it as it is.
fn judge(
    claim: &Claim,
    cited: &[usize],
    evidence: &[Evidence],
    threshold: f32,
) -> Option<Vec<usize>> {
    if claim.is_slight() || claim.is_reference() || evidence.is_empty() {
        return None;
    }
    let support = |n: usize| evidence[n - 1].support(claim);
    let good = |n: usize| evidence[n - 1].holds_all(claim) && support(n) >= threshold;
    // the first best: sources are in retrieval order
    let best_of = |ns: &mut dyn Iterator<Item = usize>| {
        ns.fold(None, |acc: Option<(usize, f32)>, n| match acc {
            Some((_, b)) if b >= support(n) => acc,
            _ => Some((n, support(n))),
        })
    };
    if claim.facts.is_empty() {
        let cited_best = cited.iter().map(|&n| support(n)).fold(0.0f32, f32::max);
        if !cited.is_empty() && cited_best >= threshold {
            return None;
        }
        let (to, best) = best_of(&mut (1..=evidence.len()))?;
        return (best >= threshold && best > cited_best).then(|| vec![to]);
    }
    let good_cited: Vec<usize> = cited.iter().copied().filter(|&n| good(n)).collect();
    if !good_cited.is_empty() {
        return (good_cited.len() < cited.len()).then_some(good_cited);
    }
    let all_support = |ns: &[usize]| ns.iter().all(|&n| support(n) >= threshold);
    if shares_facts(claim, cited, evidence) && all_support(cited) {
        return None;
    }
    if let Some((to, _)) = best_of(&mut (1..=evidence.len()).filter(|&n| good(n))) {
        return Some(vec![to]);
    }
    let pairs = (1..=evidence.len()).flat_map(|a| (a + 1..=evidence.len()).map(move |b| (a, b)));
    let pair = pairs
        .filter(|&(a, b)| shares_facts(claim, &[a, b], evidence) && all_support(&[a, b]))
        .max_by(|x, y| {
            let s = |(a, b): (usize, usize)| support(a).min(support(b));
            // the first best pair: max_by keeps the last of equals, so compare reversed ties
            s(*x).total_cmp(&s(*y)).then(y.cmp(x))
        });
    match pair {
        Some((a, b)) => Some(vec![a, b]),
        None if cited.is_empty() => None,
        None => Some(Vec::new()),
    }
}

/// Whether the passages `ns` hold every fact of the claim between them, each holding one.
fn shares_facts(claim: &Claim, ns: &[usize], evidence: &[Evidence]) -> bool {
    ns.len() > 1
        && claim
            .facts
            .iter()
            .all(|f| ns.iter().any(|&n| evidence[n - 1].holds(f)))
        && ns
            .iter()
            .all(|&n| claim.facts.iter().any(|f| evidence[n - 1].holds(f)))
}

/// The sentence citing `ns` instead: the marker where its first marker stood (the others
/// dropped with the space before them), or before the closing full stop when it had none; with
/// no `ns`, every marker dropped with the space before it.
fn with_markers(sentence: &str, ns: &[usize]) -> String {
    let marker = (!ns.is_empty()).then(|| {
        let ns: Vec<String> = ns.iter().map(usize::to_string).collect();
        format!("[{}]", ns.join(", "))
    });
    let mut out = String::with_capacity(sentence.len() + 8);
    let mut placed = false;
    let mut rest = sentence;
    while let Some(open) = rest.find('[') {
        match (marker_len(&rest[open..]), &marker) {
            (Some(len), Some(marker)) if !placed => {
                out.push_str(&rest[..open]);
                out.push_str(marker);
                placed = true;
                rest = &rest[open + len..];
            }
            (Some(len), _) => {
                out.push_str(rest[..open].strip_suffix(' ').unwrap_or(&rest[..open]));
                rest = &rest[open + len..];
            }
            (None, _) => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    let Some(marker) = marker.filter(|_| !placed) else {
        return out;
    };
    let body = out.trim_end_matches(['.', '!', '?']);
    let stop = &out[body.len()..];
    format!("{} {marker}{stop}", body.trim_end())
}

/// A sentence as read without its markers: "… of nylon [2]." is "… of nylon.".
fn without_markers(sentence: &str) -> String {
    let flat = strip_markers(sentence)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match flat.char_indices().last() {
        Some((i, stop @ ('.' | '!' | '?'))) => format!("{}{stop}", flat[..i].trim_end()),
        _ => flat,
    }
}

/// Puts a model's citations right as its text streams, so that every surface (the chat's
/// events, the OpenAI-compatible stream, the stored message) shows the same corrected answer:
/// a sentence goes out with its citations assigned ([`assign_citations`]) once the next one has
/// begun; of the sentence still being written, the part no correction can change (up to its
/// first marker, without its closing full stop) goes out at once.
pub struct Corrector {
    evidence: Vec<Evidence>,
    threshold: f32,
    /// The model's text so far.
    raw: String,
    /// `raw[..settled]` is whole sentences, corrected and sent.
    settled: usize,
    /// `raw[settled..emitted]` was sent as it is.
    emitted: usize,
    /// Everything sent.
    shown: String,
    pub reassigned: Vec<Reassigned>,
}

impl Corrector {
    pub fn new(sources: &[Citation], threshold: f32) -> Self {
        Self {
            evidence: Evidence::of(sources),
            threshold,
            raw: String::new(),
            settled: 0,
            emitted: 0,
            shown: String::new(),
            reassigned: Vec::new(),
        }
    }

    /// The corrected text that can be shown now.
    pub fn push(&mut self, delta: &str) -> String {
        self.raw.push_str(delta);
        let pending = &self.raw[self.settled..];
        let spans = sentence_spans(pending);
        let mut out = String::new();
        // a sentence has ended once another has begun (one opening with '[' may yet be its
        // trailing marker)
        if let [.., done, last] = spans.as_slice()
            && !pending[last.start..].starts_with('[')
        {
            let cut = self.settled + done.end;
            out.push_str(&self.settle(cut));
        }
        let pending = &self.raw[self.settled..];
        let safe = self.settled + sure_prefix(pending);
        if safe > self.emitted {
            out.push_str(&self.raw[self.emitted..safe]);
            self.emitted = safe;
        }
        self.shown.push_str(&out);
        out
    }

    /// The rest of the corrected text, once the model has finished (with [`UNGROUNDED_NOTE`]
    /// when none of the answer is grounded).
    pub fn finish(&mut self) -> String {
        let mut rest = self.settle(self.raw.len());
        self.shown.push_str(&rest);
        if !self.shown.ends_with(UNGROUNDED_NOTE)
            && is_ungrounded(&self.shown, &self.evidence, self.threshold)
        {
            rest.push_str(UNGROUNDED_NOTE);
            self.shown.push_str(UNGROUNDED_NOTE);
        }
        rest
    }

    /// Corrects `raw[settled..cut]` (whole sentences) and returns what was not yet sent of it.
    fn settle(&mut self, cut: usize) -> String {
        let assigned = assign(&self.raw[self.settled..cut], &self.evidence, self.threshold);
        let sent = self.emitted - self.settled;
        debug_assert!(
            assigned
                .text
                .starts_with(&self.raw[self.settled..self.emitted]),
            "a correction changed text already sent"
        );
        self.reassigned.extend(assigned.reassigned);
        self.settled = cut;
        self.emitted = cut;
        assigned.text.get(sent..).unwrap_or_default().to_owned()
    }
}

/// How much of text not yet settled no correction can change: everything up to its first
/// sentence's first marker, without that sentence's trailing full stops and spaces (a marker
/// may be put before them).
fn sure_prefix(pending: &str) -> usize {
    let Some(first) = sentence_spans(pending).into_iter().next() else {
        return 0;
    };
    let sentence = &pending[first.clone()];
    let head = &sentence[..sentence.find('[').unwrap_or(sentence.len())];
    let head = head.trim_end().trim_end_matches(['.', '!', '?']).trim_end();
    first.start + head.len()
}

#[cfg(test)]
mod tests;
