//! Every page rendered in-process (the whole router, `oneshot`) over a real store and model, with
//! a document whose title and text are hostile HTML: it must reach every page as text. Also the
//! session's rules: pages need it, cross-site writes are refused, every page has its policy.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base::types::{DocumentWrite, NewChunk};
use base::{CollectionName, Location};
use service::Config;
use service::Service;
use tower::ServiceExt;

mod accounts;
mod render;
mod session;

const TITLE: &str = "<script>alert('title')</script> Bareback rules";
const TEXT: &str =
    "The bareback rider holds a rigging <img src=x onerror=alert('text')> with one hand.";
const EMAIL: &str = "rider@example.com";
const PASSWORD: &str = "a fine long password";

struct App {
    router: Router,
    service: Arc<Service>,
    cookie: String,
    _dir: tempfile::TempDir,
}

impl App {
    async fn new() -> App {
        Self::with_env(&[]).await
    }

    /// The app with these `LARIAT_…` settings too.
    async fn with_env(extra: &[(&str, &str)]) -> App {
        let dir = tempfile::tempdir().unwrap();
        // the extractive answer, whatever local model this machine has installed
        let mut env = vec![("LARIAT_LLM__LOCAL__AUTO".to_owned(), "false".to_owned())];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let config = Config::load(dir.path(), None, env).unwrap();
        let uploads = lariat_api::pipeline(&config).unwrap();
        let service = Arc::new(Service::open(&config, uploads.clone()).await.unwrap());
        let k = &service.knowledge;
        let embedding = k
            .embedder()
            .embed_passages(vec![TEXT.to_owned()])
            .await
            .unwrap()
            .pop()
            .unwrap();
        k.write_documents(vec![DocumentWrite {
            collection: CollectionName::parse("rodeo").unwrap(),
            source: "upload:hostile.md".into(),
            title: TITLE.into(),
            content_hash: "h1".into(),
            metadata: serde_json::json!({}),
            chunks: vec![NewChunk {
                text: TEXT.into(),
                location: Location {
                    pages: None,
                    headings: vec!["<b>Equipment</b>".into()],
                },
                token_count: 20,
                embedding,
            }],
        }])
        .await
        .unwrap();
        // an account an admin opened: its address counts as verified
        service
            .accounts
            .add_user(EMAIL, PASSWORD, base::principal::Role::User)
            .await
            .unwrap();
        let pair = service
            .accounts
            .signin(EMAIL, PASSWORD, &Default::default())
            .await
            .unwrap();
        let router = lariat_api::router(
            service.clone(),
            uploads,
            &config,
            tokio_util::sync::CancellationToken::new(),
        )
        .unwrap();
        App {
            router,
            service,
            cookie: format!("lariat_access={}", pair.access_token),
            _dir: dir,
        }
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 16 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// A form posted from the app's own pages, with the session (or `cookie: None` without).
    async fn form(
        &self,
        path: &str,
        body: &'static str,
        cookie: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = Request::post(path)
            .header(header::HOST, "lariat.test")
            .header(header::ORIGIN, "http://lariat.test")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            req = req.header(header::COOKIE, cookie);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    /// A session cookie for a new admin.
    async fn admin_cookie(&self) -> String {
        let accounts = &self.service.accounts;
        accounts
            .create_admin("boss@example.com", PASSWORD, false)
            .await
            .unwrap();
        let pair = accounts
            .signin("boss@example.com", PASSWORD, &Default::default())
            .await
            .unwrap();
        format!("lariat_access={}", pair.access_token)
    }

    async fn page(&self, path: &str) -> (StatusCode, String) {
        self.page_as(path, &self.cookie).await
    }

    async fn page_as(&self, path: &str, cookie: &str) -> (StatusCode, String) {
        let req = Request::get(path)
            .header(header::HOST, "lariat.test")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = self.send(req).await;
        if status == StatusCode::OK {
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(
                csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
                "{path}: {csp}"
            );
        }
        (status, body)
    }

    /// Asks through the API as the page's script does, and returns the conversation's id.
    async fn ask(&self, question: &str) -> String {
        let req = Request::post("/api/chat")
            .header(header::HOST, "lariat.test")
            .header(header::ORIGIN, "http://lariat.test")
            .header(header::COOKIE, &self.cookie)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                serde_json::json!({ "message": question }).to_string(),
            ))
            .unwrap();
        let (status, _, events) = self.send(req).await;
        assert_eq!(status, StatusCode::OK, "{events}");
        assert!(events.contains("event: done"), "{events}");
        let meta = events
            .lines()
            .find_map(|l| {
                l.strip_prefix("data: ")
                    .filter(|d| d.contains("conversation_id"))
            })
            .unwrap();
        let meta: serde_json::Value = serde_json::from_str(meta).unwrap();
        meta["conversation_id"].as_str().unwrap().to_owned()
    }
}

/// The hostile title and text appear only escaped (or, in an answer, sanitised away).
fn assert_inert(what: &str, html: &str) {
    for live in ["<script>alert", "<img", "<b>Equipment"] {
        assert!(!html.contains(live), "{what} carries {live:?}:\n{html}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_documents_reach_every_page_as_text() {
    let app = App::new().await;

    let (status, html) = app.page("/search?q=rigging&mode=hybrid").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "{html}"
    );
    assert!(html.contains("<mark>rigging</mark>"), "{html}");
    assert_inert("search", &html);

    let conversation = app.ask("What does the bareback rider hold?").await;
    // a title the user chose is as untrusted as a document's
    let (status, _, _) = app
        .form(
            &format!("/chat/{conversation}/rename"),
            "title=%3Cimg+src%3Dx+onerror%3Dalert(3)%3E+rigging",
            Some(&app.cookie),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, html) = app.page(&format!("/chat/{conversation}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains(r#"class="cite""#),
        "no citation chip:\n{html}"
    );
    assert!(
        html.contains(r#"class="source""#),
        "no source list:\n{html}"
    );
    assert_inert("chat", &html);

    let chunk = app
        .service
        .knowledge
        .search(&knowledge::SearchRequest::parse("rigging", &[], None, None).unwrap())
        .await
        .unwrap()
        .hits[0]
        .passage
        .chunk_id
        .clone();
    let (status, html) = app.page(&format!("/passages/{chunk}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("passage cited"), "{html}");
    assert_inert("side panel", &html);
    let id = app.service.knowledge.documents(None).await.unwrap()[0]
        .id
        .clone();
    assert!(
        html.contains(&format!("/documents/{id}#p-{chunk}")),
        "{html}"
    );
    let (status, html) = app.page(&format!("/documents/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(&format!(r#"id="p-{chunk}""#)), "{html}");
    assert_inert("document", &html);
    let (status, _) = app.page("/documents/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, html) = app.page("/chat/list?q=bareback").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(&conversation), "{html}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_need_a_session_and_writes_must_come_from_the_pages() {
    let app = App::new().await;

    // no cookie: sign in first, then come back
    let req = Request::get("/chat?x=1").body(Body::empty()).unwrap();
    let (status, headers, _) = app.send(req).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/signin?next=%2Fchat%3Fx%3D1");

    // a revoked or expired session: renew it (the refresh cookie only goes there)
    let req = Request::get("/search")
        .header(header::COOKIE, "lariat_access=forged")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = app.send(req).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/session/renew?next=%2Fsearch");

    // the session cookie does not carry a write from another site, to the API or a page
    for (path, body, kind) in [
        ("/api/chat", r#"{"message":"hi"}"#, "application/json"),
        (
            "/signin",
            "email=rider%40example.com&password=x",
            "application/x-www-form-urlencoded",
        ),
        ("/signout", "", "application/x-www-form-urlencoded"),
    ] {
        let req = Request::post(path)
            .header(header::HOST, "lariat.test")
            .header(header::ORIGIN, "https://evil.example")
            .header(header::COOKIE, &app.cookie)
            .header(header::CONTENT_TYPE, kind)
            .body(Body::from(body))
            .unwrap();
        let (status, _, text) = app.send(req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {text}");
    }

    // signing in from the page starts a session; a hostile `next` is not followed
    let (status, headers, _) = app
        .form(
            "/signin",
            "email=rider%40example.com&password=a+fine+long+password&next=%2F%2Fevil.example",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/chat");
    let cookies: Vec<&str> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("lariat_access=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("lariat_refresh=") && c.contains("Path=/session/renew")),
        "{cookies:?}"
    );

    // a wrong password is the sign-in page again, with the reason
    let (status, _, html) = app
        .form("/signin", "email=rider%40example.com&password=wrong", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains(r#"role="alert""#), "{html}");

    // the signed-in page signs out, and the session is gone for the API too
    let (status, _, _) = app.form("/signout", "", Some(&app.cookie)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let req = Request::get("/api/auth/me")
        .header(header::COOKIE, &app.cookie)
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = app.send(req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_are_served_by_content_hash_with_long_caching() {
    let app = App::new().await;
    let url = lariat_api::asset_url("app.js");
    let (status, headers, body) = app
        .send(Request::get(&url).body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("readEvents"));
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    let stale = url.replace("/assets/", "/assets/0000000000000000");
    let (status, _, _) = app
        .send(Request::get(&stale).body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn collection_pages_show_hostile_documents_as_text_and_controls_only_to_curators() {
    let app = App::new().await;
    let admin = app.admin_cookie().await;

    let (status, html) = app.page("/collections").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"href="/collections/rodeo""#), "{html}");

    // a reader sees the documents, escaped, and no curator control
    let (status, html) = app.page("/collections/rodeo").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Bareback rules"), "{html}");
    assert_inert("documents list", &html);
    for control in ["Add documents", "Save settings", "Add member", "/delete"] {
        assert!(!html.contains(control), "a reader sees {control:?}");
    }
    // the filter narrows the list (the fragment htmx swaps in)
    let (status, html) = app.page("/collections/rodeo/documents?q=BAREBACK").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("1 documents match"), "{html}");
    let (_, html) = app.page("/collections/rodeo/documents?q=steer").await;
    assert!(html.contains("0 documents match"), "{html}");

    // reaching a curator's forms by URL is refused as the API refuses it
    let id = app.service.knowledge.documents(None).await.unwrap()[0]
        .id
        .clone();
    for (path, body) in [
        (format!("/collections/rodeo/documents/{id}/delete"), ""),
        (
            "/collections/rodeo/settings".to_owned(),
            "visibility=private&instructions=x",
        ),
        (
            "/collections/rodeo/members".to_owned(),
            "email=rider%40example.com&role=reader",
        ),
    ] {
        let (status, _, html) = app.form(&path, body, Some(&app.cookie)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {html}");
    }
    for path in [
        "/collections/nope",
        "/collections/..%2Fetc",
        "/collections/nope/documents",
    ] {
        let (status, _) = app.page(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = app.page("/admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // an admin curates it: upload, settings, members, and a delete that asks first
    let (status, html) = app.page_as("/collections/rodeo", &admin).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for control in [
        "Add documents",
        "Save settings",
        "Add member",
        "data-confirm",
    ] {
        assert!(html.contains(control), "an admin lacks {control:?}");
    }
    assert_inert("curator's documents list", &html);
    let (status, headers, html) = app
        .form(
            "/collections/rodeo/settings",
            "visibility=private&instructions=Answer+briefly.%0D%0AQuote+rules.",
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(
        headers[header::LOCATION],
        "/collections/rodeo?done=settings"
    );
    assert_eq!(
        app.service.knowledge.instructions("rodeo").await.unwrap(),
        "Answer briefly.\nQuote rules."
    );
    // now private: the plain user no longer reads it, and hears it does not exist
    let (status, _) = app.page("/collections/rodeo").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = app
        .form(
            "/collections/rodeo/members",
            "email=rider%40example.com&role=reader",
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, html) = app.page_as("/collections/rodeo?done=member", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("rider@example.com · reader"), "{html}");
    assert!(html.contains("The members were updated."), "{html}");
    let (status, _) = app.page("/collections/rodeo").await;
    assert_eq!(status, StatusCode::OK, "a member reads it again");
    let (status, _, html) = app
        .form(
            "/collections/rodeo/members",
            "email=nobody%40example.com&role=reader",
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    let (status, _, _) = app
        .form(
            &format!("/collections/rodeo/documents/{id}/delete"),
            "",
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        app.service
            .knowledge
            .documents(None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn curators_manage_sources_on_the_collection_page() {
    let app = App::new().await;
    let admin = app.admin_cookie().await;
    // a reader sees no sources and cannot add one by URL
    let (_, html) = app.page("/collections/rodeo").await;
    assert!(!html.contains("Add source"), "a reader sees the sources");
    let add = "kind=urls&targets=https%3A%2F%2Fexample.org%2Frules%3Fq%3D%22%3E%3Cscript%3E%0D%0Ahttps%3A%2F%2Fexample.org%2Fentries&schedule=0+3+*+*+*";
    let (status, _, html) = app
        .form("/collections/rodeo/sources", add, Some(&app.cookie))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");

    // an admin adds pages, one per line
    let (status, headers, html) = app
        .form("/collections/rodeo/sources", add, Some(&admin))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(headers[header::LOCATION], "/collections/rodeo?done=source");
    let principal = app.service.accounts.local_operator().await.unwrap();
    let rodeo = CollectionName::parse("rodeo").unwrap();
    let listed = app.service.sources.list(&principal, &rodeo).await.unwrap();
    assert_eq!(listed.len(), 1);
    let id = listed[0].source.id.clone();
    assert_eq!(listed[0].source.targets.len(), 2);
    let (status, html) = app.page_as("/collections/rodeo?done=source", &admin).await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "The sources were updated.",
        "https://example.org/entries",
        "Sync now",
        "never run",
        "Save source",
    ] {
        assert!(html.contains(shown), "{shown:?} missing");
    }
    assert!(
        !html.contains("<script>"),
        "a target reached the page as markup"
    );

    // edited; a bad schedule and a folder outside the roots are refused with their reason
    let (status, _, _) = app
        .form(
            &format!("/collections/rodeo/sources/{id}"),
            "targets=https%3A%2F%2Fexample.org%2Fentries&schedule=30+4+*+*+*&max_misses=5",
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let view = app
        .service
        .sources
        .get(&principal, &rodeo, &id)
        .await
        .unwrap();
    assert_eq!(view.source.schedule, "30 4 * * *");
    assert_eq!(view.source.max_misses, 5);
    assert_eq!(view.source.targets, ["https://example.org/entries"]);
    let (status, _, html) = app
        .form(
            &format!("/collections/rodeo/sources/{id}"),
            "targets=https%3A%2F%2Fexample.org%2Fentries&schedule=sometimes",
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("not a cron schedule"), "{html}");
    let (status, _, _) = app
        .form(
            "/collections/rodeo/sources",
            "kind=folder&targets=%2Fetc&schedule=0+3+*+*+*",
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app
        .form(
            "/collections/rodeo/sources",
            "kind=ftp&targets=x&schedule=0+3+*+*+*",
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // the plain user cannot sync or remove it; the admin removes it
    for action in ["sync", "remove"] {
        let path = format!("/collections/rodeo/sources/{id}/{action}");
        let (status, _, _) = app.form(&path, "", Some(&app.cookie)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _, _) = app
        .form(
            &format!("/collections/rodeo/sources/{id}/remove"),
            "",
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        app.service
            .sources
            .list(&principal, &rodeo)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A reader rates an answer with the thumbs under it (its rating shown pressed from then on), a
/// bad rating is refused with its reason, and admins see the ratings per collection and model.
#[tokio::test(flavor = "multi_thread")]
async fn readers_rate_answers_and_admins_see_the_ratings() {
    let app = App::new().await;
    let id = app.ask("What does the bareback rider hold?").await;
    let (status, html) = app.page(&format!("/chat/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let prefix = format!("action=\"/chat/{id}/messages/");
    let at = html.find(&prefix).expect("the rating form") + prefix.len();
    let message = &html[at..at + html[at..].find('/').unwrap()];
    assert!(!html.contains("aria-pressed=\"true\""), "nothing rated yet");

    let path = format!("/chat/{id}/messages/{message}/feedback");
    let (status, headers, _) = app
        .form(
            &path,
            "rating=up&comment=Clear+and+cited",
            Some(&app.cookie),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[header::LOCATION],
        format!("/chat/{id}#msg-{message}").as_str()
    );
    let (_, html) = app.page(&format!("/chat/{id}")).await;
    assert!(
        html.contains(r#"value="up" class="small" aria-pressed="true""#),
        "{html}"
    );
    // refused with the reason: a rating that is neither, another conversation's path
    let (status, _, body) = app.form(&path, "rating=sideways", Some(&app.cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("up or down"), "{body}");
    let (status, _, _) = app
        .form(
            &format!("/chat/not-{id}/messages/{message}/feedback"),
            "rating=up",
            Some(&app.cookie),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // the reader's own rating is not the admin's business to see per person; the tally is
    let (status, html) = app.page("/admin").await;
    assert_ne!(status, StatusCode::OK, "readers do not see the admin page");
    let admin = app.admin_cookie().await;
    let (status, html2) = app.page_as("/admin", &admin).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let section = &html2[html2.find("ratings-h").unwrap()..];
    assert!(
        section.contains(
            "<td>rodeo</td>\n          <td>extractive</td>\n          <td class=\"num\">1</td>"
        ),
        "{section}"
    );
}
