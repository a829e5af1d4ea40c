//! Curators' documents over HTTP: list, upload (the raw file as the body, its name in
//! `?filename=`), and delete. Uploads go through the same ingestion pipeline as `lariat ingest`.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use ingest::{IngestOptions, Input};
use knowledge::CollectionName;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, Auth, invalid};

pub fn routes(max_upload_bytes: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/api/collections/{name}/documents",
            get(list)
                .post(upload)
                .layer(DefaultBodyLimit::max(max_upload_bytes)),
        )
        .route("/api/collections/{name}/documents/{id}", delete(remove))
}

/// Readers of the collection see its documents.
async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = CollectionName::parse(&name)?;
    let documents = state
        .service
        .collections
        .documents(&principal, &name)
        .await?;
    Ok(Json(json!({ "documents": documents })))
}

#[derive(Deserialize)]
struct UploadParams {
    filename: Option<String>,
}

/// Ingests one file into a collection the caller curates (created if new, for admins).
async fn upload(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    Query(p): Query<UploadParams>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = CollectionName::parse(&name)?;
    let filename = p
        .filename
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty() && !f.contains('/') && !f.contains('\\') && f.len() <= 200)
        .ok_or_else(|| invalid("?filename= is required: a plain file name such as rules.md"))?;
    if body.is_empty() {
        return Err(invalid("the body is empty: send the file's bytes"));
    }
    state
        .service
        .collections
        .authorize_write(&principal, &name)
        .await?;
    let k = state.service.knowledge.clone();
    let options = IngestOptions {
        collection: name,
        limits: state.uploads.limits.clone(),
    };
    let input = Input::Upload {
        name: format!("upload:{}", filename),
        bytes: body.to_vec(),
    };
    let report = ingest::ingest_inputs(
        k,
        state.uploads.chunker.clone(),
        vec![input],
        Vec::new(),
        &options,
        &(),
    )
    .await?;
    if let Some(f) = report.failures.first() {
        return Err(invalid(format!("{}: {}", filename, f.reason)));
    }
    let status = if report.added > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(report))))
}

/// Deletes a document of a collection the caller curates.
async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let name = CollectionName::parse(&name)?;
    state
        .service
        .collections
        .delete_document(&principal, &name, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
