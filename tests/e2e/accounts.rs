//! Accounts, tokens, API keys, roles and collection access over HTTP, on SQLite and PostgreSQL.

use reqwest::Method;
use serde_json::{Value, json};

use crate::serve::{Api, PASSWORD, Server, admin_command, admin_ok, create_admin};
use crate::support::{Lariat, corpus_dir};

/// Tampers with a JWT's payload, keeping its signature.
fn forged(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload = parts[1].clone().into_bytes();
    let last = payload.len() - 2;
    payload[last] = if payload[last] == b'A' { b'B' } else { b'A' };
    parts[1] = String::from_utf8(payload).unwrap();
    parts.join(".")
}

pub fn ingest_private(l: &Lariat) {
    let dir = l.dir.path().join("secret");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("plans.md"),
        "# Secret stock contractor plans\n\nThe bucking bull named Thunderclap retires in 2027 \
         after the autumn finals; only the committee knows.\n",
    )
    .unwrap();
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
}

async fn accounts_suite(l: Lariat) {
    let corpus = corpus_dir();
    l.expect(0, &["ingest", corpus.to_str().unwrap(), "-c", "rodeo"]);
    ingest_private(&l);
    create_admin(&l);
    // a bad admin command: weak password, bad email
    let out = admin_command(&l, &["create", "not-an-email"]);
    assert_eq!(out.status.code(), Some(2));
    let server = Server::start(&l);
    let api = Api::new(&server);

    // ---- sign-up and sign-in ----
    let (s, b) = api
        .post(
            "/api/auth/signup",
            None,
            json!({"email": " Ann@Example.com ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b, json!({"email": "ann@example.com"}));
    // a taken address answers exactly the same (its owner is mailed instead), and changes
    // nothing: the first password still signs in
    let (s, again) = api
        .post(
            "/api/auth/signup",
            None,
            json!({"email": "ANN@example.com", "password": "the squatter's password"}),
        )
        .await;
    assert_eq!((s, &again), (201, &b));
    let cases = [
        (
            json!({"email": "nope", "password": PASSWORD}),
            400,
            "invalid_input",
        ),
        (
            json!({"email": "bob@example.com", "password": "short"}),
            400,
            "invalid_input",
        ),
        (json!({"email": "bob@example.com"}), 400, "invalid_input"),
        (
            json!({"email": "bob@example.com", "password": PASSWORD, "role": "admin"}),
            400,
            "invalid_input",
        ),
    ];
    for (body, status, code) in cases {
        let (s, b) = api.post("/api/auth/signup", None, body.clone()).await;
        assert_eq!(s, status, "{body} -> {b}");
        assert_eq!(b["error"]["code"], code, "{b}");
    }
    let resp = api
        .client
        .post(format!("{}/api/auth/signup", api.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let (s, b) = api
        .post(
            "/api/auth/signin",
            None,
            json!({"email": "ann@example.com", "password": "wrong password!"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
    let (s, _) = api
        .post(
            "/api/auth/signin",
            None,
            json!({"email": "ghost@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 401);
    let (s, pair) = api
        .post(
            "/api/auth/signin",
            None,
            json!({"email": "ANN@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200, "{pair}");
    assert!(pair["expires_in"].as_u64().unwrap() > 0);
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let (s, me) = api.get("/api/auth/me", Some(&access)).await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["email"], "ann@example.com");

    // ---- forged and malformed credentials ----
    for bad in [
        forged(&access),
        "garbage".into(),
        format!("{access}x"),
        "lrt_000000000000".into(),
    ] {
        let (s, b) = api.get("/api/auth/me", Some(&bad)).await;
        assert_eq!(s, 401, "{bad}: {b}");
    }
    let resp = api
        .client
        .get(format!("{}/api/auth/me", api.base))
        .header("authorization", format!("Basic {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");

    // ---- refresh rotation and reuse detection ----
    let (s, pair2) = api
        .post("/api/auth/refresh", None, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(s, 200, "{pair2}");
    let access2 = pair2["access_token"].as_str().unwrap().to_owned();
    assert_ne!(pair2["refresh_token"], json!(refresh));
    assert_eq!(api.get("/api/auth/me", Some(&access2)).await.0, 200);
    // the used refresh token again: refused, and the whole session is revoked
    let (s, b) = api
        .post("/api/auth/refresh", None, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(api.get("/api/auth/me", Some(&access2)).await.0, 401);
    let (s, _) = api
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": pair2["refresh_token"]}),
        )
        .await;
    assert_eq!(
        s, 401,
        "the successor of a reused token dies with its session"
    );

    // ---- sign-out revokes at once ----
    let ann = api.user("ann@example.com").await;
    assert_eq!(api.get("/api/auth/me", Some(&ann)).await.0, 200);
    let (s, _) = api
        .call(Method::POST, "/api/auth/signout", Some(&ann), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(api.get("/api/auth/me", Some(&ann)).await.0, 401);

    // ---- API keys ----
    let ann = api.user("ann@example.com").await;
    let bob = api.user("bob@example.com").await;
    let (s, key) = api
        .post("/api/keys", Some(&ann), json!({"name": "laptop"}))
        .await;
    assert_eq!(s, 201, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    let (s, list) = api.get("/api/keys", Some(&ann)).await;
    assert_eq!(s, 200);
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    assert!(
        !list.to_string().contains(&secret),
        "a key is shown only once"
    );
    let (s, me) = api.get("/api/auth/me", Some(&secret)).await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["email"], "ann@example.com");
    assert_eq!(me["api_key_id"], key["id"]);
    let (_, list) = api.get("/api/keys", Some(&ann)).await;
    assert!(list["keys"][0]["last_used_at"].is_i64(), "{list}");
    assert_eq!(
        api.post("/api/keys", Some(&ann), json!({"name": " "}))
            .await
            .0,
        400
    );
    // another user neither sees nor deletes it
    let (_, bob_keys) = api.get("/api/keys", Some(&bob)).await;
    assert_eq!(bob_keys["keys"], json!([]));
    let path = format!("/api/keys/{}", key["id"].as_str().unwrap());
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&bob), None).await.0,
        404
    );
    assert_eq!(api.get("/api/auth/me", Some(&secret)).await.0, 200);
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&ann), None).await.0,
        204
    );
    assert_eq!(api.get("/api/auth/me", Some(&secret)).await.0, 401);
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&ann), None).await.0,
        404
    );

    // ---- private collections: enforced inside the search ----
    let admin = api.user("admin@example.com").await;
    let ann_id = api.user_id(&admin, "ann@example.com").await;
    let bob_id = api.user_id(&admin, "bob@example.com").await;
    let q = "/api/search?q=Thunderclap%20bucking%20bull%20retires&k=5";
    let collections_of = |v: &Value| -> Vec<String> {
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["collection"].as_str().unwrap().to_owned())
            .collect()
    };
    for token in [&ann, &bob] {
        let (s, r) = api.get(q, Some(token)).await;
        assert_eq!(s, 200);
        assert!(!collections_of(&r).contains(&"secret".to_owned()), "{r}");
        let (s, r) = api
            .get(&format!("{q}&collection=secret"), Some(token))
            .await;
        assert_eq!(
            s, 404,
            "a private collection is unknown to non-members: {r}"
        );
    }
    let (s, r) = api.get(q, Some(&admin)).await;
    assert_eq!(s, 200);
    assert_eq!(collections_of(&r)[0], "secret", "admins read everything");
    // a reader member sees it; bob still does not
    let member = format!("/api/collections/secret/members/{ann_id}");
    assert_eq!(
        api.call(
            Method::PUT,
            &member,
            Some(&bob),
            Some(json!({"role": "reader"}))
        )
        .await
        .0,
        404,
        "bob cannot read the private collection: it does not exist for him"
    );
    assert_eq!(
        api.call(
            Method::PUT,
            &member,
            Some(&admin),
            Some(json!({"role": "owner"}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        api.call(
            Method::PUT,
            &member,
            Some(&admin),
            Some(json!({"role": "reader"}))
        )
        .await
        .0,
        204
    );
    let (_, r) = api.get(q, Some(&ann)).await;
    assert_eq!(collections_of(&r)[0], "secret");
    let (_, r) = api.get(q, Some(&bob)).await;
    assert!(!collections_of(&r).contains(&"secret".to_owned()));
    let (_, cols) = api.get("/api/collections", Some(&bob)).await;
    assert_eq!(cols["collections"].as_array().unwrap().len(), 1, "{cols}");
    // a user who is not a curator cannot make it public
    let patch = api
        .call(
            Method::PATCH,
            "/api/collections/secret",
            Some(&ann),
            Some(json!({"visibility": "public"})),
        )
        .await;
    assert_eq!(patch.0, 403);

    // ---- administration ----
    assert_eq!(api.get("/api/admin/users", Some(&bob)).await.0, 403);
    let bob_path = format!("/api/admin/users/{bob_id}");
    let (s, _) = api
        .call(
            Method::PATCH,
            &bob_path,
            Some(&admin),
            Some(json!({"plan": "gold"})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, b) = api
        .call(
            Method::PATCH,
            &bob_path,
            Some(&admin),
            Some(json!({"plan": "pro", "role": "curator"})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["plan"].clone(), b["role"].clone()),
        (json!("pro"), json!("curator"))
    );
    let (s, _) = api
        .call(
            Method::PATCH,
            &bob_path,
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        api.get("/api/auth/me", Some(&bob)).await.0,
        401,
        "disabled accounts are out at once"
    );
    let (s, _) = api
        .post(
            "/api/auth/signin",
            None,
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 401);

    // ---- usage ----
    let (s, u) = api.get("/api/usage", Some(&ann)).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["plan"], "free");
    assert_eq!(u["limits"]["monthly_messages"], 200);
}

#[tokio::test]
async fn accounts_and_access_on_sqlite() {
    accounts_suite(Lariat::new().with_env("LARIAT_AUTH__SIGNIN_PER_MINUTE_ADDRESS", "1000")).await;
}

#[tokio::test]
async fn accounts_and_access_on_postgres() {
    let db = lariat_tests::PgDatabase::create().await;
    accounts_suite(
        Lariat::new()
            .with_env("LARIAT_DATABASE_URL", &db.url)
            .with_env("LARIAT_AUTH__SIGNIN_PER_MINUTE_ADDRESS", "1000"),
    )
    .await;
    db.drop_db().await;
}

#[tokio::test]
async fn tokens_expire_and_limits_answer_429() {
    let l = Lariat::new()
        .with_env("LARIAT_AUTH__ACCESS_TTL_SECS", "1")
        .with_env("LARIAT_AUTH__SIGNIN_PER_MINUTE_ACCOUNT", "3")
        .with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "4");
    let server = Server::start(&l);
    let api = Api::new(&server);
    let token = api.user("cy@example.com").await;
    assert_eq!(api.get("/api/auth/me", Some(&token)).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, b) = api.get("/api/auth/me", Some(&token)).await;
    assert_eq!(s, 401, "expired: {b}");

    // sign-in attempts per account: the 4th in a minute is refused, with Retry-After
    let creds = json!({"email": "dee@example.com", "password": PASSWORD});
    assert_eq!(
        api.post("/api/auth/signup", None, creds.clone()).await.0,
        201
    );
    for _ in 0..2 {
        let wrong = json!({"email": "dee@example.com", "password": "not the password"});
        assert_eq!(api.post("/api/auth/signin", None, wrong).await.0, 401);
    }
    assert_eq!(
        api.post("/api/auth/signin", None, creds.clone()).await.0,
        200
    );
    let resp = api
        .client
        .post(format!("{}/api/auth/signin", api.base))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // the plan's requests per minute, per user
    let token = api.unverified_user("eve@example.com").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(api.get("/api/auth/me", Some(&token)).await.0);
    }
    assert_eq!(&statuses[..4], &[200, 200, 200, 200], "{statuses:?}");
    assert_eq!(statuses[5], 429, "{statuses:?}");
    // another user has their own bucket
    let other = api.unverified_user("fay@example.com").await;
    assert_eq!(api.get("/api/auth/me", Some(&other)).await.0, 200);
}

#[tokio::test]
async fn curators_upload_and_delete_documents_over_http() {
    let l = Lariat::new()
        .with_env("LARIAT_AUTH__SIGNIN_PER_MINUTE_ADDRESS", "1000")
        .with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000");
    let corpus = corpus_dir();
    l.expect(0, &["ingest", corpus.to_str().unwrap(), "-c", "rodeo"]);
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    let ann = api.user("ann@example.com").await;
    let bob = api.user("bob@example.com").await;
    let bob_id = api.make_curator(&admin, "bob@example.com", "rodeo").await;

    let upload = |token: String,
                  collection: &'static str,
                  filename: Option<&'static str>,
                  body: &'static str| {
        let api = api.clone();
        async move {
            let mut url = format!("{}/api/collections/{collection}/documents", api.base);
            if let Some(f) = filename {
                url.push_str(&format!("?filename={f}"));
            }
            let resp = api
                .client
                .post(url)
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let text = "# Bull riding time\n\nA qualified bull ride lasts eight seconds; the rider holds the \
                flat braided bull rope with one gloved hand.\n";
    let (s, b) = upload(ann.clone(), "rodeo", Some("bulls.md"), text).await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = upload(bob.clone(), "rodeo", Some("bulls.md"), text).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        (b["added"].clone(), b["failed"].clone()),
        (json!(1), json!(0))
    );
    let (s, b) = upload(bob.clone(), "rodeo", Some("bulls.md"), text).await;
    assert_eq!(
        (s, b["unchanged"].clone()),
        (200, json!(1)),
        "re-uploading changes nothing"
    );
    for (filename, body, status) in [
        (Some("tool.exe"), "MZ", 400),
        (None, "text", 400),
        (Some("empty.md"), "", 400),
        (Some("..%2Fetc.md"), "x", 400),
    ] {
        let (s, b) = upload(bob.clone(), "rodeo", filename, body).await;
        assert_eq!(s, status, "{filename:?}: {b}");
    }
    let (s, _) = upload(
        bob.clone(),
        "brand-new",
        Some("a.md"),
        "# A\n\nSome text here.\n",
    )
    .await;
    assert_eq!(s, 404, "only admins create collections");
    let (s, _) = upload(
        admin.clone(),
        "brand-new",
        Some("a.md"),
        "# A\n\nSome text here.\n",
    )
    .await;
    assert_eq!(s, 201);

    // a private collection bob does not belong to answers exactly like a missing one, on
    // every route
    assert_eq!(
        api.call(
            Method::PATCH,
            "/api/collections/brand-new",
            Some(&admin),
            Some(json!({"visibility": "private"})),
        )
        .await
        .0,
        204
    );
    let (s_private, private) =
        upload(bob.clone(), "brand-new", Some("b.md"), "# B\n\nText.\n").await;
    let (s_missing, missing) = upload(bob.clone(), "no-such", Some("b.md"), "# B\n\nText.\n").await;
    assert_eq!((s_private, s_missing), (404, 404), "{private} {missing}");
    assert_eq!(
        private["error"]["message"]
            .as_str()
            .unwrap()
            .replace("brand-new", "X"),
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .replace("no-such", "X")
    );
    let bob_member = format!("/members/{bob_id}");
    for (method, suffix, body) in [
        (Method::GET, "/documents", None),
        (Method::DELETE, "/documents/abc", None),
        (Method::PATCH, "", Some(json!({"visibility": "public"}))),
        (
            Method::PUT,
            bob_member.as_str(),
            Some(json!({"role": "reader"})),
        ),
        (Method::DELETE, bob_member.as_str(), None),
    ] {
        let mut answers = Vec::new();
        for name in ["brand-new", "no-such"] {
            let path = format!("/api/collections/{name}{suffix}");
            let (s, b) = api
                .call(method.clone(), &path, Some(&bob), body.clone())
                .await;
            answers.push((
                s,
                b["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .replace(name, "X"),
            ));
        }
        assert_eq!(answers[0], answers[1], "{method} {suffix}");
        assert_eq!(answers[0].0, 404, "{method} {suffix}");
    }

    // curators manage readers, never other curators: only admins make, demote or remove them
    let carl = api.user("carl@example.com").await;
    let carl_id = api.make_curator(&admin, "carl@example.com", "rodeo").await;
    let ann_id = api.user_id(&admin, "ann@example.com").await;
    let promote = json!({"role": "curator"});
    let carl_member = format!("/api/collections/rodeo/members/{carl_id}");
    let reader = json!({"role": "reader"});
    for (method, body) in [(Method::PUT, Some(reader.clone())), (Method::DELETE, None)] {
        let (s, b) = api
            .call(method.clone(), &carl_member, Some(&bob), body)
            .await;
        assert_eq!(s, 403, "a curator cannot {method} another curator: {b}");
    }
    let (_, carl_docs) = api
        .get("/api/collections/rodeo/documents", Some(&carl))
        .await;
    assert!(carl_docs["documents"].is_array(), "carl is still a curator");
    let ann_member = format!("/api/collections/rodeo/members/{ann_id}");
    assert_eq!(
        api.call(Method::PUT, &ann_member, Some(&bob), Some(promote))
            .await
            .0,
        403,
        "a curator cannot make a curator"
    );
    assert_eq!(
        api.call(Method::PUT, &ann_member, Some(&bob), Some(reader))
            .await
            .0,
        204
    );
    assert_eq!(
        api.call(Method::DELETE, &ann_member, Some(&bob), None)
            .await
            .0,
        204
    );
    let ghost = "/api/collections/rodeo/members/00000000-0000-0000-0000-000000000000";
    assert_eq!(
        api.call(
            Method::PUT,
            ghost,
            Some(&bob),
            Some(json!({"role": "reader"}))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        api.call(Method::DELETE, &carl_member, Some(&admin), None)
            .await
            .0,
        204
    );

    let q =
        "/api/search?q=how%20long%20does%20a%20qualified%20bull%20ride%20last&k=3&collection=rodeo";
    let (_, r) = api.get(q, Some(&ann)).await;
    assert_eq!(r["hits"][0]["source"], "upload:bulls.md", "{r}");
    let (_, docs) = api
        .get("/api/collections/rodeo/documents", Some(&ann))
        .await;
    let id = docs["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == "upload:bulls.md")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/collections/rodeo/documents/{id}");
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&ann), None).await.0,
        403
    );
    let wrong = format!("/api/collections/brand-new/documents/{id}");
    assert_eq!(
        api.call(Method::DELETE, &wrong, Some(&admin), None).await.0,
        404
    );
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&bob), None).await.0,
        204
    );
    let (_, r) = api.get(q, Some(&ann)).await;
    assert_ne!(
        r["hits"][0]["source"], "upload:bulls.md",
        "deleted at once: {r}"
    );
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&bob), None).await.0,
        404
    );
}

/// `lariat admin create` on an address someone signed up with first: refused, or (with
/// `--reset-password`) the account is taken back: the operator's password, every session and key
/// of the squatter revoked. Nobody signs up as the local operator; keys do not mint keys;
/// disabling a user revokes everything it had.
#[tokio::test]
async fn first_admin_cannot_be_claimed_and_disabling_revokes() {
    let l = Lariat::new();
    let squatter = {
        let server = Server::start(&l);
        let api = Api::new(&server);
        let creds = json!({"email": "boss@corp.example", "password": "squatter's own password"});
        assert_eq!(
            api.post("/api/auth/signup", None, creds.clone()).await.0,
            201
        );
        let (_, pair) = api.post("/api/auth/signin", None, creds.clone()).await;
        let session = pair["access_token"].as_str().unwrap().to_owned();
        // unverified, the squatter makes no key
        let (s, b) = api
            .post("/api/keys", Some(&session), json!({"name": "k"}))
            .await;
        assert_eq!(s, 403, "{b}");
        // with the mailbox (the log here), the address is proven, and that session ends
        let token = api.logged_verification("boss@corp.example").await;
        let (s, b) = api
            .post("/api/auth/verify", None, json!({"token": token}))
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(api.get("/api/auth/me", Some(&session)).await.0, 401);
        let (_, pair) = api.post("/api/auth/signin", None, creds).await;
        let session = pair["access_token"].as_str().unwrap().to_owned();
        let (s, key) = api
            .post("/api/keys", Some(&session), json!({"name": "k"}))
            .await;
        assert_eq!(s, 201);
        // a key cannot manage keys
        let key = key["key"].as_str().unwrap().to_owned();
        let (s, b) = api
            .post("/api/keys", Some(&key), json!({"name": "more"}))
            .await;
        assert_eq!(s, 403, "{b}");
        assert_eq!(api.get("/api/keys", Some(&key)).await.0, 403);
        // the operator's address is reserved
        let (s, b) = api
            .post(
                "/api/auth/signup",
                None,
                json!({"email": "Operator@Lariat.Local", "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        (session, key)
    };
    let admin_create = |extra: &[&str]| {
        let mut args = vec!["create", "boss@corp.example"];
        args.extend_from_slice(extra);
        admin_command(&l, &args)
    };
    // what the server wrote is the owner's only
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            let path = l.data_dir().join(name);
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(""), 0o700);
        for file in ["lariat.db", "jwt-secret"] {
            assert_eq!(mode(file), 0o600, "{file}");
        }
    }
    let out = admin_create(&[]);
    assert_eq!(out.status.code(), Some(4), "a conflict");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--reset-password"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    admin_ok(&l, &["create", "boss@corp.example", "--reset-password"]);

    let server = Server::start(&l);
    let api = Api::new(&server);
    let (s, _) = api
        .post(
            "/api/auth/signin",
            None,
            json!({"email": "boss@corp.example", "password": "squatter's own password"}),
        )
        .await;
    assert_eq!(s, 401, "the squatter's password no longer works");
    for credential in [&squatter.0, &squatter.1] {
        assert_eq!(api.get("/api/auth/me", Some(credential)).await.0, 401);
    }
    let boss = api.user("boss@corp.example").await;
    let (_, me) = api.get("/api/auth/me", Some(&boss)).await;
    assert_eq!(me["user"]["role"], "admin");

    // disabling revokes sessions and keys; enabling again brings none of them back
    let dee = api.user("dee@example.com").await;
    let (_, key) = api
        .post("/api/keys", Some(&dee), json!({"name": "k"}))
        .await;
    let key = key["key"].as_str().unwrap().to_owned();
    let (_, me) = api.get("/api/auth/me", Some(&dee)).await;
    let path = format!("/api/admin/users/{}", me["user"]["id"].as_str().unwrap());
    for disabled in [true, false] {
        let (s, _) = api
            .call(
                Method::PATCH,
                &path,
                Some(&boss),
                Some(json!({"disabled": disabled})),
            )
            .await;
        assert_eq!(s, 200);
    }
    for credential in [&dee, &key] {
        assert_eq!(api.get("/api/auth/me", Some(credential)).await.0, 401);
    }
    let dee = api.user("dee@example.com").await;
    let (_, keys) = api.get("/api/keys", Some(&dee)).await;
    assert_eq!(keys["keys"], json!([]), "revoked keys stay revoked");
}

/// Signs in as `email` from a client naming itself `agent`; the token pair.
async fn signin_as(api: &Api, email: &str, password: &str, agent: &str) -> (u16, Value) {
    let resp = api
        .client
        .post(format!("{}/api/auth/signin", api.base))
        .header("user-agent", agent)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn sessions_are_listed_and_ended_and_a_password_change_ends_the_others() {
    let l = Lariat::new();
    let server = Server::start(&l);
    let api = Api::new(&server);
    let email = "gus@example.com";
    let creds = json!({"email": email, "password": PASSWORD});
    assert_eq!(api.post("/api/auth/signup", None, creds).await.0, 201);
    let token = |pair: &Value| pair["access_token"].as_str().unwrap().to_owned();
    let laptop = signin_as(&api, email, PASSWORD, "Firefox/130 laptop")
        .await
        .1;
    let phone = signin_as(&api, email, PASSWORD, "Safari\tphone").await.1;
    let (laptop, phone_refresh, phone) = (
        token(&laptop),
        phone["refresh_token"].clone(),
        token(&phone),
    );

    // both sessions listed, with what the client said and where it came from; this one marked
    let (s, list) = api.get("/api/sessions", Some(&laptop)).await;
    assert_eq!(s, 200, "{list}");
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{list}");
    assert_eq!(current[0]["user_agent"], "Firefox/130 laptop");
    assert_eq!(current[0]["address"], "127.0.0.1");
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(
        other["user_agent"], "Safariphone",
        "control characters are dropped"
    );
    assert!(other["expires_at"].as_i64().unwrap() > other["created_at"].as_i64().unwrap());
    assert!(other.get("user_id").is_none(), "{other}");

    // ending the phone's session from the laptop: its token and its refresh stop working
    let path = format!("/api/sessions/{}", other["id"].as_str().unwrap());
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&laptop), None).await.0,
        204
    );
    assert_eq!(api.get("/api/auth/me", Some(&phone)).await.0, 401);
    let refresh = json!({"refresh_token": phone_refresh});
    assert_eq!(api.post("/api/auth/refresh", None, refresh).await.0, 401);
    assert_eq!(
        api.call(Method::DELETE, &path, Some(&laptop), None).await.0,
        404
    );
    // another user cannot end (or learn of) this user's sessions
    let ivy = api.user("ivy@example.com").await;
    let (_, mine) = api.get("/api/sessions", Some(&laptop)).await;
    let laptop_session = format!(
        "/api/sessions/{}",
        mine["sessions"][0]["id"].as_str().unwrap()
    );
    assert_eq!(
        api.call(Method::DELETE, &laptop_session, Some(&ivy), None)
            .await
            .0,
        404
    );
    assert_eq!(api.get("/api/auth/me", Some(&laptop)).await.0, 200);

    // a password change needs the current password and a good new one; then only this session
    // stays signed in, and only the new password signs in
    let tablet = token(&signin_as(&api, email, PASSWORD, "tablet").await.1);
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let new_password = "a brand new passphrase";
    for (body, want) in [
        (change("wrong password", new_password), 400),
        (change(PASSWORD, "short"), 400),
        (json!({"current_password": PASSWORD}), 400),
    ] {
        let (s, b) = api.post("/api/auth/password", Some(&laptop), body).await;
        assert_eq!(s, want, "{b}");
    }
    assert_eq!(
        api.get("/api/auth/me", Some(&tablet)).await.0,
        200,
        "failed changes end nothing"
    );
    let (s, b) = api
        .post(
            "/api/auth/password",
            Some(&laptop),
            change(PASSWORD, new_password),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(api.get("/api/auth/me", Some(&tablet)).await.0, 401);
    assert_eq!(api.get("/api/auth/me", Some(&laptop)).await.0, 200);
    assert_eq!(signin_as(&api, email, PASSWORD, "x").await.0, 401);
    let desktop = token(&signin_as(&api, email, new_password, "desktop").await.1);

    // signing out everywhere ends this session too
    assert_eq!(
        api.call(Method::DELETE, "/api/sessions", Some(&laptop), None)
            .await
            .0,
        204
    );
    assert_eq!(api.get("/api/auth/me", Some(&laptop)).await.0, 401);
    assert_eq!(api.get("/api/auth/me", Some(&desktop)).await.0, 401);
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_it_is_renewed() {
    let l = Lariat::new().with_env("LARIAT_AUTH__SESSION_MAX_AGE_SECS", "2");
    let server = Server::start(&l);
    let api = Api::new(&server);
    let creds = json!({"email": "hal@example.com", "password": PASSWORD});
    assert_eq!(
        api.post("/api/auth/signup", None, creds.clone()).await.0,
        201
    );
    let (_, pair) = api.post("/api/auth/signin", None, creds).await;
    let (s, renewed) = api
        .post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_eq!(s, 200, "{renewed}");
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let access = renewed["access_token"].as_str().unwrap();
    assert_eq!(api.get("/api/auth/me", Some(access)).await.0, 401);
    let refresh = json!({"refresh_token": renewed["refresh_token"]});
    assert_eq!(api.post("/api/auth/refresh", None, refresh).await.0, 401);
}

#[tokio::test]
async fn api_keys_do_what_both_their_scopes_and_their_owners_role_allow() {
    let l = Lariat::new().with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000");
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    let user = api.user("una@example.com").await;
    let cura = api.user("cy@example.com").await;
    api.make_curator(&admin, "cy@example.com", "rodeo").await;
    let key = |owner: String, scopes: Value| {
        let api = api.clone();
        async move {
            let (s, b) = api
                .post(
                    "/api/keys",
                    Some(&owner),
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            assert_eq!(s, 201, "{b}");
            b["key"].as_str().unwrap().to_owned()
        }
    };

    // a key gets search and chat unless it asks; no more than its owner's role allows
    let (s, plain) = api
        .post("/api/keys", Some(&user), json!({"name": "plain"}))
        .await;
    assert_eq!((s, &plain["scopes"]), (201, &json!(["search", "chat"])));
    for (owner, scopes) in [
        (&user, json!(["ingest"])),
        (&user, json!(["admin"])),
        (&cura, json!(["admin"])),
        (&user, json!([])),
        (&user, json!(["everything"])),
    ] {
        let (s, b) = api
            .post(
                "/api/keys",
                Some(owner),
                json!({"name": "k", "scopes": scopes}),
            )
            .await;
        assert_eq!(s, 400, "{scopes}: {b}");
    }
    for days in [0, 3651] {
        let body = json!({"name": "k", "expires_in_days": days});
        assert_eq!(api.post("/api/keys", Some(&user), body).await.0, 400);
    }
    let (s, expiring) = api
        .post(
            "/api/keys",
            Some(&user),
            json!({"name": "e", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(s, 201);
    let ends = expiring["expires_at"].as_i64().unwrap() - expiring["created_at"].as_i64().unwrap();
    assert_eq!(ends, 30 * 86_400_000);

    // each scope opens its own doors, on REST and on /v1
    let search = key(user.clone(), json!(["search"])).await;
    let chat = key(user.clone(), json!(["chat"])).await;
    let ask = json!({"message": "How long is a heading rope?"});
    let completion = json!({"model": "rodeo", "messages": [{"role": "user", "content": "rope?"}]});
    assert_eq!(api.get("/api/search?q=rope", Some(&search)).await.0, 200);
    let (s, b) = api.get("/api/search?q=rope", Some(&chat)).await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lacks the search scope")
    );
    let (s, b) = api.post("/api/chat", Some(&search), ask.clone()).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        api.post("/v1/chat/completions", Some(&search), completion.clone())
            .await
            .0,
        403
    );
    assert_eq!(api.get("/api/conversations", Some(&search)).await.0, 403);
    assert_eq!(api.post("/api/chat", Some(&chat), ask.clone()).await.0, 200);
    assert_eq!(api.get("/api/conversations", Some(&chat)).await.0, 200);
    // any key names the collections it may choose from
    for k in [&search, &chat] {
        let (s, b) = api.get("/api/collections", Some(k)).await;
        assert_eq!(
            (s, &b["collections"][0]["name"]),
            (200, &json!("rodeo")),
            "{b}"
        );
    }
    let (s, b) = api
        .post("/v1/chat/completions", Some(&chat), completion)
        .await;
    assert_eq!(s, 200, "{b}");

    // a curator's key ingests only with the ingest scope
    let upload = |token: String| {
        let api = api.clone();
        async move {
            api.client
                .post(format!(
                    "{}/api/collections/rodeo/documents?filename=k.md",
                    api.base
                ))
                .bearer_auth(token)
                .body("# Keys\n\nA key opens what its scopes allow.\n")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        upload(key(cura.clone(), json!(["search", "chat"])).await).await,
        403
    );
    assert_eq!(
        upload(key(cura.clone(), json!(["ingest"])).await).await,
        201
    );

    // an admin's key administers only with the admin scope
    let (s, b) = api
        .get(
            "/api/admin/users",
            Some(&key(admin.clone(), json!(["search"])).await),
        )
        .await;
    assert_eq!(s, 403);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lacks the admin scope"),
        "{b}"
    );
    let (s, _) = api
        .get(
            "/api/admin/users",
            Some(&key(admin.clone(), json!(["admin"])).await),
        )
        .await;
    assert_eq!(s, 200);

    // keys manage keys only with the keys scope, and never beyond their own scopes
    let manager = key(user.clone(), json!(["keys", "search"])).await;
    assert_eq!(api.get("/api/keys", Some(&search)).await.0, 403);
    let (s, list) = api.get("/api/keys", Some(&manager)).await;
    assert_eq!(s, 200, "{list}");
    let (s, b) = api
        .post(
            "/api/keys",
            Some(&manager),
            json!({"name": "m", "scopes": ["search"]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = api
        .post(
            "/api/keys",
            Some(&manager),
            json!({"name": "m", "scopes": ["chat"]}),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    let (_, me) = api.get("/api/auth/me", Some(&manager)).await;
    assert_eq!(me["scopes"], json!(["search", "keys"]));
    // sessions stay a session's business
    assert_eq!(api.get("/api/sessions", Some(&manager)).await.0, 403);

    // a short-lived key mints no eternal one: a child's end is capped at its parent's, it
    // names its parent, and it goes with it (as do its own children)
    let (s, parent) = api
        .post(
            "/api/keys",
            Some(&user),
            json!({"name": "short", "scopes": ["keys", "search"], "expires_in_days": 1}),
        )
        .await;
    assert_eq!(s, 201, "{parent}");
    let parent_end = parent["expires_at"].as_i64().unwrap();
    let make = |with: String, body: Value| {
        let api = api.clone();
        async move {
            let (s, b) = api.post("/api/keys", Some(&with), body).await;
            assert_eq!(s, 201, "{b}");
            b
        }
    };
    let child = make(
        parent["key"].as_str().unwrap().to_owned(),
        json!({"name": "child", "scopes": ["keys", "search"]}),
    )
    .await;
    assert_eq!(child["expires_at"].as_i64(), Some(parent_end), "{child}");
    assert_eq!(child["parent_id"], parent["id"]);
    let longer = make(
        parent["key"].as_str().unwrap().to_owned(),
        json!({"name": "longer", "scopes": ["search"], "expires_in_days": 30}),
    )
    .await;
    assert_eq!(longer["expires_at"].as_i64(), Some(parent_end));
    let grandchild = make(
        child["key"].as_str().unwrap().to_owned(),
        json!({"name": "grandchild", "scopes": ["search"]}),
    )
    .await;
    assert_eq!(grandchild["parent_id"], child["id"]);
    for k in [&child, &longer, &grandchild] {
        assert_eq!(api.get("/api/auth/me", k["key"].as_str()).await.0, 200);
    }
    let path = format!("/api/keys/{}", parent["id"].as_str().unwrap());
    let (s, b) = api
        .call(reqwest::Method::DELETE, &path, Some(&user), None)
        .await;
    assert_eq!(s, 204, "{b}");
    for k in [&parent, &child, &longer, &grandchild] {
        assert_eq!(
            api.get("/api/auth/me", k["key"].as_str()).await.0,
            401,
            "{k}"
        );
    }
    let (_, list) = api.get("/api/keys", Some(&user)).await;
    let names: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| ["short", "child", "longer", "grandchild"].contains(n)),
        "{names:?}"
    );
}

#[tokio::test]
async fn the_audit_log_records_security_events_and_admins_read_it() {
    let l = Lariat::new();
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    let ann = api.user("ann@example.com").await;
    let ann_id = api.user_id(&admin, "ann@example.com").await;
    for (email, password) in [("ann@example.com", "not it"), ("nobody@example.com", "x")] {
        let body = json!({"email": email, "password": password});
        assert_eq!(api.post("/api/auth/signin", None, body).await.0, 401);
    }
    let (_, key) = api
        .post("/api/keys", Some(&ann), json!({"name": "<b>laptop</b>"}))
        .await;
    let key_path = format!("/api/keys/{}", key["id"].as_str().unwrap());
    assert_eq!(
        api.call(Method::DELETE, &key_path, Some(&ann), None)
            .await
            .0,
        204
    );
    let (s, _) = api
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{ann_id}"),
            Some(&admin),
            Some(json!({"plan": "free"})),
        )
        .await;
    assert_eq!(s, 200);

    // everything about ann, newest first, with who did it and from where
    let (s, page) = api
        .get(&format!("/api/admin/audit?user_id={ann_id}"), Some(&admin))
        .await;
    assert_eq!(s, 200, "{page}");
    let events: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "user_changed",
            "key_revoked",
            "key_created",
            "sign_in_failed",
            "email_verified",
            "signed_in",
            "signed_up"
        ]
    );
    let changed = &page["entries"][0];
    assert_eq!(changed["detail"], json!({"plan": "free"}));
    assert_ne!(changed["actor_id"], json!(ann_id), "the admin did it");
    assert_eq!(page["entries"][2]["detail"]["name"], "<b>laptop</b>");
    assert_eq!(page["entries"][2]["address"], "127.0.0.1");
    let (_, failed) = api
        .get("/api/admin/audit?event=sign_in_failed", Some(&admin))
        .await;
    let reasons: Vec<&str> = failed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["no such account", "wrong password"]);
    assert!(failed["entries"][0]["subject_id"].is_null());

    // a page at a time, nothing lost or repeated
    let mut seen = Vec::new();
    let mut path = "/api/admin/audit?limit=2".to_owned();
    loop {
        let (s, page) = api.get(&path, Some(&admin)).await;
        assert_eq!(s, 200, "{page}");
        for e in page["entries"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/admin/audit?limit=2&after={next}"),
            None => break,
        }
    }
    let (_, all) = api.get("/api/admin/audit?limit=500", Some(&admin)).await;
    let every: Vec<String> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, every);
    for bad in [
        "event=nope",
        "after=garbage",
        "after=12_",
        "limit=0",
        "limit=501",
        "surprise=1",
    ] {
        let (s, b) = api
            .get(&format!("/api/admin/audit?{bad}"), Some(&admin))
            .await;
        assert_eq!(s, 400, "{bad}: {b}");
    }
    drop(server);

    // the operator reads it from the command line
    let out = l.expect(
        0,
        &[
            "admin",
            "audit",
            "--event",
            "key_created",
            "--user",
            "ann@example.com",
        ],
    );
    assert!(
        out.contains("key_created") && out.contains("laptop"),
        "{out}"
    );
    let page = l.json(&["admin", "audit", "--limit", "1", "--json"]);
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert!(page["next"].is_string());
    l.expect(2, &["admin", "audit", "--event", "nope"]);
}
