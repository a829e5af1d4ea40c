//! The web app, served by `lariat serve` at `/` beside the API: server-rendered pages (askama
//! templates, checked at compile time), htmx for partial updates and one ES module that streams
//! the chat. Pages parse, call the same services as the API and render; the browser's session is a
//! pair of cookies (see [`session`]); every page carries a strict Content-Security-Policy.

mod account;
mod admin;
pub mod assets;
mod billing;
mod collections;
mod pages;
mod recovery;
pub mod render;

mod sso;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::http::AppState;
use crate::session;

/// The pages; `form_origins` are the sign-in providers' origins a form may be redirected to.
pub fn routes(form_origins: &[String]) -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/signin", get(pages::signin_page).post(pages::signin))
        .route("/signup", get(pages::signup_page).post(pages::signup))
        .route("/signout", post(pages::signout))
        .route("/auth/oidc/{provider}/start", post(sso::start))
        .route("/auth/oidc/{provider}/callback", get(sso::callback))
        .route("/account/identities/{provider}/link", post(sso::link))
        .route("/account/identities/{id}/unlink", post(sso::unlink))
        .route(session::RENEW_PATH, get(pages::renew))
        .route("/forgot", get(recovery::forgot_page).post(recovery::forgot))
        .route("/reset", get(recovery::reset_page).post(recovery::reset))
        .route("/verify", get(recovery::verify_page).post(recovery::verify))
        .route(
            "/confirm-email",
            get(recovery::email_page).post(recovery::confirm_email),
        )
        .route("/chat", get(pages::chat))
        .route("/chat/list", get(pages::conversation_list))
        .route("/chat/{id}", get(pages::chat))
        .route("/chat/{id}/rename", post(pages::rename))
        .route("/chat/{id}/delete", post(pages::delete))
        .route("/chat/{id}/messages/{message}", get(pages::message))
        .route("/chat/{id}/messages/{message}/feedback", post(pages::rate))
        .route("/passages/{chunk_id}", get(pages::passage))
        .route("/search", get(pages::search))
        .route("/collections", get(collections::list))
        .route("/collections/{name}", get(collections::show))
        .route("/collections/{name}/documents", get(collections::documents))
        .route(
            "/collections/{name}/documents/{id}/delete",
            post(collections::delete_document),
        )
        .route("/collections/{name}/settings", post(collections::settings))
        .route("/collections/{name}/members", post(collections::add_member))
        .route("/collections/{name}/sources", post(collections::add_source))
        .route(
            "/collections/{name}/sources/{id}",
            post(collections::update_source),
        )
        .route(
            "/collections/{name}/uploads/{id}/cancel",
            post(collections::cancel_upload),
        )
        .route(
            "/collections/{name}/sources/{id}/sync",
            post(collections::sync_source),
        )
        .route(
            "/collections/{name}/sources/{id}/remove",
            post(collections::remove_source),
        )
        .route(
            "/collections/{name}/members/{user_id}/remove",
            post(collections::remove_member),
        )
        .route("/documents/{id}", get(collections::document))
        .route("/account", get(account::account))
        .route("/account/keys", post(account::create_key))
        .route("/account/keys/{id}/revoke", post(account::revoke_key))
        .route(
            "/account/sessions/{id}/revoke",
            post(account::revoke_session),
        )
        .route(
            "/account/signout-everywhere",
            post(account::signout_everywhere),
        )
        .route("/account/password", post(account::change_password))
        .route("/account/email", post(account::change_email))
        .route("/account/export", post(account::request_export))
        .route("/account/exports/{id}", get(account::download_export))
        .route("/account/delete", post(account::erase_account))
        .route("/account/verify", post(account::resend_verification))
        .route("/billing", get(billing::billing))
        .route("/billing/checkout", post(billing::checkout))
        .route("/billing/portal", post(billing::portal))
        .route("/admin/analytics", get(billing::analytics))
        .route("/admin", get(admin::admin))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/users/{id}", post(admin::update_user))
        .route("/admin/users/{id}/reset", post(admin::send_reset_link))
        .layer(axum::middleware::from_fn_with_state(
            csp(form_origins),
            page_headers,
        ))
        .route("/assets/{hash}/{*name}", get(assets::serve))
        .layer(axum::middleware::from_fn(same_origin_only))
        .layer(tower_http::compression::CompressionLayer::new())
}

/// Forms posted to the pages (sign-in included: no logging in a victim as someone else) must
/// come from the pages themselves.
async fn same_origin_only(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if !session::is_same_origin(&parts) {
        return (
            axum::http::StatusCode::FORBIDDEN,
            "a form posted from another site is refused",
        )
            .into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The policy every page is served under: no inline script or style, nothing from elsewhere,
/// never framed; forms go to this site, or (a sign-on button's redirect) to a sign-in
/// provider's origin.
fn csp(form_origins: &[String]) -> HeaderValue {
    let mut form_action = String::from("'self'");
    for origin in form_origins {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; font-src 'self'; form-action {form_action}; base-uri 'none'; \
         frame-ancestors 'none'"
    ))
    .expect("origins are ASCII")
}

async fn page_headers(State(csp): State<HeaderValue>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    for (name, value) in [
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
