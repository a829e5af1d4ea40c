//! `lariat ingest https://…`: pages fetched and ingested beside files, under the guard.

use axum::Router;
use axum::http::header;
use axum::routing::get;

use crate::support::Lariat;

// the CLI runs while the test's own server answers it: a second worker thread serves
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_ingested_from_urls_and_loopback_needs_allowing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route(
            "/rules",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><head><title>Saddle bronc rules</title></head><body><h1>Rigging</h1>\
                     <p>A saddle bronc rider must keep the quokkaflex rein in one hand.</p></body></html>",
                )
            }),
        )
        .route("/notes.md", get(|| async { "# Notes\n\nBarrel racers circle three zebrastripe barrels.\n" }))
        .route("/image", get(|| async { ([(header::CONTENT_TYPE, "image/png")], vec![0u8; 10]) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let base = format!("http://127.0.0.2:{port}");

    // a port but 80 and 443, and loopback, are refused by default: each URL fails with its
    // reason, nothing is written
    let l = Lariat::new();
    let out = l.expect(6, &["ingest", &format!("{base}/rules"), "-c", "web"]);
    assert!(
        out.contains(&format!("port {port} is not in sources.allowed_ports")),
        "{out}"
    );
    let l = l.with_env("LARIAT_SOURCES__ALLOWED_PORTS", "[\"1024-65535\"]");
    let out = l.expect(6, &["ingest", &format!("{base}/rules"), "-c", "web"]);
    assert!(out.contains("not a public address"), "{out}");

    let l = l.with_env("LARIAT_SOURCES__ALLOW_NETWORKS", "[\"127.0.0.2/32\"]");
    let out = l.expect(
        6,
        &[
            "ingest",
            &format!("{base}/rules"),
            &format!("{base}/notes.md"),
            &format!("{base}/image"),
            "-c",
            "web",
        ],
    );
    assert!(out.contains("2 added"), "{out}");
    assert!(out.contains("image/png"), "{out}");
    let hits = l.json(&["search", "quokkaflex rein", "-c", "web", "--json"]);
    let top = &hits["hits"][0];
    assert_eq!(top["title"], "Saddle bronc rules");
    assert_eq!(top["source"], format!("{base}/rules"));
    let hits = l.json(&["search", "zebrastripe barrels", "-c", "web", "--json"]);
    assert!(
        hits["hits"][0]["text"]
            .as_str()
            .unwrap()
            .contains("zebrastripe")
    );
    // again: unchanged, nothing rewritten
    let out = l.expect(0, &["ingest", &format!("{base}/rules"), "-c", "web"]);
    assert!(out.contains("1 unchanged"), "{out}");
    // not http(s)
    let out = l.expect(6, &["ingest", "ftp://127.0.0.2/x", "-c", "web"]);
    assert!(out.contains("failed"), "{out}");
}
