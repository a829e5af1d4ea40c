//! The session cookies' rules: exact names, same-origin writes, local redirects, secure flags.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use identity::accounts::TokenPair;
use lariat_api::session::*;

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
