//! A collection's settings and members over HTTP (its curators and admins).

use aide::axum::ApiRouter;
use aide::axum::routing::{patch_with, put_with};
use axum::extract::{Path, State};
use axum::response::NoContent;
use base::{CollectionName, MemberRole};
use knowledge::collections::CollectionUpdate;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ApiError, AppState, Auth, Body, NamePath};

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/collections/{name}",
            patch_with(update_collection, |op| {
                op.summary("Change visibility or instructions (curators, admins)")
            }),
        )
        .api_route(
            "/api/collections/{name}/members/{user_id}",
            put_with(set_member, |op| op.summary("Add or change a member"))
                .delete_with(remove_member, |op| op.summary("Remove a member")),
        )
}

/// Curators of the collection and admins change its visibility and domain instructions.
async fn update_collection(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(NamePath { name }): Path<NamePath>,
    Body(update): Body<CollectionUpdate>,
) -> Result<NoContent, ApiError> {
    let name = CollectionName::parse(&name)?;
    state
        .service
        .collections
        .update(&principal, &name, &update)
        .await?;
    Ok(NoContent)
}

/// Admins add members; a collection's curators add readers.
async fn set_member(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<MemberPath>,
    Body(m): Body<Membership>,
) -> Result<NoContent, ApiError> {
    let name = CollectionName::parse(&p.name)?;
    state
        .service
        .collections
        .set_member(&principal, &name, &p.user_id, Some(m.role))
        .await?;
    Ok(NoContent)
}

async fn remove_member(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<MemberPath>,
) -> Result<NoContent, ApiError> {
    let name = CollectionName::parse(&p.name)?;
    state
        .service
        .collections
        .set_member(&principal, &name, &p.user_id, None)
        .await?;
    Ok(NoContent)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Membership {
    role: MemberRole,
}

#[derive(Deserialize, JsonSchema)]
struct MemberPath {
    #[schemars(pattern(r"^[a-z0-9][a-z0-9_-]{0,63}$"))]
    name: String,
    user_id: String,
}
