//! Pages fetched for ingestion, against a local server whose pages change, vanish, redirect
//! (to another path, to another host, to loopback), answer 304, are too large or trickle: the
//! guard refuses every non-public address (after resolution, and on every redirect) unless
//! allowed, robots.txt is honoured, limits hold.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base::ErrorCode;
use operations::config::SourcesConfig;
use operations::sources::{Fetched, Fetcher};

#[derive(Clone)]
struct Site {
    port: u16,
    version: Arc<Mutex<u32>>,
}

async fn page(State(site): State<Site>, headers: HeaderMap) -> Response {
    let version = *site.version.lock().unwrap();
    let etag = format!("\"v{version}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.to_str().unwrap_or("") == etag)
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::ETAG, etag),
        ],
        format!("<html><head><title>Rules v{version}</title></head><body><p>Version {version}.</p></body></html>"),
    )
        .into_response()
}

fn redirect(to: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// Serves the site on 127.0.0.2 (loopback, but an address of its own the tests can allow alone).
async fn serve() -> Site {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let site = Site {
        port: listener.local_addr().unwrap().port(),
        version: Arc::new(Mutex::new(1)),
    };
    let port = site.port;
    let app = Router::new()
        .route(
            "/robots.txt",
            get(|| async { "User-agent: *\nDisallow: /private\n" }),
        )
        .route("/page", get(page))
        .route("/private/page", get(page))
        .route("/gone", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/broken",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route("/moved", get(|| async { redirect("/page".into()) }))
        .route("/loop", get(|| async { redirect("/loop".into()) }))
        .route(
            "/to-loopback",
            get(move || async move { redirect(format!("http://127.0.0.1:{port}/page")) }),
        )
        .route(
            "/to-localhost",
            get(move || async move { redirect(format!("http://localhost:{port}/page")) }),
        )
        .route(
            "/to-metadata",
            get(|| async { redirect("http://169.254.169.254/latest/meta-data/".into()) }),
        )
        .route("/big", get(|| async { "x".repeat(2_000_000) }))
        .route(
            "/big-stream",
            get(|| async {
                let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 64 * 1024]));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/slow",
            get(|| async {
                let trickle = futures::stream::unfold(0, |i| async move {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    (i < 5).then(|| (Ok::<_, std::io::Error>(vec![b'z']), i + 1))
                });
                Body::from_stream(trickle)
            }),
        )
        .with_state(site.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    site
}

fn fetcher(allow: &[&str]) -> Fetcher {
    Fetcher::new(&SourcesConfig {
        allow_networks: allow.iter().map(|a| a.to_string()).collect(),
        // the test site's port is any free one (and a redirect may name 80)
        allowed_ports: vec!["1-65535".into()],
        max_bytes: 1_000_000,
        timeout_secs: 20,
        stall_secs: 1,
        max_redirects: 3,
        ..SourcesConfig::default()
    })
    .unwrap()
}

async fn get_page(f: &Fetcher, site: &Site, path: &str) -> base::Result<Fetched> {
    let url = Fetcher::parse_url(&format!("http://127.0.0.2:{}{path}", site.port)).unwrap();
    f.fetch(&url, None).await
}

fn code(r: base::Result<Fetched>) -> (ErrorCode, String) {
    let e = r.expect_err("an error");
    (e.code(), e.to_string())
}

#[tokio::test]
async fn the_guard_refuses_what_is_not_public_unless_allowed() {
    let site = serve().await;
    // by default, loopback is refused: as an address, and as a name resolving to it
    let closed = fetcher(&[]);
    let (c, why) = code(get_page(&closed, &site, "/page").await);
    assert_eq!(c, ErrorCode::Forbidden, "{why}");
    assert!(why.contains("127.0.0.2 is not a public address"), "{why}");
    let by_name = Fetcher::parse_url(&format!("http://localhost:{}/page", site.port)).unwrap();
    let (c, why) = code(closed.fetch(&by_name, None).await);
    assert_eq!(c, ErrorCode::Forbidden, "{why}");
    assert!(why.contains("not a public address"), "{why}");
    assert!(
        Fetcher::new(&SourcesConfig {
            allow_networks: vec!["not-a-net".into()],
            ..SourcesConfig::default()
        })
        .is_err()
    );
    // only ports 80 and 443 unless sources.allowed_ports says otherwise, whatever the address
    let standard = Fetcher::new(&SourcesConfig {
        allow_networks: vec!["127.0.0.2/32".into()],
        ..SourcesConfig::default()
    })
    .unwrap();
    let (c, why) = code(get_page(&standard, &site, "/page").await);
    assert_eq!(c, ErrorCode::Forbidden, "{why}");
    assert!(
        why.contains(&format!(
            "address not allowed: port {} is not in",
            site.port
        )),
        "{why}"
    );
    for bad in ["0", "70000", "443-80", "http"] {
        let config = SourcesConfig {
            allowed_ports: vec![bad.into()],
            ..SourcesConfig::default()
        };
        assert!(Fetcher::new(&config).is_err(), "{bad}");
    }

    // allowed explicitly, the page is fetched; redirects are checked hop by hop
    let f = fetcher(&["127.0.0.2/32"]);
    let Fetched::Page(p) = get_page(&f, &site, "/moved").await.unwrap() else {
        panic!("not a page")
    };
    assert_eq!(p.url.path(), "/page");
    for to in ["/to-loopback", "/to-localhost", "/to-metadata"] {
        let (c, why) = code(get_page(&f, &site, to).await);
        assert_eq!(c, ErrorCode::Forbidden, "{to}: {why}");
        assert!(why.contains("not a public address"), "{to}: {why}");
    }
    let (c, why) = code(get_page(&f, &site, "/loop").await);
    assert_eq!(c, ErrorCode::Upstream, "{why}");
    assert!(why.contains("more than 3 redirects"), "{why}");
    // robots.txt is honoured
    let (c, why) = code(get_page(&f, &site, "/private/page").await);
    assert_eq!(c, ErrorCode::Forbidden, "{why}");
    assert!(why.contains("robots.txt"), "{why}");
}

#[tokio::test]
async fn unchanged_pages_cost_a_304_and_limits_hold() {
    let site = serve().await;
    let f = fetcher(&["127.0.0.2"]);
    let Fetched::Page(first) = get_page(&f, &site, "/page").await.unwrap() else {
        panic!("not a page")
    };
    assert_eq!(first.content_type, "text/html");
    assert!(String::from_utf8_lossy(&first.bytes).contains("Version 1."));
    assert_eq!(first.validators.etag.as_deref(), Some("\"v1\""));
    let url = first.url.clone();
    assert!(matches!(
        f.fetch(&url, Some(&first.validators)).await.unwrap(),
        Fetched::NotModified
    ));
    *site.version.lock().unwrap() = 2;
    let Fetched::Page(second) = f.fetch(&url, Some(&first.validators)).await.unwrap() else {
        panic!("a changed page is fetched again")
    };
    assert!(String::from_utf8_lossy(&second.bytes).contains("Version 2."));
    assert!(matches!(
        get_page(&f, &site, "/gone").await.unwrap(),
        Fetched::Gone
    ));
    let (c, why) = code(get_page(&f, &site, "/broken").await);
    assert_eq!(c, ErrorCode::Upstream, "{why}");
    for big in ["/big", "/big-stream"] {
        let (c, why) = code(get_page(&f, &site, big).await);
        assert_eq!(c, ErrorCode::InvalidInput, "{big}: {why}");
        assert!(why.contains("larger than 1000000 bytes"), "{big}: {why}");
    }
    let started = std::time::Instant::now();
    let (c, why) = code(get_page(&f, &site, "/slow").await);
    assert_eq!(c, ErrorCode::Upstream, "{why}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a trickle is cut at the stall limit"
    );
    // the server keeps answering others
    assert!(matches!(
        get_page(&f, &site, "/page").await.unwrap(),
        Fetched::Page(_)
    ));
}
