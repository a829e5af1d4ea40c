//! Large uploads: a job ingests them (202 at once, progress over REST, cancel from the API), work
//! whose client left stops, and SIGTERM interrupts jobs instead of waiting on them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::serve::{Api, Server, create_admin};
use crate::support::Lariat;

/// A data dir whose users may read a job's progress as often as the tests do.
fn lariat() -> Lariat {
    Lariat::new().with_env("LARIAT_PLANS__FREE__REQUESTS_PER_MINUTE", "10000")
}

/// One JSONL document of `words` words (a few thousand passages at 600,000), naming `marker`
/// in its first sentence.
fn big_document(words: usize, marker: &str) -> String {
    const VOCAB: [&str; 24] = [
        "arena",
        "saddle",
        "rope",
        "steer",
        "header",
        "heeler",
        "barrel",
        "pattern",
        "judge",
        "score",
        "entry",
        "purse",
        "chute",
        "horse",
        "loop",
        "dally",
        "penalty",
        "time",
        "association",
        "standings",
        "rodeo",
        "round",
        "average",
        "season",
    ];
    let mut text = format!("The {marker} is described here. ");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..words {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(VOCAB[(state % VOCAB.len() as u64) as usize]);
        text.push_str(if i % 17 == 16 { ". " } else { " " });
    }
    serde_json::to_string(&json!({"_id": "big", "title": "A long rulebook", "text": text})).unwrap()
}

/// Posts `body` as `filename` to `collection` (query `extra` appended): status, Location, body.
async fn post_upload(
    api: &Api,
    token: &str,
    collection: &str,
    filename: &str,
    extra: &str,
    body: String,
) -> (u16, Option<String>, Value) {
    let resp = api
        .client
        .post(format!(
            "{}/api/collections/{collection}/documents?filename={filename}{extra}",
            api.base
        ))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location, resp.json().await.unwrap_or(Value::Null))
}

/// Reads the job at `path` until `done` says so (at most two minutes).
async fn wait_for(api: &Api, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..720 {
        let (s, job) = api.get(path, Some(token)).await;
        assert_eq!(s, 200, "{job}");
        if done(&job) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the job at {path} never got there");
}

/// A server with the admin signed in: the server, its API, the admin's token.
async fn serve_as_admin(l: &Lariat) -> (Server, Api, String) {
    create_admin(l);
    let server = Server::start(l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    (server, api, admin)
}

/// After `settle` seconds (the slice or batch under way), the server spends less than a second
/// of CPU in the next three: nothing is being done for `what`.
async fn assert_quiet(server: &Server, settle: u64, what: &str) {
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let before = server.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let spent = server.cpu_seconds() - before;
    assert!(spent < 1.0, "the server spent {spent} s of CPU {what}");
}

/// Stops the server and checks that its stores agree.
fn stop_and_check(l: &Lariat, server: Server) {
    let (status, _) = server.terminate();
    assert!(status.success(), "{status:?}");
    l.assert_consistent();
}

fn ended(job: &Value) -> bool {
    job["status"] != "running"
}

async fn documents(api: &Api, token: &str, collection: &str) -> Vec<String> {
    let (s, body) = api
        .get(
            &format!("/api/collections/{collection}/documents"),
            Some(token),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["source"].as_str().unwrap().to_owned())
        .collect()
}

/// Past `ingest.background_upload_bytes` an upload answers 202 with its job at once; the job's
/// progress moves by passages, it ends with the report, and the document can be found. Smaller
/// uploads are still ingested while the request waits; what is malformed or not the caller's is
/// refused.
#[tokio::test]
async fn a_large_upload_is_ingested_by_a_job_whose_progress_curators_read() {
    let l = lariat().with_env("LARIAT_INGEST__BACKGROUND_UPLOAD_BYTES", "100000");
    let (server, api, admin) = serve_as_admin(&l).await;
    let ann = api.user("ann@example.com").await;

    let (s, _, report) = post_upload(
        &api,
        &admin,
        "manuals",
        "small.md",
        "",
        "# Small\n\nA short note on barrel patterns.".into(),
    )
    .await;
    assert_eq!(s, 201, "a small upload is ingested at once: {report}");

    let (s, location, job) = post_upload(
        &api,
        &admin,
        "manuals",
        "rulebook.jsonl",
        "",
        big_document(40_000, "quillback penalty"),
    )
    .await;
    assert_eq!(s, 202, "{job}");
    let path = location.expect("202 names the job in Location");
    assert_eq!(
        path,
        format!(
            "/api/collections/manuals/uploads/{}",
            job["id"].as_str().unwrap()
        )
    );
    assert_eq!(job["status"], "running");
    assert_eq!(job["filename"], "rulebook.jsonl");
    let job = wait_for(&api, &admin, &path, ended).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let passages = job["passages_total"].as_u64().unwrap();
    assert!(passages > 100, "{job}");
    assert_eq!(job["passages_done"].as_u64(), Some(passages), "{job}");
    assert_eq!(job["documents_done"], 1);
    assert_eq!(job["report"]["chunks"].as_u64(), Some(passages), "{job}");
    assert!(job["finished_at"].as_i64().is_some());
    let (s, found) = api
        .get(
            "/api/search?q=quillback%20penalty&collection=manuals&mode=bm25",
            Some(&admin),
        )
        .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["hits"][0]["title"], "A long rulebook", "{found}");

    // the listing, newest first; `?background=true` makes a job of any upload
    let (s, _, second) = post_upload(
        &api,
        &admin,
        "manuals",
        "note.exe",
        "&background=true",
        "not a document".into(),
    )
    .await;
    assert_eq!(s, 202, "{second}");
    let second_path = format!(
        "/api/collections/manuals/uploads/{}",
        second["id"].as_str().unwrap()
    );
    let second = wait_for(&api, &admin, &second_path, ended).await;
    assert_eq!(second["status"], "failed", "{second}");
    assert!(
        second["error"]
            .as_str()
            .unwrap()
            .contains("unsupported file type"),
        "{second}"
    );
    let (s, list) = api
        .get("/api/collections/manuals/uploads", Some(&admin))
        .await;
    assert_eq!(s, 200, "{list}");
    let ids: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [second["id"].as_str().unwrap(), job["id"].as_str().unwrap()]
    );

    // an ended job cannot be cancelled
    let (s, body) = api
        .call(reqwest::Method::DELETE, &path, Some(&admin), None)
        .await;
    assert_eq!(s, 409, "{body}");
    // unknown jobs, another collection's path, a reader of the (public) collection, no token
    for (p, token, expected) in [
        (
            "/api/collections/manuals/uploads/nope",
            Some(admin.as_str()),
            404,
        ),
        (
            &*format!(
                "/api/collections/rodeo/uploads/{}",
                job["id"].as_str().unwrap()
            ),
            Some(admin.as_str()),
            404,
        ),
        (path.as_str(), Some(ann.as_str()), 403),
        ("/api/collections/manuals/uploads", Some(ann.as_str()), 403),
        (path.as_str(), None, 401),
    ] {
        let (s, body) = api.get(p, token).await;
        assert_eq!(s, expected, "{p}: {body}");
    }
    let (s, body) = api
        .call(reqwest::Method::DELETE, &path, Some(&ann), None)
        .await;
    assert_eq!(s, 403, "{body}");
    // a reader may not upload, large or small; bad parameters are named
    for (token, extra, body, expected) in [
        (&ann, "&background=true", "x", 403),
        (&admin, "&background=maybe", "x", 400),
        (&admin, "&background=true", "", 400),
    ] {
        let (s, _, answer) = post_upload(&api, token, "manuals", "x.md", extra, body.into()).await;
        assert_eq!(s, expected, "{extra} {body:?}: {answer}");
    }
    stop_and_check(&l, server);
}

/// A curator cancels a job under way: it stops embedding at once, ends `cancelled`, and the
/// document is not stored.
#[tokio::test]
async fn a_cancelled_upload_job_stops_and_stores_nothing() {
    let l = lariat();
    let (server, api, admin) = serve_as_admin(&l).await;
    let (s, location, job) = post_upload(
        &api,
        &admin,
        "manuals",
        "rulebook.jsonl",
        "",
        big_document(600_000, "quillback penalty"),
    )
    .await;
    assert_eq!(s, 202, "a file past the default 1 MiB is a job: {job}");
    let path = location.unwrap();
    let running = wait_for(&api, &admin, &path, |j| {
        ended(j) || j["passages_done"].as_u64() > Some(0)
    })
    .await;
    assert_eq!(running["status"], "running", "{running}");
    let (s, asked) = api
        .call(reqwest::Method::DELETE, &path, Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{asked}");
    assert_eq!(asked["cancel_requested"], true, "{asked}");
    let job = wait_for(&api, &admin, &path, ended).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    assert!(
        job["passages_done"].as_u64() < job["passages_total"].as_u64(),
        "{job}"
    );
    // nothing more is embedded once the batch under way (32 passages, about a second here) is
    // done, and nothing was stored
    assert_quiet(&server, 2, "after the cancel").await;
    assert!(documents(&api, &admin, "manuals").await.is_empty());
    stop_and_check(&l, server);
}

/// A client that gives up on an upload it waits for stops the work, whether it leaves while
/// the document is being chunked (the first seconds) or embedded: the server does not go on
/// working for nobody, and stores nothing.
#[tokio::test]
async fn an_upload_whose_client_left_stops() {
    let l = lariat();
    let (server, api, admin) = serve_as_admin(&l).await;
    let document = big_document(600_000, "quillback penalty");
    for patience in [2, 25] {
        let gave_up = api
            .client
            .post(format!(
                "{}/api/collections/manuals/documents?filename=rulebook.jsonl&background=false",
                api.base
            ))
            .bearer_auth(&admin)
            .body(document.clone())
            .timeout(Duration::from_secs(patience))
            .send()
            .await;
        assert!(gave_up.unwrap_err().is_timeout());
        // the server was busy when the client left; once the slice or batch under way is done
        // (a few seconds at most on a busy machine), it is quiet
        let what = format!("for a client that left after {patience} s");
        assert_quiet(&server, 3, &what).await;
    }
    assert!(documents(&api, &admin, "manuals").await.is_empty());
    stop_and_check(&l, server);
}

/// SIGTERM with a job under way: the server stops without waiting for it, the job is recorded
/// as interrupted (with what to do), and the stores are whole.
#[tokio::test]
async fn shutdown_interrupts_upload_jobs() {
    let l = lariat().with_env("LARIAT_SERVER__SHUTDOWN_GRACE_SECS", "20");
    let (server, api, admin) = serve_as_admin(&l).await;
    let (s, location, job) = post_upload(
        &api,
        &admin,
        "manuals",
        "rulebook.jsonl",
        "",
        big_document(600_000, "quillback penalty"),
    )
    .await;
    assert_eq!(s, 202, "{job}");
    let path = location.unwrap();
    wait_for(&api, &admin, &path, |j| {
        j["passages_done"].as_u64() > Some(0)
    })
    .await;
    let (status, took) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    l.assert_consistent();
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.signin("admin@example.com").await;
    let (s, job) = api.get(&path, Some(&admin)).await;
    assert_eq!(s, 200, "{job}");
    assert_eq!(job["status"], "interrupted", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("upload the file again"),
        "{job}"
    );
    assert!(documents(&api, &admin, "manuals").await.is_empty());
}
