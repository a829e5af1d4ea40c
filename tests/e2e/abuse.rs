//! Hostile callers: floods of sign-ups and sign-ins, spoofed client addresses, oversized
//! credentials, and the sign-up policy.

use reqwest::Method;
use serde_json::json;

use crate::serve::{Api, PASSWORD, Server, admin_ok, race_uploads_and_deletions, upload};
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
    // (a connection of its own each: one the server cut must not be reused by the next request)
    let once = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for (size, may_cut) in [(20_000, false), (500_000, true)] {
        let huge = format!("{}@example.com", "a".repeat(size));
        for path in ["/api/auth/signin", "/api/auth/signup"] {
            let sent = once
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
    // an IPv6 client is its /64: hopping between its addresses buys no more sign-ups
    let mut seen = Vec::new();
    for (i, xff) in [
        "2001:db8:7:1::1",
        "2001:db8:7:1::2",
        "2001:db8:7:1:ffff:ffff:ffff:fffe",
        "2001:db8:7:2::1",
    ]
    .iter()
    .enumerate()
    {
        seen.push(
            signup(&api, &format!("v6-{i}@example.com"), Some(xff))
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
    let first = "# Version 0\n\nThe barrel pattern has three barrels.\n".to_owned();
    assert_eq!(upload(&api, &admin, "race", "race.md", first).await, 201);
    race_uploads_and_deletions(&[&api], &admin, "race", "race.md").await;
    drop(server);
    l.expect(0, &["check"]);
    l.assert_consistent();
}

/// A PDF of one page whose content stream inflates from well under a megabyte to `inflated`
/// bytes: a decompression bomb.
fn pdf_bomb(inflated: usize) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let block = b"BT /F1 12 Tf 72 712 Td (rodeo) Tj ET\n".repeat(1024);
    for _ in 0..inflated / block.len() {
        z.write_all(&block).unwrap();
    }
    let stream = z.finish().unwrap();
    let mut pdf = b"%PDF-1.5\n".to_vec();
    let mut offsets = Vec::new();
    let mut object = |pdf: &mut Vec<u8>, body: &[u8]| {
        offsets.push(pdf.len());
        writeln!(pdf, "{} 0 obj", offsets.len()).unwrap();
        pdf.extend_from_slice(body);
        pdf.extend_from_slice(b"\nendobj\n");
    };
    object(&mut pdf, b"<< /Type /Catalog /Pages 2 0 R >>");
    object(&mut pdf, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    object(
        &mut pdf,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
          /Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>",
    );
    let mut content = format!(
        "<< /Length {} /Filter /FlateDecode >>\nstream\n",
        stream.len()
    )
    .into_bytes();
    content.extend_from_slice(&stream);
    content.extend_from_slice(b"\nendstream");
    object(&mut pdf, &content);
    let xref = pdf.len();
    write!(pdf, "xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).unwrap();
    for o in &offsets {
        writeln!(pdf, "{o:010} 00000 n ").unwrap();
    }
    write!(
        pdf,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        offsets.len() + 1
    )
    .unwrap();
    pdf
}

/// Parsers run in a worker process under memory and time limits: a decompression bomb and a
/// parser that never finishes each fail their own file with the limit named, the other files
/// are ingested, and a server that was sent the bomb keeps serving.
#[tokio::test]
async fn a_runaway_parser_fails_its_file_and_nothing_else() {
    let bomb = pdf_bomb(512 << 20);
    assert!(bomb.len() < 2 << 20, "the bomb is {} bytes", bomb.len());
    let l = Lariat::new().with_env("LARIAT_INGEST__PARSE_MEMORY_MB", "64");
    let dir = l.dir.path().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bomb.pdf"), &bomb).unwrap();
    std::fs::write(
        dir.join("good.md"),
        "# Barrels\n\nA knocked barrel adds five seconds.\n",
    )
    .unwrap();
    let out = l.run(&["ingest", dir.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(6), "{report}");
    assert_eq!(report["added"], 1, "{report}");
    let reason = report["failures"][0]["reason"].as_str().unwrap();
    assert!(
        report["failures"][0]["path"] == "in/bomb.pdf"
            && reason.contains("64 MiB")
            && reason.contains("ingest.parse_memory_mb"),
        "{report}"
    );

    // a parser that never finishes is stopped at the time limit
    let slow = Lariat::new()
        .with_env("LARIAT_TEST_PAUSE_AT", "parse")
        .with_env("LARIAT_INGEST__PARSE_TIMEOUT_SECS", "1");
    let out = slow.run(&["ingest", dir.join("good.md").to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(6), "{report}");
    let reason = report["failures"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("longer than 1 s") && reason.contains("ingest.parse_timeout_secs"),
        "{report}"
    );

    // over HTTP: the upload fails with the reason, the server goes on answering
    crate::serve::create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    let upload = |name: &'static str, body: Vec<u8>| {
        let api = api.clone();
        let admin = admin.clone();
        async move {
            let resp = api
                .client
                .post(format!(
                    "{}/api/collections/default/documents?filename={name}&background=false",
                    api.base
                ))
                .bearer_auth(admin)
                .body(body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (status, body) = upload("bomb.pdf", bomb).await;
    assert!(
        status == 400 && body.contains("ingest.parse_memory_mb"),
        "{status} {body}"
    );
    let (status, body) = upload(
        "more.md",
        b"# Poles\n\nSix poles stand twenty-one feet apart.\n".to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, found) = api
        .get(
            "/api/search?q=how%20far%20apart%20are%20the%20poles&mode=bm25",
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert!(found.to_string().contains("twenty-one feet"), "{found}");
    drop(server);
    l.assert_consistent();
}
