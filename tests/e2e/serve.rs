use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::support::{Lariat, corpus_dir, hits};

/// A running `lariat serve`, stopped with SIGTERM when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    /// What the server wrote to stderr after its address.
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    pub fn start(l: &Lariat) -> Self {
        Self::start_on(l, "127.0.0.1:0")
    }

    /// On a given address (`127.0.0.1:0`: any free port).
    pub fn start_on(l: &Lariat, addr: &str) -> Self {
        let mut child = l
            .command()
            .args(["serve", "--addr", addr])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("listening on ").nth(1).map(str::to_owned))
            .expect("serve prints its address");
        // keep draining stderr (so the server never blocks on a full pipe), keeping it
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut kept = kept.lock().unwrap();
                if kept.len() < 1 << 20 {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
        });
        Self { child, base, log }
    }

    /// The server's log so far (its first megabyte).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// CPU time (user and system, seconds) the server has used so far, from /proc.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // the fields after the command's name (which may hold spaces), utime and stime the
        // 12th and 13th of them, in clock ticks (USER_HZ, 100 on Linux)
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0
    }

    /// Sends SIGTERM and waits for the server to exit: its exit status and how long it took.
    pub fn terminate(mut self) -> (std::process::ExitStatus, std::time::Duration) {
        let asked = std::time::Instant::now();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        (status, asked.elapsed())
    }

    /// Waits (up to 60 s) until the server announces it paused at `point` (it runs with
    /// `LARIAT_TEST_PAUSE_AT`), then kills it with SIGKILL, as a crash would.
    pub async fn kill_when_paused(mut self, point: &str) {
        let line = format!("lariat: paused at {point}");
        for _ in 0..600 {
            if self.log().contains(&line) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(self.log().contains(&line), "never paused at {point}");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// JSON calls against a running server.
#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    /// The server's log, where its mail goes when no SMTP server is configured.
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Api {
    pub fn new(server: &Server) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: server.base.clone(),
            log: server.log.clone(),
        }
    }

    /// The token of the verification link logged for `email` (the server has no SMTP server),
    /// waiting up to 20 s for it.
    pub async fn logged_verification(&self, email: &str) -> String {
        self.logged_link(&format!("that {email} is your address:"), "verify")
            .await
    }

    /// The token of the last link to `/PAGE` logged after `marker` (a phrase of the mail that
    /// carries it), waiting up to 20 s for it.
    pub async fn logged_link(&self, marker: &str, page: &str) -> String {
        let link = format!("/{page}?token=");
        let started = std::time::Instant::now();
        loop {
            let found = {
                let log = self.log.lock().unwrap();
                log.rfind(marker).and_then(|at| {
                    let rest = &log[at..];
                    let start = rest.find(&link)? + link.len();
                    Some(
                        rest[start..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect::<String>(),
                    )
                })
            };
            if let Some(token) = found {
                return token;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "no /{page} link after {marker:?} in the log"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Sends a request; returns the status and the body as JSON (`null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// Asks `question` in a new conversation as the holder of `token`; the conversation's id.
    pub async fn ask(&self, token: &str, question: &str) -> String {
        self.ask_in(token, question, None).await
    }

    /// Asks in a new conversation limited to `collections` (`None`: every readable one) and
    /// returns the conversation's id.
    pub async fn ask_in(
        &self,
        token: &str,
        question: &str,
        collections: Option<&[&str]>,
    ) -> String {
        let resp = self
            .client
            .post(format!("{}/api/chat", self.base))
            .bearer_auth(token)
            .json(&serde_json::json!({"message": question, "collections": collections}))
            .send()
            .await
            .unwrap();
        let events = crate::chat::parse_sse(&resp.text().await.unwrap());
        events
            .iter()
            .find(|(e, _)| e == "meta")
            .and_then(|(_, m)| m["conversation_id"].as_str())
            .unwrap_or_else(|| panic!("no conversation in {events:?}"))
            .to_owned()
    }

    /// Makes the user with this email a curator, and a curating member of `collection`, as the
    /// admin whose token is `admin`; returns the user's id.
    pub async fn make_curator(&self, admin: &str, email: &str, collection: &str) -> String {
        let id = self.user_id(admin, email).await;
        let curator = serde_json::json!({"role": "curator"});
        let (s, body) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/api/admin/users/{id}"),
                Some(admin),
                Some(curator.clone()),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let (s, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/api/collections/{collection}/members/{id}"),
                Some(admin),
                Some(curator),
            )
            .await;
        assert_eq!(s, 204, "{body}");
        id
    }

    /// The id of the user with this email, as an admin (`admin` is the admin's token) sees it.
    pub async fn user_id(&self, admin: &str, email: &str) -> String {
        let (status, users) = self.get("/api/admin/users", Some(admin)).await;
        assert_eq!(status, 200, "{users}");
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .unwrap_or_else(|| panic!("no user {email}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Signs up (an address already taken answers the same), signs in, and, when the address
    /// is not yet verified, follows the verification link the server logged (it must have no
    /// SMTP server) with this session, which stays; returns the access token.
    pub async fn user(&self, email: &str) -> String {
        self.sign_up(email).await;
        let token = self.signin(email).await;
        let (_, me) = self.get("/api/auth/me", Some(&token)).await;
        if me["user"]["email_verified"] != true {
            let link = self.logged_verification(email).await;
            let (s, body) = self
                .post(
                    "/api/auth/verify",
                    Some(&token),
                    serde_json::json!({"token": link}),
                )
                .await;
            assert_eq!(s, 200, "{body}");
        }
        token
    }

    /// Signs up and signs in, leaving the address unverified; returns the access token.
    pub async fn unverified_user(&self, email: &str) -> String {
        self.sign_up(email).await;
        self.signin(email).await
    }

    /// Signs up with the test password (a sign-up answers the same whether or not the address
    /// was free).
    pub async fn sign_up(&self, email: &str) {
        let creds = serde_json::json!({"email": email, "password": PASSWORD});
        let (status, body) = self.post("/api/auth/signup", None, creds).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body, serde_json::json!({"email": email}));
    }

    /// Signs in with the test password; the access token.
    pub async fn signin(&self, email: &str) -> String {
        let creds = serde_json::json!({"email": email, "password": PASSWORD});
        let (status, body) = self.post("/api/auth/signin", None, creds).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// Uploads `filename` to `collection` as `token`'s holder: the answer's status.
pub async fn upload(api: &Api, token: &str, collection: &str, filename: &str, body: String) -> u16 {
    api.client
        .post(format!(
            "{}/api/collections/{collection}/documents?filename={filename}",
            api.base
        ))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Three rounds of six uploads of the one document of `collection` (as `filename`) racing
/// deletions of it, spread over `apis` in turn: every upload succeeds and every deletion either
/// succeeds or finds the document already gone.
pub async fn race_uploads_and_deletions(
    apis: &[&Api],
    token: &str,
    collection: &str,
    filename: &str,
) {
    let (_, docs) = apis[0]
        .get(
            &format!("/api/collections/{collection}/documents"),
            Some(token),
        )
        .await;
    let id = docs["documents"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/collections/{collection}/documents/{id}");
    for round in 0..3 {
        let uploads = futures::future::join_all((1..=6).map(|i| {
            let n = round * 10 + i;
            let body = format!(
                "# Version {n}\n\nThe barrel pattern has three barrels; version {n} of the rules \
                 says a knocked barrel adds five seconds.\n"
            );
            upload(apis[i % apis.len()], token, collection, filename, body)
        }));
        let deletes =
            futures::future::join_all((0..3).map(|i| {
                apis[i % apis.len()].call(reqwest::Method::DELETE, &path, Some(token), None)
            }));
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
}

/// The password every test account uses.
pub const PASSWORD: &str = "correct horse battery staple";

/// `lariat admin ARGS…` with the test password as `LARIAT_ADMIN_PASSWORD`.
pub fn admin_command(l: &Lariat, args: &[&str]) -> std::process::Output {
    l.command()
        .arg("admin")
        .args(args)
        .env("LARIAT_ADMIN_PASSWORD", PASSWORD)
        .output()
        .unwrap()
}

/// Runs `lariat admin ARGS…` and expects it to succeed.
pub fn admin_ok(l: &Lariat, args: &[&str]) {
    let out = admin_command(l, args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates the admin `admin@example.com` through the CLI (before `serve` holds the data dir).
pub fn create_admin(l: &Lariat) {
    admin_ok(l, &["create", "admin@example.com"]);
}

impl Drop for Server {
    fn drop(&mut self) {
        // a failing test shows what its server said
        if std::thread::panicking() {
            eprintln!(
                "--- log of lariat serve at {} ---\n{}",
                self.base,
                self.log()
            );
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn serve_answers_search_like_the_cli_and_maps_errors() {
    // a generous plan: this test is about answers, not rate limits
    let l = Lariat::new()
        .with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000")
        .with_env(
            "LARIAT_SERVER__CORS_ORIGINS",
            "[\"https://app.example.com\"]",
        );
    let corpus = corpus_dir();
    l.expect(0, &["ingest", corpus.to_str().unwrap(), "-c", "rodeo"]);
    let cli = l.json(&[
        "search",
        "how are bull rides scored",
        "-c",
        "rodeo",
        "-k",
        "3",
        "--json",
    ]);

    create_admin(&l);
    let server = Server::start(&l);
    let http = Api::new(&server);
    let token = http.user("reader@example.com").await;
    let client = reqwest::Client::new();
    let health: serde_json::Value = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"], "sqlite");

    let resp = client
        .get(format!("{}/api/search", server.base))
        .bearer_auth(&token)
        .query(&[
            ("q", "how are bull rides scored"),
            ("collection", "rodeo"),
            ("k", "3"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let api: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(api["mode"], "hybrid");
    let ids = |v: &serde_json::Value| {
        hits(v)
            .iter()
            .map(|h| h["chunk_id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&api),
        ids(&cli),
        "HTTP and CLI go through the same search"
    );
    assert_eq!(hits(&api)[0]["text"], hits(&cli)[0]["text"]);

    let cases: &[(&str, u16, &str)] = &[
        ("q=", 400, "invalid_input"),
        ("k=5", 400, "invalid_input"),
        ("q=rope&k=0", 400, "invalid_input"),
        ("q=rope&k=abc", 400, "invalid_input"),
        ("q=rope&mode=fuzzy", 400, "invalid_input"),
        ("q=rope&collection=nope", 404, "not_found"),
        ("q=rope&collection=Bad%20Name", 400, "invalid_input"),
    ];
    for (query, status, code) in cases {
        let resp = client
            .get(format!("{}/api/search?{query}", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), *status, "{query}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], *code, "{query}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    let resp = client
        .get(format!("{}/nope", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // without credentials every API endpoint answers 401
    let (status, body) = http.get("/api/search?q=rope", None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");

    // many concurrent searches are all answered
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (client, base, token) = (client.clone(), server.base.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mode = ["bm25", "dense", "hybrid"][i % 3];
            client
                .get(format!("{base}/api/search"))
                .bearer_auth(&token)
                .query(&[("q", "rope length"), ("mode", mode)])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }

    // CORS for the configured origin only
    let preflight = |origin: &'static str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/chat", server.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // request ids, metrics by route, the OpenAPI document
    let resp = client
        .get(format!("{}/api/search?q=rope", server.base))
        .bearer_auth(&token)
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-me-42");
    let resp = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-request-id"].len(),
        32,
        "a fresh id when none is sent"
    );
    // every route has an id and a line in the metrics: MCP and unknown paths too
    for (method, path, status) in [
        (reqwest::Method::POST, "/mcp", 401),
        (reqwest::Method::GET, "/no/such/path", 404),
    ] {
        let resp = client
            .request(method, format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        assert!(resp.headers().contains_key("x-request-id"), "{path}");
    }
    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "lariat_http_requests_total{method=\"GET\",route=\"/api/search\",status=\"200\"}",
        "lariat_http_requests_total{method=\"POST\",route=\"/mcp",
        "lariat_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}",
        "lariat_http_request_duration_seconds_bucket",
        "lariat_retrieval_duration_seconds_count{mode=\"hybrid\"}",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from:\n{metrics}"
        );
    }
    let (status, doc) = http.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    // The document against the router: every method of every documented path is routed, and no
    // other method of those paths is (an unrouted method answers 405 before any authentication).
    let mut wrong = Vec::new();
    let mut routed = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let url = path
            .replace("{name}", "rodeo")
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{user_id}", "00000000-0000-0000-0000-000000000000");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let documented = ops.get(method.to_ascii_lowercase()).is_some();
            let status = http
                .client
                .request(method.parse().unwrap(), format!("{}{url}", http.base))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            let is_routed = status != 405 && status != 404;
            routed += usize::from(is_routed);
            if documented != is_routed {
                wrong.push(format!(
                    "{method} {path}: documented {documented}, answered {status}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the document and the router differ:\n{}",
        wrong.join("\n")
    );
    assert!(routed >= 30, "only {routed} routes documented");
    let (status, ready) = http.get("/readyz", None).await;
    assert_eq!(
        ready,
        serde_json::json!({"status": "ready"}),
        "nothing of what is stored"
    );
    assert_eq!(status, 200);

    // the data dir is held: a second process is refused with a clear message
    let err = l.stderr_of(5, &["ls"]);
    assert!(err.contains("in use by another lariat process"), "{err}");
}
