//! Password recovery pages: ask for a reset link by e-mail, then choose a new password with it.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::{Layout, page};
use crate::http::{AppState, ClientAddr, public_message, status_of};

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    layout: Layout,
    email: String,
    sent: bool,
    error: Option<String>,
}

pub async fn forgot_page() -> Response {
    page(
        &ForgotPage {
            layout: Layout { user: None },
            email: String::new(),
            sent: false,
            error: None,
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: String,
}

/// Says the same whether or not an account uses the address.
pub async fn forgot(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Form(form): Form<ForgotForm>,
) -> Response {
    let result = state
        .service
        .accounts
        .request_password_reset(&form.email, addr)
        .await;
    let (status, sent, error) = match result {
        Ok(()) => (StatusCode::OK, true, None),
        Err(e) => (status_of(e.code()), false, Some(public_message(&e))),
    };
    page(
        &ForgotPage {
            layout: Layout { user: None },
            email: form.email.chars().take(320).collect(),
            sent,
            error,
        },
        status,
    )
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    layout: Layout,
    token: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn reset_page(Query(q): Query<TokenQuery>) -> Response {
    page(
        &ResetPage {
            layout: Layout { user: None },
            token: q.token.chars().take(200).collect(),
            error: None,
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    new_password: String,
}

pub async fn reset(State(state): State<AppState>, Form(form): Form<ResetForm>) -> Response {
    match state
        .service
        .accounts
        .reset_password_with(&form.token, &form.new_password)
        .await
    {
        Ok(()) => Redirect::to("/signin?done=reset").into_response(),
        Err(e) => page(
            &ResetPage {
                layout: Layout { user: None },
                token: form.token.chars().take(200).collect(),
                error: Some(public_message(&e)),
            },
            status_of(e.code()),
        ),
    }
}
