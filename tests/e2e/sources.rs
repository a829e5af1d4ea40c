//! Sources: a collection follows web pages, a sitemap and a folder. A local site whose pages
//! change, vanish, answer 304, are too large or trickle; each sync read back with
//! `lariat source sync` and the collection searched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::support::Lariat;

/// A page the site serves: its body, media type and validator.
#[derive(Clone)]
struct Page {
    body: String,
    content_type: &'static str,
    etag: Option<String>,
    last_modified: Option<&'static str>,
}

#[derive(Default)]
struct Site {
    pages: HashMap<String, Page>,
    /// Full bodies served, per path.
    served: HashMap<String, usize>,
    /// 304s answered, per path.
    not_modified: HashMap<String, usize>,
}

type Shared = Arc<Mutex<Site>>;

fn page(body: &str, content_type: &'static str, etag: Option<&str>) -> Page {
    Page {
        body: body.to_owned(),
        content_type,
        etag: etag.map(str::to_owned),
        last_modified: None,
    }
}

async fn serve_page(State(site): State<Shared>, headers: HeaderMap, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if path == "/slow" {
        // a byte, then nothing for longer than the fetcher waits
        let stream = futures::stream::unfold(0, |n| async move {
            if n > 0 {
                tokio::time::sleep(Duration::from_secs(4)).await;
            }
            (n < 3).then(|| (Ok::<_, std::io::Error>(vec![b'<']), n + 1))
        });
        return (
            [(header::CONTENT_TYPE, "text/html")],
            Body::from_stream(stream),
        )
            .into_response();
    }
    let mut site = site.lock().unwrap();
    let Some(p) = site.pages.get(&path).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let asked = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let unchanged = match (&p.etag, p.last_modified) {
        (Some(etag), _) => asked(header::IF_NONE_MATCH) == Some(etag.as_str()),
        (None, Some(lm)) => asked(header::IF_MODIFIED_SINCE) == Some(lm),
        _ => false,
    };
    if unchanged {
        *site.not_modified.entry(path).or_default() += 1;
        return StatusCode::NOT_MODIFIED.into_response();
    }
    *site.served.entry(path).or_default() += 1;
    let mut response = ([(header::CONTENT_TYPE, p.content_type)], p.body).into_response();
    if let Some(etag) = p.etag {
        response
            .headers_mut()
            .insert(header::ETAG, etag.parse().unwrap());
    }
    if let Some(lm) = p.last_modified {
        response
            .headers_mut()
            .insert(header::LAST_MODIFIED, lm.parse().unwrap());
    }
    response
}

/// The site on 127.0.0.2 and its base address.
async fn site() -> (Shared, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let site: Shared = Arc::default();
    let app = Router::new().fallback(serve_page).with_state(site.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (site, format!("http://127.0.0.2:{port}"))
}

fn hits(l: &Lariat, query: &str) -> Vec<Value> {
    l.json(&["search", query, "-c", "web", "--json"])["hits"]
        .as_array()
        .unwrap()
        .clone()
}

/// Whether any hit for `word` holds it.
fn holds(l: &Lariat, word: &str) -> bool {
    hits(l, word)
        .iter()
        .any(|h| h["text"].as_str().unwrap_or("").contains(word))
}

/// Whether the top hit for `query` holds `word`.
fn finds(l: &Lariat, query: &str, word: &str) -> bool {
    hits(l, query)
        .first()
        .and_then(|h| h["text"].as_str())
        .is_some_and(|t| t.contains(word))
}

fn sync(l: &Lariat, id: &str, code: i32) -> Value {
    let out = l.expect(code, &["source", "sync", "web", id, "--json"]);
    let run: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(run["status"], "succeeded", "{run}");
    run["outcome"].clone()
}

fn lariat() -> Lariat {
    Lariat::new()
        .with_env("LARIAT_SOURCES__ALLOW_NETWORKS", "[\"127.0.0.2/32\"]")
        .with_env("LARIAT_SOURCES__ALLOWED_PORTS", "[\"1024-65535\"]")
        .with_env("LARIAT_SOURCES__MIN_INTERVAL_SECS", "2")
        .with_env("LARIAT_SOURCES__MAX_BYTES", "4096")
        .with_env("LARIAT_SOURCES__STALL_SECS", "1")
        .with_env("LARIAT_SOURCES__TIMEOUT_SECS", "10")
}

// the CLI runs while the test's own server answers it: a second worker thread serves
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_followed_conditionally_and_deleted_after_their_misses() {
    let (site, base) = site().await;
    {
        let mut s = site.lock().unwrap();
        s.pages.insert(
            "/rules".into(),
            page(
                "<html><head><title>Bronc rules</title></head><body><h1>Rigging</h1>\
                 <p>A saddle bronc rider keeps the quokkaflex rein in one hand.</p></body></html>",
                "text/html",
                Some("\"v1\""),
            ),
        );
        s.pages.insert(
            "/notes.md".into(),
            Page {
                last_modified: Some("Tue, 01 Dec 2026 10:00:00 GMT"),
                ..page(
                    "# Notes\n\nBarrel racers circle three zebrastripe barrels.\n",
                    "text/markdown",
                    None,
                )
            },
        );
        s.pages
            .insert("/big".into(), page(&"x ".repeat(5000), "text/plain", None));
    }
    let l = lariat();
    let url = |p: &str| format!("{base}{p}");
    let added = l.json(&[
        "source",
        "add",
        "web",
        "--url",
        &url("/rules"),
        "--url",
        &url("/notes.md"),
        "--url",
        &url("/big"),
        "--max-misses",
        "2",
        "--json",
    ]);
    let id = added["id"].as_str().unwrap().to_owned();
    // the source now follows exactly these pages
    let follow = |pages: &[&str]| {
        let mut args = vec!["source", "edit", "web", id.as_str()];
        for page in pages {
            args.extend(["--url", page]);
        }
        l.expect(0, &args);
    };
    assert_eq!(added["kind"], "urls");
    assert_eq!(added["schedule"], "0 * * * *");

    // first sync: two pages read, the large one refused and reported (exit 6: partly failed)
    let r = sync(&l, &id, 6);
    assert_eq!(
        (r["checked"].as_u64(), r["added"].as_u64()),
        (Some(3), Some(2)),
        "{r}"
    );
    assert_eq!(r["failed"], 1, "{r}");
    assert_eq!(r["failures"][0]["path"], url("/big"));
    assert!(finds(&l, "quokkaflex rein", "quokkaflex"));
    assert!(finds(&l, "zebrastripe barrels", "zebrastripe"));

    // unchanged pages cost a 304 each, no body
    site.lock().unwrap().pages.remove("/big");
    let r = sync(&l, &id, 6);
    assert_eq!(r["not_modified"], 2, "{r}");
    assert_eq!(
        r["added"].as_u64().unwrap() + r["updated"].as_u64().unwrap(),
        0
    );
    {
        let s = site.lock().unwrap();
        assert_eq!(s.served["/rules"], 1);
        assert_eq!(s.not_modified["/rules"], 1);
        assert_eq!(s.not_modified["/notes.md"], 1);
    }

    // a changed page is read again and replaces its document
    site.lock().unwrap().pages.insert(
        "/rules".into(),
        page(
            "<html><head><title>Bronc rules</title></head><body><h1>Rigging</h1>\
             <p>A saddle bronc rider keeps the wallabyweave rein in one hand.</p></body></html>",
            "text/html",
            Some("\"v2\""),
        ),
    );
    follow(&[&url("/rules"), &url("/notes.md")]);
    let r = sync(&l, &id, 0);
    assert_eq!(
        (r["updated"].as_u64(), r["not_modified"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    assert!(finds(&l, "wallabyweave rein", "wallabyweave"));
    assert!(!holds(&l, "quokkaflex"));

    // a page that vanished is a miss; at the second in a row its document goes
    site.lock().unwrap().pages.remove("/notes.md");
    let r = sync(&l, &id, 0);
    assert_eq!(
        (r["missing"].as_u64(), r["deleted"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
    assert!(finds(&l, "zebrastripe barrels", "zebrastripe"));
    let r = sync(&l, &id, 0);
    assert_eq!(r["deleted"], 1, "{r}");
    assert!(!holds(&l, "zebrastripe"));

    // a page that trickles fails with its reason; the others keep their documents
    follow(&[&url("/rules"), &url("/slow")]);
    let r = sync(&l, &id, 6);
    assert_eq!(r["failures"][0]["path"], url("/slow"), "{r}");
    assert_eq!(r["not_modified"], 1, "{r}");
    assert!(finds(&l, "wallabyweave rein", "wallabyweave"));

    // a page taken out of the list goes at the next sync
    follow(&[&url("/slow")]);
    let r = sync(&l, &id, 6);
    assert_eq!(r["deleted"], 1, "{r}");
    assert!(!holds(&l, "wallabyweave"));

    // the listing, and what the job runner recorded
    let list = l.json(&["source", "ls", "web", "--json"]);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["job"], format!("source:{id}"));
    assert!(
        list[0]["last_sync"]["outcome"]["checked"].is_u64(),
        "{list}"
    );
    let history = l.json(&["jobs", "history", &format!("source:{id}"), "--json"]);
    assert_eq!(history.as_array().unwrap().len(), 7);
    l.assert_consistent();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sitemap_and_a_folder_are_followed() {
    let (site, base) = site().await;
    let sitemap = |paths: &[&str]| {
        let urls: String = paths
            .iter()
            .map(|p| format!("<url><loc>{base}{p}</loc></url>"))
            .collect();
        format!(
            "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
             {urls}<url><loc>http://example.org/elsewhere</loc></url></urlset>"
        )
    };
    {
        let mut s = site.lock().unwrap();
        s.pages.insert(
            "/sitemap.xml".into(),
            page(&sitemap(&["/s1", "/s2"]), "application/xml", None),
        );
        s.pages.insert(
            "/s1".into(),
            page(
                "Team ropers dally with a koalacord rope.",
                "text/plain",
                Some("\"a\""),
            ),
        );
        s.pages.insert(
            "/s2".into(),
            page(
                "Steer wrestlers jump from a platypusback horse.",
                "text/plain",
                Some("\"b\""),
            ),
        );
    }
    let l = lariat();
    let out = l.expect(
        0,
        &[
            "source",
            "add",
            "web",
            "--sitemap",
            &format!("{base}/sitemap.xml"),
            "--max-misses",
            "1",
        ],
    );
    let map_id = out.split_whitespace().nth(1).unwrap().to_owned();
    let r = sync(&l, &map_id, 6);
    assert_eq!(r["added"], 2, "{r}");
    assert_eq!(
        r["failures"][0]["path"], "http://example.org/elsewhere",
        "{r}"
    );
    assert!(finds(&l, "koalacord rope", "koalacord"));
    // a page the sitemap no longer lists goes (max_misses 1)
    site.lock().unwrap().pages.insert(
        "/sitemap.xml".into(),
        page(&sitemap(&["/s1"]), "application/xml", None),
    );
    let r = sync(&l, &map_id, 6);
    assert_eq!(
        (r["deleted"].as_u64(), r["not_modified"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    assert!(!holds(&l, "platypusback"));

    // a folder: new, unchanged (not even read), changed, and removed files
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("barrels.md");
    std::fs::write(
        &file,
        "# Barrels\n\nThe cloverleaf pattern uses emuquill barrels.\n",
    )
    .unwrap();
    let out = l.expect(
        0,
        &[
            "source",
            "add",
            "web",
            "--folder",
            folder.path().to_str().unwrap(),
            "--max-misses",
            "1",
        ],
    );
    let dir_id = out.split_whitespace().nth(1).unwrap().to_owned();
    let r = sync(&l, &dir_id, 0);
    assert_eq!(r["added"], 1, "{r}");
    assert!(finds(&l, "emuquill barrels", "emuquill"));
    let r = sync(&l, &dir_id, 0);
    assert_eq!(r["not_modified"], 1, "{r}");
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        &file,
        "# Barrels\n\nThe cloverleaf pattern uses dingotail barrels.\n",
    )
    .unwrap();
    let r = sync(&l, &dir_id, 0);
    assert_eq!(r["updated"], 1, "{r}");
    assert!(finds(&l, "dingotail barrels", "dingotail"));
    std::fs::remove_file(&file).unwrap();
    let r = sync(&l, &dir_id, 0);
    assert_eq!(r["deleted"], 1, "{r}");
    assert!(!holds(&l, "dingotail"));

    // removing a source deletes its documents, unless asked to keep them
    l.expect(0, &["source", "rm", "web", &map_id, "--keep-documents"]);
    assert!(finds(&l, "koalacord rope", "koalacord"));
    assert_eq!(
        l.json(&["source", "ls", "web", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    l.expect(0, &["source", "rm", "web", &dir_id]);
    l.expect(3, &["source", "sync", "web", &dir_id]);
    l.assert_consistent();
}

#[test]
fn bad_sources_are_refused_with_their_reason() {
    let l = lariat();
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().to_str().unwrap();
    let refused = |code: i32, args: &[&str], why: &str| {
        let mut all = vec!["source"];
        all.extend_from_slice(args);
        let err = l.stderr_of(code, &all);
        assert!(err.contains(why), "{args:?}: {err}");
    };
    refused(2, &["add", "web"], "--folder, --url or --sitemap");
    refused(2, &["add", "web", "--url", "ftp://127.0.0.2/x"], "http");
    refused(
        2,
        &[
            "add",
            "web",
            "--url",
            "http://127.0.0.2/x",
            "--schedule",
            "every day",
        ],
        "cron",
    );
    refused(
        2,
        &[
            "add",
            "web",
            "--url",
            "http://127.0.0.2/x",
            "--schedule",
            "* * * * * *",
        ],
        "min_interval_secs",
    );
    refused(
        2,
        &[
            "add",
            "web",
            "--url",
            "http://127.0.0.2/x",
            "--max-misses",
            "0",
        ],
        "max_misses",
    );
    refused(
        2,
        &["add", "web", "--folder", "/no/such/folder"],
        "/no/such/folder",
    );
    refused(2, &["add", "Bad Name", "--folder", dir], "collection");
    // clap itself refuses two kinds at once
    let out = l.run(&[
        "source",
        "add",
        "web",
        "--folder",
        dir,
        "--url",
        "http://127.0.0.2/x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let added = l.json(&["source", "add", "web", "--folder", dir, "--json"]);
    let id = added["id"].as_str().unwrap();
    refused(
        2,
        &["edit", "web", id, "--url", "http://127.0.0.2/x"],
        "kind cannot change",
    );
    refused(
        3,
        &["edit", "web", "nosuchsource", "--schedule", "0 * * * *"],
        "no source",
    );
    refused(3, &["rm", "other", id], "unknown collection");
    // the local operator is told what is wrong with a path
    let file = folder.path().join("notes.md");
    std::fs::write(&file, "# Notes\n").unwrap();
    refused(
        2,
        &["add", "web", "--folder", file.to_str().unwrap()],
        "is not a folder",
    );
    // the refused edits and removal left the one source as it was
    assert!(
        l.json(&["source", "ls", "web", "--json"])
            .as_array()
            .unwrap()
            .len()
            == 1
    );
}

/// Polls `check` every 250 ms for up to `secs`; panics with `what` if it never holds.
async fn eventually<F: AsyncFnMut() -> bool>(secs: u64, what: &str, mut check: F) {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < end {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what} did not happen within {secs} s");
}

/// The journey: a curator adds a page (an admin a folder) as sources over the API, edits them,
/// and the collection follows on their schedule; nobody else may touch them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curator_adds_a_page_an_admin_a_folder_and_the_collection_follows_on_schedule() {
    use crate::serve::{Api, Server, create_admin};
    use crate::support::corpus_dir;
    use reqwest::Method;
    use serde_json::json;

    let (site, base) = site().await;
    site.lock().unwrap().pages.insert(
        "/news".into(),
        page(
            "Rodeo news: the wombatwhip clinic opens in May.",
            "text/plain",
            Some("\"1\""),
        ),
    );
    let roots = tempfile::tempdir().unwrap();
    let folder = roots.path().join("handbook");
    std::fs::create_dir(&folder).unwrap();
    let l = lariat()
        .with_env("LARIAT_SOURCES__MIN_INTERVAL_SECS", "1")
        .with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "100000")
        .with_env(
            "LARIAT_SOURCES__FOLDER_ROOTS",
            &serde_json::to_string(&[roots.path()]).unwrap(),
        );
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    let ann = api.user("ann@example.com").await;
    let cat = api.user("cat@example.com").await;
    api.make_curator(&admin, "cat@example.com", "rodeo").await;
    let sources = "/api/collections/rodeo/sources";
    let every_2s = "*/2 * * * * *";

    // a reader may neither list nor add sources
    assert_eq!(api.get(sources, Some(&ann)).await.0, 403);
    let page_source =
        json!({"kind": "urls", "targets": [format!("{base}/news")], "schedule": every_2s});
    assert_eq!(
        api.post(sources, Some(&ann), page_source.clone()).await.0,
        403
    );
    assert_eq!(api.post(sources, None, page_source.clone()).await.0, 401);
    // a folder is the server's own disk: curators follow one, only admins add it
    let (s, body) = api
        .post(
            sources,
            Some(&cat),
            json!({"kind": "folder", "targets": [folder.to_str().unwrap()], "schedule": every_2s}),
        )
        .await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body.to_string()
            .contains("folder sources are added and changed by admins"),
        "{body}"
    );
    // a folder outside sources.folder_roots is refused, even to an admin, whether or not it
    // exists or is a folder
    for outside in ["/etc", "/no/such/dir", "/etc/passwd"] {
        let (s, body) = api
            .post(
                sources,
                Some(&admin),
                json!({"kind": "folder", "targets": [outside], "schedule": every_2s}),
            )
            .await;
        assert_eq!(s, 403, "{body}");
    }
    let (s, body) = api
        .post(
            sources,
            Some(&admin),
            json!({"kind": "folder", "targets": ["docs/rules"], "schedule": every_2s}),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.to_string().contains("not an absolute path"), "{body}");
    let (s, body) = api
        .post(
            sources,
            Some(&cat),
            json!({"kind": "urls", "targets": ["file:///etc/passwd"], "schedule": every_2s}),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    let (s, body) = api
        .post(
            sources,
            Some(&cat),
            json!({"kind": "urls", "targets": [], "schedule": every_2s, "extra": 1}),
        )
        .await;
    assert!(s == 400 || s == 422, "{s} {body}");

    let (s, web) = api.post(sources, Some(&cat), page_source).await;
    assert_eq!(s, 201, "{web}");
    let web_id = web["id"].as_str().unwrap().to_owned();
    let (s, dir) = api
        .post(
            sources,
            Some(&admin),
            json!({"kind": "folder", "targets": [folder.to_str().unwrap()], "schedule": every_2s, "max_misses": 1}),
        )
        .await;
    assert_eq!(s, 201, "{dir}");
    let dir_id = dir["id"].as_str().unwrap().to_owned();

    let search = |q: &'static str| {
        let api = &api;
        let cat = &cat;
        async move {
            let (s, body) = api
                .get(
                    &format!("/api/search?q={q}&collection=rodeo&k=3"),
                    Some(cat),
                )
                .await;
            assert_eq!(s, 200, "{body}");
            body["hits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["text"].as_str().unwrap_or("").contains(q))
        }
    };
    // the page is followed at once, then on schedule
    eventually(60, "the page's first sync", async || {
        search("wombatwhip").await
    })
    .await;
    site.lock().unwrap().pages.insert(
        "/news".into(),
        page(
            "Rodeo news: the quollquirt clinic moved to June.",
            "text/plain",
            Some("\"2\""),
        ),
    );
    eventually(60, "the page's change followed", async || {
        search("quollquirt").await && !search("wombatwhip").await
    })
    .await;
    // a file dropped into the folder comes in; removed, it goes
    let file = folder.join("gear.md");
    std::fs::write(
        &file,
        "# Gear\n\nEvery roper carries a bilbybraid halter.\n",
    )
    .unwrap();
    eventually(60, "the folder's new file followed", async || {
        search("bilbybraid").await
    })
    .await;
    std::fs::remove_file(&file).unwrap();
    eventually(60, "the folder's removed file followed", async || {
        !search("bilbybraid").await
    })
    .await;

    // the curator edits the page source: another page replaces the first
    site.lock().unwrap().pages.insert(
        "/notice".into(),
        page(
            "Notice: the numbatnoose final is sold out.",
            "text/plain",
            None,
        ),
    );
    let one = format!("{sources}/{web_id}");
    let (s, edited) = api
        .call(
            Method::PATCH,
            &one,
            Some(&cat),
            Some(json!({"targets": [format!("{base}/notice")]})),
        )
        .await;
    assert_eq!(s, 200, "{edited}");
    assert_eq!(edited["schedule"], every_2s);
    eventually(60, "the edited source followed", async || {
        search("numbatnoose").await && !search("quollquirt").await
    })
    .await;
    // every 2 s the next sync may already be running when the source is read: the last one
    // shown succeeds once it ends
    eventually(30, "the last sync shown succeeded", async || {
        let (s, view) = api.get(&one, Some(&cat)).await;
        assert_eq!(s, 200);
        assert!(view["next_sync"].is_i64(), "{view}");
        assert_ne!(view["last_sync"]["status"], "failed", "{view}");
        view["last_sync"]["status"] == "succeeded"
    })
    .await;
    let (s, list) = api.get(sources, Some(&cat)).await;
    assert_eq!((s, list["sources"].as_array().unwrap().len()), (200, 2));
    // a sync by hand: once the schedule leaves room, accepted and run; again at once, refused
    // (a sync runs, or the last began within sources.min_interval_secs)
    let (s, _) = api
        .call(
            Method::PATCH,
            &one,
            Some(&cat),
            Some(json!({"schedule": "0 0 0 1 1 *"})),
        )
        .await;
    assert_eq!(s, 200);
    let mut run = Value::Null;
    eventually(30, "a sync by hand accepted", async || {
        let (s, body) = api
            .post(&format!("{one}/sync"), Some(&cat), json!({}))
            .await;
        assert!([202, 409, 429].contains(&s), "{s} {body}");
        run = body;
        s == 202
    })
    .await;
    assert_eq!(run["job"], format!("source:{web_id}"));
    let (s, body) = api
        .post(&format!("{one}/sync"), Some(&cat), json!({}))
        .await;
    assert!(s == 409 || s == 429, "{s} {body}");
    // the admin sees the sources' jobs among the others
    let (_, jobs) = api.get("/api/admin/jobs", Some(&admin)).await;
    assert!(
        jobs.to_string().contains(&format!("source:{dir_id}")),
        "{jobs}"
    );
    // a reader cannot sync, edit or remove; another collection's path does not reach it
    assert_eq!(
        api.post(&format!("{one}/sync"), Some(&ann), json!({}))
            .await
            .0,
        403
    );
    assert_eq!(
        api.call(Method::DELETE, &one, Some(&ann), None).await.0,
        403
    );
    let elsewhere = format!("/api/collections/other/sources/{web_id}");
    assert_eq!(
        api.call(Method::DELETE, &elsewhere, Some(&admin), None)
            .await
            .0,
        404
    );
    // removed with its documents
    assert_eq!(
        api.call(Method::DELETE, &one, Some(&cat), None).await.0,
        204
    );
    assert_eq!(api.get(&one, Some(&cat)).await.0, 404);
    assert!(!search("numbatnoose").await);
}

/// A folder holding links out of it (to the data dir's signing key, to a device, to a whole
/// other folder) and a FIFO: only its own regular files come in; when the folder itself is
/// swapped for a link, the sync refuses and the documents stay.
#[test]
fn a_folder_source_reads_nothing_outside_its_folder_however_it_is_linked() {
    use std::os::unix::fs::symlink;
    let l = lariat();
    // the data dir holds its signing key once the accounts were opened
    crate::serve::create_admin(&l);
    let key = l.data_dir().join("jwt-secret");
    assert!(key.exists());
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("private.md"),
        "# Private\n\nThe quokkavault code is 1234.\n",
    )
    .unwrap();
    let place = tempfile::tempdir().unwrap();
    let root = place.path().join("handbook");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(
        root.join("gear.md"),
        "# Gear\n\nEvery roper carries a dingodally halter.\n",
    )
    .unwrap();
    symlink(&key, root.join("key.md")).unwrap();
    symlink("/dev/zero", root.join("zero.md")).unwrap();
    symlink(outside.path(), root.join("elsewhere")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(root.join("pipe.md"))
        .status()
        .unwrap();
    assert!(fifo.success());

    let added = l.json(&[
        "source",
        "add",
        "web",
        "--folder",
        root.to_str().unwrap(),
        "--json",
    ]);
    let id = added["id"].as_str().unwrap().to_owned();
    let outcome = sync(&l, &id, 0);
    assert_eq!(outcome["added"], 1, "{outcome}");
    let docs = l.json(&["ls", "--collection", "web", "--json"]);
    let sources: Vec<&str> = docs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert!(sources[0].ends_with("handbook/gear.md"), "{sources:?}");
    let secret = std::fs::read_to_string(&key).unwrap();
    assert!(!holds(&l, &secret[..32]));
    assert!(!holds(&l, "quokkavault"));

    // the folder swapped for a link to somewhere else: refused, and nothing is deleted
    std::fs::rename(&root, place.path().join("moved")).unwrap();
    symlink(outside.path(), &root).unwrap();
    let out = l.run(&["source", "sync", "web", &id, "--json"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("was replaced"), "{text}");
    assert!(!holds(&l, "quokkavault"));
    assert!(holds(&l, "dingodally"), "the folder's documents are kept");
}

/// A refused fetch target: its curator sees only that the address is not allowed; an admin
/// sees which rule refused it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curators_see_a_refused_address_as_not_allowed_and_admins_see_why() {
    use crate::serve::{Api, Server, create_admin};
    use serde_json::json;

    let l = lariat();
    let seed = tempfile::tempdir().unwrap();
    let note = seed.path().join("note.md");
    std::fs::write(&note, "# Note\n\nThe web collection exists.\n").unwrap();
    l.expect(0, &["ingest", note.to_str().unwrap(), "-c", "web"]);
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    let cat = api.user("cat@example.com").await;
    api.make_curator(&admin, "cat@example.com", "web").await;
    // 127.0.0.3 is loopback and not among sources.allow_networks
    let (s, source) = api
        .post(
            "/api/collections/web/sources",
            Some(&cat),
            json!({"kind": "urls", "targets": ["http://127.0.0.3:8080/intranet"], "schedule": "0 0 0 1 1 *"}),
        )
        .await;
    assert_eq!(s, 201, "{source}");
    let path = format!(
        "/api/collections/web/sources/{}",
        source["id"].as_str().unwrap()
    );
    let reason = |view: &Value| view["last_sync"]["outcome"]["failures"][0]["reason"].clone();
    eventually(60, "the source's first sync", async || {
        !api.get(&path, Some(&admin)).await.1["last_sync"]["outcome"]["failures"][0].is_null()
    })
    .await;
    let (_, as_admin) = api.get(&path, Some(&admin)).await;
    let why = reason(&as_admin);
    assert!(
        why.as_str()
            .unwrap()
            .contains("127.0.0.3 is not a public address"),
        "{as_admin}"
    );
    let (s, as_curator) = api.get(&path, Some(&cat)).await;
    assert_eq!(s, 200, "{as_curator}");
    assert_eq!(reason(&as_curator), "address not allowed", "{as_curator}");
    assert!(
        !as_curator.to_string().contains("127.0.0.3 is not"),
        "{as_curator}"
    );
}
