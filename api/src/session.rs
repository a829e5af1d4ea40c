//! Browser sessions: the access and refresh tokens of an ordinary sign-in, kept in HttpOnly,
//! SameSite=Lax cookies, so signing out and revocation work as for any client. A request carried
//! by cookies that changes anything must come from this origin.
//!
//! Where the app is served over https (`mail.public_url`), the cookies are `Secure` and carry the
//! browsers' prefixes: `__Host-` for the session (no `Domain`, path `/`: no other host or path
//! may set or shadow it) and `__Secure-` for the refresh token and the sign-on state, which keep
//! their narrow paths. Whether they are secure is the operator's setting, never something a
//! client says (an `X-Forwarded-Proto` header, say).

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use identity::accounts::TokenPair;

/// The refresh cookie is only ever sent to the renewal route.
pub const RENEW_PATH: &str = "/session/renew";
/// The SSO cookie goes only to the sign-on routes (and the server decides when a state expires).
const SSO_PATH: &str = "/auth/oidc";
const SSO_MAX_AGE: u64 = 3600;

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&cookie).expect("tokens are URL-safe")
}

/// How this server's cookies are named and sent: decided once, from the app's public address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookies {
    secure: bool,
    /// How long a browser session's cookies last.
    ttl_secs: u64,
}

impl Cookies {
    pub fn new(public_url: &str, ttl_secs: u64) -> Self {
        Cookies {
            secure: public_url
                .get(..8)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")),
            ttl_secs,
        }
    }

    /// The session's access token.
    pub fn access(self) -> &'static str {
        if self.secure {
            "__Host-lariat_access"
        } else {
            "lariat_access"
        }
    }

    /// The session's refresh token (sent to the renewal route only).
    pub fn refresh(self) -> &'static str {
        if self.secure {
            "__Secure-lariat_refresh"
        } else {
            "lariat_refresh"
        }
    }

    /// The single sign-on in progress: the state this browser must bring back from the provider.
    pub fn sso(self) -> &'static str {
        if self.secure {
            "__Secure-lariat_sso"
        } else {
            "lariat_sso"
        }
    }

    /// The `Set-Cookie` values that start (or renew) a browser session.
    pub fn start(self, pair: &TokenPair) -> [HeaderValue; 2] {
        [
            // the access token lives as long as the session: an expired one is renewed, not lost
            set_cookie(
                self.access(),
                &pair.access_token,
                "/",
                self.ttl_secs,
                self.secure,
            ),
            set_cookie(
                self.refresh(),
                &pair.refresh_token,
                RENEW_PATH,
                self.ttl_secs,
                self.secure,
            ),
        ]
    }

    /// The `Set-Cookie` values that end a browser session.
    pub fn end(self) -> [HeaderValue; 2] {
        [
            set_cookie(self.access(), "", "/", 0, self.secure),
            set_cookie(self.refresh(), "", RENEW_PATH, 0, self.secure),
        ]
    }

    /// The `Set-Cookie` that has this browser hold a started sign-on's state.
    pub fn sso_started(self, state: &str) -> HeaderValue {
        set_cookie(self.sso(), state, SSO_PATH, SSO_MAX_AGE, self.secure)
    }

    /// The `Set-Cookie` that forgets it.
    pub fn sso_finished(self) -> HeaderValue {
        set_cookie(self.sso(), "", SSO_PATH, 0, self.secure)
    }
}

/// A request that may change something must name this server as its origin: `Origin` (sent by
/// browsers on every such request) or, without it, `Sec-Fetch-Site: same-origin`. Reads pass.
pub fn is_same_origin(parts: &Parts) -> bool {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let headers = &parts.headers;
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            authority.is_some() && authority == host
        }
        None => headers
            .get("sec-fetch-site")
            .is_some_and(|v| v == "same-origin"),
    }
}

/// Where to go after signing in: a path on this site, never another site (`//evil`, `/\evil`).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.len() <= 2048
                && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => "/chat".to_owned(),
    }
}
