//! Password recovery by e-mail against a real SMTP server: the PyPI `aiosmtpd` sink, its mail read
//! back with Python's own e-mail parser, and the links in it followed.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::serve::{Api, PASSWORD, Server, create_admin};
use crate::support::{Lariat, corpus_dir};

/// `python3 -m aiosmtpd` delivering into a Maildir, for as long as this lives.
struct SmtpSink {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl SmtpSink {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (make test-deps)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not start: is it installed (make test-deps)?"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        SmtpSink { child, dir, port }
    }

    fn messages(&self) -> Vec<Value> {
        let maildir = self.dir.path().join("mail");
        if !maildir.join("new").exists() {
            return Vec::new();
        }
        crate::support::json_output(
            Command::new("python3")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/read_maildir.py"))
                .arg(&maildir),
        )
        .as_array()
        .unwrap()
        .clone()
    }

    /// Waits (at most 20 s) for the `n`th message (from 1) to `to` with this subject and
    /// returns it.
    async fn nth(&self, to: &str, subject: &str, n: usize) -> Value {
        let started = Instant::now();
        loop {
            let messages: Vec<Value> = self
                .messages()
                .into_iter()
                .filter(|m| m["to"] == to && m["subject"] == subject)
                .collect();
            if messages.len() >= n {
                return messages[n - 1].clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "message {n} to {to} never arrived: {messages:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const RESET: &str = "Reset your Lariat password";
const CHANGED: &str = "Your Lariat password was changed";
const VERIFY: &str = "Confirm your e-mail address for Lariat";
const NEW_EMAIL: &str = "Confirm your new e-mail address for Lariat";
const EMAIL_CHANGED: &str = "Your Lariat account's e-mail address was changed";
const REMOVED: &str = "Sign-ins removed from your Lariat account";
const TAKEN: &str = "Someone tried to sign up to Lariat with your address";

/// The token in a message's link to `http://lariat.test/PAGE?token=…`.
fn link_token(text: &str, page: &str) -> String {
    let link = format!("http://lariat.test/{page}?token=");
    let start = text
        .find(&link)
        .unwrap_or_else(|| panic!("no {page} link in {text:?}"))
        + link.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn token_in(text: &str) -> String {
    link_token(text, "reset")
}

/// Signs up, follows the verification link mailed to the sink, and signs in: the access token.
async fn verified_user(api: &Api, sink: &SmtpSink, email: &str) -> String {
    api.sign_up(email).await;
    let mail = sink.nth(email, VERIFY, 1).await;
    let token = link_token(mail["text"].as_str().unwrap(), "verify");
    let (s, b) = api
        .post("/api/auth/verify", None, json!({"token": token}))
        .await;
    assert_eq!(s, 200, "{b}");
    api.signin(email).await
}

/// Lariat sending to the sink, links pointing at `http://lariat.test`.
fn mailing(sink: &SmtpSink) -> Lariat {
    Lariat::new()
        .with_env("LARIAT_MAIL__SMTP_HOST", "127.0.0.1")
        .with_env("LARIAT_MAIL__SMTP_PORT", &sink.port.to_string())
        .with_env("LARIAT_MAIL__TLS", "none")
        .with_env("LARIAT_MAIL__FROM", "Lariat <noreply@lariat.test>")
        .with_env("LARIAT_MAIL__PUBLIC_URL", "http://lariat.test")
}

#[tokio::test]
async fn a_password_is_reset_with_the_link_mailed_once_and_the_old_sessions_end() {
    let sink = SmtpSink::start();
    let l = mailing(&sink).with_env("LARIAT_AUTH__RESET_PER_HOUR_EMAIL", "3");
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let email = "kim@example.com";
    let session = api.unverified_user(email).await;

    // the same answer for an account and for no account; only the account gets mail
    for address in ["nobody@example.com", email] {
        let (s, b) = api
            .post("/api/auth/password-reset", None, json!({"email": address}))
            .await;
        assert_eq!(s, 202, "{b}");
    }
    let (s, _) = api
        .post(
            "/api/auth/password-reset",
            None,
            json!({"email": "not an address"}),
        )
        .await;
    assert_eq!(s, 400);
    let mail = sink.nth(email, RESET, 1).await;
    assert_eq!(mail["from"], "Lariat <noreply@lariat.test>");
    let token = token_in(mail["text"].as_str().unwrap());
    assert_eq!(token_in(mail["html"].as_str().unwrap()), token);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !sink
            .messages()
            .iter()
            .any(|m| m["to"] == "nobody@example.com"),
        "no mail for an address without an account"
    );

    // forged and malformed tokens, and a refused password, change nothing
    let confirm = |token: &str, password: &str| json!({"token": token, "new_password": password});
    let new_password = "a freshly chosen passphrase";
    for body in [
        confirm("lrr_00000000000000000000000000000000", new_password),
        confirm("garbage", new_password),
        confirm(&"lrr_0".repeat(100), new_password),
        confirm(&token, "short"),
    ] {
        let (s, b) = api
            .post("/api/auth/password-reset/confirm", None, body)
            .await;
        assert_eq!(s, 400, "{b}");
    }
    assert_eq!(api.get("/api/auth/me", Some(&session)).await.0, 200);

    // the link sets the password once; every session ends; the address hears of it
    let (s, b) = api
        .post(
            "/api/auth/password-reset/confirm",
            None,
            confirm(&token, new_password),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(api.get("/api/auth/me", Some(&session)).await.0, 401);
    let signin = |password: &str| json!({"email": email, "password": password});
    assert_eq!(
        api.post("/api/auth/signin", None, signin(PASSWORD)).await.0,
        401
    );
    assert_eq!(
        api.post("/api/auth/signin", None, signin(new_password))
            .await
            .0,
        200
    );
    let (s, b) = api
        .post(
            "/api/auth/password-reset/confirm",
            None,
            confirm(&token, "yet another passphrase"),
        )
        .await;
    assert_eq!(s, 400, "a used link: {b}");
    sink.nth(email, CHANGED, 1).await;

    // requests per e-mail address are limited, for an account and for no account alike
    for address in [email, "nobody@example.com"] {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let body = json!({"email": address});
            statuses.push(api.post("/api/auth/password-reset", None, body).await.0);
        }
        assert_eq!(statuses.last(), Some(&429), "{address}: {statuses:?}");
    }

    // the pages: ask for a link, follow it, choose a password, sign in
    let form = |path: &str, body: &[(&str, &str)]| {
        api.client
            .request(Method::POST, format!("{}{path}", api.base))
            .header("origin", &api.base)
            .form(body)
            .send()
    };
    let other = "lee@example.com";
    api.unverified_user(other).await;
    let page = form("/forgot", &[("email", other)]).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("is on its way"));
    let mail = sink.nth(other, RESET, 1).await;
    let token = token_in(mail["text"].as_str().unwrap());
    let page = api
        .client
        .get(format!("{}/reset?token={token}", api.base))
        .send()
        .await
        .unwrap();
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!("value=\"{token}\""))
    );
    let done = form(
        "/reset",
        &[("token", &token), ("new_password", new_password)],
    )
    .await
    .unwrap();
    assert_eq!(done.url().path(), "/signin", "redirected to sign in");
    let again = form(
        "/reset",
        &[("token", &token), ("new_password", new_password)],
    )
    .await
    .unwrap();
    assert_eq!(again.status(), 400);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("invalid, used or expired")
    );
    let signin = json!({"email": other, "password": new_password});
    assert_eq!(api.post("/api/auth/signin", None, signin).await.0, 200);

    // an admin mails a user a link (only an admin may); the user still chooses the password
    let admin = api.signin("admin@example.com").await;
    let lee = api.user_id(&admin, other).await;
    let path = format!("/api/admin/users/{lee}/password-reset");
    let (s, _) = api
        .post(
            &path,
            Some(&session_of(&api, other, new_password).await),
            json!({}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, b) = api.post(&path, Some(&admin), json!({})).await;
    assert_eq!(s, 202, "{b}");
    sink.nth(other, RESET, 2).await;
    let (s, _) = api
        .post(
            "/api/admin/users/no-such-user/password-reset",
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, 404);
}

async fn session_of(api: &Api, email: &str, password: &str) -> String {
    let (_, pair) = api
        .post(
            "/api/auth/signin",
            None,
            json!({"email": email, "password": password}),
        )
        .await;
    pair["access_token"].as_str().unwrap().to_owned()
}

/// Without SMTP the server logs each message, marked, link included.
#[tokio::test]
async fn without_smtp_the_link_is_logged() {
    let l = Lariat::new().with_env("LARIAT_MAIL__PUBLIC_URL", "http://lariat.test");
    let server = Server::start(&l);
    let api = Api::new(&server);
    api.user("max@example.com").await;
    let (s, _) = api
        .post(
            "/api/auth/password-reset",
            None,
            json!({"email": "max@example.com"}),
        )
        .await;
    assert_eq!(s, 202);
    let started = Instant::now();
    loop {
        let log = server.log();
        if log.contains("http://lariat.test/reset?token=lrr_") {
            assert!(log.contains("MAIL NOT SENT"), "{log}");
            assert!(
                log.contains("http://lariat.test/verify?token=lrv_"),
                "{log}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A POST of a page's form, the way the browser sends it (same origin), redirects not followed.
async fn submit(api: &Api, path: &str, body: &[(&str, &str)]) -> reqwest::Response {
    submit_as(api, None, path, body).await
}

/// The same from a browser signed in with the access token `session`, when given.
async fn submit_as(
    api: &Api,
    session: Option<&str>,
    path: &str,
    body: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}{path}", api.base))
        .header("origin", &api.base);
    if let Some(token) = session {
        request = request.header("cookie", format!("lariat_access={token}"));
    }
    request.form(body).send().await.unwrap()
}

#[tokio::test]
async fn an_address_is_verified_by_its_link_and_moved_by_a_confirmed_one() {
    let sink = SmtpSink::start();
    let l = mailing(&sink)
        .with_env("LARIAT_AUTH__UNVERIFIED_CAN_CHAT", "false")
        .with_env("LARIAT_AUTH__VERIFY_PER_HOUR_ACCOUNT", "3")
        .with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "1000");
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let email = "jo@example.com";
    let session = api.unverified_user(email).await;
    let ask = json!({"message": "How long is a heading rope?"});

    // unverified: signed in, may read and search, may not ask
    let (s, me) = api.get("/api/auth/me", Some(&session)).await;
    assert_eq!((s, &me["user"]["email_verified"]), (200, &json!(false)));
    let (s, b) = api.post("/api/chat", Some(&session), ask.clone()).await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("confirm your e-mail address")
    );
    assert_eq!(api.get("/api/collections", Some(&session)).await.0, 200);
    // …and may make no API key: whoever signed up may not own the address
    let (s, b) = api
        .post("/api/keys", Some(&session), json!({"name": "k"}))
        .await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("confirm your e-mail address before making API keys"),
        "{b}"
    );
    let page = submit_as(
        &api,
        Some(&session),
        "/account/keys",
        &[("name", "k"), ("search", "on")],
    )
    .await;
    assert_eq!(page.status(), 403);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("confirm your e-mail address before making API keys")
    );
    let browser = api.signin(email).await;

    // the sign-up's link and a resent one; resends are limited
    let first = link_token(
        sink.nth(email, VERIFY, 1).await["text"].as_str().unwrap(),
        "verify",
    );
    assert!(first.starts_with("lrv_"), "{first}");
    let (s, b) = api
        .post("/api/auth/verify/resend", Some(&session), json!({}))
        .await;
    assert_eq!(s, 202, "{b}");
    let second = link_token(
        sink.nth(email, VERIFY, 2).await["text"].as_str().unwrap(),
        "verify",
    );
    assert_ne!(first, second);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            api.post("/api/auth/verify/resend", Some(&session), json!({}))
                .await
                .0,
        );
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    // forged, malformed and wrong-purpose tokens do nothing
    for token in [
        "lrv_00000000000000000000000000000000".to_owned(),
        "garbage".to_owned(),
        "lrv_0".repeat(100),
        first.replace("lrv_", "lre_"),
    ] {
        let (s, b) = api
            .post("/api/auth/verify", None, json!({"token": token}))
            .await;
        assert_eq!(s, 400, "{token}: {b}");
        let (s, _) = api
            .post("/api/auth/email/confirm", None, json!({"token": token}))
            .await;
        assert_eq!(s, 400, "{token}");
    }
    let (s, _) = api
        .post("/api/auth/email/confirm", None, json!({"token": first}))
        .await;
    assert_eq!(
        s, 400,
        "a verification link does not confirm an address change"
    );

    // the link's page shows a button (fetching it uses nothing up); the button verifies
    let page = api
        .client
        .get(format!("{}/verify?token={first}", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("value=\"{first}\"")), "{page}");
    // followed in a browser signed in to the account: that browser's session stays, every
    // other one made before the proof ends, and the owner hears of it
    let done = submit_as(&api, Some(&browser), "/verify", &[("token", &first)]).await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/account?done=verified");
    let again = submit(&api, "/verify", &[("token", &first)]).await;
    assert_eq!(again.status(), 400);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("invalid, used or expired")
    );
    assert_eq!(api.get("/api/auth/me", Some(&session)).await.0, 401);
    let notice = sink.nth(email, REMOVED, 1).await;
    assert!(
        notice["text"]
            .as_str()
            .unwrap()
            .contains("1 session signed out"),
        "{notice}"
    );
    let session = browser;
    let (_, me) = api.get("/api/auth/me", Some(&session)).await;
    assert_eq!(me["user"]["email_verified"], true);
    assert_eq!(api.post("/api/chat", Some(&session), ask).await.0, 200);
    let (s, _) = api
        .post("/api/auth/verify/resend", Some(&session), json!({}))
        .await;
    assert_eq!(s, 409, "already verified");

    // moving to another address: the password, a free and valid address, from a session
    let change = |to: &str, password: &str| json!({"new_email": to, "password": password});
    let (_, key) = api
        .post("/api/keys", Some(&session), json!({"name": "k"}))
        .await;
    let key = key["key"].as_str().unwrap().to_owned();
    for (body, token, want) in [
        (
            change("jo.new@example.com", "not the password"),
            &session,
            400,
        ),
        (change("admin@example.com", PASSWORD), &session, 409),
        (change("not an address", PASSWORD), &session, 400),
        (change(email, PASSWORD), &session, 400),
        (change("ops@lariat.local", PASSWORD), &session, 400),
        (change("jo.new@example.com", PASSWORD), &key, 403),
    ] {
        let (s, b) = api.post("/api/auth/email", Some(token), body.clone()).await;
        assert_eq!(s, want, "{body}: {b}");
    }
    let (s, b) = api
        .post(
            "/api/auth/email",
            Some(&session),
            change("Jo.New@Example.com", PASSWORD),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let new_email = "jo.new@example.com";
    let mail = sink.nth(new_email, NEW_EMAIL, 1).await;
    assert!(
        mail["text"].as_str().unwrap().contains(email),
        "names the old address"
    );
    let token = link_token(mail["text"].as_str().unwrap(), "confirm-email");
    // nothing changes until the link is followed
    let signin = |address: &str| json!({"email": address, "password": PASSWORD});
    assert_eq!(
        api.post("/api/auth/signin", None, signin(email)).await.0,
        200
    );
    let (s, user) = api
        .post("/api/auth/email/confirm", None, json!({"token": token}))
        .await;
    assert_eq!(s, 200, "{user}");
    assert_eq!(
        (user["email"].as_str(), user["email_verified"].as_bool()),
        (Some(new_email), Some(true))
    );
    let (s, _) = api
        .post("/api/auth/email/confirm", None, json!({"token": token}))
        .await;
    assert_eq!(s, 400, "used once");
    assert!(
        sink.nth(email, EMAIL_CHANGED, 1).await["text"]
            .as_str()
            .unwrap()
            .contains(new_email)
    );
    assert_eq!(
        api.post("/api/auth/signin", None, signin(email)).await.0,
        401
    );
    assert_eq!(
        api.post("/api/auth/signin", None, signin(new_email))
            .await
            .0,
        200
    );
    // a verification link for the old address no longer verifies anything
    let (s, _) = api
        .post("/api/auth/verify", None, json!({"token": second}))
        .await;
    assert_eq!(s, 400);
    let (_, me) = api.get("/api/auth/me", Some(&session)).await;
    assert_eq!(me["user"]["email"], new_email, "the session goes on");
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn your_data_is_exported_then_erased_leaving_nothing_of_it_behind() {
    let sink = SmtpSink::start();
    let l = mailing(&sink).with_env("LARIAT_CHAT__CACHE_ENABLED", "true");
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.signin("admin@example.com").await;
    let other = api.unverified_user("other@example.com").await;
    let email = "zed@example.com";
    let zed = verified_user(&api, &sink, email).await;
    let marker = "quokkazebra";
    let ask = json!({"message": format!("How long is the heading rope {marker} uses?")});
    let (s, _) = api.post("/api/chat", Some(&zed), ask).await;
    assert_eq!(s, 200);
    let (_, key) = api
        .post(
            "/api/keys",
            Some(&zed),
            json!({"name": format!("{marker} key")}),
        )
        .await;
    let secret = key["key"].as_str().unwrap().to_owned();

    // the export: built in the background, mailed, downloaded once ready, only by its owner
    let (s, export) = api
        .post("/api/account/exports", Some(&zed), json!({}))
        .await;
    assert_eq!(
        (s, export["status"].as_str()),
        (202, Some("building")),
        "{export}"
    );
    let id = export["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.post("/api/account/exports", Some(&secret), json!({}))
            .await
            .0,
        403
    );
    let started = Instant::now();
    loop {
        let (_, list) = api.get("/api/account/exports", Some(&zed)).await;
        if list["exports"][0]["status"] == "ready" {
            assert!(list["exports"][0]["size_bytes"].as_i64().unwrap() > 100);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sink.nth(email, "Your Lariat data export is ready", 1).await;
    let path = format!("/api/account/exports/{id}");
    assert_eq!(api.get(&path, Some(&other)).await.0, 404);
    assert_eq!(api.get(&path, Some(&secret)).await.0, 403);
    let (s, archive) = api.get(&path, Some(&zed)).await;
    assert_eq!(s, 200);
    assert_eq!(archive["profile"]["email"], email);
    let text = archive.to_string();
    assert!(
        text.contains(&format!("heading rope {marker}")),
        "the question"
    );
    assert_eq!(archive["api_keys"][0]["name"], format!("{marker} key"));
    assert!(!text.contains(&secret), "no key's secret");
    assert!(archive["sessions"].as_array().unwrap().len() == 1);
    let events: Vec<&str> = archive["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"signed_in") && events.contains(&"key_created"),
        "{events:?}"
    );

    // erasure: the password, from a session; only admins erase others
    let erase = |password: &str| json!({"password": password});
    for (token, body, want) in [
        (&zed, erase("not it"), 400),
        (&secret, erase(PASSWORD), 403),
    ] {
        let (s, b) = api
            .call(Method::DELETE, "/api/account", Some(token), Some(body))
            .await;
        assert_eq!(s, want, "{b}");
    }
    let zed_id = api.user_id(&admin, email).await;
    let other_path = format!("/api/admin/users/{zed_id}/erase");
    assert_eq!(api.post(&other_path, Some(&other), json!({})).await.0, 403);
    let (s, b) = api
        .call(
            Method::DELETE,
            "/api/account",
            Some(&zed),
            Some(erase(PASSWORD)),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(api.get("/api/auth/me", Some(&zed)).await.0, 401);
    assert_eq!(api.get("/api/auth/me", Some(&secret)).await.0, 401);
    let signin = json!({"email": email, "password": PASSWORD});
    assert_eq!(api.post("/api/auth/signin", None, signin).await.0, 401);
    let (_, log) = api
        .get(&format!("/api/admin/audit?user_id={zed_id}"), Some(&admin))
        .await;
    assert_eq!(log["entries"][0]["event"], "erased");
    assert!(!log.to_string().contains(email) && !log.to_string().contains(marker));
    // the address is free again
    let (s, _) = api
        .post(
            "/api/auth/signup",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201);
    // an admin erases another user
    let other_id = api.user_id(&admin, "other@example.com").await;
    let (s, _) = api
        .post(
            &format!("/api/admin/users/{other_id}/erase"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(api.get("/api/auth/me", Some(&other)).await.0, 401);
    api.unverified_user("third@example.com").await;
    drop(server);
    // and the operator, from the command line
    let out = l.expect(0, &["admin", "erase", "third@example.com"]);
    assert!(out.contains("is erased"), "{out}");
    l.expect(3, &["admin", "erase", "nobody@example.com"]);

    // nothing of the question or the key's name is left in any file of the data dir
    let left = files_holding(&l.data_dir(), marker.as_bytes());
    assert!(left.is_empty(), "{marker} is still in {left:?}");
}

/// An admin's change to the user with this address.
async fn change_user(api: &Api, admin: &str, email: &str, change: Value) {
    let id = api.user_id(admin, email).await;
    let (s, b) = api
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{id}"),
            Some(admin),
            Some(change),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

/// Asks for a reset link for `email` and follows it, choosing `password`.
async fn reset_by_mail(api: &Api, sink: &SmtpSink, email: &str, n: usize, password: &str) {
    let (s, b) = api
        .post("/api/auth/password-reset", None, json!({"email": email}))
        .await;
    assert_eq!(s, 202, "{b}");
    let token = token_in(sink.nth(email, RESET, n).await["text"].as_str().unwrap());
    let (s, b) = api
        .post(
            "/api/auth/password-reset/confirm",
            None,
            json!({"token": token, "new_password": password}),
        )
        .await;
    assert_eq!(s, 204, "{b}");
}

#[tokio::test]
async fn an_account_cannot_be_claimed_before_its_owner_arrives() {
    let sink = SmtpSink::start();
    let l = mailing(&sink);
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.signin("admin@example.com").await;

    // someone signs up with an address they do not own and stays unverified: no API key
    let victim = "victim@corp.example";
    let attacker = api.unverified_user(victim).await;
    // signing up again answers as for a free address; the address's owner hears of it
    api.sign_up(victim).await;
    sink.nth(victim, TAKEN, 1).await;
    let (s, b) = api
        .post("/api/keys", Some(&attacker), json!({"name": "backdoor"}))
        .await;
    assert_eq!(s, 403, "{b}");

    // credentials made while the address counted as verified (an admin vouched, then withdrew
    // it) are what a taken-over account would hold from before
    change_user(&api, &admin, victim, json!({"email_verified": true})).await;
    let (s, key) = api
        .post("/api/keys", Some(&attacker), json!({"name": "backdoor"}))
        .await;
    assert_eq!(s, 201, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();
    change_user(&api, &admin, victim, json!({"email_verified": false})).await;
    assert_eq!(api.get("/api/auth/me", Some(&key)).await.0, 200);

    // the owner arrives through the mailed reset link: the first proof of the mailbox removes
    // everything made before it, and the owner is told what
    let owner_password = "the real owner's passphrase";
    reset_by_mail(&api, &sink, victim, 1, owner_password).await;
    assert_eq!(api.get("/api/auth/me", Some(&attacker)).await.0, 401);
    assert_eq!(api.get("/api/auth/me", Some(&key)).await.0, 401);
    let notice = sink.nth(victim, REMOVED, 1).await;
    let text = notice["text"].as_str().unwrap();
    assert!(text.contains("1 API key revoked"), "{text}");
    assert!(text.contains("session"), "{text}");
    let signin = json!({"email": victim, "password": owner_password});
    let (s, pair) = api.post("/api/auth/signin", None, signin).await;
    assert_eq!(s, 200, "{pair}");
    let owner = pair["access_token"].as_str().unwrap().to_owned();
    let (_, me) = api.get("/api/auth/me", Some(&owner)).await;
    assert_eq!(me["user"]["email_verified"], true, "the reset proved it");

    // a reset of a verified account: the password may have leaked, so its keys go too
    let (s, key) = api
        .post("/api/keys", Some(&owner), json!({"name": "laptop"}))
        .await;
    assert_eq!(s, 201, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();
    reset_by_mail(&api, &sink, victim, 2, "another owner passphrase").await;
    assert_eq!(api.get("/api/auth/me", Some(&key)).await.0, 401);
    assert!(
        sink.nth(victim, REMOVED, 2).await["text"]
            .as_str()
            .unwrap()
            .contains("1 API key revoked")
    );
    let (_, log) = api
        .get("/api/admin/audit?event=reset_used", Some(&admin))
        .await;
    let firsts: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["detail"]["first_proof"])
        .collect();
    assert_eq!(firsts, [&json!(false), &json!(true)], "{log}");

    // once delivered, no message's body (reset and verification links) stays in the database
    let started = Instant::now();
    let bodies = loop {
        let (waiting, bodies) = outbox(&l);
        if waiting == 0 {
            break bodies;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{waiting} unsent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(bodies.len() >= 6, "{bodies:?}");
    assert!(bodies.iter().all(String::is_empty), "{bodies:?}");
}

/// How many outbox messages wait, and the bodies of the others, read from the SQLite file by
/// Python's own sqlite3 (read-only, beside the running server).
fn outbox(l: &Lariat) -> (u64, Vec<String>) {
    let script = "waiting = db.execute('SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL \
        AND failed_at IS NULL').fetchone()[0]\n\
        done = [t + h for t, h in db.execute('SELECT text_body, html_body FROM mail_outbox \
        WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL')]\n\
        print(json.dumps([waiting, done]))";
    let found = crate::support::sqlite_json(&l.data_dir().join("lariat.db"), script, &[]);
    serde_json::from_value(found).unwrap()
}

#[tokio::test]
async fn an_operator_may_keep_keys_across_a_reset_of_a_verified_account() {
    let sink = SmtpSink::start();
    let l = mailing(&sink).with_env("LARIAT_AUTH__RESET_REVOKES_KEYS", "false");
    let server = Server::start(&l);
    let api = Api::new(&server);
    let email = "kept@example.com";
    let session = verified_user(&api, &sink, email).await;
    let (s, key) = api
        .post("/api/keys", Some(&session), json!({"name": "cron"}))
        .await;
    assert_eq!(s, 201, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();
    reset_by_mail(&api, &sink, email, 1, "a brand new passphrase").await;
    assert_eq!(api.get("/api/auth/me", Some(&session)).await.0, 401);
    assert_eq!(api.get("/api/auth/me", Some(&key)).await.0, 200);
}

#[tokio::test]
async fn outstanding_links_stop_working_when_a_credential_changes() {
    let sink = SmtpSink::start();
    let l = mailing(&sink);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let email = "lin@example.com";
    let session = verified_user(&api, &sink, email).await;
    let ask_reset = || async {
        let (s, b) = api
            .post("/api/auth/password-reset", None, json!({"email": email}))
            .await;
        assert_eq!(s, 202, "{b}");
    };
    let confirm = |token: String| {
        let api = api.clone();
        async move {
            api.post(
                "/api/auth/password-reset/confirm",
                None,
                json!({"token": token, "new_password": "a reset passphrase"}),
            )
            .await
            .0
        }
    };

    // a reset link mailed before the password changed no longer works
    ask_reset().await;
    let before = token_in(sink.nth(email, RESET, 1).await["text"].as_str().unwrap());
    let (s, b) = api
        .post(
            "/api/auth/password",
            Some(&session),
            json!({"current_password": PASSWORD, "new_password": "a changed passphrase"}),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(confirm(before).await, 400);

    // nor one mailed before the address changed
    ask_reset().await;
    let before = token_in(sink.nth(email, RESET, 2).await["text"].as_str().unwrap());
    let (s, b) = api
        .post(
            "/api/auth/email",
            Some(&session),
            json!({"new_email": "lin.new@example.com", "password": "a changed passphrase"}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let mail = sink.nth("lin.new@example.com", NEW_EMAIL, 1).await;
    let change = link_token(mail["text"].as_str().unwrap(), "confirm-email");
    let (s, b) = api
        .post("/api/auth/email/confirm", None, json!({"token": change}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(confirm(before).await, 400);

    // and an address change still waiting dies with a password reset
    let (s, _) = api
        .post(
            "/api/auth/email",
            Some(&session),
            json!({"new_email": "lin.third@example.com", "password": "a changed passphrase"}),
        )
        .await;
    assert_eq!(s, 202);
    let mail = sink.nth("lin.third@example.com", NEW_EMAIL, 1).await;
    let pending = link_token(mail["text"].as_str().unwrap(), "confirm-email");
    reset_by_mail(&api, &sink, "lin.new@example.com", 1, "a reset passphrase").await;
    let (s, _) = api
        .post("/api/auth/email/confirm", None, json!({"token": pending}))
        .await;
    assert_eq!(s, 400);
}
