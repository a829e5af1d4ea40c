//! Who may call what: every documented REST and `/v1` route, and every MCP tool and resource
//! method at `/mcp`, × every kind of caller → the expected answer, in one table each. A route in
//! /openapi.json or a tool in `tools/list` without a row (or a reason it is tested elsewhere)
//! fails the test.

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
/// Allowed, though maybe not now: any success, or 409 / 429 (a sync of the source runs, or
/// began within `sources.min_interval_secs`).
const BUSY: u16 = 1;

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
        api.make_curator(&admin, &format!("{who}@example.com"), collection)
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
    let events = crate::chat::parse_sse(&text);
    let conversation = crate::chat::one(&events, "meta")["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = crate::chat::one(&events, "done")["message_id"]
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
    let rating = format!("{conv}/messages/{answer}/feedback");
    let member = format!("/api/collections/rodeo/members/{reader_id}");
    let user_admin = format!("/api/admin/users/{user_id}");
    let upload = "/api/collections/secret/documents?filename=note.md";
    let new_source =
        json!({"kind": "urls", "targets": ["https://example.org/rules"], "schedule": "0 3 * * *"});
    let (s, source) = api
        .post(
            "/api/collections/secret/sources",
            Some(&admin),
            new_source.clone(),
        )
        .await;
    assert_eq!(s, 201, "{source}");
    let source = format!(
        "/api/collections/secret/sources/{}",
        source["id"].as_str().unwrap()
    );
    // route (method, path as documented), the request to send, expectations by CALLERS order
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        //                                                                                    none user othr rdr  cEls cur  adm  dis  key
        ("GET", "/api/auth/me", Method::GET, "/api/auth/me".into(), None,                     [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        ("GET", "/api/usage", Method::GET, "/api/usage".into(), None,                         [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        // invoices carry Stripe's hosted links: a session's, or a key's with the billing scope
        ("GET", "/api/billing", Method::GET, "/api/billing".into(), None,                     [401, OK,  OK,  OK,  OK,  OK,  OK,  401, 403]),
        // this server sells no plans; a key never buys
        ("POST", "/api/billing/checkout", Method::POST, "/api/billing/checkout".into(), Some(json!({"plan": "pro"})), [401, 404, 404, 404, 404, 404, 404, 401, 403]),
        ("POST", "/api/billing/portal", Method::POST, "/api/billing/portal".into(), Some(json!({})), [401, 404, 404, 404, 404, 404, 404, 401, 403]),
        ("GET", "/api/admin/analytics", Method::GET, "/api/admin/analytics".into(), None,     [401, 403, 403, 403, 403, 403, OK,  401, 403]),
        ("GET", "/api/keys", Method::GET, "/api/keys".into(), None,                           [401, OK,  OK,  OK,  OK,  OK,  OK,  401, 403]),
        ("POST", "/api/keys", Method::POST, "/api/keys".into(), Some(json!({"name": "x"})),   [401, OK,  OK,  OK,  OK,  OK,  OK,  401, 403]),
        ("GET", "/api/sessions", Method::GET, "/api/sessions".into(), None,                   [401, OK,  OK,  OK,  OK,  OK,  OK,  401, 403]),
        ("GET", "/api/auth/identities", Method::GET, "/api/auth/identities".into(), None,     [401, OK,  OK,  OK,  OK,  OK,  OK,  401, 403]),
        ("DELETE", "/api/auth/identities/{id}", Method::DELETE, "/api/auth/identities/nope".into(), None,
                                                                                              [401, 404, 404, 404, 404, 404, 404, 401, 403]),
        ("POST", "/api/auth/password", Method::POST, "/api/auth/password".into(), Some(json!({"current_password": "not it", "new_password": "whatever else 123"})),
                                                                                              [401, 400, 400, 400, 400, 400, 400, 401, 403]),
        // every signed-up caller here proved their address: nothing to resend
        ("POST", "/api/auth/verify/resend", Method::POST, "/api/auth/verify/resend".into(), None,
                                                                                              [401, 409, 409, 409, 409, 409, 409, 401, 409]),
        ("POST", "/api/auth/email", Method::POST, "/api/auth/email".into(), Some(json!({"new_email": "new@example.com", "password": "not it"})),
                                                                                              [401, 400, 400, 400, 400, 400, 400, 401, 403]),
        ("GET", "/api/collections", Method::GET, "/api/collections".into(), None,             [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        ("GET", "/api/search", Method::GET, "/api/search?q=rope&collection=secret".into(), None,
                                                                                              [401, 404, 404, OK,  OK,  404, OK,  401, 404]),
        ("GET", "/api/search", Method::GET, "/api/search?q=rope&collection=rodeo".into(), None,
                                                                                              [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        ("GET", "/api/collections/{name}/documents", Method::GET, "/api/collections/secret/documents".into(), None,
                                                                                              [401, 404, 404, OK,  OK,  404, OK,  401, 404]),
        ("POST", "/api/collections/{name}/documents", Method::POST, upload.into(), None,      [401, 404, 404, 403, OK,  404, OK,  401, 404]),
        ("GET", "/api/collections/{name}/uploads", Method::GET, "/api/collections/secret/uploads".into(), None,
                                                                                              [401, 404, 404, 403, OK,  404, OK,  401, 404]),
        ("GET", "/api/collections/{name}/uploads/{id}", Method::GET, "/api/collections/secret/uploads/nope".into(), None,
                                                                                              [401, 404, 404, 403, 404, 404, 404, 401, 404]),
        ("DELETE", "/api/collections/{name}/uploads/{id}", Method::DELETE, "/api/collections/secret/uploads/nope".into(), None,
                                                                                              [401, 404, 404, 403, 404, 404, 404, 401, 404]),
        ("GET", "/api/collections/{name}/sources", Method::GET, "/api/collections/secret/sources".into(), None,
                                                                                              [401, 404, 404, 403, OK,  404, OK,  401, 404]),
        ("POST", "/api/collections/{name}/sources", Method::POST, "/api/collections/secret/sources".into(), Some(new_source.clone()),
                                                                                              [401, 404, 404, 403, OK,  404, OK,  401, 404]),
        ("GET", "/api/collections/{name}/sources/{id}", Method::GET, source.clone(), None,   [401, 404, 404, 403, OK,  404, OK,  401, 404]),
        ("PATCH", "/api/collections/{name}/sources/{id}", Method::PATCH, source.clone(), Some(json!({"schedule": "0 4 * * *"})),
                                                                                              [401, 404, 404, 403, OK,  404, OK,  401, 404]),
        // allowed: started, or refused for now (a sync runs, or began too recently)
        ("POST", "/api/collections/{name}/sources/{id}/sync", Method::POST, format!("{source}/sync"), None,
                                                                                              [401, 404, 404, 403, BUSY, 404, BUSY, 401, 404]),
        ("PATCH", "/api/collections/{name}", Method::PATCH, "/api/collections/secret".into(), Some(json!({"instructions": ""})),
                                                                                              [401, 404, 404, 403, OK,  404, OK,  401, 404]),
        ("PATCH", "/api/collections/{name}", Method::PATCH, "/api/collections/rodeo".into(), Some(json!({"instructions": ""})),
                                                                                              [401, 403, 403, 403, 403, OK,  OK,  401, 403]),
        ("PUT", "/api/collections/{name}/members/{user_id}", Method::PUT, member.clone(), Some(json!({"role": "reader"})),
                                                                                              [401, 403, 403, 403, 403, OK,  OK,  401, 403]),
        ("GET", "/api/admin/users", Method::GET, "/api/admin/users".into(), None,             [401, 403, 403, 403, 403, 403, OK,  401, 403]),
        ("GET", "/api/account/exports", Method::GET, "/api/account/exports".into(), None,     [401, OK,  OK,  OK,  OK,  OK,  OK,  401, 403]),
        ("POST", "/api/account/exports", Method::POST, "/api/account/exports".into(), None,   [401, OK,  OK,  OK,  OK,  OK,  OK,  401, 403]),
        ("GET", "/api/account/exports/{id}", Method::GET, "/api/account/exports/nope".into(), None,
                                                                                              [401, 404, 404, 404, 404, 404, 404, 401, 403]),
        ("DELETE", "/api/account", Method::DELETE, "/api/account".into(), Some(json!({"password": "not it"})),
                                                                                              [401, 400, 400, 400, 400, 400, 400, 401, 403]),
        ("POST", "/api/admin/users/{id}/erase", Method::POST, "/api/admin/users/no-such-user/erase".into(), None,
                                                                                              [401, 403, 403, 403, 403, 403, 404, 401, 403]),
        ("GET", "/api/admin/audit", Method::GET, "/api/admin/audit?limit=5".into(), None,   [401, 403, 403, 403, 403, 403, OK,  401, 403]),
        ("GET", "/api/admin/status", Method::GET, "/api/admin/status".into(), None,           [401, 403, 403, 403, 403, 403, OK,  401, 403]),
        ("GET", "/api/admin/jobs", Method::GET, "/api/admin/jobs?limit=5".into(), None,       [401, 403, 403, 403, 403, 403, OK,  401, 403]),
        ("POST", "/api/admin/users/{id}/password-reset", Method::POST, format!("{user_admin}/password-reset"), None,
                                                                                              [401, 403, 403, 403, 403, 403, OK,  401, 403]),
        ("PATCH", "/api/admin/users/{id}", Method::PATCH, user_admin.clone(), Some(json!({"plan": "free"})),
                                                                                              [401, 403, 403, 403, 403, 403, OK,  401, 403]),
        ("GET", "/api/conversations", Method::GET, "/api/conversations".into(), None,         [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        ("GET", "/api/conversations/search", Method::GET, "/api/conversations/search?q=rope".into(), None,
                                                                                              [401, OK,  OK,  OK,  OK,  OK,  OK,  401, OK]),
        ("GET", "/api/conversations/{id}", Method::GET, conv.clone(), None,                   [401, OK,  404, 404, 404, 404, 404, 401, OK]),
        ("PATCH", "/api/conversations/{id}", Method::PATCH, conv.clone(), Some(json!({"title": "t"})),
                                                                                              [401, OK,  404, 404, 404, 404, 404, 401, OK]),
        ("GET", "/api/conversations/{id}/export", Method::GET, format!("{conv}/export?format=md"), None,
                                                                                              [401, OK,  404, 404, 404, 404, 404, 401, OK]),
        // the answer's own reader rates it (a key of theirs with the chat scope too)
        ("PUT", "/api/conversations/{id}/messages/{message_id}/feedback", Method::PUT, rating.clone(), Some(json!({"rating": "up"})),
                                                                                              [401, OK,  404, 404, 404, 404, 404, 401, OK]),
        ("DELETE", "/api/conversations/{id}/messages/{message_id}/feedback", Method::DELETE, rating.clone(), None,
                                                                                              [401, OK,  404, 404, 404, 404, 404, 401, 404]),
        ("GET", "/api/admin/feedback", Method::GET, "/api/admin/feedback".into(), None,       [401, 403, 403, 403, 403, 403, OK,  401, 403]),
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
            let matches = match *want {
                OK => (200..300).contains(&got),
                BUSY => (200..300).contains(&got) || got == 409 || got == 429,
                _ => got == *want,
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
        "/api/auth/signup",
        "/api/auth/signin",
        "/api/auth/refresh",
        "/api/auth/password-reset",
        "/api/auth/password-reset/confirm",
        "/api/auth/providers",
        "/api/auth/verify",
        "/api/auth/email/confirm",
        // Stripe signs it instead
        "/api/billing/webhook",
    ];
    let covered: Vec<(String, String)> = table
        .iter()
        .map(|(m, p, ..)| (m.to_string(), p.to_string()))
        .collect();
    // routes whose rows would change what the others see (sign-out, deletions) or that stream
    let elsewhere = [
        ("POST", "/api/auth/signout"),
        ("DELETE", "/api/keys/{id}"),
        ("DELETE", "/api/sessions"),
        ("DELETE", "/api/sessions/{id}"),
        ("DELETE", "/api/conversations/{id}"),
        ("DELETE", "/api/collections/{name}/members/{user_id}"),
        ("DELETE", "/api/collections/{name}/documents/{id}"),
        // tested in sources.rs (a curator removes; readers and other paths cannot)
        ("DELETE", "/api/collections/{name}/sources/{id}"),
        ("POST", "/api/chat"),
        ("POST", "/v1/chat/completions"),
    ];
    let (_, doc) = api.get("/openapi.json", None).await;
    let mut missing = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            // the document says which routes need credentials: exactly those not open
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured == open.contains(&path.as_str()) {
                missing.push(format!("{method} {path}: security {secured}"));
            }
            if open.contains(&path.as_str()) {
                continue;
            }
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

    // MCP at /mcp: the same callers, the private collection's document, passage and resource
    let (_, docs) = api
        .get("/api/collections/secret/documents", Some(&admin))
        .await;
    let doc = docs["documents"][0]["id"].as_str().unwrap().to_owned();
    let (_, found) = api
        .get("/api/search?q=Thunderclap&collection=secret", Some(&admin))
        .await;
    let chunk = found["hits"][0]["chunk_id"].as_str().unwrap().to_owned();
    let tool = |name: &str, args: Value| json!({"name": name, "arguments": args});
    let secret_uri = json!({"uri": format!("lariat://documents/{doc}")});
    let nf = "not_found";
    let rnf = "rpc:-32002";
    let ok = "ok";
    // what each caller sees of the private collection: members read it, to the others it is missing
    let private =
        |missing: &'static str| ["401", missing, missing, ok, ok, missing, ok, "401", missing];
    let everyone = ["401", ok, ok, ok, ok, ok, ok, "401", ok];
    #[rustfmt::skip]
    let mcp_table: Vec<(&str, Value, [&str; 9])> = vec![
        ("tools/call", tool("search", json!({"query": "rope", "collection": "secret"})), private(nf)),
        ("tools/call", tool("search", json!({"query": "rope", "collection": "rodeo"})), everyone),
        ("tools/call", tool("ask", json!({"question": "Who retires?", "collection": "secret"})), private(nf)),
        ("tools/call", tool("list_collections", json!({})), everyone),
        ("tools/call", tool("get_document", json!({"id": doc})), private(nf)),
        ("tools/call", tool("get_passage", json!({"id": chunk})), private(nf)),
        // a conversation is its owner's alone
        ("tools/call", tool("export_conversation", json!({"conversation_id": conversation, "format": "md"})),
                                                   ["401", ok, nf, nf, nf, nf, nf, "401", ok]),
        ("resources/list", json!({}), everyone),
        ("resources/read", secret_uri, private(rnf)),
    ];
    let mut sessions = BTreeMap::new();
    for who in CALLERS {
        sessions.insert(who, Mcp::open(&api, tokens[who].as_deref()).await);
    }
    for (method, params, expected) in &mcp_table {
        for (who, want) in CALLERS.iter().zip(expected) {
            let got = match &sessions[who] {
                Err(status) => status.to_string(),
                Ok(session) => session.outcome(method, params.clone()).await,
            };
            if got != *want {
                wrong.push(format!(
                    "MCP {method} {params} as {who}: {got}, expected {want}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // every tool the server lists has a row
    let listed = sessions["admin"]
        .as_ref()
        .unwrap()
        .call("tools/list", json!({}))
        .await;
    for t in listed["result"]["tools"].as_array().unwrap() {
        let name = &t["name"];
        assert!(
            mcp_table.iter().any(|(_, p, _)| p["name"] == *name),
            "MCP tool {name} has no row in the table"
        );
    }
}

/// A session at `/mcp` as one caller, speaking JSON-RPC over Streamable HTTP.
struct Mcp {
    api: Api,
    token: String,
    session: String,
}

impl Mcp {
    /// Initializes a session, or the HTTP status the server refused it with.
    async fn open(api: &Api, token: Option<&str>) -> Result<Self, u16> {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "authz", "version": "1"}}});
        let mut req = api
            .client
            .post(format!("{}/mcp", api.base))
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        if resp.status() != 200 {
            return Err(resp.status().as_u16());
        }
        let session = resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let mcp = Self {
            api: api.clone(),
            token: token.unwrap().to_owned(),
            session,
        };
        let status = mcp
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
            .status();
        assert_eq!(status, 202);
        Ok(mcp)
    }

    async fn post(&self, message: Value) -> reqwest::Response {
        self.api
            .client
            .post(format!("{}/mcp", self.api.base))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", "2025-06-18")
            .bearer_auth(&self.token)
            .json(&message)
            .send()
            .await
            .unwrap()
    }

    /// The JSON-RPC response to one request.
    async fn call(&self, method: &str, params: Value) -> Value {
        let resp = self
            .post(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .await;
        let text = resp.text().await.unwrap();
        crate::chat::parse_sse(&text)
            .into_iter()
            .map(|(_, v)| v)
            .chain(serde_json::from_str(&text).ok())
            .find(|v| v["id"] == 1)
            .unwrap_or_else(|| panic!("no response to {method}: {text}"))
    }

    /// `ok`, a tool error's code, or `rpc:<code>` for a protocol error.
    async fn outcome(&self, method: &str, params: Value) -> String {
        let reply = self.call(method, params).await;
        if let Some(code) = reply["error"]["code"].as_i64() {
            return format!("rpc:{code}");
        }
        if reply["result"]["isError"] == true {
            let text = reply["result"]["content"][0]["text"].as_str().unwrap_or("");
            return text.split(':').next().unwrap_or(text).to_owned();
        }
        "ok".into()
    }
}
