//! Who may call what: every documented REST and `/v1` route × every kind of caller → the expected
//! answer, in one table. A route in /openapi.json without a row (or a reason it is tested
//! elsewhere) fails the test.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::ingest_private;
use crate::serve::{Api, Server, create_admin};
use crate::support::{Lariat, corpus_dir};

/// The callers, in the order of each row's expectations.
const CALLERS: [&str; 9] = [
    "none",
    "user",
    "other_user",
    "reader",
    "curator_elsewhere",
    "curator",
    "admin",
    "disabled",
    "api_key",
];

/// `OK` is any 2xx.
const OK: u16 = 200;

/// A row: the route as documented (method, path), the request sent (method, path with
/// values), its JSON body, and the answer expected for each of [`CALLERS`].
type Row = (
    &'static str,
    &'static str,
    Method,
    String,
    Option<Value>,
    [u16; 9],
);

#[tokio::test]
async fn every_route_answers_every_caller_as_the_table_says() {
    let l = Lariat::new().with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "10000");
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    ingest_private(&l);
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    let mut tokens: BTreeMap<&str, Option<String>> = BTreeMap::new();
    tokens.insert("none", None);
    tokens.insert("admin", Some(admin.clone()));
    for who in [
        "user",
        "other_user",
        "reader",
        "curator_elsewhere",
        "curator",
        "disabled",
    ] {
        tokens.insert(who, Some(api.user(&format!("{who}@example.com")).await));
    }
    let id = |who: &str| {
        let api = api.clone();
        let admin = admin.clone();
        let email = format!("{who}@example.com");
        async move { api.user_id(&admin, &email).await }
    };
    let (user_id, reader_id) = (id("user").await, id("reader").await);
    let set = |path: String, body: Value| {
        let api = api.clone();
        let admin = admin.clone();
        async move {
            let (s, b) = api.call(Method::PUT, &path, Some(&admin), Some(body)).await;
            assert!((200..300).contains(&s), "{path}: {b}");
        }
    };
    for (who, collection) in [("curator_elsewhere", "secret"), ("curator", "rodeo")] {
        let uid = id(who).await;
        let (s, _) = api
            .call(
                Method::PATCH,
                &format!("/api/admin/users/{uid}"),
                Some(&admin),
                Some(json!({"role": "curator"})),
            )
            .await;
        assert_eq!(s, 200);
        set(
            format!("/api/collections/{collection}/members/{uid}"),
            json!({"role": "curator"}),
        )
        .await;
    }
    set(
        format!("/api/collections/secret/members/{reader_id}"),
        json!({"role": "reader"}),
    )
    .await;
    // the user's own conversation and API key
    let user = tokens["user"].clone().unwrap();
    let resp = api
        .client
        .post(format!("{}/api/chat", api.base))
        .bearer_auth(&user)
        .json(&json!({"message": "How long is a heading rope?"}))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let conversation = crate::chat::parse_sse(&text)
        .into_iter()
        .find(|(e, _)| e == "meta")
        .unwrap()
        .1["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, key) = api
        .post("/api/keys", Some(&user), json!({"name": "k"}))
        .await;
    tokens.insert("api_key", Some(key["key"].as_str().unwrap().to_owned()));
    let disabled = id("disabled").await;
    let (s, _) = api
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{disabled}"),
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, 200);

    let conv = format!("/api/conversations/{conversation}");
    let member = format!("/api/collections/rodeo/members/{reader_id}");
    let user_admin = format!("/api/admin/users/{user_id}");
    let upload = "/api/collections/secret/documents?filename=note.md";
    // route (method, path as documented), the request to send, expectations by CALLERS order
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        //                                                                                    none user othr rdr  cEls cur  adm  dis  key
        ("GET", "/api/auth/me", Method::GET, "/api/auth/me".into(), None,                     [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        ("GET", "/api/usage", Method::GET, "/api/usage".into(), None,                         [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        ("GET", "/api/keys", Method::GET, "/api/keys".into(), None,                           [401, OK,  OK,  OK,  OK,  OK,  OK,  401, 403]),
        ("POST", "/api/keys", Method::POST, "/api/keys".into(), Some(json!({"name": "x"})),   [401, OK,  OK,  OK,  OK,  OK,  OK,  401, 403]),
        ("GET", "/api/collections", Method::GET, "/api/collections".into(), None,             [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        ("GET", "/api/search", Method::GET, "/api/search?q=rope&collection=secret".into(), None,
                                                                                              [401, 404, 404, OK,  OK,  404, OK,  401, 404]),
        ("GET", "/api/search", Method::GET, "/api/search?q=rope&collection=rodeo".into(), None,
                                                                                              [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        ("GET", "/api/collections/{name}/documents", Method::GET, "/api/collections/secret/documents".into(), None,
                                                                                              [401, 404, 404, OK,  OK,  404, OK,  401, 404]),
        ("POST", "/api/collections/{name}/documents", Method::POST, upload.into(), None,      [401, 404, 404, 403, OK,  404, OK,  401, 404]),
        ("PATCH", "/api/collections/{name}", Method::PATCH, "/api/collections/secret".into(), Some(json!({"instructions": ""})),
                                                                                              [401, 404, 404, 403, OK,  404, OK,  401, 404]),
        ("PATCH", "/api/collections/{name}", Method::PATCH, "/api/collections/rodeo".into(), Some(json!({"instructions": ""})),
                                                                                              [401, 403, 403, 403, 403, OK,  OK,  401, 403]),
        ("PUT", "/api/collections/{name}/members/{user_id}", Method::PUT, member.clone(), Some(json!({"role": "reader"})),
                                                                                              [401, 403, 403, 403, 403, OK,  OK,  401, 403]),
        ("GET", "/api/admin/users", Method::GET, "/api/admin/users".into(), None,             [401, 403, 403, 403, 403, 403, OK,  401, 403]),
        ("PATCH", "/api/admin/users/{id}", Method::PATCH, user_admin.clone(), Some(json!({"plan": "free"})),
                                                                                              [401, 403, 403, 403, 403, 403, OK,  401, 403]),
        ("GET", "/api/conversations", Method::GET, "/api/conversations".into(), None,         [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        ("GET", "/api/conversations/search", Method::GET, "/api/conversations/search?q=rope".into(), None,
                                                                                              [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        ("GET", "/api/conversations/{id}", Method::GET, conv.clone(), None,                   [401, OK,  404, 404, 404, 404, 404, 401, OK]),
        ("PATCH", "/api/conversations/{id}", Method::PATCH, conv.clone(), Some(json!({"title": "t"})),
                                                                                              [401, OK,  404, 404, 404, 404, 404, 401, OK]),
        ("GET", "/v1/models", Method::GET, "/v1/models".into(), None,                         [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
    ];
    let body_of = |path: &str, body: &Option<Value>| -> Option<reqwest::Body> {
        if path.contains("filename=") {
            Some("# Note\n\nA note about bucking bulls.\n".into())
        } else {
            body.as_ref().map(|b| b.to_string().into())
        }
    };
    let mut wrong = Vec::new();
    for (_, _, method, path, body, expected) in &table {
        for (who, want) in CALLERS.iter().zip(expected) {
            let mut req = api
                .client
                .request(method.clone(), format!("{}{path}", api.base));
            if let Some(t) = &tokens[who] {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body_of(path, body) {
                req = req.header("content-type", "application/json").body(b);
            }
            let got = req.send().await.unwrap().status().as_u16();
            let matches = if *want == OK {
                (200..300).contains(&got)
            } else {
                got == *want
            };
            if !matches {
                wrong.push(format!("{method} {path} as {who}: {got}, expected {want}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // every documented route that needs credentials has a row (the others answer everyone)
    let open = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/api/auth/signup",
        "/api/auth/signin",
        "/api/auth/refresh",
    ];
    let covered: Vec<(String, String)> = table
        .iter()
        .map(|(m, p, ..)| (m.to_string(), p.to_string()))
        .collect();
    // routes whose rows would change what the others see (sign-out, deletions) or that stream
    let elsewhere = [
        ("POST", "/api/auth/signout"),
        ("DELETE", "/api/keys/{id}"),
        ("DELETE", "/api/conversations/{id}"),
        ("DELETE", "/api/collections/{name}/members/{user_id}"),
        ("DELETE", "/api/collections/{name}/documents/{id}"),
        ("POST", "/api/chat"),
        ("POST", "/v1/chat/completions"),
    ];
    let (_, doc) = api.get("/openapi.json", None).await;
    let mut missing = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if open.contains(&path.as_str()) {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            let m = method.to_ascii_uppercase();
            let known = covered.contains(&(m.clone(), path.clone()))
                || elsewhere.contains(&(m.as_str(), path.as_str()));
            if !known {
                missing.push(format!("{m} {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without a row in the table: {missing:?}"
    );
}
