use super::*;
use crate::answer::tests::source;

/// Near-duplicate passages: the same words, different numbers.
fn ropes() -> Vec<Citation> {
    vec![
        source(
            1,
            "Heel ropes are longer: heelers typically use ropes of 35 to 40 feet, made of nylon.",
        ),
        source(
            2,
            "Head ropes are shorter: headers typically use ropes of 30 to 35 feet, made of nylon.",
        ),
        source(
            3,
            "Breakaway ropes are tied to the saddle horn with a string and a flag near Cheyenne.",
        ),
    ]
}

#[test]
fn support_check_flags_sentences_their_passage_does_not_hold() {
    let sources = vec![
        source(
            1,
            "A heading rope is usually 35 feet long and made of nylon.",
        ),
        source(
            2,
            "Barrel racers run a cloverleaf pattern around three barrels.",
        ),
    ];
    let answer = "Heading ropes are 35 feet of nylon [1]. Barrel racing uses four \
                  elephants and a trampoline [2]. Unrelated chatter.";
    let check = check_citations(answer, &sources, 0.5, vec![]);
    assert_eq!(check.cited, vec![1, 2]);
    assert_eq!(check.checked_sentences, 2);
    assert_eq!(check.unsupported.len(), 1);
    assert!(check.unsupported[0].sentence.contains("elephants"));
}

#[test]
fn citations_are_assigned_to_the_passage_that_holds_the_sentence() {
    let sources = vec![
        source(
            1,
            "A heading rope is usually 35 feet long and made of nylon.",
        ),
        source(
            2,
            "Barrel racers run a cloverleaf pattern around three barrels.",
        ),
    ];
    // a wrong marker, none, a right one, a claim no source holds, too short to judge
    let answer = "Heading ropes are 35 feet of nylon [2][2, 9]. Barrel racers run a \
                  cloverleaf pattern. Barrels number three [2]. Bulls fly over the moon [1]. \
                  I am not sure.";
    let a = assign_citations(answer, &sources, 0.5);
    assert_eq!(
        a.text,
        "Heading ropes are 35 feet of nylon [1]. Barrel racers run a cloverleaf pattern [2]. \
         Barrels number three [2]. Bulls fly over the moon [1]. I am not sure."
    );
    assert_eq!(a.reassigned.len(), 2, "{:?}", a.reassigned);
    assert_eq!(
        (a.reassigned[0].from.clone(), a.reassigned[0].to.clone()),
        (vec![2], vec![1])
    );
    assert_eq!(
        a.reassigned[0].sentence,
        "Heading ropes are 35 feet of nylon."
    );
    assert_eq!(
        (a.reassigned[1].from.clone(), a.reassigned[1].to.clone()),
        (vec![], vec![2])
    );
    // the corrected answer passes the check but for the claim no source holds
    let check = check_citations(&a.text, &sources, 0.5, vec![]);
    assert_eq!(check.unsupported.len(), 1);
    assert!(check.unsupported[0].sentence.starts_with("Bulls"));
    // an answer whose citations are right is left alone, byte for byte
    let right = "Heading ropes are 35 feet of nylon [1].\n\n- Barrels: three [2].";
    assert_eq!(assign_citations(right, &sources, 0.5).text, right);
    assert!(assign_citations("", &sources, 0.5).text.is_empty());
    assert_eq!(assign_citations(answer, &[], 0.5).text, answer);
}

#[test]
fn facts_are_numbers_and_names() {
    let f = facts("Ropes in Cheyenne cost $1,500.50 and run 35-foot lengths in 2024. The end.");
    let mut f: Vec<String> = f.into_iter().collect();
    f.sort();
    assert_eq!(f, vec!["1500.50", "2024", "35", "cheyenne"]);
    // the first word, short words and stop words are not names
    assert!(facts("Heel ropes: The rope is It.").is_empty());
}

#[test]
fn swapped_citations_over_near_duplicate_passages_are_put_right() {
    let sources = ropes();
    let answer = "Heel ropes are longer, typically 35 to 40 feet [2]. Head ropes are typically 30 to 35 feet long [1].";
    // both sentences share words ("ropes", "35", "feet") with the wrong passage: only the facts
    // tell them apart
    let before = check_citations(answer, &sources, 0.5, vec![]);
    assert_eq!(before.unsupported.len(), 2, "{before:?}");
    let a = assign_citations(answer, &sources, 0.5);
    assert_eq!(
        a.text,
        "Heel ropes are longer, typically 35 to 40 feet [1]. Head ropes are typically 30 to 35 feet long [2]."
    );
    let moves: Vec<(Vec<usize>, Vec<usize>)> = a
        .reassigned
        .iter()
        .map(|r| (r.from.clone(), r.to.clone()))
        .collect();
    assert_eq!(moves, vec![(vec![2], vec![1]), (vec![1], vec![2])]);
    let after = check_citations(&a.text, &sources, 0.5, vec![]);
    assert!(after.unsupported.is_empty(), "{after:?}");
    assert_eq!(after.cited, vec![1, 2]);
}

#[test]
fn shifted_and_merged_citations_are_put_right() {
    let sources = ropes();
    // each sentence cites the next one's passage
    let shifted = "Heelers use ropes of 35 to 40 feet [2]. Headers use ropes of 30 to 35 feet [3]. \
                   Breakaway ropes carry a flag near Cheyenne [1].";
    assert_eq!(
        assign_citations(shifted, &sources, 0.5).text,
        "Heelers use ropes of 35 to 40 feet [1]. Headers use ropes of 30 to 35 feet [2]. \
         Breakaway ropes carry a flag near Cheyenne [3]."
    );
    // one sentence holding two passages' facts cites both; a merged marker keeps only the
    // passage that holds its sentence; a merged marker over facts split between two stays
    let merged = "Headers use ropes of 30 feet and heelers ropes of 40 feet [1]. \
                  Headers use ropes of 30 to 35 feet [1, 2]. \
                  Headers use 30 feet and heelers 40 feet of nylon rope [2, 1].";
    let a = assign_citations(merged, &sources, 0.5);
    assert_eq!(
        a.text,
        "Headers use ropes of 30 feet and heelers ropes of 40 feet [1, 2]. \
         Headers use ropes of 30 to 35 feet [2]. \
         Headers use 30 feet and heelers 40 feet of nylon rope [2, 1]."
    );
    assert_eq!(a.reassigned.len(), 2, "{:?}", a.reassigned);
    let check = check_citations(&a.text, &sources, 0.5, vec![]);
    assert!(check.unsupported.is_empty(), "{check:?}");
}

#[test]
fn a_sentence_whose_facts_no_passage_holds_loses_its_citation() {
    let sources = ropes();
    // the small model's answer: right words, wrong numbers, cited or not
    for answer in [
        "A heading rope is typically 10 to 25 feet long [1].",
        "A heading rope is typically 10 to 25 feet long.",
    ] {
        let a = assign_citations(answer, &sources, 0.5);
        assert_eq!(
            a.text,
            format!("A heading rope is typically 10 to 25 feet long.{UNGROUNDED_NOTE}")
        );
        let check = check_citations(&a.text, &sources, 0.5, vec![]);
        assert!(check.cited.is_empty(), "{check:?}");
        assert_eq!(check.unsupported.len(), 1, "{check:?}");
        assert_eq!(check.unsupported[0].cited, Vec::<usize>::new());
        assert_eq!(
            check.unsupported[0].sentence,
            "A heading rope is typically 10 to 25 feet long."
        );
    }
    // a name no passage holds is a fact too
    let a = assign_citations(
        "Breakaway ropes carry a flag near Laramie [3].",
        &sources,
        0.5,
    );
    assert_eq!(
        a.text,
        format!("Breakaway ropes carry a flag near Laramie.{UNGROUNDED_NOTE}")
    );
    // the refusal states nothing and is left alone
    let refusal = "I don't know: the sources do not say.";
    assert_eq!(assign_citations(refusal, &sources, 0.5).text, refusal);
    assert!(
        check_citations(refusal, &sources, 0.5, vec![])
            .unsupported
            .is_empty()
    );
}

#[test]
fn an_answer_none_of_which_is_grounded_says_so() {
    let sources = ropes();
    // the local model's answers to questions the sources cannot answer: a year and a name no
    // passage holds (its marker dropped, or none given)
    for answer in [
        "The association was founded in 1987 [1].",
        "The breed required is the American Quarter Horse.",
    ] {
        let a = assign_citations(answer, &sources, 0.5);
        assert!(a.text.ends_with(UNGROUNDED_NOTE), "{a:?}");
        let check = check_citations(&a.text, &sources, 0.5, vec![]);
        assert_eq!(
            check.unsupported.len(),
            1,
            "the note is not checked: {check:?}"
        );
    }
    // one grounded sentence is enough; so is saying nothing checkable
    for answer in [
        "Head ropes are 30 to 35 feet [2]. The association was founded in 1987.",
        "I don't know: the sources do not say.",
        "Roping is a sport.",
    ] {
        assert_eq!(assign_citations(answer, &sources, 0.5).text, answer);
    }
    // the note goes out once, after the rest of the stream
    let mut c = Corrector::new(&sources, 0.5);
    let mut out = c.push("The association was founded in 1987 [1]");
    out.push_str(&c.push("."));
    out.push_str(&c.finish());
    out.push_str(&c.finish());
    assert_eq!(
        out,
        format!("The association was founded in 1987.{UNGROUNDED_NOTE}")
    );
}

#[test]
fn a_sentence_pointing_at_the_sources_stands_with_what_came_before() {
    let sources = ropes();
    // the pointer keeps its marker, and is borne out by the sentence before it
    let answer = "Head ropes are 30 to 35 feet long [2]. This is specified in the source [2].";
    let a = assign_citations(answer, &sources, 0.5);
    assert_eq!(a.text, answer);
    let check = check_citations(answer, &sources, 0.5, vec![]);
    assert_eq!((check.checked_sentences, check.unsupported.len()), (2, 0));
    let both = "Heel ropes are 35 to 40 feet [1]. Head ropes are 30 to 35 feet [2]. \
                The sources for this information are [1] and [2].";
    let check = check_citations(both, &sources, 0.5, vec![]);
    assert_eq!((check.checked_sentences, check.unsupported.len()), (3, 0));
    // pointing at a passage nothing before it drew on, or after a claim its passage does not
    // hold, is not borne out
    for answer in [
        "Head ropes are 30 to 35 feet long [2]. This can be found in source [3].",
        "Head ropes are 10 feet long [2]. This can be found in source [2].",
    ] {
        let check = check_citations(answer, &sources, 0.5, vec![]);
        assert_eq!(check.checked_sentences, 2, "{answer}");
        assert!(
            check
                .unsupported
                .iter()
                .any(|u| u.sentence.contains("found in source")),
            "{check:?}"
        );
    }
}

/// The answers the streaming tests split every way.
const STREAMED: &[&str] = &[
    "Heel ropes are longer, typically 35 to 40 feet [2]. Head ropes are typically 30 to 35 feet long [1].",
    "Heelers use ropes of 35 to 40 feet. [2] Headers use ropes of 30.5 feet [3]!\n\nA heading rope is 10 feet [1] long.",
    "Breakaway ropes carry a flag near Cheyenne[1, 3]. [sic] Headers use ropes of 30 to 35 feet [9]. ",
    "I don't know: the sources do not say.",
    "",
];

fn streamed(answer: &str, cuts: &[usize], sources: &[Citation]) -> (String, Corrector) {
    let mut c = Corrector::new(sources, 0.5);
    let mut out = String::new();
    let mut at = 0;
    for &cut in cuts.iter().chain([answer.len()].iter()) {
        if cut > at && answer.is_char_boundary(cut) {
            out.push_str(&c.push(&answer[at..cut]));
            at = cut;
        }
    }
    out.push_str(&c.finish());
    (out, c)
}

#[test]
fn the_stream_carries_the_corrected_answer_however_it_is_split() {
    let sources = ropes();
    for answer in STREAMED {
        let whole = assign_citations(answer, &sources, 0.5);
        // one delta, every two-way split, character by character
        let mut splits: Vec<Vec<usize>> = vec![vec![]];
        splits.extend((1..answer.len()).map(|i| vec![i]));
        splits.push((1..answer.len()).collect());
        splits.push((3..answer.len()).step_by(7).collect());
        for cuts in splits {
            let (out, c) = streamed(answer, &cuts, &sources);
            assert_eq!(out, whole.text, "{answer:?} cut at {cuts:?}");
            assert_eq!(c.reassigned, whole.reassigned, "{answer:?} cut at {cuts:?}");
        }
    }
}

#[test]
fn the_stream_sends_a_sentence_before_it_ends() {
    let sources = ropes();
    let mut c = Corrector::new(&sources, 0.5);
    // what no correction can change goes out at once: up to the first marker, without the
    // closing full stop
    assert_eq!(c.push("Heel ropes are longer"), "Heel ropes are longer");
    assert_eq!(
        c.push(", typically 35 to 40 feet ["),
        ", typically 35 to 40 feet"
    );
    assert_eq!(c.push("2]."), "");
    assert_eq!(c.push(" Head"), " [1]. Head");
    assert_eq!(c.push(" ropes."), " ropes");
    assert_eq!(c.finish(), ".");
}
