//! Single sign-on against a real OpenID provider: npm's `oidc-provider` (OpenID certified), run by
//! `oidc_provider.mjs` with a static client. A cookie-keeping HTTP client plays the browser: it
//! presses Lariat's sign-in button, fills the provider's login and consent screens, and follows
//! the provider's redirect back. Lariat's public URL is `http://lariat.test`, the redirect URI the
//! provider knows; the browser takes the callback's path and query to the server's real address.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::serve::{Api, PASSWORD, Server, create_admin};
use crate::support::{Lariat, node_bin, npm_dir};

const PUBLIC: &str = "http://lariat.test";
const SECRET: &str = "lariat-test-client-secret";

/// The provider, for as long as this lives.
struct OidcProvider {
    child: Child,
    issuer: String,
}

impl OidcProvider {
    fn start() -> Self {
        let dir = npm_dir("LARIAT_TEST_OIDC_DIR", "oidc");
        assert!(
            dir.join("node_modules/oidc-provider/package.json").exists(),
            "oidc-provider is missing at {}: run `make test-deps`",
            dir.display()
        );
        let mut child = Command::new(node_bin())
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/oidc_provider.mjs"))
            .env("LARIAT_TEST_OIDC_DIR", &dir)
            .env(
                "OIDC_REDIRECT_URI",
                format!("{PUBLIC}/auth/oidc/test/callback"),
            )
            .env("OIDC_CLIENT_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let issuer = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("issuer ").map(str::to_owned))
            .expect("the provider prints its issuer");
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        OidcProvider { child, issuer }
    }

    /// Lariat configured with this provider as `test` (every sign-in comes from 127.0.0.1).
    fn lariat(&self) -> Lariat {
        Lariat::new()
            .with_env("LARIAT_AUTH__SIGNIN_PER_MINUTE_ADDRESS", "100000")
            .with_env("LARIAT_MAIL__PUBLIC_URL", PUBLIC)
            .with_env("LARIAT_AUTH__OIDC__TEST__ISSUER", &self.issuer)
            .with_env("LARIAT_AUTH__OIDC__TEST__CLIENT_ID", "lariat")
            .with_env("LARIAT_AUTH__OIDC__TEST__CLIENT_SECRET", SECRET)
            .with_env("LARIAT_AUTH__OIDC__TEST__DISPLAY_NAME", "Test ID")
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser: keeps cookies, follows no redirect by itself.
struct Browser {
    client: reqwest::Client,
    base: String,
    issuer: String,
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no redirect: {}", resp.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn sets_session(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("lariat_access=ey"))
}

/// The `(name, value)` of every hidden input in a page.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| {
        tag.split(&format!("{name}=\"")).nth(1).map(|rest| {
            rest.split('"')
                .next()
                .unwrap()
                .replace("&amp;", "&")
                .replace("&quot;", "\"")
        })
    };
    html.split("<input")
        .skip(1)
        .map(|rest| rest.split('>').next().unwrap())
        .filter(|tag| attr(tag, "type").as_deref() == Some("hidden"))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
        .collect()
}

/// The value of query parameter `name` in `url`.
fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {url}"))
        .1
}

/// `url` with query parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (path, query) = url.split_once('?').unwrap();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            if k == name {
                (k, value.to_owned())
            } else {
                (k, v)
            }
        })
        .collect();
    format!("{path}?{}", serde_urlencoded::to_string(pairs).unwrap())
}

impl Browser {
    fn new(server: &Server, provider: &OidcProvider) -> Self {
        Browser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            issuer: provider.issuer.clone(),
        }
    }

    /// Posts one of Lariat's forms as its page would.
    async fn submit(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Presses "Sign in with Test ID" on a page that would go on to `next`; returns where Lariat
    /// sends the browser.
    async fn press_sign_in_for(&self, next: &str) -> String {
        let resp = self
            .submit("/auth/oidc/test/start", &[("next", next)])
            .await;
        assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
        let to = location(&resp);
        assert!(to.starts_with(&self.issuer), "{to}");
        to
    }

    async fn press_sign_in(&self) -> String {
        self.press_sign_in_for("/chat").await
    }

    /// Signs in at the provider as `login` (login and consent screens) from `authorize_url`;
    /// returns the URL the provider sends the browser back to.
    async fn at_provider(&self, authorize_url: &str, login: &str) -> String {
        // the provider remembers who signed in last: have it ask every time
        let mut url = format!("{authorize_url}&prompt=login");
        for _ in 0..12 {
            let resp = self.client.get(&url).send().await.unwrap();
            let resp = if resp.status().is_redirection() {
                resp
            } else {
                let status = resp.status();
                let html = resp.text().await.unwrap();
                assert_eq!(status, 200, "{html}");
                let action = html
                    .split("action=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("no form at the provider: {html}"));
                // what a browser sends: the form's hidden fields (an auto-submitted one too),
                // and the login screen's two boxes
                let mut form = hidden_inputs(&html);
                if html.contains("name=\"login\"") {
                    form.push(("login".into(), login.into()));
                    form.push(("password".into(), "any".into()));
                }
                let resp = self
                    .client
                    .post(self.absolute(action))
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    resp.status().is_redirection(),
                    "the provider refused {form:?}: {}",
                    resp.text().await.unwrap()
                );
                resp
            };
            let next = location(&resp);
            if next.starts_with(PUBLIC) {
                return next;
            }
            url = self.absolute(&next);
        }
        panic!("the provider never sent the browser back");
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.issuer)
        } else {
            url.to_owned()
        }
    }

    /// Follows the provider's redirect back to Lariat.
    async fn back(&self, callback: &str) -> reqwest::Response {
        let path = callback.strip_prefix(PUBLIC).unwrap();
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// The whole dance for `login`; returns Lariat's answer to the callback.
    async fn sign_in(&self, login: &str) -> reqwest::Response {
        let authorize = self.press_sign_in().await;
        let callback = self.at_provider(&authorize, login).await;
        self.back(&callback).await
    }

    /// A JSON call carried by this browser's session cookie.
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("origin", &self.base);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A page's HTML, as this browser sees it.
    async fn page(&self, path: &str) -> String {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        resp.text().await.unwrap()
    }

    async fn me(&self) -> (u16, Value) {
        self.api(reqwest::Method::GET, "/api/auth/me", None).await
    }

    async fn identities(&self) -> Vec<Value> {
        let (s, body) = self
            .api(reqwest::Method::GET, "/api/auth/identities", None)
            .await;
        assert_eq!(s, 200, "{body}");
        body["identities"].as_array().unwrap().clone()
    }

    async fn unlink(&self, id: &str) -> (u16, Value) {
        let path = format!("/api/auth/identities/{id}");
        self.api(reqwest::Method::DELETE, &path, None).await
    }
}

/// A failed callback: the sign-in page with the reason, no session.
async fn refused(resp: reqwest::Response, status: u16, why: &str) {
    assert_eq!(resp.status(), status);
    assert!(!sets_session(&resp));
    let page = resp.text().await.unwrap();
    assert!(page.contains(why), "{why:?} not in {page}");
}

async fn admin_token(api: &Api) -> String {
    let (s, pair) = api
        .post(
            "/api/auth/signin",
            None,
            json!({"email": "admin@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200, "{pair}");
    pair["access_token"].as_str().unwrap().to_owned()
}

/// An admin's change to a user; returns the user's id.
async fn change_user(api: &Api, admin: &str, email: &str, change: Value) -> String {
    let id = api.user_id(admin, email).await;
    let (s, body) = api
        .call(
            reqwest::Method::PATCH,
            &format!("/api/admin/users/{id}"),
            Some(admin),
            Some(change),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    id
}

async fn events(api: &Api, admin: &str, event: &str) -> Vec<Value> {
    let (s, page) = api
        .get(&format!("/api/admin/audit?event={event}"), Some(admin))
        .await;
    assert_eq!(s, 200, "{page}");
    page["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn single_sign_on_opens_signs_in_and_links_accounts_and_refuses_forgeries() {
    let provider = OidcProvider::start();
    let l = provider.lariat();
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = admin_token(&api).await;

    // the sign-in page offers the provider; the API lists it
    let (s, providers) = api.get("/api/auth/providers", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        providers["providers"],
        json!([{"name": "test", "display_name": "Test ID"}])
    );
    let page = reqwest::get(format!("{}/signin", server.base))
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains(&format!("form-action 'self' {}", provider.issuer)),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains("Sign in with Test ID"));

    // hostile and broken starts and callbacks
    let stranger = Browser::new(&server, &provider);
    assert_eq!(
        stranger
            .submit("/auth/oidc/nope/start", &[("next", "/chat")])
            .await
            .status(),
        404
    );
    let cross_site = stranger
        .client
        .post(format!("{}/auth/oidc/test/start", server.base))
        .header("origin", "https://evil.example")
        .form(&[("next", "/chat")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    refused(
        stranger
            .back(&format!("{PUBLIC}/auth/oidc/test/callback?code=x"))
            .await,
        400,
        "sent no state",
    )
    .await;

    // a first sign-in opens a verified account without a password, the identity linked; a
    // next page on another site is never followed
    let ann = Browser::new(&server, &provider);
    let authorize = ann.press_sign_in_for("//evil.example/x").await;
    for p in ["code_challenge", "nonce", "state"] {
        assert!(!param(&authorize, p).is_empty());
    }
    assert_eq!(param(&authorize, "code_challenge_method"), "S256");
    let callback = ann.at_provider(&authorize, "ann@example.com").await;
    let resp = ann.back(&callback).await;
    assert_eq!(resp.status(), 303);
    assert!(sets_session(&resp));
    assert_eq!(location(&resp), "/chat");
    let (s, me) = ann.me().await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["user"]["email"], "ann@example.com");
    assert_eq!(me["user"]["email_verified"], true);
    assert_eq!(me["has_password"], false);
    let ids = ann.identities().await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0]["provider"], "test");
    assert_eq!(ids[0]["issuer"], provider.issuer.as_str());
    assert_eq!(ids[0]["subject"], "ann@example.com");
    let account = ann
        .client
        .get(format!("{}/account", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200, "{}", server.log());
    let account = account.text().await.unwrap();
    assert!(
        account.contains("Your account has no password"),
        "{account}"
    );

    // the same callback again (a replayed state and code) signs no one in
    refused(
        ann.back(&callback).await,
        400,
        "unknown or was already used",
    )
    .await;

    // the code of a finished sign-in, brought back with a new attempt's state, is refused by
    // the provider (used once, and bound to the other attempt's PKCE challenge)
    let fresh = ann.press_sign_in().await;
    let replayed = with_param(&callback, "state", &param(&fresh, "state"));
    refused(ann.back(&replayed).await, 401, "did not accept the sign-in").await;

    // a callback with a state this browser never started, or in another browser
    let authorize = ann.press_sign_in().await;
    let callback = ann.at_provider(&authorize, "ann@example.com").await;
    refused(
        ann.back(&with_param(&callback, "state", "forged-state"))
            .await,
        400,
        "unknown or was already used",
    )
    .await;
    let authorize = ann.press_sign_in().await;
    let callback = ann.at_provider(&authorize, "ann@example.com").await;
    let other = Browser::new(&server, &provider);
    refused(
        other.back(&callback).await,
        400,
        "not started in this browser",
    )
    .await;

    // an ID token minted for another nonce (the authorization request tampered with)
    let authorize = ann.press_sign_in().await;
    let tampered = with_param(&authorize, "nonce", "someone-elses-nonce");
    let callback = ann.at_provider(&tampered, "ann@example.com").await;
    refused(ann.back(&callback).await, 401, "nonce").await;

    // the provider's refusal is passed on
    let authorize = ann.press_sign_in().await;
    let denied = format!(
        "{PUBLIC}/auth/oidc/test/callback?error=access_denied&state={}",
        param(&authorize, "state")
    );
    refused(ann.back(&denied).await, 401, "access_denied").await;

    // an address the provider does not vouch for matches no account and opens none
    let (s, _) = api
        .post(
            "/api/auth/signup",
            None,
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201);
    let bob_id = change_user(
        &api,
        &admin,
        "bob@example.com",
        json!({"email_verified": true}),
    )
    .await;
    let mallory = Browser::new(&server, &provider);
    refused(
        mallory.sign_in("unverified:bob@example.com").await,
        403,
        "did not confirm an e-mail address",
    )
    .await;
    refused(
        mallory.sign_in("noemail:mallory").await,
        403,
        "did not confirm an e-mail address",
    )
    .await;

    // a verified address at the provider and an existing account: never linked by address
    // unless the operator opted in for this provider; the owner links from the account page
    refused(
        mallory.sign_in("bob@example.com").await,
        409,
        "sign in with your password and link Test ID from your account page",
    )
    .await;
    refused(
        mallory.sign_in("admin@example.com").await,
        409,
        "sign in with your password",
    )
    .await;

    // the local account never proved its address: not linked either
    let (s, _) = api
        .post(
            "/api/auth/signup",
            None,
            json!({"email": "cara@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201);
    refused(
        mallory.sign_in("cara@example.com").await,
        409,
        "sign in with your password and link Test ID",
    )
    .await;

    // bob links from his account page, and then signs in with the provider
    let bob = Browser::new(&server, &provider);
    let resp = bob
        .submit(
            "/signin",
            &[("email", "bob@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let resp = bob.submit("/account/identities/test/link", &[]).await;
    let callback = bob.at_provider(&location(&resp), "bob@example.com").await;
    assert_eq!(bob.back(&callback).await.status(), 303);
    let bob_sso = Browser::new(&server, &provider);
    assert_eq!(bob_sso.sign_in("bob@example.com").await.status(), 303);
    let (_, me) = bob_sso.me().await;
    assert_eq!(me["user"]["id"], bob_id.as_str());
    assert_eq!(me["has_password"], true);

    // linking from the account page: cara signs in with her password; until her address is
    // verified she may link nothing (whoever signed up may not own it)
    let cara = Browser::new(&server, &provider);
    let resp = cara
        .submit(
            "/signin",
            &[("email", "cara@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let resp = cara.submit("/account/identities/test/link", &[]).await;
    assert_eq!(resp.status(), 403);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("confirm your e-mail address before linking a sign-in provider")
    );
    let account = cara.page("/account").await;
    assert!(
        account.contains("Verify your address (above) to link a sign-in provider"),
        "{account}"
    );
    change_user(
        &api,
        &admin,
        "cara@example.com",
        json!({"email_verified": true}),
    )
    .await;
    let resp = cara.submit("/account/identities/test/link", &[]).await;
    assert_eq!(resp.status(), 303);
    let callback = cara
        .at_provider(&location(&resp), "cara.work@example.com")
        .await;
    let resp = cara.back(&callback).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/account?done=linked#signin-h");
    let account = cara.page("/account").await;
    assert!(account.contains("cara.work@example.com"), "{account}");
    // …and now signs in with it
    let cara_sso = Browser::new(&server, &provider);
    assert_eq!(
        cara_sso.sign_in("cara.work@example.com").await.status(),
        303
    );
    let (_, me) = cara_sso.me().await;
    assert_eq!(me["user"]["email"], "cara@example.com");

    // an identity linked to one account cannot be linked to another
    let resp = cara.submit("/account/identities/test/link", &[]).await;
    let callback = cara.at_provider(&location(&resp), "ann@example.com").await;
    refused(cara.back(&callback).await, 409, "already linked to another").await;

    // a link finished in a browser signed in as someone else (bob, holding cara's state) is
    // refused
    let resp = cara.submit("/account/identities/test/link", &[]).await;
    let callback = cara.at_provider(&location(&resp), "dan@example.com").await;
    let path = callback.strip_prefix(PUBLIC).unwrap();
    let (_, pair) = api
        .post(
            "/api/auth/signin",
            None,
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    let cookies = format!(
        "lariat_access={}; lariat_sso={}",
        pair["access_token"].as_str().unwrap(),
        param(&callback, "state")
    );
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}{path}", server.base))
        .header("cookie", cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("the account you were linking")
    );

    // cara (with a password) unlinks; ann's only way in cannot be unlinked
    let id = cara.identities().await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(cara.unlink(&id).await.0, 204);
    let id = ann.identities().await[0]["id"].as_str().unwrap().to_owned();
    let (s, body) = ann.unlink(&id).await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only way to sign in")
    );
    // and someone else's identity is not found
    assert_eq!(cara.unlink(&id).await.0, 404);
    // a password change is refused clearly for an account without one
    let (s, body) = ann
        .api(
            reqwest::Method::POST,
            "/api/auth/password",
            Some(json!({"current_password": "x", "new_password": "a brand new password"})),
        )
        .await;
    assert_eq!(s, 409, "{body}");

    // a disabled account is refused at the callback
    change_user(&api, &admin, "ann@example.com", json!({"disabled": true})).await;
    let again = Browser::new(&server, &provider);
    refused(again.sign_in("ann@example.com").await, 401, "disabled").await;

    // the audit log saw it all
    let linked = events(&api, &admin, "identity_linked").await;
    let by: Vec<&str> = linked
        .iter()
        .map(|e| e["detail"]["by"].as_str().unwrap())
        .collect();
    for how in ["sign-up", "account page"] {
        assert!(by.contains(&how), "{by:?}");
    }
    assert_eq!(events(&api, &admin, "identity_unlinked").await.len(), 1);
    let failed = events(&api, &admin, "sign_in_failed").await;
    assert!(failed.iter().any(|e| e["detail"]["method"] == "oidc"));
    let signed_in = events(&api, &admin, "signed_in").await;
    assert!(signed_in.iter().any(|e| e["detail"]["provider"] == "test"));
}

#[tokio::test]
async fn linking_by_address_is_each_providers_opt_in_and_never_for_admins() {
    let provider = OidcProvider::start();
    let l = provider
        .lariat()
        .with_env("LARIAT_AUTH__OIDC__TEST__LINK_BY_EMAIL", "true")
        .with_env(
            "LARIAT_AUTH__OIDC__TEST__ALLOWED_DOMAINS",
            "[\"corp.example\"]",
        );
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = admin_token(&api).await;
    let verified = json!({"email_verified": true});
    let mut ids = Vec::new();
    for email in [
        "dee@corp.example",
        "eve@example.com",
        "boss@corp.example",
        "fay@corp.example",
    ] {
        api.sign_up(email).await;
        ids.push(change_user(&api, &admin, email, verified.clone()).await);
    }
    change_user(&api, &admin, "boss@corp.example", json!({"role": "admin"})).await;
    change_user(
        &api,
        &admin,
        "fay@corp.example",
        json!({"email_verified": false}),
    )
    .await;

    // the provider vouches for a verified account's address at an allowed domain: joined
    let dee = Browser::new(&server, &provider);
    let resp = dee.sign_in("dee@corp.example").await;
    assert_eq!(resp.status(), 303);
    let (_, me) = dee.me().await;
    assert_eq!(me["user"]["id"], ids[0].as_str());
    let linked = events(&api, &admin, "identity_linked").await;
    assert_eq!(linked[0]["detail"]["by"], "verified e-mail address");

    // another domain, an admin, lariat's own admin and an unverified account: never
    let mallory = Browser::new(&server, &provider);
    for login in [
        "eve@example.com",
        "boss@corp.example",
        "admin@example.com",
        "fay@corp.example",
    ] {
        refused(
            mallory.sign_in(login).await,
            409,
            "sign in with your password and link Test ID",
        )
        .await;
    }
    assert_eq!(events(&api, &admin, "identity_linked").await.len(), 1);
}

#[tokio::test]
async fn an_abandoned_sign_on_expires() {
    let provider = OidcProvider::start();
    let l = provider
        .lariat()
        .with_env("LARIAT_AUTH__OIDC_STATE_TTL_SECS", "1");
    let server = Server::start(&l);
    let browser = Browser::new(&server, &provider);
    let authorize = browser.press_sign_in().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let callback = browser.at_provider(&authorize, "eve@example.com").await;
    refused(browser.back(&callback).await, 400, "took too long").await;
}

#[tokio::test]
async fn an_account_without_a_password_confirms_its_erasure_by_signing_in_again() {
    let provider = OidcProvider::start();
    let l = provider
        .lariat()
        .with_env("LARIAT_AUTH__REAUTH_WINDOW_SECS", "2");
    let server = Server::start(&l);
    let fay = Browser::new(&server, &provider);
    assert_eq!(fay.sign_in("fay@example.com").await.status(), 303);
    let (_, me) = fay.me().await;
    let first_id = me["user"]["id"].as_str().unwrap().to_owned();

    // the export holds the identity
    let (s, export) = fay
        .api(
            reqwest::Method::POST,
            "/api/account/exports",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 202, "{export}");
    let id = export["id"].as_str().unwrap().to_owned();
    let archive = loop {
        let (s, body) = fay
            .api(
                reqwest::Method::GET,
                &format!("/api/account/exports/{id}"),
                None,
            )
            .await;
        if s == 200 {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(archive["identities"][0]["subject"], "fay@example.com");
    assert_eq!(archive["identities"][0]["issuer"], provider.issuer.as_str());

    // a session older than the window must sign in again first
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (s, body) = fay
        .api(reqwest::Method::DELETE, "/api/account", Some(json!({})))
        .await;
    assert_eq!(s, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sign in again")
    );
    assert_eq!(fay.sign_in("fay@example.com").await.status(), 303);
    let (s, body) = fay
        .api(reqwest::Method::DELETE, "/api/account", Some(json!({})))
        .await;
    assert_eq!(s, 204, "{body}");

    // the identity went with the account: the same provider account is a stranger now
    let again = Browser::new(&server, &provider);
    assert_eq!(again.sign_in("fay@example.com").await.status(), 303);
    let (_, me) = again.me().await;
    assert_ne!(me["user"]["id"], first_id.as_str());
}

/// The buttons in a real browser, under the pages' own Content-Security-Policy.
#[tokio::test]
async fn chromium_signs_in_with_the_provider_under_the_page_policy() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing: run `make test-deps` (scripts/browser-deps.sh)"
    );
    let provider = OidcProvider::start();
    let l = provider.lariat();
    let server = Server::start(&l);
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/browser_sso.py"))
        .args(["--server", server.base.strip_prefix("http://").unwrap()])
        .arg("--shots")
        .arg(&shots)
        .output()
        .await
        .expect("python3 with playwright (make test-deps)");
    assert!(
        out.status.success(),
        "{}\n{}\nserver: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}
