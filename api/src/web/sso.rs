//! Single sign-on in the browser: a button posts to `start` (or, on the account page, `link`),
//! which keeps the attempt's state in a cookie scoped to `/auth/oidc` and sends the browser to
//! the provider; the provider sends it back to `callback`, which hands the query and the cookie to
//! [`identity::accounts::Accounts::sso_finish`] and starts the session (or shows the link).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use identity::accounts::sso::{SsoCallback, SsoOutcome};
use serde::Deserialize;

use super::pages::{Viewer, error_page, redirect_setting, signed_in, signin_failed};
use crate::http::{AppState, SigningIn};
use crate::session;

#[derive(Deserialize)]
pub struct StartForm {
    next: Option<String>,
}

/// Sends the browser to the provider, holding the state it must bring back.
fn to_provider(
    state: &AppState,
    started: base::Result<identity::accounts::sso::SsoStart>,
) -> base::Result<Response> {
    let started = started?;
    let mut response = Redirect::to(&started.authorize_url).into_response();
    response.headers_mut().append(
        axum::http::header::SET_COOKIE,
        state.cookies.sso_started(&started.state),
    );
    Ok(response)
}

/// "Sign in with …" on the sign-in and sign-up pages.
pub async fn start(
    State(state): State<AppState>,
    SigningIn(client): SigningIn,
    Path(provider): Path<String>,
    Form(form): Form<StartForm>,
) -> Response {
    let next = session::local_path(form.next.as_deref());
    let started = state
        .service
        .accounts
        .sso_start(&provider, None, &next, client.address)
        .await;
    to_provider(&state, started).unwrap_or_else(|e| signin_failed(&state, false, &e, "", next))
}

/// "Link …" on the account page: the identity will be linked to the signed-in account.
pub async fn link(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(provider): Path<String>,
) -> Response {
    let started = state
        .service
        .accounts
        .sso_start(
            &provider,
            Some(&principal),
            "/account?done=linked#signin-h",
            principal.address,
        )
        .await;
    to_provider(&state, started).unwrap_or_else(|e| error_page(Some(principal.user), &e))
}

/// Where the provider sends the browser back.
pub async fn callback(
    State(state): State<AppState>,
    SigningIn(client): SigningIn,
    headers: HeaderMap,
    Path(provider): Path<String>,
    Query(answer): Query<SsoCallback>,
) -> Response {
    // a link must come back to the account that started it
    let viewer = signed_in(&state, &headers, client.address).await;
    let outcome = state
        .service
        .accounts
        .sso_finish(
            &provider,
            &answer,
            session::cookie(&headers, state.cookies.sso()),
            viewer.as_ref(),
            &client,
        )
        .await;
    let mut response = match outcome {
        Ok(SsoOutcome::SignedIn { tokens, next }) => redirect_setting(
            &session::local_path(Some(&next)),
            state.cookies.start(&tokens),
        ),
        Ok(SsoOutcome::Linked { next, .. }) => {
            Redirect::to(&session::local_path(Some(&next))).into_response()
        }
        Err(e) => match viewer {
            Some(viewer) => error_page(Some(viewer.user), &e),
            None => signin_failed(&state, false, &e, "", "/chat".into()),
        },
    };
    response
        .headers_mut()
        .append(axum::http::header::SET_COOKIE, state.cookies.sso_finished());
    response
}

/// Unlinks one of the viewer's identities.
pub async fn unlink(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(id): Path<String>,
) -> Response {
    match state
        .service
        .accounts
        .unlink_identity(&principal, &id)
        .await
    {
        Ok(()) => Redirect::to("/account?done=unlinked#signin-h").into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}
