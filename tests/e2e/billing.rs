//! Billing against the fake Stripe (tests/src/fake_stripe.rs): checkout and portal, webhook
//! signatures (with the official `stripe` Python SDK as an independent oracle), idempotent and
//! order-proof webhooks on SQLite and PostgreSQL, and the usage and revenue reports.

use std::process::Command;

use lariat_tests::PgDatabase;
use lariat_tests::fake_stripe::{
    self, FakeStripe, PRO_MONTHLY, TEAM_MONTHLY, WEBHOOK_SECRET, event, invoice_object, now_secs,
    subscription_object,
};
use serde_json::{Value, json};

use crate::serve::{Api, Server, create_admin};
use crate::support::Lariat;

/// A server billing through a fresh fake Stripe, which sends its events to it.
async fn start(l: Lariat) -> (FakeStripe, Lariat, Server, Api) {
    let fake = FakeStripe::start().await;
    // the test's own settings go last, so they win
    let mut l = l;
    let own = std::mem::take(&mut l.env);
    l.env = fake.env();
    l.env.extend(own);
    let server = Server::start(&l);
    fake.send_events_to(&format!("{}/api/billing/webhook", server.base));
    let api = Api::new(&server);
    (fake, l, server, api)
}

async fn billing(api: &Api, token: &str) -> Value {
    let (status, body) = api.get("/api/billing", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn limits(api: &Api, token: &str) -> Value {
    let (status, body) = api.get("/api/usage", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body["limits"].clone()
}

/// The plan's limits as the server's defaults set them.
async fn plan_limits(api: &Api, token: &str, plan: &str) -> Value {
    billing(api, token).await["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == plan)
        .unwrap()["limits"]
        .clone()
}

#[tokio::test]
async fn a_user_upgrades_through_checkout_and_downgrades_through_the_portal() {
    let (fake, _l, _server, api) = start(Lariat::new()).await;
    let ann = api.user("ann@example.com").await;
    let b = billing(&api, &ann).await;
    assert_eq!(b["configured"], true, "{b}");
    assert_eq!(b["plan"], "free");
    assert_eq!(b["subscription"], Value::Null);
    let pro = b["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pro")
        .unwrap();
    assert_eq!(
        (pro["monthly"].clone(), pro["yearly"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(
        limits(&api, &ann).await,
        plan_limits(&api, &ann, "free").await
    );

    // the portal needs a customer first
    let (status, body) = api.post("/api/billing/portal", Some(&ann), json!({})).await;
    assert_eq!(status, 404, "{body}");

    let (status, body) = api
        .post(
            "/api/billing/checkout",
            Some(&ann),
            json!({"plan": "pro", "interval": "month"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let url = body["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/pay/cs_test_", fake.url)),
        "{url}"
    );
    let session = FakeStripe::session_of(url).to_owned();
    // the customer is linked by our user id, never by e-mail
    let calls = fake.calls();
    let customer = calls.iter().find(|c| c.path == "/v1/customers").unwrap();
    let user_id = customer.form["metadata[user_id]"].clone();
    assert!(!user_id.is_empty() && !user_id.contains('@'));
    assert!(customer.idempotency_key.is_some());
    let checkout = calls
        .iter()
        .find(|c| c.path == "/v1/checkout/sessions")
        .unwrap();
    assert_eq!(checkout.form["client_reference_id"], user_id);
    assert_eq!(checkout.form["line_items[0][price]"], PRO_MONTHLY);
    assert_eq!(checkout.form["mode"], "subscription");
    assert!(checkout.idempotency_key.is_some());

    // leaving Checkout unpaid and coming back makes no second customer
    let (status, body) = api
        .post("/api/billing/checkout", Some(&ann), json!({"plan": "pro"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.customers(), 1);

    let sub = fake.complete_checkout(&session).await;
    let b = billing(&api, &ann).await;
    assert_eq!(b["plan"], "pro", "{b}");
    assert_eq!(b["subscription"]["id"], sub);
    assert_eq!(b["subscription"]["status"], "active");
    assert_eq!(b["subscription"]["interval"], "month");
    assert!(b["subscription"]["current_period_end"].as_i64().unwrap() > now_secs() * 1000);
    assert_eq!(b["invoices"][0]["status"], "paid");
    assert_eq!(b["invoices"][0]["amount_paid"], 2900);
    assert_eq!(b["payment_problem"], false);
    // invoices (with their hosted links) need a session or a key with the billing scope
    let key_with = |scopes: Value| {
        let (api, ann) = (api.clone(), ann.clone());
        async move {
            let (s, k) = api
                .post(
                    "/api/keys",
                    Some(&ann),
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            assert_eq!(s, 201, "{k}");
            k["key"].as_str().unwrap().to_owned()
        }
    };
    let plain = key_with(json!(["search", "chat"])).await;
    let (s, refused) = api.get("/api/billing", Some(&plain)).await;
    assert_eq!(s, 403, "{refused}");
    assert!(refused.to_string().contains("billing scope"), "{refused}");
    let books = key_with(json!(["billing"])).await;
    assert_eq!(billing(&api, &books).await["invoices"], b["invoices"]);
    // the quota follows the plan
    assert_eq!(
        limits(&api, &ann).await,
        plan_limits(&api, &ann, "pro").await
    );
    assert_ne!(
        plan_limits(&api, &ann, "pro").await,
        plan_limits(&api, &ann, "free").await
    );

    // one subscription at a time: changes go through the portal
    let (status, body) = api
        .post("/api/billing/checkout", Some(&ann), json!({"plan": "team"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("portal"),
        "{body}"
    );

    let (status, body) = api.post("/api/billing/portal", Some(&ann), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/portal/bps_", fake.url))
    );
    let customer_id = fake.customer_of_session(&session);
    fake.cancel_subscriptions(&customer_id).await;
    let b = billing(&api, &ann).await;
    assert_eq!(b["plan"], "free", "{b}");
    assert_eq!(b["subscription"]["status"], "canceled");
    assert_eq!(
        limits(&api, &ann).await,
        plan_limits(&api, &ann, "free").await
    );
}

#[tokio::test]
async fn checkout_refuses_what_it_cannot_sell_and_writes_nothing_when_stripe_fails() {
    let (fake, _l, _server, api) = start(Lariat::new()).await;
    let ann = api.user("ann@example.com").await;
    for (body, status, says) in [
        (
            json!({"plan": "team", "interval": "year"}),
            400,
            "no Stripe price",
        ),
        (json!({"plan": "free"}), 400, "no Stripe price"),
        (json!({"plan": "gold"}), 400, "there is no plan"),
        (
            json!({"plan": "pro", "interval": "week"}),
            400,
            "invalid JSON body",
        ),
        (json!({"plan": "pro", "extra": 1}), 400, "invalid JSON body"),
        (json!({}), 400, "invalid JSON body"),
    ] {
        let (s, b) = api
            .post("/api/billing/checkout", Some(&ann), body.clone())
            .await;
        assert_eq!(s, status, "{body}: {b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {b}"
        );
    }
    let (s, _) = api
        .post("/api/billing/checkout", None, json!({"plan": "pro"}))
        .await;
    assert_eq!(s, 401);
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());

    // Stripe failing (every try): a clear 502, no customer kept
    fake.fail(3);
    let (s, b) = api
        .post("/api/billing/checkout", Some(&ann), json!({"plan": "pro"}))
        .await;
    assert_eq!(s, 502, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("Stripe"),
        "{b}"
    );
    assert_eq!(fake.calls().len(), 3, "tried three times");
    assert_eq!(fake.customers(), 0);
    // a failure that passes is retried with the same idempotency key
    fake.fail(1);
    let (s, b) = api
        .post("/api/billing/checkout", Some(&ann), json!({"plan": "pro"}))
        .await;
    assert_eq!(s, 200, "{b}");
    let keys: Vec<_> = fake
        .calls()
        .iter()
        .skip(3)
        .filter(|c| c.path == "/v1/customers")
        .map(|c| c.idempotency_key.clone().unwrap())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
    assert_eq!(fake.customers(), 1);
}

#[tokio::test]
async fn stripe_unreachable_or_unconfigured_answers_clearly() {
    // a port nothing listens on
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let l = Lariat::new().with_env("LARIAT_BILLING__TIMEOUT_SECS", "2");
    let (_fake, _l, _server, api) = start(l.with_env(
        "LARIAT_BILLING__API_BASE",
        &format!("http://127.0.0.1:{port}"),
    ))
    .await;
    let ann = api.user("ann@example.com").await;
    let (s, b) = api
        .post("/api/billing/checkout", Some(&ann), json!({"plan": "pro"}))
        .await;
    assert_eq!(s, 502, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{b}"
    );
    let b = billing(&api, &ann).await;
    assert_eq!(b["plan"], "free");

    // without Stripe configured: plans are an admin's business
    let plain = Lariat::new();
    let server = Server::start(&plain);
    let api = Api::new(&server);
    let bob = api.user("bob@example.com").await;
    let b = billing(&api, &bob).await;
    assert_eq!(b["configured"], false, "{b}");
    let (s, b) = api
        .post("/api/billing/checkout", Some(&bob), json!({"plan": "pro"}))
        .await;
    assert_eq!(s, 404, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sells no plans"),
        "{b}"
    );
    let (s, b) = api
        .post("/api/billing/webhook", None, json!({"id": "evt_1"}))
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no webhook secret"),
        "{b}"
    );
}

#[tokio::test]
async fn webhook_signatures_are_checked_as_stripe_specifies() {
    let (fake, _l, _server, api) = start(Lariat::new()).await;
    let ann = api.user("ann@example.com").await;
    let (_, body) = api
        .post("/api/billing/checkout", Some(&ann), json!({"plan": "pro"}))
        .await;
    let session = FakeStripe::session_of(body["url"].as_str().unwrap()).to_owned();
    let customer = fake.customer_of_session(&session);
    let sub = subscription_object(
        "sub_sig",
        &customer,
        "active",
        PRO_MONTHLY,
        now_secs() + 86_400,
    );
    let e = event("evt_sig", "customer.subscription.created", now_secs(), sub);
    let text = serde_json::to_string(&e).unwrap();
    let now = now_secs();

    let refused = [
        (
            "wrong secret",
            text.clone(),
            fake_stripe::signature(&text, "whsec_wrong", now),
        ),
        (
            "tampered body",
            text.replace("active", "trialing"),
            fake_stripe::signature(&text, WEBHOOK_SECRET, now),
        ),
        (
            "301 s old",
            text.clone(),
            fake_stripe::signature(&text, WEBHOOK_SECRET, now - 301),
        ),
        (
            "301 s ahead",
            text.clone(),
            fake_stripe::signature(&text, WEBHOOK_SECRET, now + 301),
        ),
        ("no v1", text.clone(), format!("t={now}")),
        ("garbage", text.clone(), "t=x,v1=y".to_owned()),
        ("empty", text.clone(), String::new()),
    ];
    for (why, body, header) in &refused {
        let (status, answer) = fake.deliver_raw(body, header).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("signature"),
            "{why}: {answer}"
        );
    }
    assert_eq!(
        billing(&api, &ann).await["plan"],
        "free",
        "a refused event changed nothing"
    );

    // several v1 values (a secret being rotated): any match passes; so does the old secret
    let stale = fake_stripe::signature(&text, "whsec_retired", now);
    let good = fake_stripe::signature(&text, WEBHOOK_SECRET, now);
    let both = format!("{stale},v1={}", good.split("v1=").nth(1).unwrap());
    let (status, answer) = fake.deliver_raw(&text, &both).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "applied");
    let e2 = event(
        "evt_sig2",
        "invoice.paid",
        now,
        invoice_object("in_sig", &customer, "sub_sig", PRO_MONTHLY, true),
    );
    let (status, answer) = fake.deliver_signed(&e2, "whsec_old_one", now - 299).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(billing(&api, &ann).await["plan"], "pro");

    // the stripe SDK agrees both ways: what our signer signs it accepts (and the refused
    // ones it refuses); what it signs, Lariat accepts
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("payload.json");
    std::fs::write(&payload, &text).unwrap();
    let oracle = |args: &[&str]| {
        let out = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/stripe_oracle.py"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.code() == Some(0) || out.status.code() == Some(1),
            "the stripe SDK is missing (make test-deps): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )
    };
    let p = payload.to_str().unwrap();
    assert_eq!(
        oracle(&["verify", p, &good, WEBHOOK_SECRET]),
        (true, "evt_sig".to_owned())
    );
    assert!(oracle(&["verify", p, &both, WEBHOOK_SECRET]).0);
    // (the SDK checks only that a timestamp is not too old; Lariat refuses one too far ahead)
    for (why, body, header) in refused.iter().filter(|(why, ..)| *why != "301 s ahead") {
        std::fs::write(&payload, body).unwrap();
        assert!(
            !oracle(&["verify", p, header, WEBHOOK_SECRET]).0,
            "the SDK accepted {why}"
        );
    }
    let e3 = event(
        "evt_sig3",
        "customer.subscription.updated",
        now + 1,
        subscription_object(
            "sub_sig",
            &customer,
            "active",
            PRO_MONTHLY,
            now_secs() + 86_400,
        ),
    );
    let text3 = serde_json::to_string(&e3).unwrap();
    std::fs::write(&payload, &text3).unwrap();
    let (ok, header) = oracle(&["sign", p, WEBHOOK_SECRET]);
    assert!(ok && header.starts_with("t="), "{header}");
    let (status, answer) = fake.deliver_raw(&text3, &header).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "applied");
}

/// Replays, reordering and racing deliveries change the plan exactly as the latest state says.
async fn webhooks_are_idempotent_and_order_proof(l: Lariat) {
    let l = l.with_env("LARIAT_BILLING__GRACE_DAYS", "3");
    let (fake, _l, server, api) = start(l).await;
    let ann = api.user("ann@example.com").await;
    let (_, body) = api
        .post("/api/billing/checkout", Some(&ann), json!({"plan": "pro"}))
        .await;
    let customer = fake.customer_of_session(FakeStripe::session_of(body["url"].as_str().unwrap()));
    let end = now_secs() + 30 * 86_400;
    let sub =
        |status: &str, price: &str| subscription_object("sub_o", &customer, status, price, end);
    let t = now_secs() - 100;
    let plan = || async {
        billing(&api, &ann).await["plan"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // the same event twice: one effect
    let created = event(
        "evt_o1",
        "customer.subscription.created",
        t,
        sub("active", PRO_MONTHLY),
    );
    assert_eq!(fake.deliver(&created).await.1["outcome"], "applied");
    assert_eq!(fake.deliver(&created).await.1["outcome"], "duplicate");
    assert_eq!(plan().await, "pro");

    // updated (to team) before an older created (pro): the older is left
    let updated = event(
        "evt_o2",
        "customer.subscription.updated",
        t + 10,
        sub("active", TEAM_MONTHLY),
    );
    assert_eq!(fake.deliver(&updated).await.1["outcome"], "applied");
    let late = event(
        "evt_o3",
        "customer.subscription.created",
        t + 5,
        sub("active", PRO_MONTHLY),
    );
    assert_eq!(fake.deliver(&late).await.1["outcome"], "stale");
    assert_eq!(plan().await, "team");

    // two events of the same second: which is last is unknown, so Stripe is asked
    fake.put_subscription(sub("active", PRO_MONTHLY));
    let same = event(
        "evt_o4",
        "customer.subscription.updated",
        t + 10,
        sub("active", TEAM_MONTHLY),
    );
    assert_eq!(fake.deliver(&same).await.1["outcome"], "applied");
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.path == "/v1/subscriptions/sub_o")
    );
    assert_eq!(plan().await, "pro", "applied as Stripe has it");

    // payment failed: past due keeps the plan for the grace period, the user is told
    let failed = event(
        "evt_o5",
        "invoice.payment_failed",
        t + 20,
        invoice_object("in_o1", &customer, "sub_o", PRO_MONTHLY, false),
    );
    assert_eq!(fake.deliver(&failed).await.1["outcome"], "applied");
    let past_due = event(
        "evt_o6",
        "customer.subscription.updated",
        t + 21,
        sub("past_due", PRO_MONTHLY),
    );
    assert_eq!(fake.deliver(&past_due).await.1["outcome"], "applied");
    let b = billing(&api, &ann).await;
    assert_eq!(b["plan"], "pro", "{b}");
    assert_eq!(b["payment_problem"], true, "{b}");
    let grace = b["subscription"]["grace_until"].as_i64().unwrap();
    assert!(
        (grace - now_secs() * 1000 - 3 * 86_400_000).abs() < 120_000,
        "{b}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        server.log().contains("Your Lariat payment failed"),
        "{}",
        server.log()
    );
    // and the web app shows a banner on every page
    let banner = |token: String| {
        let api = api.clone();
        async move {
            let page = api
                .client
                .get(format!("{}/search", api.base))
                .header("cookie", format!("lariat_access={token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(page.status(), 200);
            page.text()
                .await
                .unwrap()
                .contains("Your last payment failed")
        }
    };
    assert!(banner(ann.clone()).await);
    // paid after all: the problem is gone
    let paid = event(
        "evt_o7",
        "invoice.paid",
        t + 30,
        invoice_object("in_o1", &customer, "sub_o", PRO_MONTHLY, true),
    );
    assert_eq!(fake.deliver(&paid).await.1["outcome"], "applied");
    let active = event(
        "evt_o8",
        "customer.subscription.updated",
        t + 31,
        sub("active", PRO_MONTHLY),
    );
    assert_eq!(fake.deliver(&active).await.1["outcome"], "applied");
    let b = billing(&api, &ann).await;
    assert_eq!(b["payment_problem"], false, "{b}");
    assert!(!banner(ann.clone()).await);
    assert_eq!(
        b["invoices"].as_array().unwrap().len(),
        1,
        "one invoice, paid: {b}"
    );

    // deleted before an older updated: the updated is left and the plan ends
    let mut gone = sub("canceled", PRO_MONTHLY);
    gone["items"]["data"][0]["current_period_end"] = json!(now_secs() - 1);
    let deleted = event("evt_o9", "customer.subscription.deleted", t + 50, gone);
    assert_eq!(fake.deliver(&deleted).await.1["outcome"], "applied");
    let older = event(
        "evt_o10",
        "customer.subscription.updated",
        t + 40,
        sub("active", PRO_MONTHLY),
    );
    assert_eq!(fake.deliver(&older).await.1["outcome"], "stale");
    assert_eq!(plan().await, "free");

    // the same new event delivered eight times at once: one effect
    let team = subscription_object("sub_o2", &customer, "active", TEAM_MONTHLY, end);
    fake.put_subscription(team.clone());
    let again = event("evt_o11", "customer.subscription.created", t + 60, team);
    let outcomes = futures::future::join_all((0..8).map(|_| fake.deliver(&again))).await;
    let applied = outcomes
        .iter()
        .filter(|(s, b)| *s == 200 && b["outcome"] == "applied")
        .count();
    let duplicate = outcomes
        .iter()
        .filter(|(s, b)| *s == 200 && b["outcome"] == "duplicate")
        .count();
    assert_eq!((applied, duplicate), (1, 7), "{outcomes:?}");
    assert_eq!(plan().await, "team");

    // a customer nobody here has: 200, nothing changed
    let stranger = event(
        "evt_o12",
        "customer.subscription.created",
        t + 70,
        subscription_object("sub_x", "cus_stranger", "active", PRO_MONTHLY, end),
    );
    let (status, answer) = fake.deliver(&stranger).await;
    assert_eq!(
        (status, answer["outcome"].clone()),
        (200, json!("ignored")),
        "{answer}"
    );
    assert_eq!(plan().await, "team");
    // an event type Lariat does not act on, and malformed ones
    let other = event("evt_o13", "customer.created", t, json!({"id": customer}));
    assert_eq!(fake.deliver(&other).await.1["outcome"], "ignored");
    let bad = json!({"id": "evt_o14", "type": "customer.subscription.updated", "created": t,
        "data": {"object": {"id": "sub_o"}}});
    let (status, answer) = fake.deliver(&bad).await;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = fake.deliver(&json!({"type": "invoice.paid"})).await;
    assert_eq!(status, 400);
    assert_eq!(plan().await, "team");
}

#[tokio::test]
async fn webhooks_are_idempotent_and_order_proof_on_sqlite() {
    webhooks_are_idempotent_and_order_proof(Lariat::new()).await;
}

#[tokio::test]
async fn webhooks_are_idempotent_and_order_proof_on_postgres() {
    let db = PgDatabase::create().await;
    webhooks_are_idempotent_and_order_proof(Lariat::new().with_env("LARIAT_DATABASE_URL", &db.url))
        .await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_past_due_subscription_falls_back_to_free_after_its_grace() {
    let l = Lariat::new().with_env("LARIAT_BILLING__GRACE_DAYS", "0");
    let (fake, _l, _server, api) = start(l).await;
    let ann = api.user("ann@example.com").await;
    let (_, body) = api
        .post("/api/billing/checkout", Some(&ann), json!({"plan": "pro"}))
        .await;
    let customer = fake.customer_of_session(FakeStripe::session_of(body["url"].as_str().unwrap()));
    let end = now_secs() + 86_400;
    let t = now_secs();
    let e = event(
        "evt_g1",
        "customer.subscription.created",
        t,
        subscription_object("sub_g", &customer, "active", PRO_MONTHLY, end),
    );
    assert_eq!(fake.deliver(&e).await.1["outcome"], "applied");
    assert_eq!(billing(&api, &ann).await["plan"], "pro");
    let e = event(
        "evt_g2",
        "customer.subscription.updated",
        t + 1,
        subscription_object("sub_g", &customer, "past_due", PRO_MONTHLY, end),
    );
    assert_eq!(fake.deliver(&e).await.1["outcome"], "applied");
    assert_eq!(billing(&api, &ann).await["plan"], "free");
}

#[tokio::test]
async fn usage_and_analytics_report_by_group_as_json_and_csv() {
    let l = Lariat::new();
    create_admin(&l);
    let corpus = crate::support::corpus_dir();
    l.expect(0, &["ingest", corpus.to_str().unwrap(), "-c", "rodeo"]);
    let (fake, _l, _server, api) = start(l).await;
    let (_, admin) = api
        .post(
            "/api/auth/signin",
            None,
            json!({"email": "admin@example.com", "password": crate::serve::PASSWORD}),
        )
        .await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let ann = api.user("ann@example.com").await;
    for q in ["How long is a heel rope?", "What is a barrel pattern?"] {
        let (status, body) = api
            .post(
                "/api/chat",
                Some(&admin),
                json!({"message": q, "collections": ["rodeo"]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = api
        .post(
            "/api/chat",
            Some(&ann),
            json!({"message": "How long is a heel rope?"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, u) = api.get("/api/usage?group_by=model", Some(&admin)).await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(
        u["messages"], 2,
        "the month's allowance is still there: {u}"
    );
    assert_eq!(u["report"]["group_by"], "model");
    assert_eq!(u["report"]["rows"][0]["key"], "extractive", "{u}");
    assert_eq!(u["report"]["rows"][0]["messages"], 2);
    assert_eq!(u["report"]["totals"]["messages"], 2);
    let (_, u) = api
        .get("/api/usage?group_by=collection", Some(&admin))
        .await;
    assert_eq!(u["report"]["rows"][0]["key"], "rodeo", "{u}");

    // revenue: ann buys pro
    let (_, body) = api
        .post("/api/billing/checkout", Some(&ann), json!({"plan": "pro"}))
        .await;
    fake.complete_checkout(FakeStripe::session_of(body["url"].as_str().unwrap()))
        .await;

    let (status, a) = api.get("/api/admin/analytics", Some(&admin)).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["totals"]["messages"], 3, "{a}");
    assert_eq!(a["totals"]["users"], 2, "active users: {a}");
    assert_eq!(a["by_day"].as_array().unwrap().len(), 1);
    assert_eq!(a["error_rate"], 0.0);
    let plans: Vec<&str> = a["by_plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert!(plans.contains(&"free"), "{a}");
    assert_eq!(
        a["revenue_by_plan"],
        json!([{"key": "pro", "currency": "usd", "amount": 2900, "invoices": 1}])
    );
    assert_eq!(a["top_collections"][0]["key"], "rodeo");

    // CSV
    let response = api
        .client
        .get(format!(
            "{}/api/admin/analytics?format=csv&group_by=plan",
            api.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("analytics-")
    );
    let csv = response.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "plan,messages,prompt_tokens,completion_tokens,tokens,cost_usd,avg_latency_ms,errors,fallbacks,users,revenue"
    );
    assert!(
        csv.contains("\r\npro,0,0,0,0,0.000000,0,0,0,0,29.00 USD\r\n"),
        "{csv}"
    );
    assert!(csv.lines().any(|l| l.starts_with("free,")), "{csv}");
    let response = api
        .client
        .get(format!("{}/api/usage?format=csv", api.base))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap();
    let csv = response.text().await.unwrap();
    assert!(csv.starts_with("day,messages,"), "{csv}");
    assert_eq!(csv.lines().count(), 2, "{csv}");

    // who may read what, and bad ranges
    let (status, _) = api.get("/api/admin/analytics", Some(&ann)).await;
    assert_eq!(status, 403);
    for bad in [
        "/api/usage?from=2026-02-30",
        "/api/usage?from=2026-12-01&to=2026-11-01",
        "/api/usage?from=2020-01-01&to=2026-01-01",
        "/api/usage?group_by=week",
        "/api/usage?format=xml",
        "/api/admin/analytics?to=yesterday",
    ] {
        let (status, body) = api.get(bad, Some(&admin)).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

/// Erasing an account: Stripe is told first (the subscription cancelled, then the customer
/// deleted), the export before it holds the invoices and subscriptions, and afterwards no row of
/// any table names the user, under either address it had; the invoice stays for the books, by
/// user id only.
#[tokio::test]
async fn an_erased_account_stops_paying_and_no_table_names_it() {
    use reqwest::Method;
    let (fake, l, server, api) = start(Lariat::new()).await;
    let old = "ann.erase@example.com";
    let new = "ann.moved@example.com";
    let ann = api.user(old).await;
    let (status, body) = api
        .post("/api/billing/checkout", Some(&ann), json!({"plan": "pro"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let session = FakeStripe::session_of(body["url"].as_str().unwrap()).to_owned();
    let customer = fake.customer_of_session(&session);
    let sub = fake.complete_checkout(&session).await;
    assert_eq!(
        billing(&api, &ann).await["invoices"][0]["amount_paid"],
        2900
    );

    // the account moves to another address: mail about it went to the old one too
    let (s, b) = api
        .post(
            "/api/auth/email",
            Some(&ann),
            json!({"new_email": new, "password": crate::serve::PASSWORD}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let token = api
        .logged_link(&format!("asked to use {new} from now on"), "confirm-email")
        .await;
    let (s, b) = api
        .post("/api/auth/email/confirm", None, json!({"token": token}))
        .await;
    assert_eq!(s, 200, "{b}");

    // the export holds what was paid for
    let (s, export) = api
        .post("/api/account/exports", Some(&ann), json!({}))
        .await;
    assert_eq!(s, 202, "{export}");
    let path = format!("/api/account/exports/{}", export["id"].as_str().unwrap());
    let started = std::time::Instant::now();
    let archive = loop {
        let (s, archive) = api.get(&path, Some(&ann)).await;
        if s == 200 {
            break archive;
        }
        assert!(started.elapsed().as_secs() < 20, "{s} {archive}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(archive["subscriptions"][0]["id"], sub.as_str(), "{archive}");
    assert_eq!(archive["invoices"][0]["amount_paid"], 2900, "{archive}");

    // Stripe unreachable: the erasure stops before anything is lost
    fake.fail(100);
    let erase = json!({"password": crate::serve::PASSWORD});
    let (s, b) = api
        .call(
            Method::DELETE,
            "/api/account",
            Some(&ann),
            Some(erase.clone()),
        )
        .await;
    assert_eq!(s, 502, "{b}");
    assert_eq!(api.get("/api/auth/me", Some(&ann)).await.0, 200);
    fake.fail(0);

    let (s, b) = api
        .call(Method::DELETE, "/api/account", Some(&ann), Some(erase))
        .await;
    assert_eq!(s, 204, "{b}");
    let deletes: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "DELETE")
        .map(|c| c.path)
        .collect();
    assert_eq!(
        deletes
            .iter()
            .rev()
            .take(2)
            .rev()
            .cloned()
            .collect::<Vec<_>>(),
        [
            format!("/v1/subscriptions/{sub}"),
            format!("/v1/customers/{customer}")
        ],
        "{deletes:?}"
    );
    assert_eq!(fake.subscription(&sub).unwrap()["status"], "canceled");

    let db = l.data_dir().join("lariat.db");
    let naming = crate::support::cells_naming(&db, &[old, new, "ann.erase", "ann.moved"]);
    assert!(naming.is_empty(), "still named in {naming:?}");
    drop(server);
}
