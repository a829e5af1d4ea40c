//! Answering over HTTP: streamed events, citations and their check, conversations, providers
//! (retries, fallback, timeouts, cancellation) against a local fake, quotas, and the
//! OpenAI-compatible endpoint driven by the official `openai` Python SDK.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::fake_llm::{self, FakeLlm, write_providers};
use crate::serve::{Api, Server};
use crate::support::{Lariat, corpus_dir};

/// Parses a complete `text/event-stream` body into (event, data) pairs.
pub fn parse_sse(text: &str) -> Vec<(String, Value)> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|block| {
            let mut event = "message".to_owned();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            (!data.is_empty()).then(|| {
                let value = serde_json::from_str(&data).unwrap_or(Value::String(data));
                (event, value)
            })
        })
        .collect()
}

/// Posts a chat message; returns the HTTP status and the events (or the error body).
pub async fn chat(api: &Api, token: &str, body: Value) -> (u16, Vec<(String, Value)>) {
    let resp = api
        .client
        .post(format!("{}/api/chat", api.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    if status != 200 {
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        return (status, vec![("http_error".into(), v)]);
    }
    (status, parse_sse(&text))
}

fn named<'a>(events: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|(e, _)| e == name)
        .map(|(_, v)| v)
        .collect()
}

pub fn text_of(events: &[(String, Value)]) -> String {
    named(events, "delta")
        .iter()
        .map(|d| d["text"].as_str().unwrap())
        .collect()
}

pub fn one<'a>(events: &'a [(String, Value)], name: &str) -> &'a Value {
    let found = named(events, name);
    assert_eq!(found.len(), 1, "{name} in {events:?}");
    found[0]
}

/// The conversation an answer's events belong to, as the API returns it.
pub async fn conversation_of(api: &Api, token: &str, events: &[(String, Value)]) -> Value {
    let id = one(events, "meta")["conversation_id"].as_str().unwrap();
    api.get(&format!("/api/conversations/{id}"), Some(token))
        .await
        .1
}

fn ingest_corpus(l: &Lariat) {
    let corpus = corpus_dir();
    l.expect(0, &["ingest", corpus.to_str().unwrap(), "-c", "rodeo"]);
}

/// The sample corpus served with one fake model (`behaviour`, see `fake_llm`) as its only
/// provider, and a signed-in user, Ann. Bind every part: the fake, the data and the server live as
/// long as their bindings.
pub async fn one_model(provider: &str, behaviour: &str) -> (FakeLlm, Lariat, Server, Api, String) {
    let fake = fake_llm::start().await;
    let l = Lariat::new();
    ingest_corpus(&l);
    write_providers(&l, &fake, &[(provider, "openai", behaviour)], "");
    let server = Server::start(&l);
    let api = Api::new(&server);
    let ann = api.user("ann@example.com").await;
    (fake, l, server, api, ann)
}

async fn extractive_suite(l: Lariat) {
    // this suite makes more requests than the free plan allows a minute
    let l = l.with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000");
    ingest_corpus(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let ann = api.user("ann@example.com").await;
    let bob = api.user("bob@example.com").await;

    let (s, events) = chat(
        &api,
        &ann,
        json!({"message": "How long is a heading rope?"}),
    )
    .await;
    assert_eq!(s, 200, "{events:?}");
    let order: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(order[0], "meta");
    assert_eq!(order[1], "citations");
    assert_eq!(*order.last().unwrap(), "done", "{order:?}");
    assert!(order[2..order.len() - 1].iter().all(|e| *e == "delta"));
    let meta = one(&events, "meta");
    assert_eq!(meta["extractive"], true);
    assert_eq!(meta["condensed_by"], "none");
    let conversation = meta["conversation_id"].as_str().unwrap().to_owned();
    let citations = one(&events, "citations")["citations"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!citations.is_empty());
    for (i, c) in citations.iter().enumerate() {
        assert_eq!(c["n"], i + 1);
        for field in [
            "title", "source", "location", "snippet", "chunk_id", "score",
        ] {
            assert!(!c[field].is_null(), "{field} in {c}");
        }
    }
    let answer = text_of(&events);
    let done = one(&events, "done");
    assert_eq!(done["extractive"], true);
    let cited = done["citation_check"]["cited"].as_array().unwrap();
    assert!(!cited.is_empty(), "{answer}");
    assert!(
        cited
            .iter()
            .all(|n| n.as_u64().unwrap() as usize <= citations.len())
    );
    assert!(
        answer.contains("35"),
        "the rope length is in the answer: {answer}"
    );

    // a follow-up leans on the conversation: condensed by rule, and kept in it
    let (s, events) = chat(
        &api,
        &ann,
        json!({"message": "And for heeling?", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(s, 200);
    let meta = one(&events, "meta");
    assert_eq!(meta["condensed_by"], "rule");
    assert!(
        meta["standalone_query"]
            .as_str()
            .unwrap()
            .contains("heading rope")
    );
    assert_eq!(meta["conversation_id"], json!(conversation));

    let (s, list) = api.get("/api/conversations", Some(&ann)).await;
    assert_eq!(s, 200);
    assert_eq!(
        list["conversations"][0]["title"],
        "How long is a heading rope?"
    );
    let path = format!("/api/conversations/{conversation}");
    let (s, full) = api.get(&path, Some(&ann)).await;
    assert_eq!(s, 200);
    let messages = full["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(messages[1]["model"], "extractive");
    assert!(!messages[1]["citations"].as_array().unwrap().is_empty());
    assert_eq!(messages[2]["standalone_query"], meta["standalone_query"]);
    assert!(messages[1]["latency_ms"].as_i64().unwrap() >= 0);

    let (_, found) = api
        .get("/api/conversations/search?q=HEELING", Some(&ann))
        .await;
    assert_eq!(
        found["conversations"].as_array().unwrap().len(),
        1,
        "{found}"
    );
    let (_, found) = api
        .get("/api/conversations/search?q=zebra%25", Some(&ann))
        .await;
    assert_eq!(found["conversations"], json!([]));
    assert_eq!(
        api.get("/api/conversations/search", Some(&ann)).await.0,
        400
    );
    let (s, renamed) = api
        .call(
            Method::PATCH,
            &path,
            Some(&ann),
            Some(json!({"title": "Ropes"})),
        )
        .await;
    assert_eq!((s, renamed["title"].clone()), (200, json!("Ropes")));

    // another user's conversation does not exist for them
    assert_eq!(api.get(&path, Some(&bob)).await.0, 404);
    assert_eq!(
        api.call(
            Method::PATCH,
            &path,
            Some(&bob),
            Some(json!({"title": "x"}))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&bob), None).await.0,
        404
    );
    let (s, e) = chat(
        &api,
        &bob,
        json!({"message": "more?", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(s, 404, "{e:?}");
    let (_, list) = api.get("/api/conversations", Some(&bob)).await;
    assert_eq!(list["conversations"], json!([]));

    // bad input
    for (body, status) in [
        (json!({"message": "  "}), 400),
        (json!({"message": "x".repeat(9000)}), 400),
        (json!({"message": "rope", "collections": ["nope"]}), 404),
        (json!({"message": "rope", "collections": ["Bad Name"]}), 400),
        (json!({"message": "rope", "model": "gpt-9"}), 400),
        (json!({"text": "rope"}), 400),
    ] {
        let (s, e) = chat(&api, &ann, body.clone()).await;
        assert_eq!(s, status, "{body}: {e:?}");
    }
    assert_eq!(
        api.get("/api/conversations?limit=0", Some(&ann)).await.0,
        400
    );
    assert_eq!(
        api.get("/api/conversations?limit=abc", Some(&ann)).await.0,
        400
    );
    // offsets the database cannot take are refused, not a 500
    for offset in ["18446744073709551615", "9223372036854775808", "1000001"] {
        let path = format!("/api/conversations?offset={offset}");
        assert_eq!(api.get(&path, Some(&ann)).await.0, 400, "{offset}");
    }
    let (s, far) = api
        .get("/api/conversations?offset=1000000", Some(&ann))
        .await;
    assert_eq!((s, far["conversations"].clone()), (200, json!([])));
    let resp = api
        .client
        .post(format!("{}/api/chat", api.base))
        .json(&json!({"message": "rope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    assert_eq!(
        api.call(Method::DELETE, &path, Some(&ann), None).await.0,
        204
    );
    assert_eq!(api.get(&path, Some(&ann)).await.0, 404);
    let (_, usage) = api.get("/api/usage", Some(&ann)).await;
    assert_eq!(usage["messages"], 2, "{usage}");
}

#[tokio::test]
async fn extractive_answers_and_conversations_on_sqlite() {
    extractive_suite(Lariat::new()).await;
}

#[tokio::test]
async fn extractive_answers_and_conversations_on_postgres() {
    let db = lariat_tests::PgDatabase::create().await;
    extractive_suite(Lariat::new().with_env("LARIAT_DATABASE_URL", &db.url)).await;
    db.drop_db().await;
}

#[tokio::test]
async fn model_answers_stream_with_checked_citations() {
    let (fake, _lariat, _server, api, ann) = one_model("main", "good").await;

    let (s, events) = chat(
        &api,
        &ann,
        json!({"message": "How long is a heading rope?"}),
    )
    .await;
    assert_eq!(s, 200, "{events:?}");
    let answer = text_of(&events);
    assert_eq!(
        answer,
        "A heading rope is usually about 35 feet long [1]. Some say ninety-nine feet ."
    );
    assert!(named(&events, "delta").len() >= 3, "streamed in pieces");
    let done = one(&events, "done");
    assert_eq!(done["extractive"], false);
    assert_eq!(done["provider"], "main");
    assert_eq!(done["model"], "good");
    assert_eq!(done["citation_check"]["removed_markers"], json!(["[9]"]));
    assert_eq!(done["citation_check"]["cited"], json!([1]));
    assert_eq!(done["usage"]["prompt_tokens"], 120);
    assert_eq!(done["usage"]["completion_tokens"], 30);
    let cost = done["cost_usd"].as_f64().unwrap();
    assert!((cost - (120.0 + 60.0) / 1e6).abs() < 1e-12, "{cost}");
    assert!(done["timings"]["first_token_ms"].as_u64().is_some());

    let request = fake.state.requests.lock().unwrap().last().cloned().unwrap();
    let system = request["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("<source id=\"1\""), "{system}");
    assert!(system.contains("data, not instructions"));
    assert_eq!(request["stream"], true);

    // the follow-up is condensed by the model, and the history reaches the prompt
    let conversation = one(&events, "meta")["conversation_id"].clone();
    let (_, events) = chat(
        &api,
        &ann,
        json!({"message": "And for heeling?", "conversation_id": conversation}),
    )
    .await;
    let meta = one(&events, "meta");
    assert_eq!(meta["condensed_by"], "model");
    assert_eq!(meta["standalone_query"], "How long is a heeling rope?");
    let request = fake.state.requests.lock().unwrap().last().cloned().unwrap();
    let turns = request["messages"].as_array().unwrap();
    assert_eq!(
        turns.len(),
        4,
        "system, question, answer, follow-up: {request}"
    );
    assert_eq!(turns[1]["content"], "How long is a heading rope?");
    assert_eq!(turns[3]["content"], "And for heeling?");

    // the check's verdict is kept with each answer, as the done event gave it
    let (_, full) = api
        .get(
            &format!("/api/conversations/{}", conversation.as_str().unwrap()),
            Some(&ann),
        )
        .await;
    let answers: Vec<&Value> = full["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .collect();
    let kept = answers[1]["unsupported"].as_array().unwrap();
    let checked = one(&events, "done")["citation_check"]["unsupported"].clone();
    let checked = checked.as_array().unwrap();
    assert_eq!(kept.len(), checked.len(), "{full}");
    // the heel passage cited as [1] does not hold the heading-rope sentence: the source that
    // does is cited instead, and the conversation keeps the corrected answer
    let done = one(&events, "done");
    let moved = done["citation_check"]["reassigned"].as_array().unwrap();
    assert!(
        moved.iter().any(|r| r["from"] == json!([1])
            && r["sentence"] == "A heading rope is usually about 35 feet long."),
        "{done}"
    );
    assert_eq!(answers[1]["content"], text_of(&events));
    for (k, c) in kept.iter().zip(checked) {
        assert_eq!((&k["sentence"], &k["cited"]), (&c["sentence"], &c["cited"]));
        let (k, c) = (
            k["support"].as_f64().unwrap(),
            c["support"].as_f64().unwrap(),
        );
        assert!((k - c).abs() < 1e-6, "{k} {c}");
    }

    // the condensing call's tokens count too: 150 for the first answer, 150 + 150 for the second
    assert_eq!(one(&events, "done")["usage"]["total_tokens"], 300);
    let (_, usage) = api.get("/api/usage", Some(&ann)).await;
    assert_eq!(usage["messages"], 2);
    assert_eq!(usage["tokens"], 450);
}

/// With no provider configured and a local model installed (the small one `make test-deps` sets
/// up), answers come from it in-process: streamed, counted by the model's own tokenizer, free.
#[tokio::test]
async fn the_installed_local_model_answers_when_no_provider_is_configured() {
    let l = Lariat::new()
        .with_env("LARIAT_LLM__LOCAL__AUTO", "true")
        .with_env("LARIAT_LLM__LOCAL__MODEL", "smollm2-135m")
        .with_env("LARIAT_LLM__LOCAL__CONTEXT_TOKENS", "2048")
        .with_env("LARIAT_LLM__LOCAL__MAX_OUTPUT_TOKENS", "48");
    ingest_corpus(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let ann = api.user("ann@example.com").await;
    let (s, events) = chat(&api, &ann, json!({"message": "How long is a heel rope?"})).await;
    assert_eq!(s, 200, "{events:?}");
    assert_eq!(one(&events, "meta")["extractive"], false);
    assert!(named(&events, "delta").len() > 1, "{events:?}");
    assert!(!text_of(&events).trim().is_empty());
    let done = one(&events, "done");
    assert_eq!(done["provider"], "local", "{done}");
    assert_eq!(done["model"], "smollm2-135m");
    let usage = &done["usage"];
    assert!(
        usage["prompt_tokens"].as_i64().unwrap() > 200,
        "the sources: {usage}"
    );
    assert!(
        usage["completion_tokens"].as_i64().unwrap() <= 48,
        "{usage}"
    );
    assert_eq!(done["cost_usd"], 0.0);
}

/// A request the provider refuses for its own content (400: too long for the context) fails that
/// answer only: it is not retried and never opens the provider's circuit for everyone else. A
/// question too long to search is refused before anything is stored.
#[tokio::test]
async fn request_errors_do_not_open_the_circuit_and_unsearchable_questions_are_not_kept() {
    let (fake, _lariat, _server, api, ann) = one_model("main", "toolong").await;
    let question = json!({"message": "What does a bullfighter do?", "collections": ["rodeo"]});
    for n in 1..=4 {
        let (s, events) = chat(&api, &ann, question.clone()).await;
        assert_eq!(s, 200);
        let error = one(&events, "error");
        assert_eq!(error["code"], "upstream_error");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("maximum context length"), "{message}");
        assert_eq!(
            fake.state.calls("toolong"),
            n,
            "one call each, no retry, never skipped"
        );
    }

    // 3,000 × "é" is 6,000 bytes: over the query limit, refused up front, nothing stored
    let (_, before) = api.get("/api/conversations", Some(&ann)).await;
    let (s, events) = chat(&api, &ann, json!({"message": "é".repeat(3000)})).await;
    assert_eq!(s, 400, "{events:?}");
    let (_, after) = api.get("/api/conversations", Some(&ann)).await;
    assert_eq!(before, after, "no conversation was made for it");
}

#[tokio::test]
async fn providers_retry_fall_back_time_out_and_cancel() {
    let fake = fake_llm::start().await;
    let l = Lariat::new();
    ingest_corpus(&l);
    write_providers(
        &l,
        &fake,
        &[
            ("first", "openai", "down"),
            ("second", "openai", "hang"),
            ("backup", "anthropic", "claude-good"),
            ("flaky", "openai", "flaky"),
            ("broken", "openai", "midfail"),
            ("slow", "openai", "slow"),
        ],
        "",
    );
    let server = Server::start(&l);
    let api = Api::new(&server);
    let ann = api.user("ann@example.com").await;
    let question = json!({"message": "What does a bullfighter do?", "collections": ["rodeo"]});

    // 500 (retried once), then no first token in time (retried once), then Anthropic answers
    let (s, events) = chat(&api, &ann, question.clone()).await;
    assert_eq!(s, 200);
    let done = one(&events, "done");
    assert_eq!(done["provider"], "backup", "{events:?}");
    assert_eq!(done["usage"]["prompt_tokens"], 200);
    assert_eq!(done["usage"]["completion_tokens"], 40);
    assert!(text_of(&events).contains("35 feet"));
    assert_eq!(fake.state.calls("down"), 2);
    assert_eq!(fake.state.calls("hang"), 2);

    // a second failure opens the first provider's circuit: the third request skips it
    chat(&api, &ann, question.clone()).await;
    assert_eq!(fake.state.calls("down"), 4);
    let (_, events) = chat(&api, &ann, question.clone()).await;
    assert_eq!(one(&events, "done")["provider"], "backup");
    assert_eq!(fake.state.calls("down"), 4, "the open circuit is skipped");

    // 429 then success on the preferred model
    let mut body = question.clone();
    body["model"] = json!("flaky");
    let (_, events) = chat(&api, &ann, body).await;
    assert_eq!(one(&events, "done")["provider"], "flaky");
    assert_eq!(fake.state.calls("flaky"), 2);

    // a stream that breaks after its first token ends with an error event
    let mut body = question.clone();
    body["model"] = json!("midfail");
    let (_, events) = chat(&api, &ann, body).await;
    let error = one(&events, "error");
    assert_eq!(error["code"], "upstream_error", "{events:?}");
    assert!(named(&events, "done").is_empty());
    assert!(!text_of(&events).is_empty(), "the first token was streamed");
    // …and what was said before the failure is kept, marked as failed
    let full = conversation_of(&api, &ann, &events).await;
    assert_eq!(full["messages"][1]["status"], "error", "{full}");
    assert_eq!(full["messages"][1]["content"], "A heading rope is ");

    // a client that hangs up cancels the upstream call
    let mut body = question.clone();
    body["model"] = json!("slow");
    let resp = api
        .client
        .post(format!("{}/api/chat", api.base))
        .bearer_auth(&ann)
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("word1") {
        seen.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    drop(stream);
    let mut cancelled = false;
    for _ in 0..50 {
        if fake.state.slow_dropped.load(Ordering::SeqCst) {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cancelled,
        "the upstream stream was not closed after the client left"
    );
    // the cancelled answer is kept, marked as such
    let (_, list) = api.get("/api/conversations", Some(&ann)).await;
    let latest = list["conversations"][0]["id"].as_str().unwrap();
    let (_, full) = api
        .get(&format!("/api/conversations/{latest}"), Some(&ann))
        .await;
    let mut status = full["messages"][1]["status"].clone();
    for _ in 0..20 {
        if status == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, full) = api
            .get(&format!("/api/conversations/{latest}"), Some(&ann))
            .await;
        status = full["messages"][1]["status"].clone();
    }
    assert_eq!(status, "cancelled");
}

#[tokio::test]
async fn quota_exhausted_is_refused_with_its_own_code() {
    let l = Lariat::new().with_env("LARIAT_PLANS__FREE__MONTHLY_MESSAGES", "1");
    ingest_corpus(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let ann = api.user("ann@example.com").await;
    let (s, _) = chat(
        &api,
        &ann,
        json!({"message": "How is barrel racing timed?"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, e) = chat(
        &api,
        &ann,
        json!({"message": "How is barrel racing timed?"}),
    )
    .await;
    assert_eq!(s, 402, "{e:?}");
    assert_eq!(e[0].1["error"]["code"], "quota_exceeded");
    let (_, usage) = api.get("/api/usage", Some(&ann)).await;
    assert_eq!(usage["remaining_messages"], 0);
}

#[tokio::test]
async fn openai_sdk_streams_from_the_compatible_endpoint() {
    let l = Lariat::new();
    ingest_corpus(&l);
    let dir = l.dir.path().join("secret");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("s.md"), "# Secret\n\nThe password is swordfish.\n").unwrap();
    l.expect(
        0,
        &[
            "ingest",
            dir.to_str().unwrap(),
            "-c",
            "secret",
            "--visibility",
            "private",
        ],
    );
    let server = Server::start(&l);
    let api = Api::new(&server);
    let ann = api.user("ann@example.com").await;
    let (_, key) = api
        .post("/api/keys", Some(&ann), json!({"name": "sdk"}))
        .await;
    let key = key["key"].as_str().unwrap().to_owned();

    // /v1 refuses without a key and hides collections the caller may not read
    let (s, _) = api.get("/v1/models", None).await;
    assert_eq!(s, 401);
    let (_, models) = api.get("/v1/models", Some(&key)).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["rodeo"]);
    let body = json!({"model": "secret", "messages": [{"role": "user", "content": "password?"}]});
    let (s, e) = api.post("/v1/chat/completions", Some(&key), body).await;
    assert_eq!(s, 404, "{e}");
    let body = json!({"model": "rodeo", "messages": [{"role": "assistant", "content": "hi"}]});
    assert_eq!(
        api.post("/v1/chat/completions", Some(&key), body).await.0,
        400
    );

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/openai_sdk.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .env("LARIAT_BASE", format!("{}/v1", server.base))
        .env("LARIAT_KEY", &key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openai SDK check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, usage) = api.get("/api/usage", Some(&ann)).await;
    assert_eq!(
        usage["messages"], 2,
        "both SDK calls count against the plan"
    );
}

#[tokio::test]
async fn identical_questions_are_served_from_the_cache_when_enabled() {
    let fake = fake_llm::start().await;
    let l = Lariat::new();
    ingest_corpus(&l);
    write_providers(
        &l,
        &fake,
        &[("main", "openai", "good")],
        "[chat]\ncache_enabled = true\ncache_ttl_secs = 600\n",
    );
    let server = Server::start(&l);
    let api = Api::new(&server);
    let ann = api.user("ann@example.com").await;
    let ask = json!({"message": "How long is a heading rope?"});
    let (_, first) = chat(&api, &ann, ask.clone()).await;
    assert_eq!(one(&first, "done")["cached"], false);
    let calls = fake.state.calls("good");
    let (_, second) = chat(
        &api,
        &ann,
        json!({"message": "  how long is a HEADING rope?"}),
    )
    .await;
    assert_eq!(one(&second, "meta")["cached"], true);
    assert_eq!(one(&second, "done")["cached"], true);
    assert_eq!(text_of(&second), text_of(&first));
    assert_eq!(
        one(&second, "citations")["citations"],
        one(&first, "citations")["citations"]
    );
    assert_eq!(
        fake.state.calls("good"),
        calls,
        "the provider was not asked again"
    );
    // a follow-up depends on its conversation: never cached
    let conversation = one(&second, "meta")["conversation_id"].clone();
    let (_, follow) = chat(
        &api,
        &ann,
        json!({"message": "How long is a heading rope?", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(one(&follow, "done")["cached"], false);
    assert!(fake.state.calls("good") > calls);
}

/// What an answer spent counts against the plan even when its conversation was deleted while it
/// streamed.
#[tokio::test]
async fn usage_counts_when_the_conversation_is_deleted_mid_answer() {
    let (_fake, _lariat, _server, api, ann) = one_model("slow", "slow").await;
    let resp = api
        .client
        .post(format!("{}/api/chat", api.base))
        .bearer_auth(&ann)
        .json(&json!({"message": "What does a bullfighter do?", "collections": ["rodeo"]}))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("word1") {
        seen.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    let events = parse_sse(&seen);
    let conversation = one(&events, "meta")["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/conversations/{conversation}");
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&ann), None).await.0,
        204
    );
    while let Some(chunk) = stream.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let done = one(&parse_sse(&seen), "done").clone();
    assert!(
        done["usage"]["total_tokens"].as_i64().unwrap() > 0,
        "{done}"
    );
    let (_, usage) = api.get("/api/usage", Some(&ann)).await;
    assert_eq!(usage["messages"], 1, "{usage}");
    assert_eq!(usage["tokens"], done["usage"]["total_tokens"], "{usage}");
    assert_eq!(api.get(&path, Some(&ann)).await.0, 404);
}
