//! The pages mailed links open: ask for a reset link by e-mail and choose a new password with
//! it; verify an address; confirm a new one. Each link's page posts its token back, so a mail
//! scanner that fetches the link uses nothing up.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
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
            layout: Layout::anonymous(),
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
            layout: Layout::anonymous(),
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
            layout: Layout::anonymous(),
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

pub async fn reset(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Form(form): Form<ResetForm>,
) -> Response {
    match state
        .service
        .accounts
        .reset_password_with(&form.token, &form.new_password, addr)
        .await
    {
        Ok(()) => Redirect::to("/signin?done=reset").into_response(),
        Err(e) => page(
            &ResetPage {
                layout: Layout::anonymous(),
                token: form.token.chars().take(200).collect(),
                error: Some(public_message(&e)),
            },
            status_of(e.code()),
        ),
    }
}

/// A mailed link that one button confirms.
#[derive(Debug, Clone, Copy)]
pub enum Link {
    Verify,
    NewEmail,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    layout: Layout,
    heading: &'static str,
    explanation: &'static str,
    action: &'static str,
    button: &'static str,
    token: String,
    error: Option<String>,
}

impl Link {
    fn page(self, token: &str, error: Option<String>) -> ConfirmPage {
        let (heading, explanation, action, button) = match self {
            Link::Verify => (
                "Confirm your e-mail address",
                "Confirm that this address is yours, and the assistant is yours to ask.",
                "/verify",
                "Confirm my address",
            ),
            Link::NewEmail => (
                "Confirm your new e-mail address",
                "Your account will use this address from now on; the old one is told.",
                "/confirm-email",
                "Use this address",
            ),
        };
        ConfirmPage {
            layout: Layout::anonymous(),
            heading,
            explanation,
            action,
            button,
            token: token.chars().take(200).collect(),
            error,
        }
    }
}

pub async fn verify_page(Query(q): Query<TokenQuery>) -> Response {
    page(&Link::Verify.page(&q.token, None), StatusCode::OK)
}

pub async fn email_page(Query(q): Query<TokenQuery>) -> Response {
    page(&Link::NewEmail.page(&q.token, None), StatusCode::OK)
}

#[derive(Deserialize)]
pub struct TokenForm {
    token: String,
}

/// The browser that followed the link keeps its session, if it is signed in to the account.
pub async fn verify(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let viewer = super::pages::signed_in(&state, &headers, addr).await;
    let result = state
        .service
        .accounts
        .verify_email(&form.token, addr, viewer.as_ref())
        .await;
    confirmed(Link::Verify, &form.token, result.map(drop), "verified")
}

pub async fn confirm_email(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Form(form): Form<TokenForm>,
) -> Response {
    let result = state
        .service
        .accounts
        .confirm_email_change(&form.token, addr)
        .await;
    confirmed(Link::NewEmail, &form.token, result.map(drop), "email")
}

/// To the account page with a notice, or the link's page again with the error.
fn confirmed(link: Link, token: &str, result: base::Result<()>, done: &str) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/account?done={done}")).into_response(),
        Err(e) => page(
            &link.page(token, Some(public_message(&e))),
            status_of(e.code()),
        ),
    }
}
