//! The answer benchmark (`lariat eval answers`): questions with a reference answer, its key
//! facts and the documents that hold it (or no answer: the corpus cannot answer and the right
//! reply is to say so), asked through the chat path exactly as every surface asks. Each answer
//! is scored for correctness (key facts found, token F1 against the reference), citations
//! (precision: cited sentences their passage supports; recall: reference documents cited),
//! refusal, and latency to the first token and to the end.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use base::CollectionName;
use base::principal::Principal;
use chat::{Answer, Chat, ChatRequest};
use serde::{Deserialize, Serialize};

use crate::{EvalError, LatencyMs, latency};

/// One question of a set (a line of its JSON-lines file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerCase {
    pub id: String,
    pub question: String,
    /// The reference answer; `null`: the corpus holds none, and the answer should say so.
    pub answer: Option<String>,
    /// Short phrases a correct answer contains (matched word for word, case and punctuation
    /// aside).
    #[serde(default)]
    pub facts: Vec<String>,
    /// The documents that hold the answer, by source name as ingested (`team-roping.md`).
    #[serde(default)]
    pub sources: Vec<String>,
}

impl AnswerCase {
    pub fn answerable(&self) -> bool {
        self.answer.is_some()
    }
}

/// Reads a question set, refusing (with the line) anything malformed: bad JSON, an empty or
/// repeated id, an answerable question without key facts, an unanswerable one with some.
pub fn read_cases(path: &Path) -> Result<Vec<AnswerCase>, EvalError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EvalError::Dataset(format!("{}: {e}", path.display())))?;
    let mut cases = Vec::new();
    let mut ids = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |msg: String| EvalError::Dataset(format!("{}:{}: {msg}", path.display(), i + 1));
        let case: AnswerCase = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if case.id.trim().is_empty() || case.question.trim().is_empty() {
            return Err(bad("a question needs an id and a question".into()));
        }
        if !ids.insert(case.id.clone()) {
            return Err(bad(format!("the id {:?} is used twice", case.id)));
        }
        match &case.answer {
            Some(_) if case.facts.iter().all(|f| tokens(f).is_empty()) => {
                return Err(bad("an answerable question needs key facts".into()));
            }
            None if !case.facts.is_empty() || !case.sources.is_empty() => {
                return Err(bad(
                    "a question without an answer cannot have facts or sources".into(),
                ));
            }
            _ => {}
        }
        cases.push(case);
    }
    if cases.is_empty() {
        return Err(EvalError::Dataset(format!(
            "{}: no questions",
            path.display()
        )));
    }
    Ok(cases)
}

/// Lower-cased runs of letters and digits: "$50, 5 p.m." is `50 5 p m`.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether the fact's words appear in the answer's, in order and together.
pub fn contains_fact(answer: &[String], fact: &str) -> bool {
    let fact = tokens(fact);
    !fact.is_empty() && answer.windows(fact.len()).any(|w| w == fact.as_slice())
}

/// SQuAD's token F1 (articles dropped) between an answer and the reference.
pub fn token_f1(answer: &str, reference: &str) -> f64 {
    let bag = |text: &str| {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for t in tokens(text) {
            if !matches!(t.as_str(), "a" | "an" | "the") {
                *counts.entry(t).or_default() += 1;
            }
        }
        counts
    };
    let (a, r) = (bag(answer), bag(reference));
    let common: usize = a
        .iter()
        .map(|(t, n)| (*n).min(r.get(t).copied().unwrap_or(0)))
        .sum();
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / a.values().sum::<usize>() as f64;
    let recall = common as f64 / r.values().sum::<usize>() as f64;
    2.0 * precision * recall / (precision + recall)
}

const REFUSALS: &[&str] = &[
    "cannot answer",
    "can't answer",
    "unable to answer",
    "don't know",
    "do not know",
    "not contain",
    "don't contain",
    "doesn't contain",
    "no information",
    "not mention",
    "don't mention",
    "doesn't mention",
    "does not say",
    "do not say",
    "doesn't say",
    "don't say",
    "not specified",
    "not stated",
    "found nothing",
    "not provided",
    "no answer",
];

/// Whether an answer declines to answer (the sources do not hold it).
pub fn is_refusal(text: &str) -> bool {
    // "don't" and "don’t" are both `don t`
    let flat = format!(" {} ", tokens(text).join(" "));
    REFUSALS
        .iter()
        .any(|r| flat.contains(&format!(" {} ", tokens(r).join(" "))))
}

/// How one answer did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    pub id: String,
    pub answerable: bool,
    pub refused: bool,
    pub facts: usize,
    pub facts_found: usize,
    /// Token F1 against the reference (answerable questions).
    pub f1: Option<f64>,
    /// Cited sentences the check judged, and those their passage supports.
    pub cited_sentences: usize,
    pub supported_sentences: usize,
    pub reference_sources: usize,
    pub reference_sources_cited: usize,
    pub first_token_ms: u64,
    pub total_ms: u64,
    pub answer: String,
}

/// Scores one answer against its question.
pub fn score(case: &AnswerCase, answer: &Answer) -> CaseResult {
    let words = tokens(&answer.text);
    let check = &answer.done.citation_check;
    let cited: Vec<&str> = answer
        .cited
        .iter()
        .map(|c| c.passage.source.as_str())
        .collect();
    let names = |source: &str, name: &str| source == name || source.ends_with(&format!("/{name}"));
    CaseResult {
        id: case.id.clone(),
        answerable: case.answerable(),
        refused: is_refusal(&answer.text),
        facts: case.facts.len(),
        facts_found: case
            .facts
            .iter()
            .filter(|f| contains_fact(&words, f))
            .count(),
        f1: case.answer.as_deref().map(|r| token_f1(&answer.text, r)),
        cited_sentences: check.checked_sentences,
        supported_sentences: check
            .checked_sentences
            .saturating_sub(check.unsupported.len()),
        reference_sources: case.sources.len(),
        reference_sources_cited: case
            .sources
            .iter()
            .filter(|s| cited.iter().any(|c| names(c, s)))
            .count(),
        first_token_ms: answer.done.timings.first_token_ms,
        total_ms: answer.done.timings.total_ms,
        answer: answer.text.clone(),
    }
}

/// A question set's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnswerReport {
    pub questions: String,
    /// The model that answered (`extractive` without one).
    pub model: String,
    pub answerable: usize,
    pub unanswerable: usize,
    /// Key facts found, over every answerable question's facts.
    pub fact_recall: f64,
    /// Mean token F1 against the references.
    pub answer_f1: f64,
    /// Cited sentences their passage supports, over all cited sentences.
    pub citation_precision: f64,
    /// Reference documents cited, over all reference documents.
    pub citation_recall: f64,
    /// Unanswerable questions the answer declined.
    pub refusal_rate: f64,
    /// Answerable questions the answer declined.
    pub false_refusal_rate: f64,
    pub first_token_ms: LatencyMs,
    pub total_ms: LatencyMs,
    pub cases: Vec<CaseResult>,
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl AnswerReport {
    pub fn new(questions: &str, model: String, cases: Vec<CaseResult>) -> Self {
        let (answerable, unanswerable): (Vec<&CaseResult>, Vec<&CaseResult>) =
            cases.iter().partition(|c| c.answerable);
        let sum = |of: &[&CaseResult], f: fn(&CaseResult) -> usize| of.iter().map(|c| f(c)).sum();
        let f1s: Vec<f64> = answerable.iter().filter_map(|c| c.f1).collect();
        AnswerReport {
            questions: questions.to_owned(),
            model,
            answerable: answerable.len(),
            unanswerable: unanswerable.len(),
            fact_recall: ratio(
                sum(&answerable, |c| c.facts_found),
                sum(&answerable, |c| c.facts),
            ),
            answer_f1: if f1s.is_empty() {
                0.0
            } else {
                f1s.iter().sum::<f64>() / f1s.len() as f64
            },
            citation_precision: ratio(
                cases.iter().map(|c| c.supported_sentences).sum(),
                cases.iter().map(|c| c.cited_sentences).sum(),
            ),
            citation_recall: ratio(
                sum(&answerable, |c| c.reference_sources_cited),
                sum(&answerable, |c| c.reference_sources),
            ),
            refusal_rate: ratio(
                unanswerable.iter().filter(|c| c.refused).count(),
                unanswerable.len(),
            ),
            false_refusal_rate: ratio(
                answerable.iter().filter(|c| c.refused).count(),
                answerable.len(),
            ),
            first_token_ms: latency(cases.iter().map(|c| c.first_token_ms as f64).collect()),
            total_ms: latency(cases.iter().map(|c| c.total_ms as f64).collect()),
            cases,
        }
    }

    /// The figures a regression gate compares, higher is better, by name.
    pub fn gated(&self) -> [(&'static str, f64); 5] {
        [
            ("fact_recall", self.fact_recall),
            ("answer_f1", self.answer_f1),
            ("citation_precision", self.citation_precision),
            ("citation_recall", self.citation_recall),
            ("refusal_rate", self.refusal_rate),
        ]
    }

    /// Every gated figure that fell more than `max_drop` below the baseline's.
    pub fn regressions(&self, baseline: &AnswerReport, max_drop: f64) -> Vec<String> {
        self.gated()
            .into_iter()
            .zip(baseline.gated())
            .filter(|((_, now), (_, before))| before - now > max_drop)
            .map(|((name, now), (_, before))| {
                format!("{name} fell from {before:.4} to {now:.4} (more than {max_drop})")
            })
            .collect()
    }

    /// The report as a Markdown table, one row per question, then the figures.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## {} ({})\n\n| question | facts | F1 | cited supported | sources cited | refused | first token ms | total ms |\n|---|---|---|---|---|---|---|---|\n",
            self.questions, self.model
        );
        for c in &self.cases {
            out.push_str(&format!(
                "| {} | {}/{} | {} | {}/{} | {}/{} | {} | {} | {} |\n",
                c.id,
                c.facts_found,
                c.facts,
                c.f1.map_or("-".into(), |f| format!("{f:.2}")),
                c.supported_sentences,
                c.cited_sentences,
                c.reference_sources_cited,
                c.reference_sources,
                if c.refused { "yes" } else { "no" },
                c.first_token_ms,
                c.total_ms
            ));
        }
        out.push_str(&format!(
            "\n{} answerable, {} not. fact recall {:.4} · answer F1 {:.4} · citation precision {:.4} · citation recall {:.4} · refusals {:.4} (false refusals {:.4}) · first token p50 {:.0} ms p95 {:.0} ms · total p50 {:.0} ms p95 {:.0} ms\n",
            self.answerable,
            self.unanswerable,
            self.fact_recall,
            self.answer_f1,
            self.citation_precision,
            self.citation_recall,
            self.refusal_rate,
            self.false_refusal_rate,
            self.first_token_ms.p50,
            self.first_token_ms.p95,
            self.total_ms.p50,
            self.total_ms.p95
        ));
        out
    }
}

/// Asks every question, one at a time (latency is measured, not throughput), of one collection
/// as `principal`, nothing kept as a conversation.
pub async fn run_answers(
    chat: &Arc<Chat>,
    principal: &Principal,
    collection: &CollectionName,
    questions: &str,
    cases: &[AnswerCase],
) -> Result<AnswerReport, EvalError> {
    let mut results = Vec::with_capacity(cases.len());
    let mut model = String::new();
    for case in cases {
        let answer = chat
            .answer(
                principal.clone(),
                ChatRequest {
                    message: case.question.clone(),
                    conversation_id: None,
                    collections: Some(vec![collection.clone()]),
                    history: Vec::new(),
                    model: None,
                    persist: false,
                },
            )
            .await?;
        model.clone_from(&answer.done.model);
        results.push(score(case, &answer));
    }
    Ok(AnswerReport::new(questions, model, results))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(lines: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.jsonl");
        std::fs::write(&path, lines).unwrap();
        (dir, path)
    }

    #[test]
    fn facts_match_word_for_word_whatever_the_case_and_punctuation() {
        let answer =
            tokens("Turning out late costs the Entry-Fee plus $50. Entries close at 5 p.m.");
        assert!(contains_fact(&answer, "entry fee plus $50"));
        assert!(contains_fact(&answer, "5 P.M."));
        assert!(!contains_fact(&answer, "fee entry"));
        assert!(!contains_fact(&answer, "$51"));
        assert!(!contains_fact(&answer, "  "));
    }

    #[test]
    fn token_f1_is_squads() {
        assert_eq!(token_f1("the heel rope", "a heel rope"), 1.0);
        assert_eq!(token_f1("bulls", "heel rope"), 0.0);
        // 2 common of 4 and of 2: p 0.5, r 1, f1 2/3
        assert!((token_f1("heel rope is long", "heel rope") - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(token_f1("", "heel rope"), 0.0);
    }

    #[test]
    fn refusals_are_recognised() {
        assert!(is_refusal("The sources do not contain the prize money."));
        assert!(is_refusal("I don’t know."));
        assert!(is_refusal(
            "I found nothing in the knowledge base about this, so I cannot answer it."
        ));
        assert!(!is_refusal("Heel ropes are 35 to 40 feet long [1]."));
        assert!(!is_refusal("Do not let go of the rope [1]."));
    }

    #[test]
    fn malformed_sets_are_refused_with_their_line() {
        let good =
            r#"{"id": "a", "question": "q?", "answer": "x", "facts": ["x"], "sources": ["a.md"]}"#;
        let (_d, path) = write(&format!(
            "{good}\n\n{{\"id\": \"b\", \"question\": \"q?\", \"answer\": null}}\n"
        ));
        let cases = read_cases(&path).unwrap();
        assert_eq!(cases.len(), 2);
        assert!(cases[0].answerable() && !cases[1].answerable());
        for (body, says) in [
            (format!("{good}\n{good}"), ":2: the id \"a\" is used twice"),
            ("{\"id\": \"a\"".to_owned(), ":1: "),
            (
                r#"{"id": "a", "question": "q?", "answer": "x", "facts": []}"#.to_owned(),
                ":1: an answerable question needs key facts",
            ),
            (
                r#"{"id": "a", "question": "q?", "answer": null, "facts": ["x"]}"#.to_owned(),
                ":1: a question without an answer",
            ),
            (
                r#"{"id": " ", "question": "q?", "answer": null}"#.to_owned(),
                ":1: a question needs an id",
            ),
            (
                r#"{"id": "a", "question": "q?", "answer": null, "extra": 1}"#.to_owned(),
                "unknown field",
            ),
            (String::new(), "no questions"),
        ] {
            let (_d, path) = write(&body);
            let e = read_cases(&path).unwrap_err().to_string();
            assert!(e.contains(says), "{body:?}: {e}");
        }
    }

    #[test]
    fn the_report_sums_over_the_right_questions() {
        let case = |id: &str, answerable: bool, refused: bool, found: usize| CaseResult {
            id: id.into(),
            answerable,
            refused,
            facts: if answerable { 2 } else { 0 },
            facts_found: found,
            f1: answerable.then_some(0.5),
            cited_sentences: 2,
            supported_sentences: 1,
            reference_sources: usize::from(answerable),
            reference_sources_cited: usize::from(answerable && !refused),
            first_token_ms: 10,
            total_ms: 20,
            answer: String::new(),
        };
        let r = AnswerReport::new(
            "q.jsonl",
            "extractive".into(),
            vec![
                case("a", true, false, 2),
                case("b", true, true, 0),
                case("c", false, true, 0),
                case("d", false, false, 0),
            ],
        );
        assert_eq!((r.answerable, r.unanswerable), (2, 2));
        assert_eq!(r.fact_recall, 0.5);
        assert_eq!(r.answer_f1, 0.5);
        assert_eq!(r.citation_precision, 0.5);
        assert_eq!(r.citation_recall, 0.5);
        assert_eq!(r.refusal_rate, 0.5);
        assert_eq!(r.false_refusal_rate, 0.5);
        let mut better = r.clone();
        better.fact_recall = 0.9;
        assert!(better.regressions(&r, 0.01).is_empty());
        let drops = r.regressions(&better, 0.01);
        assert_eq!(drops.len(), 1);
        assert!(
            drops[0].starts_with("fact_recall fell from 0.9000 to 0.5000"),
            "{drops:?}"
        );
    }
}
