//! Curators' documents over HTTP: list, upload (the raw file as the body, its name in
//! `?filename=`), and delete. Uploads go through the same ingestion pipeline as `lariat ingest`.

use aide::axum::ApiRouter;
use aide::axum::routing::{delete_with, get_with};
use aide::openapi::{MediaType, RequestBody, SchemaObject};
use aide::transform::TransformOperation;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, NoContent, Response};
use base::{CollectionName, DocumentSummary};
use ingest::{IngestReport, Input};
use operations::sources::Ingestor;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Auth, NamePath, Params, invalid};

pub fn routes(max_upload_bytes: usize) -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/collections/{name}/documents",
            get_with(list, |op| {
                op.summary("The collection's documents (readers)")
            })
            .post_with(upload, upload_docs)
            .layer(DefaultBodyLimit::max(max_upload_bytes)),
        )
        .api_route(
            "/api/collections/{name}/documents/{id}",
            delete_with(remove, |op| {
                op.summary("Delete a document (curators, admins)")
            }),
        )
}

/// The upload's body is the file itself, of any type; 201 when it added a document, 200 when
/// it changed or matched one.
fn upload_docs(op: TransformOperation<'_>) -> TransformOperation<'_> {
    let mut op = op
        .summary("Upload one file (the body) to ingest; curators of the collection, admins")
        .response_with::<201, Json<IngestReport>, _>(|r| r.description("a new document"))
        .response_with::<200, Json<IngestReport>, _>(|r| {
            r.description("an existing document, updated or unchanged")
        });
    op.inner_mut().request_body = Some(aide::openapi::ReferenceOr::Item(RequestBody {
        description: Some("the file's bytes (PDF, Markdown, HTML, text, JSONL)".into()),
        content: [(
            "application/octet-stream".into(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema: schemars::json_schema!({"type": "string", "format": "binary"}),
                    example: None,
                    external_docs: None,
                }),
                ..MediaType::default()
            },
        )]
        .into(),
        required: true,
        extensions: Default::default(),
    }));
    op
}

#[derive(Serialize, JsonSchema)]
struct Documents {
    documents: Vec<DocumentSummary>,
}

/// Readers of the collection see its documents.
async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(NamePath { name }): Path<NamePath>,
) -> Result<Json<Documents>, ApiError> {
    let name = CollectionName::parse(&name)?;
    let documents = state
        .service
        .collections
        .documents(&principal, &name)
        .await?;
    Ok(Json(Documents { documents }))
}

#[derive(Deserialize, JsonSchema)]
struct UploadParams {
    /// A plain file name such as rules.md (its extension picks the parser).
    #[schemars(length(min = 1, max = 200))]
    filename: String,
}

/// Ingests one file into a collection the caller curates (created if new, for admins).
async fn upload(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(NamePath { name }): Path<NamePath>,
    Params(p): Params<UploadParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = CollectionName::parse(&name)?;
    let filename = p.filename.trim();
    if filename.is_empty() || filename.contains(['/', '\\']) || filename.len() > 200 {
        return Err(invalid(
            "?filename= must be a plain file name such as rules.md",
        ));
    }
    if body.is_empty() {
        return Err(invalid("the body is empty: send the file's bytes"));
    }
    state
        .service
        .collections
        .authorize_write(&principal, &name)
        .await?;
    let input = Input::Upload {
        name: format!("upload:{}", filename),
        bytes: body.to_vec(),
    };
    let report = state
        .uploads
        .ingest(state.service.knowledge.clone(), &name, vec![input])
        .await?;
    if let Some(f) = report.failures.first() {
        return Err(invalid(format!("{}: {}", filename, f.reason)));
    }
    let status = if report.added > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(report)).into_response())
}

/// Deletes a document of a collection the caller curates.
async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<DocumentPath>,
) -> Result<NoContent, ApiError> {
    let name = CollectionName::parse(&p.name)?;
    state
        .service
        .collections
        .delete_document(&principal, &name, &p.id)
        .await?;
    Ok(NoContent)
}

#[derive(Deserialize, JsonSchema)]
struct DocumentPath {
    #[schemars(pattern(r"^[a-z0-9][a-z0-9_-]{0,63}$"))]
    name: String,
    id: String,
}
