//! Browser sessions: the access and refresh tokens of an ordinary sign-in, kept in HttpOnly,
//! SameSite=Lax cookies (Secure behind an https proxy), so signing out and revocation work as for
//! any client. A request carried by cookies that changes anything must come from this origin.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use knowledge::accounts::TokenPair;

pub const ACCESS: &str = "lariat_access";
pub const REFRESH: &str = "lariat_refresh";
/// The refresh cookie is only ever sent to the renewal route.
pub const RENEW_PATH: &str = "/session/renew";

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

/// Whether the browser reached us over https (told by the proxy in front, when there is one).
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&cookie).expect("tokens are URL-safe")
}

/// The `Set-Cookie` values that start (or renew) a browser session.
pub fn start(pair: &TokenPair, refresh_ttl_secs: u64, secure: bool) -> [HeaderValue; 2] {
    [
        // the access token lives as long as the session: an expired one is renewed, not lost
        set_cookie(ACCESS, &pair.access_token, "/", refresh_ttl_secs, secure),
        set_cookie(
            REFRESH,
            &pair.refresh_token,
            RENEW_PATH,
            refresh_ttl_secs,
            secure,
        ),
    ]
}

/// The `Set-Cookie` values that end a browser session.
pub fn end() -> [HeaderValue; 2] {
    [
        set_cookie(ACCESS, "", "/", 0, false),
        set_cookie(REFRESH, "", RENEW_PATH, 0, false),
    ]
}

/// The single sign-on in progress: the state this browser must bring back from the provider.
pub const SSO_STATE: &str = "lariat_sso";
/// The SSO cookie goes only to the sign-on routes (and the server decides when a state expires).
const SSO_PATH: &str = "/auth/oidc";
const SSO_MAX_AGE: u64 = 3600;

/// The `Set-Cookie` that has this browser hold a started sign-on's state.
pub fn sso_started(state: &str, secure: bool) -> HeaderValue {
    set_cookie(SSO_STATE, state, SSO_PATH, SSO_MAX_AGE, secure)
}

/// The `Set-Cookie` that forgets it.
pub fn sso_finished() -> HeaderValue {
    set_cookie(SSO_STATE, "", SSO_PATH, 0, false)
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
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("xlariat_access=no; lariat_access=yes; other=1"),
        );
        assert_eq!(cookie(&headers, ACCESS), Some("yes"));
        assert_eq!(cookie(&headers, REFRESH), None);
    }
}
