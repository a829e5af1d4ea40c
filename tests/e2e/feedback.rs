//! Readers rate answers over REST; admins read the tally; `lariat eval feedback` turns the
//! well-rated answers into a BEIR dataset that `lariat eval beir` measures and gates on.

use reqwest::Method;
use serde_json::{Value, json};

use crate::chat::{chat, one};
use crate::serve::{Api, Server, create_admin};
use crate::support::{Lariat, corpus_dir};

/// Asks `question` in a new conversation; its (conversation, answer) ids.
async fn asked(api: &Api, token: &str, question: &str) -> (String, String) {
    let (s, events) = chat(api, token, json!({ "message": question })).await;
    assert_eq!(s, 200, "{events:?}");
    (
        one(&events, "meta")["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        one(&events, "done")["message_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

#[tokio::test]
async fn readers_rate_answers_and_their_ratings_become_a_benchmark() {
    let l = Lariat::new().with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000");
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    let ann = api.user("ann@example.com").await;
    let bob = api.user("bob@example.com").await;

    let (conversation, answer) = asked(&api, &ann, "How long is a heel rope?").await;
    let path = format!("/api/conversations/{conversation}/messages/{answer}/feedback");
    let put = |token: &str, path: &str, body: Value| {
        let (api, token, path) = (api.clone(), token.to_owned(), path.to_owned());
        async move { api.call(Method::PUT, &path, Some(&token), Some(body)).await }
    };

    // rated, with what was rated kept beside it
    let (s, rated) = put(
        &ann,
        &path,
        json!({"rating": "down", "comment": "too vague"}),
    )
    .await;
    assert_eq!(s, 200, "{rated}");
    assert_eq!(rated["rating"], "down");
    assert_eq!(rated["question"], "How long is a heel rope?");
    assert_eq!(rated["model"], "extractive");
    let passages = rated["passages"].as_array().unwrap();
    assert!(!passages.is_empty(), "{rated}");
    assert!(
        passages.iter().all(|p| p["collection"] == "rodeo"),
        "{rated}"
    );
    // rated again: replaced; the conversation shows the rating on its answer
    let (s, rated) = put(&ann, &path, json!({"rating": "up"})).await;
    assert_eq!(
        (s, &rated["rating"], &rated["comment"]),
        (200, &json!("up"), &json!(""))
    );
    let (_, full) = api
        .get(&format!("/api/conversations/{conversation}"), Some(&ann))
        .await;
    let messages = full["messages"].as_array().unwrap();
    assert_eq!(
        messages[1]["rating"],
        json!({"rating": "up", "comment": ""}),
        "{full}"
    );
    assert!(messages[0].get("rating").is_none(), "{full}");

    // bad and hostile ratings: refused with their reason, nothing changed
    for (body, status, says) in [
        (json!({"rating": "sideways"}), 400, "up or down"),
        (
            json!({"rating": "up", "comment": "x".repeat(2001)}),
            400,
            "2000",
        ),
        (
            json!({"rating": "up", "comment": "bell\u{7}"}),
            400,
            "control",
        ),
        (json!({"rating": "up", "extra": 1}), 400, "extra"),
        (json!({}), 400, "rating"),
    ] {
        let (s, body) = put(&ann, &path, body).await;
        assert_eq!(s, status, "{body}");
        assert!(body.to_string().contains(says), "{says}: {body}");
    }
    // another reader, the question itself, an answer of no conversation: nothing there
    for (token, path) in [
        (&bob, path.clone()),
        (
            &ann,
            format!("/api/conversations/{conversation}/messages/{conversation}/feedback"),
        ),
        (
            &ann,
            format!("/api/conversations/nope/messages/{answer}/feedback"),
        ),
    ] {
        let (s, body) = put(token, &path, json!({"rating": "up"})).await;
        assert_eq!(s, 404, "{path}: {body}");
    }
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&bob), None).await.0,
        404
    );
    // a key without the chat scope may not rate
    let (s, key) = api
        .post(
            "/api/keys",
            Some(&ann),
            json!({"name": "k", "scopes": ["search"]}),
        )
        .await;
    assert_eq!(s, 201, "{key}");
    let (s, body) = put(key["key"].as_str().unwrap(), &path, json!({"rating": "up"})).await;
    assert_eq!(s, 403, "{body}");

    // admins read the tally per collection and model; readers may not
    assert_eq!(api.get("/api/admin/feedback", Some(&ann)).await.0, 403);
    let (s, tally) = api.get("/api/admin/feedback", Some(&admin)).await;
    assert_eq!(s, 200, "{tally}");
    assert_eq!(
        tally["ratings"],
        json!([{"collection": "rodeo", "model": "extractive", "up": 1, "down": 0, "comments": 0}])
    );
    // a question rated down too is left out of the benchmark
    let (c2, a2) = asked(&api, &bob, "Who judges the roughstock events?").await;
    let (s, _) = put(
        &bob,
        &format!("/api/conversations/{c2}/messages/{a2}/feedback"),
        json!({"rating": "down"}),
    )
    .await;
    assert_eq!(s, 200);
    drop(server);

    // the well-rated answer as a BEIR dataset, measured (and gated) by `eval beir`
    let out = tempfile::tempdir().unwrap();
    let set = out.path().join("feedback");
    let said = l.expect(0, &["eval", "feedback", set.to_str().unwrap()]);
    assert!(said.contains("1 questions judged from 2 ratings"), "{said}");
    let queries = std::fs::read_to_string(set.join("queries.jsonl")).unwrap();
    assert_eq!(
        queries.trim(),
        json!({"_id": "fb1", "text": "How long is a heel rope?"}).to_string()
    );
    let qrels = std::fs::read_to_string(set.join("qrels/test.tsv")).unwrap();
    let judged: Vec<&str> = qrels.lines().skip(1).collect();
    assert!(
        !judged.is_empty() && judged.iter().all(|l| l.starts_with("fb1\t")),
        "{qrels}"
    );
    let corpus = std::fs::read_to_string(set.join("corpus.jsonl")).unwrap();
    assert!(
        corpus.contains("heel rope") || corpus.contains("Heel ropes"),
        "{corpus}"
    );
    let report = out.path().join("report.json");
    l.expect(
        0,
        &[
            "eval",
            "beir",
            set.to_str().unwrap(),
            "--modes",
            "bm25",
            "--json",
            report.to_str().unwrap(),
        ],
    );
    l.expect(
        0,
        &[
            "eval",
            "beir",
            set.to_str().unwrap(),
            "--modes",
            "bm25",
            "--baseline",
            report.to_str().unwrap(),
        ],
    );
    // refused: a folder already holding files, a collection name that cannot be
    let again = l.stderr_of(2, &["eval", "feedback", set.to_str().unwrap()]);
    assert!(again.contains("not empty"), "{again}");
    let bad = l.stderr_of(2, &["eval", "feedback", "--collections", "Bad Name", "x"]);
    assert!(bad.contains("collection"), "{bad}");
}
