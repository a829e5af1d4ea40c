//! The rendering of answers and highlights: active content removed, citations kept.

use lariat_api::render::{answer_html, highlight};

#[test]
fn answers_lose_active_content_and_keep_their_citations() {
    let html = answer_html(
        "**Bareback** riders hold a rigging [1]. <script>alert(1)</script>\n\n\
         <img src=x onerror=alert(2)> [2] [9] [x]",
        &[1, 2],
        &[],
    );
    assert!(html.contains("<strong>Bareback</strong>"), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("onerror"),
        "{html}"
    );
    assert!(
        html.contains(r#"data-n="1""#) && html.contains(r#"data-n="2""#),
        "{html}"
    );
    assert!(html.contains("[9]") && html.contains("[x]"), "{html}");
}

#[test]
fn highlighting_escapes_everything_but_its_marks() {
    let out = highlight("<b>Rigging</b> & riggings", "rigging");
    assert_eq!(
        out,
        "&#60;b&#62;<mark>Rigging</mark>&#60;/b&#62; &#38; <mark>riggings</mark>"
    );
}

#[test]
fn unsupported_sentences_are_marked_only_when_the_mark_stays_inline() {
    let answer = "Riders hold a **rigging** [1]. Bulls can fly [2].\n\n- one\n- two [1]";
    let html = answer_html(
        answer,
        &[1, 2],
        &["Bulls can fly [2].", "one\n- two [1]", "absent"],
    );
    assert!(
        html.contains(r#"<mark class=unsupported>Bulls can fly <button"#),
        "{html}"
    );
    assert_eq!(html.matches("<mark").count(), 1, "{html}");
    assert!(
        !html.contains('\u{E000}') && !html.contains('\u{E001}'),
        "{html}"
    );
    // a model that writes the sentinels itself gets no mark and no stray character
    let html = answer_html("A \u{E000}<b>x</b>\u{E001} b\u{E001}", &[], &[]);
    assert!(
        !html.contains("<mark") && !html.contains('\u{E000}'),
        "{html}"
    );
    assert!(!html.contains('\u{E001}'), "{html}");
    // inside a link's address the mark cannot end the attribute
    let html = answer_html(
        "See [x](http://a.test/p?q=1) now.",
        &[],
        &["http://a.test/p?q=1"],
    );
    for value in html.split('"').skip(1).step_by(2) {
        assert!(!value.contains('<'), "a tag inside an attribute: {html}");
    }
}
