//! A local stand-in for Stripe: the API calls Lariat makes (customers, Checkout Sessions,
//! Customer Portal sessions, subscriptions), form-encoded with a bearer secret key and
//! `Idempotency-Key`s honoured, answering objects shaped like Stripe's (API 2025-03-31: the
//! billing period on the subscription items); the hosted Checkout and Portal pages a browser
//! visits; and webhook events sent to the server signed as Stripe signs them (HMAC-SHA256 of
//! `"{t}.{body}"`, `Stripe-Signature: t=…,v1=…`). Its signer is its own, not Lariat's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub const SECRET_KEY: &str = "sk_test_lariat_fake";
pub const WEBHOOK_SECRET: &str = "whsec_lariat_fake";
/// The prices the tests configure: pro monthly and yearly, team monthly.
pub const PRO_MONTHLY: &str = "price_pro_monthly";
pub const PRO_YEARLY: &str = "price_pro_yearly";
pub const TEAM_MONTHLY: &str = "price_team_monthly";

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The `Stripe-Signature` header for `body` signed with `secret` at `t`.
pub fn signature(body: &str, secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A request Lariat made.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub form: HashMap<String, String>,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    customers: HashMap<String, Value>,
    sessions: HashMap<String, Value>,
    portals: HashMap<String, Value>,
    subscriptions: HashMap<String, Value>,
    /// Idempotency key → the answer first given.
    replies: HashMap<String, Value>,
    /// Answer 500 to this many calls.
    failing: u32,
    webhook: Option<String>,
}

#[derive(Clone, Default)]
struct FakeState {
    inner: Arc<Mutex<Inner>>,
    next: Arc<AtomicU32>,
    base: Arc<Mutex<String>>,
}

impl FakeState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn id(&self, prefix: &str) -> String {
        format!("{prefix}_{:06}", self.next.fetch_add(1, Ordering::SeqCst))
    }
}

pub struct FakeStripe {
    pub url: String,
    state: FakeState,
    client: reqwest::Client,
}

fn stripe_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"type": "invalid_request_error", "message": message}})),
    )
        .into_response()
}

/// A subscription object as Stripe's API answers it.
pub fn subscription_object(
    id: &str,
    customer: &str,
    status: &str,
    price: &str,
    period_end: i64,
) -> Value {
    let interval = if price.contains("yearly") {
        "year"
    } else {
        "month"
    };
    json!({
        "id": id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": false,
        "created": now_secs(),
        "metadata": {},
        "items": {"object": "list", "data": [{
            "id": format!("si_{id}"),
            "object": "subscription_item",
            "current_period_start": period_end - 30 * 86_400,
            "current_period_end": period_end,
            "price": {"id": price, "object": "price", "currency": "usd",
                "unit_amount": 2900, "recurring": {"interval": interval, "interval_count": 1}},
            "quantity": 1
        }]}
    })
}

/// An invoice object for a subscription.
pub fn invoice_object(
    id: &str,
    customer: &str,
    subscription: &str,
    price: &str,
    paid: bool,
) -> Value {
    json!({
        "id": id,
        "object": "invoice",
        "customer": customer,
        "status": if paid { "paid" } else { "open" },
        "amount_due": 2900,
        "amount_paid": if paid { 2900 } else { 0 },
        "currency": "usd",
        "created": now_secs(),
        "hosted_invoice_url": format!("https://invoice.stripe.com/i/{id}"),
        "parent": {"type": "subscription_details",
            "subscription_details": {"subscription": subscription}},
        "lines": {"object": "list", "data": [{"id": format!("il_{id}"),
            "pricing": {"price_details": {"price": price}}}]}
    })
}

/// An event wrapping `object`.
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "type": kind,
        "created": created,
        "livemode": false,
        "pending_webhooks": 1,
        "data": {"object": object}
    })
}

async fn guard(headers: &HeaderMap, state: &FakeState) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {SECRET_KEY}") {
        return Some(stripe_error(
            StatusCode::UNAUTHORIZED,
            "Invalid API Key provided",
        ));
    }
    let mut inner = state.lock();
    if inner.failing > 0 {
        inner.failing -= 1;
        return Some(stripe_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "fake outage",
        ));
    }
    None
}

fn record(
    state: &FakeState,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<Value> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut inner = state.lock();
    inner.calls.push(Call {
        method: method.into(),
        path: path.into(),
        idempotency_key: key.clone(),
        form: form.clone(),
    });
    key.and_then(|k| inner.replies.get(&format!("{path} {k}")).cloned())
}

fn remember(state: &FakeState, path: &str, headers: &HeaderMap, value: &Value) {
    if let Some(k) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        state
            .lock()
            .replies
            .insert(format!("{path} {k}"), value.clone());
    }
}

async fn create_customer(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let earlier = record(&state, "POST", "/v1/customers", &headers, &form);
    if let Some(r) = guard(&headers, &state).await {
        return r;
    }
    if let Some(earlier) = earlier {
        return axum::Json(earlier).into_response();
    }
    let id = state.id("cus");
    let customer = json!({
        "id": id, "object": "customer", "email": form.get("email"),
        "metadata": {"user_id": form.get("metadata[user_id]")}
    });
    state.lock().customers.insert(id, customer.clone());
    remember(&state, "/v1/customers", &headers, &customer);
    axum::Json(customer).into_response()
}

async fn create_session(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let earlier = record(&state, "POST", "/v1/checkout/sessions", &headers, &form);
    if let Some(r) = guard(&headers, &state).await {
        return r;
    }
    if let Some(earlier) = earlier {
        return axum::Json(earlier).into_response();
    }
    let customer = form.get("customer").cloned().unwrap_or_default();
    if !state.lock().customers.contains_key(&customer) {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            &format!("No such customer: '{customer}'"),
        );
    }
    let id = state.id("cs_test");
    let base = state.base.lock().unwrap().clone();
    let session = json!({
        "id": id, "object": "checkout.session", "mode": form.get("mode"),
        "customer": customer, "client_reference_id": form.get("client_reference_id"),
        "metadata": {"user_id": form.get("metadata[user_id]")},
        "price": form.get("line_items[0][price]"),
        "success_url": form.get("success_url"), "cancel_url": form.get("cancel_url"),
        "status": "open", "subscription": null,
        "url": format!("{base}/pay/{id}")
    });
    state.lock().sessions.insert(id, session.clone());
    remember(&state, "/v1/checkout/sessions", &headers, &session);
    axum::Json(session).into_response()
}

async fn create_portal(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    record(
        &state,
        "POST",
        "/v1/billing_portal/sessions",
        &headers,
        &form,
    );
    if let Some(r) = guard(&headers, &state).await {
        return r;
    }
    let id = state.id("bps");
    let base = state.base.lock().unwrap().clone();
    let portal = json!({
        "id": id, "object": "billing_portal.session", "customer": form.get("customer"),
        "return_url": form.get("return_url"), "url": format!("{base}/portal/{id}")
    });
    state.lock().portals.insert(id, portal.clone());
    axum::Json(portal).into_response()
}

/// Records a call without a body, and answers for the outage when one is on.
async fn bodiless(
    state: &FakeState,
    method: &str,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    record(state, method, path, headers, &HashMap::new());
    guard(headers, state).await
}

async fn get_subscription(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/subscriptions/{id}");
    if let Some(r) = bodiless(&state, "GET", &path, &headers).await {
        return r;
    }
    match state.lock().subscriptions.get(&id) {
        Some(s) => axum::Json(s.clone()).into_response(),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            &format!("No such subscription: '{id}'"),
        ),
    }
}

/// `DELETE /v1/subscriptions/{id}`: cancelled at once (Stripe answers the subscription).
async fn delete_subscription(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/subscriptions/{id}");
    if let Some(r) = bodiless(&state, "DELETE", &path, &headers).await {
        return r;
    }
    match state.lock().subscriptions.get_mut(&id) {
        Some(s) => {
            s["status"] = json!("canceled");
            s["ended_at"] = json!(now_secs());
            axum::Json(s.clone()).into_response()
        }
        None => stripe_error(
            StatusCode::NOT_FOUND,
            &format!("No such subscription: '{id}'"),
        ),
    }
}

/// `DELETE /v1/customers/{id}`: the customer goes (Stripe answers `deleted: true`).
async fn delete_customer(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/customers/{id}");
    if let Some(r) = bodiless(&state, "DELETE", &path, &headers).await {
        return r;
    }
    match state.lock().customers.remove(&id) {
        Some(_) => {
            axum::Json(json!({"id": id, "object": "customer", "deleted": true})).into_response()
        }
        None => stripe_error(StatusCode::NOT_FOUND, &format!("No such customer: '{id}'")),
    }
}

fn page(title: &str, action: &str, button: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         </head><body><h1>{title}</h1><form method=\"post\" action=\"{action}\">\
         <button type=\"submit\">{button}</button></form></body></html>"
    ))
}

async fn checkout_page(State(state): State<FakeState>, Path(id): Path<String>) -> Response {
    match state.lock().sessions.get(&id) {
        Some(s) => page(
            &format!("Pay for {}", s["price"].as_str().unwrap_or_default()),
            &format!("/pay/{id}"),
            "Subscribe",
        )
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn portal_page(State(state): State<FakeState>, Path(id): Path<String>) -> Response {
    if !state.lock().portals.contains_key(&id) {
        return StatusCode::NOT_FOUND.into_response();
    }
    page(
        "Manage your plan",
        &format!("/portal/{id}/cancel"),
        "Cancel plan",
    )
    .into_response()
}

impl FakeStripe {
    pub async fn start() -> Self {
        let state = FakeState::default();
        let app = Router::new()
            .route("/v1/customers", post(create_customer))
            .route("/v1/customers/{id}", delete(delete_customer))
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/billing_portal/sessions", post(create_portal))
            .route(
                "/v1/subscriptions/{id}",
                get(get_subscription).delete(delete_subscription),
            )
            .route("/pay/{id}", get(checkout_page).post(pay))
            .route("/portal/{id}", get(portal_page))
            .route("/portal/{id}/cancel", post(cancel))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = format!("http://{addr}");
        *state.base.lock().unwrap() = url.clone();
        Self {
            url,
            state,
            client: reqwest::Client::new(),
        }
    }

    /// The environment that points a Lariat at this fake, with pro (monthly, yearly) and team
    /// (monthly) prices and `public_url` as the app's address.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("LARIAT_BILLING__STRIPE_SECRET_KEY", SECRET_KEY.to_owned()),
            (
                "LARIAT_BILLING__WEBHOOK_SECRETS",
                format!("[\"whsec_old_one\", \"{WEBHOOK_SECRET}\"]"),
            ),
            ("LARIAT_BILLING__API_BASE", self.url.clone()),
            (
                "LARIAT_BILLING__PRICES__PRO__MONTHLY",
                PRO_MONTHLY.to_owned(),
            ),
            ("LARIAT_BILLING__PRICES__PRO__YEARLY", PRO_YEARLY.to_owned()),
            (
                "LARIAT_BILLING__PRICES__TEAM__MONTHLY",
                TEAM_MONTHLY.to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Where events go (the server's webhook URL).
    pub fn send_events_to(&self, url: &str) {
        self.state.lock().webhook = Some(url.to_owned());
    }

    /// Answer 500 to the next `n` API calls.
    pub fn fail(&self, n: u32) {
        self.state.lock().failing = n;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().calls.clone()
    }

    pub fn customers(&self) -> usize {
        self.state.lock().customers.len()
    }

    /// Sets a subscription as `GET /v1/subscriptions/{id}` answers it.
    pub fn put_subscription(&self, subscription: Value) {
        let id = subscription["id"].as_str().unwrap().to_owned();
        self.state.lock().subscriptions.insert(id, subscription);
    }

    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.state.lock().subscriptions.get(id).cloned()
    }

    /// Posts `event` to the webhook as Stripe would, signed with `secret` at `t`; the status and
    /// body of the answer.
    pub async fn deliver_signed(&self, event: &Value, secret: &str, t: i64) -> (u16, Value) {
        let body = serde_json::to_string(event).unwrap();
        self.deliver_raw(&body, &signature(&body, secret, t)).await
    }

    /// Posts `event` signed with the webhook secret now.
    pub async fn deliver(&self, event: &Value) -> (u16, Value) {
        self.deliver_signed(event, WEBHOOK_SECRET, now_secs()).await
    }

    /// Posts `body` with `header` as its Stripe-Signature.
    pub async fn deliver_raw(&self, body: &str, header: &str) -> (u16, Value) {
        let url = self
            .state
            .lock()
            .webhook
            .clone()
            .expect("send_events_to first");
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("stripe-signature", header)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Completes a Checkout Session as a customer paying would: the subscription starts and its
    /// events (created, invoice paid, checkout completed) are delivered; the subscription's id.
    pub async fn complete_checkout(&self, session_id: &str) -> String {
        let (session, sub_id, invoice_id) = {
            let mut inner = self.state.lock();
            let session = inner.sessions.get(session_id).cloned().expect("a session");
            let sub_id = self.state.id("sub");
            let invoice_id = self.state.id("in");
            let price = session["price"].as_str().unwrap().to_owned();
            let customer = session["customer"].as_str().unwrap().to_owned();
            inner.subscriptions.insert(
                sub_id.clone(),
                subscription_object(
                    &sub_id,
                    &customer,
                    "active",
                    &price,
                    now_secs() + 30 * 86_400,
                ),
            );
            let s = inner.sessions.get_mut(session_id).unwrap();
            s["status"] = json!("complete");
            s["subscription"] = json!(sub_id);
            (s.clone(), sub_id, invoice_id)
        };
        let sub = self.subscription(&sub_id).unwrap();
        let customer = session["customer"].as_str().unwrap();
        let price = session["price"].as_str().unwrap();
        let t = now_secs();
        for e in [
            event(
                &self.state.id("evt"),
                "customer.subscription.created",
                t,
                sub,
            ),
            event(
                &self.state.id("evt"),
                "invoice.paid",
                t,
                invoice_object(&invoice_id, customer, &sub_id, price, true),
            ),
            event(
                &self.state.id("evt"),
                "checkout.session.completed",
                t,
                session.clone(),
            ),
        ] {
            let (status, body) = self.deliver(&e).await;
            assert_eq!(status, 200, "{body}");
        }
        sub_id
    }

    /// Cancels a customer's subscriptions now, as the Portal's cancel button does, delivering
    /// `customer.subscription.deleted` for each.
    pub async fn cancel_subscriptions(&self, customer: &str) {
        let ended: Vec<Value> = {
            let mut inner = self.state.lock();
            inner
                .subscriptions
                .values_mut()
                .filter(|s| s["customer"] == customer && s["status"] != "canceled")
                .map(|s| {
                    s["status"] = json!("canceled");
                    s["items"]["data"][0]["current_period_end"] = json!(now_secs() - 1);
                    s["ended_at"] = json!(now_secs());
                    s.clone()
                })
                .collect()
        };
        for sub in ended {
            let e = event(
                &self.state.id("evt"),
                "customer.subscription.deleted",
                now_secs(),
                sub,
            );
            let (status, body) = self.deliver(&e).await;
            assert_eq!(status, 200, "{body}");
        }
    }

    /// A fresh event id.
    pub fn event_id(&self) -> String {
        self.state.id("evt")
    }

    /// The checkout session a Checkout URL names.
    pub fn session_of(url: &str) -> &str {
        url.rsplit('/').next().unwrap()
    }

    /// The customer a session or portal belongs to.
    pub fn customer_of_session(&self, session_id: &str) -> String {
        self.state.lock().sessions[session_id]["customer"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// `Subscribe` on the hosted Checkout page: complete, deliver, return to the app.
async fn pay(State(state): State<FakeState>, Path(id): Path<String>) -> Response {
    let fake = FakeStripe {
        url: state.base.lock().unwrap().clone(),
        state: state.clone(),
        client: reqwest::Client::new(),
    };
    let Some(success) = state
        .lock()
        .sessions
        .get(&id)
        .map(|s| s["success_url"].clone())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    fake.complete_checkout(&id).await;
    Redirect::to(success.as_str().unwrap_or("/")).into_response()
}

/// `Cancel plan` on the hosted Portal page: cancel now, deliver, return to the app.
async fn cancel(State(state): State<FakeState>, Path(id): Path<String>) -> Response {
    let fake = FakeStripe {
        url: state.base.lock().unwrap().clone(),
        state: state.clone(),
        client: reqwest::Client::new(),
    };
    let Some(portal) = state.lock().portals.get(&id).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    fake.cancel_subscriptions(portal["customer"].as_str().unwrap_or_default())
        .await;
    Redirect::to(portal["return_url"].as_str().unwrap_or("/")).into_response()
}
