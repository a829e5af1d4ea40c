//! The job runner in `lariat serve`: retention deletes a plan's old conversations (and nothing
//! else) on schedule; admins see the jobs and their runs; `lariat jobs` lists, shows the history
//! and runs a job by hand.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::serve::{Api, Server, create_admin};
use crate::support::{Lariat, corpus_dir};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn retention_runs_on_schedule_and_deletes_only_what_is_old() {
    let l = Lariat::new()
        .with_env("LARIAT_PLANS__FREE__CONVERSATION_RETENTION_DAYS", "30")
        .with_env("LARIAT_JOBS__SCHEDULES__RETENTION", "*/2 * * * * *");
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    let ann = api.user("ann@example.com").await;
    let bob = api.user("bob@example.com").await;
    let bob_id = api.user_id(&admin, "bob@example.com").await;
    let (s, _) = api
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{bob_id}"),
            Some(&admin),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(s, 200);
    let old = api.ask(&ann, "How long is a heading rope?").await;
    let recent = api.ask(&ann, "What is a barrel race?").await;
    let bobs = api.ask(&bob, "How long is a heading rope?").await;
    let (_, before) = api.get("/api/admin/status", Some(&admin)).await;

    // ann's first and bob's conversations were last active 31 days ago
    let month_ago = now_ms() - 31 * 86_400_000;
    let db = l.data_dir().join("lariat.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for id in [&old, &bobs] {
        sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
            .bind(month_ago)
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();

    // within a few runs of the job, ann's old conversation is gone
    let mut gone = false;
    for _ in 0..50 {
        let (s, _) = api
            .get(&format!("/api/conversations/{old}"), Some(&ann))
            .await;
        if s == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gone, "retention did not delete the old conversation");
    // the recent one, and bob's (his plan keeps them), stay; the knowledge base is untouched
    assert_eq!(
        api.get(&format!("/api/conversations/{recent}"), Some(&ann))
            .await
            .0,
        200
    );
    assert_eq!(
        api.get(&format!("/api/conversations/{bobs}"), Some(&bob))
            .await
            .0,
        200
    );
    let (_, after) = api.get("/api/admin/status", Some(&admin)).await;
    assert_eq!(after["check"], before["check"]);
    assert_eq!(after["consistent"], true);
    let (_, list) = api.get("/api/conversations", Some(&ann)).await;
    let ids: Vec<&str> = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [recent.as_str()]);

    // admins see the jobs, their schedules and runs
    let (s, jobs) = api
        .get("/api/admin/jobs?job=retention&limit=10", Some(&admin))
        .await;
    assert_eq!(s, 200, "{jobs}");
    let names: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["retention", "mail", "billing"]);
    let retention = &jobs["jobs"][0];
    assert_eq!(retention["schedule"], "*/2 * * * * *");
    assert!(retention["next_run"].as_i64().unwrap() > now_ms() - 1000);
    let runs = jobs["runs"].as_array().unwrap();
    assert!(
        runs.iter()
            .all(|r| r["job"] == "retention" && r["status"] == "succeeded"),
        "{runs:?}"
    );
    let deleted: i64 = runs
        .iter()
        .map(|r| {
            r["outcome"]["conversations_by_plan"]["free"]
                .as_i64()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(deleted, 1, "{runs:?}");
    for bad in [
        "/api/admin/jobs?limit=0",
        "/api/admin/jobs?job=nope",
        "/api/admin/jobs?limit=x",
    ] {
        let (s, body) = api.get(bad, Some(&admin)).await;
        assert!(s == 400 || s == 404, "{bad}: {s} {body}");
    }
    // the admin page lists them
    let page = api
        .client
        .get(format!("{}/admin", api.base))
        .header("cookie", format!("lariat_access={admin}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Scheduled jobs") && page.contains("*/2 * * * * *"),
        "{page}"
    );
    drop(server);

    // the CLI: list, history, a run by hand
    let ls = l.expect(0, &["jobs", "ls"]);
    assert!(ls.contains("retention\t*/2 * * * * *\tnext "), "{ls}");
    let history: Value = serde_json::from_str(&l.expect(
        0,
        &["jobs", "history", "retention", "--json", "--limit", "3"],
    ))
    .unwrap();
    let history = history.as_array().unwrap();
    assert!((1..=3).contains(&history.len()), "{history:?}");
    assert!(
        history.iter().all(|r| r["job"] == "retention"),
        "{history:?}"
    );
    let run = l.expect(0, &["jobs", "run", "mail"]);
    assert!(
        run.starts_with("mail\t") && run.contains("succeeded"),
        "{run}"
    );
    l.expect(3, &["jobs", "run", "nope"]);
    l.expect(2, &["jobs", "history", "--limit", "0"]);
    // a bad schedule is refused at start, naming the job
    let out = l
        .command()
        .args(["jobs", "ls"])
        .env("LARIAT_JOBS__SCHEDULES__MAIL", "every minute")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("jobs.schedules.mail"));
}
