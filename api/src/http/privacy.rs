//! A user's own data over HTTP: exports of everything held about them, and erasure.

use aide::axum::ApiRouter;
use aide::axum::routing::{delete_with, get_with, post_with};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::response::NoContent;
use operations::privacy::ExportInfo;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Auth, Body, IdPath};

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/account/exports",
            post_with(request_export, |op| {
                op.summary(
                    "Export everything held about the caller: built in the background, mailed \
                     when ready",
                )
                .response_with::<202, Json<ExportInfo>, _>(|r| {
                    r.description("the export is being built")
                })
            })
            .get_with(exports, |op| {
                op.summary("The caller's exports and where they stand")
            }),
        )
        .api_route(
            "/api/account/exports/{id}",
            get_with(download_export, |op| {
                op.summary("Download a ready export (JSON)")
            }),
        )
        .api_route(
            "/api/account",
            delete_with(erase_account, |op| {
                op.summary(
                    "Erase the caller's account and everything held about them (the password \
                     required)",
                )
            }),
        )
}

async fn request_export(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<(StatusCode, Json<ExportInfo>), ApiError> {
    let export = state.service.privacy.request_export(&principal).await?;
    Ok((StatusCode::ACCEPTED, Json(export)))
}

#[derive(Serialize, JsonSchema)]
struct Exports {
    exports: Vec<ExportInfo>,
}

async fn exports(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Exports>, ApiError> {
    let exports = state.service.privacy.exports(&principal).await?;
    Ok(Json(Exports { exports }))
}

async fn download_export(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<axum::response::Response, ApiError> {
    let content = state.service.privacy.download(&principal, &id).await?;
    Ok(export_download(content))
}

/// An export as a JSON file to save (the API's download and the account page's link).
pub(crate) fn export_download(content: String) -> axum::response::Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"lariat-export.json\"",
            ),
        ],
        content,
    )
        .into_response()
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Erasure {
    /// The account's password. An account without one (opened by single sign-on) leaves it
    /// out and must have signed in through its provider within the last few minutes.
    password: Option<String>,
}

async fn erase_account(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Body(b): Body<Erasure>,
) -> Result<NoContent, ApiError> {
    let service = &state.service;
    service
        .privacy
        .erase_account(&service.accounts, &principal, b.password.as_deref())
        .await?;
    Ok(NoContent)
}
