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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/chat/7?x=1")), "/chat/7?x=1");
        for hostile in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/\nSet-Cookie: x",
            "",
        ] {
            assert_eq!(local_path(Some(hostile)), "/chat", "{hostile:?}");
        }
        assert_eq!(local_path(None), "/chat");
    }

    fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut req = axum::http::Request::builder().method(method).uri("/x");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn cookie_carried_writes_must_come_from_this_origin() {
        let host = ("host", "lariat.example:8080");
        assert!(is_same_origin(&parts(Method::GET, &[host])));
        assert!(is_same_origin(&parts(
            Method::POST,
            &[host, ("origin", "http://lariat.example:8080")]
        )));
        assert!(is_same_origin(&parts(
            Method::DELETE,
            &[host, ("sec-fetch-site", "same-origin")]
        )));
        for bad in [
            vec![host, ("origin", "http://evil.example")],
            vec![host, ("origin", "http://lariat.example:8080.evil.example")],
            vec![host, ("origin", "null")],
            vec![host, ("sec-fetch-site", "cross-site")],
            vec![host],
        ] {
            assert!(!is_same_origin(&parts(Method::POST, &bad)), "{bad:?}");
        }
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let plain = Cookies::new("http://127.0.0.1:8080", 60);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("xlariat_access=no; lariat_access=yes; other=1"),
        );
        assert_eq!(cookie(&headers, plain.access()), Some("yes"));
        assert_eq!(cookie(&headers, plain.refresh()), None);
        // a server on https reads only its prefixed cookies
        let secure = Cookies::new("HTTPS://lariat.example", 60);
        assert_eq!(cookie(&headers, secure.access()), None);
    }

    #[test]
    fn on_https_the_cookies_are_secure_and_prefixed() {
        let pair = TokenPair {
            access_token: "a".into(),
            refresh_token: "r".into(),
            token_type: "Bearer",
            expires_in: 60,
        };
        let secure = Cookies::new("https://lariat.example", 60);
        let [access, refresh] = secure.start(&pair);
        let access = access.to_str().unwrap();
        assert!(
            access.starts_with("__Host-lariat_access=a; Path=/;"),
            "{access}"
        );
        assert!(
            access.ends_with("; Secure") && !access.contains("Domain"),
            "{access}"
        );
        let refresh = refresh.to_str().unwrap();
        assert!(refresh.starts_with("__Secure-lariat_refresh=r; Path=/session/renew;"));
        assert!(refresh.ends_with("; Secure"), "{refresh}");
        assert!(
            secure
                .sso_started("s")
                .to_str()
                .unwrap()
                .starts_with("__Secure-lariat_sso=s;")
        );
        for ended in secure.end() {
            assert!(ended.to_str().unwrap().ends_with("; Secure"));
        }
        // on http: plain names, never Secure (a browser would drop them)
        let plain = Cookies::new("http://lariat.example", 60);
        let [access, _] = plain.start(&pair);
        assert!(access.to_str().unwrap().starts_with("lariat_access=a;"));
        assert!(!access.to_str().unwrap().contains("Secure"));
    }
}
