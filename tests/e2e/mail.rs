//! Password recovery by e-mail against a real SMTP server: the PyPI `aiosmtpd` sink, its mail read
//! back with Python's own e-mail parser, and the links in it followed.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::serve::{Api, PASSWORD, Server, create_admin};
use crate::support::Lariat;

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
        let out = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/read_maildir.py"))
            .arg(&maildir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits (at most 20 s) for the `n`th message (from 1) to `to` and returns it.
    async fn nth_to(&self, to: &str, n: usize) -> Value {
        let started = Instant::now();
        loop {
            let messages: Vec<Value> = self
                .messages()
                .into_iter()
                .filter(|m| m["to"] == to)
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

/// The reset token in a message's link to `http://lariat.test/reset?token=…`.
fn token_in(text: &str) -> String {
    let start = text
        .find("http://lariat.test/reset?token=")
        .unwrap_or_else(|| panic!("no reset link in {text:?}"))
        + "http://lariat.test/reset?token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[tokio::test]
async fn a_password_is_reset_with_the_link_mailed_once_and_the_old_sessions_end() {
    let sink = SmtpSink::start();
    let l = Lariat::new()
        .with_env("LARIAT_MAIL__SMTP_HOST", "127.0.0.1")
        .with_env("LARIAT_MAIL__SMTP_PORT", &sink.port.to_string())
        .with_env("LARIAT_MAIL__TLS", "none")
        .with_env("LARIAT_MAIL__FROM", "Lariat <noreply@lariat.test>")
        .with_env("LARIAT_MAIL__PUBLIC_URL", "http://lariat.test")
        .with_env("LARIAT_AUTH__RESET_PER_HOUR_EMAIL", "3");
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let email = "kim@example.com";
    let session = api.user(email).await;

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
    let mail = sink.nth_to(email, 1).await;
    assert_eq!(mail["from"], "Lariat <noreply@lariat.test>");
    assert_eq!(mail["subject"], "Reset your Lariat password");
    let token = token_in(mail["text"].as_str().unwrap());
    assert_eq!(token_in(mail["html"].as_str().unwrap()), token);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.messages().len(),
        1,
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
    let notice = sink.nth_to(email, 2).await;
    assert_eq!(notice["subject"], "Your Lariat password was changed");

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
    api.user(other).await;
    let page = form("/forgot", &[("email", other)]).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("is on its way"));
    let mail = sink.nth_to(other, 1).await;
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
    let admin = api.user("admin@example.com").await;
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
    // (the second was the notice of the reset above)
    let mail = sink.nth_to(other, 3).await;
    assert_eq!(mail["subject"], "Reset your Lariat password");
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
        if log.contains("MAIL NOT SENT") {
            assert!(log.contains("http://lariat.test/reset?token=lrr_"), "{log}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
