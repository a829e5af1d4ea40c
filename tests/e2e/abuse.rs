//! Hostile callers: floods of sign-ups and sign-ins, spoofed client addresses, oversized
//! credentials, and the sign-up policy.

use reqwest::Method;
use serde_json::json;

use crate::serve::{Api, PASSWORD, Server, admin_ok};
use crate::support::Lariat;

/// Signs up `email`, claiming to come from `forwarded_for` when given.
async fn signup(api: &Api, email: &str, forwarded_for: Option<&str>) -> (u16, Option<String>) {
    let mut req = api
        .client
        .post(format!("{}/api/auth/signup", api.base))
        .json(&json!({"email": email, "password": PASSWORD}));
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    let resp = req.send().await.unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), retry)
}

#[tokio::test]
async fn signups_are_limited_per_address_and_forwarded_for_is_believed_only_from_proxies() {
    // the defaults: 10 sign-ups an hour from one address; no trusted proxy
    let l = Lariat::new().with_env("LARIAT_AUTH__SIGNUP_PER_HOUR_ADDRESS", "10");
    let server = Server::start(&l);
    let api = Api::new(&server);
    let mut statuses = Vec::new();
    for i in 0..40 {
        // a spoofed X-Forwarded-For from an untrusted peer changes nothing
        let spoof = format!("203.0.113.{i}");
        statuses.push(signup(&api, &format!("u{i}@example.com"), Some(&spoof)).await);
    }
    assert!(
        statuses[..10].iter().all(|(s, _)| *s == 201),
        "{statuses:?}"
    );
    for (s, retry) in &statuses[10..] {
        assert_eq!(*s, 429);
        let retry: u64 = retry.as_deref().unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry), "{retry}");
    }
    // credentials far over any real size are refused before they cost anything: a body over the
    // limit gets 400; one far over it may also be cut off before the client finished sending it
    // (the server answers without reading it), and the server keeps serving
    for (size, may_cut) in [(20_000, false), (500_000, true)] {
        let huge = format!("{}@example.com", "a".repeat(size));
        for path in ["/api/auth/signin", "/api/auth/signup"] {
            let sent = api
                .client
                .post(format!("{}{path}", api.base))
                .json(&json!({"email": huge, "password": PASSWORD}))
                .send()
                .await;
            match sent {
                Ok(resp) => assert_eq!(resp.status().as_u16(), 400, "{path} ({size} bytes)"),
                Err(e) => assert!(may_cut && e.is_request(), "{path} ({size} bytes): {e}"),
            }
        }
    }
    let long = format!("{}@example.com", "a".repeat(5_000));
    let (s, _) = api
        .post(
            "/api/auth/signin",
            None,
            json!({"email": long, "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 401);
    drop(server);

    // behind a trusted proxy each forwarded client has its own limit, and the proxy's own
    // address (the nearest hop) is skipped
    let l = Lariat::new()
        .with_env("LARIAT_AUTH__SIGNUP_PER_HOUR_ADDRESS", "2")
        .with_env("LARIAT_SERVER__TRUSTED_PROXIES", "[\"127.0.0.0/8\"]")
        .with_env("LARIAT_SERVER__METRICS_TOKEN", "metrics-secret-token");
    let server = Server::start(&l);
    let api = Api::new(&server);
    let mut seen = Vec::new();
    for (i, xff) in [
        "198.51.100.1",
        "198.51.100.1",
        "198.51.100.1",
        "198.51.100.2, 127.0.0.9",
    ]
    .iter()
    .enumerate()
    {
        seen.push(
            signup(&api, &format!("p{i}@example.com"), Some(xff))
                .await
                .0,
        );
    }
    assert_eq!(seen, vec![201, 201, 429, 201]);
    // an unreadable header falls back to the peer
    assert_eq!(
        signup(&api, "q1@example.com", Some("not an ip")).await.0,
        201
    );

    // with a metrics token, the metrics are for its holder only
    for (token, status) in [
        (None, 401),
        (Some("wrong"), 401),
        (Some("metrics-secret-token"), 200),
    ] {
        let (s, _) = api.call(Method::GET, "/metrics", token, None).await;
        assert_eq!(s, status, "{token:?}");
    }
}

#[tokio::test]
async fn signup_policy_invite_only_and_domains() {
    let l = Lariat::new().with_env("LARIAT_AUTH__SIGNUP", "invite_only");
    {
        let server = Server::start(&l);
        let api = Api::new(&server);
        let (s, b) = api
            .post(
                "/api/auth/signup",
                None,
                json!({"email": "ann@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{b}"
        );
    }
    admin_ok(&l, &["add-user", "ann@example.com", "--role", "curator"]);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let (s, pair) = api
        .post(
            "/api/auth/signin",
            None,
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200, "{pair}");
    let (_, me) = api
        .call(
            Method::GET,
            "/api/auth/me",
            pair["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(me["user"]["role"], "curator");
    drop(server);

    let l = Lariat::new()
        .with_env("LARIAT_AUTH__SIGNUP", "domains")
        .with_env("LARIAT_AUTH__SIGNUP_DOMAINS", "[\"corp.example\"]");
    let server = Server::start(&l);
    let api = Api::new(&server);
    for (email, status) in [
        ("ann@corp.example", 201),
        ("bob@evil.example", 403),
        ("eve@sub.corp.example", 403),
        ("mallory@corp.example.evil", 403),
    ] {
        let (s, b) = api
            .post(
                "/api/auth/signup",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, status, "{email}: {b}");
    }
}

/// Uploads of one document racing each other and its deletion are serialised: afterwards the
/// three stores agree.
#[tokio::test]
async fn racing_writes_of_one_document_leave_the_stores_consistent() {
    let l = Lariat::new().with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000");
    crate::serve::create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    let upload = |i: usize| {
        let api = api.clone();
        let admin = admin.clone();
        async move {
            let body = format!(
                "# Version {i}\n\nThe barrel pattern has three barrels; version {i} of the rules \
                 says a knocked barrel adds five seconds.\n"
            );
            api.client
                .post(format!(
                    "{}/api/collections/race/documents?filename=race.md",
                    api.base
                ))
                .bearer_auth(admin)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(upload(0).await, 201);
    let (_, docs) = api
        .get("/api/collections/race/documents", Some(&admin))
        .await;
    let id = docs["documents"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/collections/race/documents/{id}");
    for round in 0..3 {
        let uploads = futures::future::join_all((1..=6).map(|i| upload(round * 10 + i)));
        let deletes = futures::future::join_all(
            (0..3).map(|_| api.call(Method::DELETE, &path, Some(&admin), None)),
        );
        let (statuses, deleted) = tokio::join!(uploads, deletes);
        assert!(
            statuses.iter().all(|s| [200, 201].contains(s)),
            "{statuses:?}"
        );
        assert!(
            deleted.iter().all(|(s, _)| [204, 404].contains(s)),
            "{deleted:?}"
        );
    }
    drop(server);
    l.expect(0, &["check"]);
    l.assert_consistent();
}
