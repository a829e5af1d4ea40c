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

/// Makes conversations last active `days` ago, as if time had passed.
async fn backdate(l: &Lariat, ids: &[&str], days: i64) {
    let db = l.data_dir().join("lariat.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for id in ids {
        sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
            .bind(now_ms() - days * 86_400_000)
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}

/// What the retention runs deleted, summed, as their outcomes count it at `pointer`.
fn deleted(runs: &[Value], pointer: &str) -> i64 {
    runs.iter()
        .filter_map(|r| r["outcome"].pointer(pointer).and_then(Value::as_i64))
        .sum()
}

/// Asserts that a conversation of `token`'s user is still there.
async fn kept(api: &Api, token: &str, id: &str) {
    let (s, body) = api
        .get(&format!("/api/conversations/{id}"), Some(token))
        .await;
    assert_eq!(s, 200, "{id} is kept: {body}");
}

/// Waits (10 s at most) for the retention job to delete a conversation of `token`'s user.
async fn wait_gone(api: &Api, token: &str, id: &str) {
    for _ in 0..50 {
        let (s, _) = api
            .get(&format!("/api/conversations/{id}"), Some(token))
            .await;
        if s == 404 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("retention did not delete the conversation {id}");
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
    backdate(&l, &[&old, &bobs], 31).await;
    wait_gone(&api, &ann, &old).await;
    // the recent one, and bob's (his plan keeps them), stay; the knowledge base is untouched
    kept(&api, &ann, &recent).await;
    kept(&api, &bob, &bobs).await;
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
    assert_eq!(deleted(runs, "/conversations_by_plan/free"), 1, "{runs:?}");
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

/// A collection's conversation retention as `token`'s user reads it in the list.
async fn retention_of(api: &Api, token: &str, name: &str) -> i64 {
    let (s, list) = api.get("/api/collections", Some(token)).await;
    assert_eq!(s, 200, "{list}");
    list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))["conversation_retention_days"]
        .as_i64()
        .unwrap()
}

/// A collection keeps conversations that use it (limited to it or citing it) for its own number
/// of days, shorter than the plan's; others are not touched. Curators set it at the CLI, over
/// REST and on the collection page, within bounds.
#[tokio::test]
async fn a_collection_retention_deletes_the_conversations_that_use_it() {
    let l = Lariat::new().with_env("LARIAT_JOBS__SCHEDULES__RETENTION", "*/2 * * * * *");
    l.expect(
        0,
        &["ingest", corpus_dir().to_str().unwrap(), "-c", "rodeo"],
    );
    crate::accounts::ingest_private(&l);
    l.expect(
        0,
        &[
            "collection",
            "set",
            "rodeo",
            "--conversation-retention-days",
            "7",
        ],
    );
    for bad in ["36501", "-1", "seven"] {
        l.expect(
            2,
            &[
                "collection",
                "set",
                "rodeo",
                "--conversation-retention-days",
                bad,
            ],
        );
    }
    let listed: Value =
        serde_json::from_str(&l.expect(0, &["collection", "ls", "--json"])).unwrap();
    let days = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["conversation_retention_days"]
            .clone()
    };
    assert_eq!((days("rodeo"), days("secret")), (json!(7), json!(0)));
    create_admin(&l);
    let server = Server::start(&l);
    let api = Api::new(&server);
    let admin = api.user("admin@example.com").await;
    let ann = api.user("ann@example.com").await;

    // over REST: bounds, then who may
    for (body, status) in [
        (json!({"conversation_retention_days": 36501}), 400),
        (json!({"conversation_retention_days": -1}), 400),
        (json!({"conversation_retention_days": "7"}), 400),
    ] {
        let (s, answer) = api
            .call(
                Method::PATCH,
                "/api/collections/rodeo",
                Some(&admin),
                Some(body),
            )
            .await;
        assert_eq!(s, status, "{answer}");
    }
    let (s, _) = api
        .call(
            Method::PATCH,
            "/api/collections/rodeo",
            Some(&ann),
            Some(json!({"conversation_retention_days": 0})),
        )
        .await;
    assert_eq!(s, 403, "a reader does not set retention");
    assert_eq!(retention_of(&api, &ann, "rodeo").await, 7);

    let cites_rodeo = api.ask(&ann, "How long is a heading rope?").await;
    let recent = api.ask(&ann, "What is a barrel race?").await;
    let secret_only = api
        .ask_in(&admin, "When does Thunderclap retire?", Some(&["secret"]))
        .await;
    let (_, convo) = api
        .get(&format!("/api/conversations/{cites_rodeo}"), Some(&ann))
        .await;
    assert!(
        convo.to_string().contains(r#""collection":"rodeo""#),
        "the answer cites rodeo: {convo}"
    );
    backdate(&l, &[&cites_rodeo, &secret_only], 8).await;
    wait_gone(&api, &ann, &cites_rodeo).await;
    // the recent one and the one using only another collection stay
    kept(&api, &ann, &recent).await;
    kept(&api, &admin, &secret_only).await;
    let (_, jobs) = api
        .get("/api/admin/jobs?job=retention&limit=50", Some(&admin))
        .await;
    assert_eq!(
        deleted(
            jobs["runs"].as_array().unwrap(),
            "/conversations_by_collection/rodeo"
        ),
        1,
        "{jobs}"
    );

    // the collection page shows it and saves it; a bad number is refused with its reason
    let form = |days: &str| {
        let days = days.to_owned();
        let (api, admin) = (&api, &admin);
        async move {
            api.client
                .post(format!("{}/collections/rodeo/settings", api.base))
                .header("cookie", format!("lariat_access={admin}"))
                .header("origin", api.base.as_str())
                .form(&[
                    ("visibility", "public"),
                    ("instructions", ""),
                    ("conversation_retention_days", days.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let page = |resp: reqwest::Response| async move {
        (resp.status().as_u16(), resp.text().await.unwrap())
    };
    let (s, body) = page(form("3").await).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("conversations using it are kept 3 days")
            && body.contains(r#"name="conversation_retention_days""#),
        "{body}"
    );
    for bad in ["", "x", "36501", "-2"] {
        let (s, body) = page(form(bad).await).await;
        assert_eq!(s, 400, "{bad:?}: {body}");
        assert!(body.contains("days"), "{body}");
    }
    assert_eq!(retention_of(&api, &ann, "rodeo").await, 3);
}
