//! A collection's sources over HTTP (its curators and admins): list and add, read, change and
//! remove one, and start a sync now (202: it runs on the job runner; the source's `last_sync`
//! shows how it went).

use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::NoContent;
use base::CollectionName;
use operations::sources::{NewSource, Source, SourceUpdate, SourceView};
use operations::store::JobRun;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Auth, Body, NamePath, Params};

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/collections/{name}/sources",
            get_with(list, |op| {
                op.summary("The collection's sources with their last syncs (curators, admins)")
            })
            .post_with(add, |op| {
                op.summary(
                    "Add a source: a folder under sources.folder_roots, pages, or a sitemap; \
                     it syncs at once, then on its schedule",
                )
                .response::<201, Json<Source>>()
            }),
        )
        .api_route(
            "/api/collections/{name}/sources/{id}",
            get_with(get, |op| op.summary("One source and its last sync"))
                .patch_with(update, |op| {
                    op.summary("Change a source's targets, schedule or misses")
                })
                .delete_with(remove, |op| {
                    op.summary("Remove a source and, unless ?keep_documents=true, its documents")
                }),
        )
        .api_route(
            "/api/collections/{name}/sources/{id}/sync",
            post_with(sync, |op| {
                op.summary("Sync a source now; 202 with the run as started")
                    .response::<202, Json<JobRun>>()
            }),
        )
}

#[derive(Deserialize, JsonSchema)]
struct SourcePath {
    #[schemars(pattern(r"^[a-z0-9][a-z0-9_-]{0,63}$"))]
    name: String,
    #[schemars(length(min = 1, max = 64))]
    id: String,
}

impl SourcePath {
    fn parse(&self) -> Result<CollectionName, ApiError> {
        Ok(CollectionName::parse(&self.name)?)
    }
}

#[derive(Serialize, JsonSchema)]
struct SourceList {
    sources: Vec<SourceView>,
}

async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(NamePath { name }): Path<NamePath>,
) -> Result<Json<SourceList>, ApiError> {
    let name = CollectionName::parse(&name)?;
    let sources = state.service.sources.list(&principal, &name).await?;
    Ok(Json(SourceList { sources }))
}

async fn add(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(NamePath { name }): Path<NamePath>,
    Body(new): Body<NewSource>,
) -> Result<(StatusCode, Json<Source>), ApiError> {
    let name = CollectionName::parse(&name)?;
    let source = state.service.sources.add(&principal, &name, &new).await?;
    Ok((StatusCode::CREATED, Json(source)))
}

async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<SourcePath>,
) -> Result<Json<SourceView>, ApiError> {
    let view = state
        .service
        .sources
        .get(&principal, &p.parse()?, &p.id)
        .await?;
    Ok(Json(view))
}

async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<SourcePath>,
    Body(update): Body<SourceUpdate>,
) -> Result<Json<Source>, ApiError> {
    let source = state
        .service
        .sources
        .update(&principal, &p.parse()?, &p.id, &update)
        .await?;
    Ok(Json(source))
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
struct RemoveParams {
    /// Keep the documents the source brought.
    #[serde(default)]
    keep_documents: bool,
}

async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<SourcePath>,
    Params(params): Params<RemoveParams>,
) -> Result<NoContent, ApiError> {
    state
        .service
        .sources
        .remove(&principal, &p.parse()?, &p.id, params.keep_documents)
        .await?;
    Ok(NoContent)
}

async fn sync(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<SourcePath>,
) -> Result<(StatusCode, Json<JobRun>), ApiError> {
    let run = state
        .service
        .sync_source(&principal, &p.parse()?, &p.id, false)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}
