//! Curators' documents over HTTP: list, upload (the raw file as the body, its name in
//! `?filename=`), and delete; and the jobs large uploads are ingested by (read, list, cancel).
//! Uploads go through the same ingestion pipeline as `lariat ingest`.

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
use ingest::IngestReport;
use operations::store::UploadJob;
use operations::uploads::Uploaded;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Auth, NamePath, Params};

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
        .api_route(
            "/api/collections/{name}/uploads",
            get_with(jobs, |op| {
                op.summary("The latest upload jobs of the collection, newest first (curators)")
            }),
        )
        .api_route(
            "/api/collections/{name}/uploads/{id}",
            get_with(job, |op| {
                op.summary("An upload job: its status and progress (curators)")
            })
            .delete_with(cancel, |op| {
                op.summary("Cancel a running upload job (curators); 409 once it has ended")
            }),
        )
}

/// The upload's body is the file itself, of any type; 201 when it added a document, 200 when
/// it changed or matched one, 202 with a job when it is large (`ingest.background_upload_bytes`)
/// or `?background=true`.
fn upload_docs(op: TransformOperation<'_>) -> TransformOperation<'_> {
    let mut op = op
        .summary("Upload one file (the body) to ingest; curators of the collection, admins")
        .response_with::<201, Json<IngestReport>, _>(|r| r.description("a new document"))
        .response_with::<200, Json<IngestReport>, _>(|r| {
            r.description("an existing document, updated or unchanged")
        })
        .response_with::<202, Json<UploadJob>, _>(|r| {
            r.description("a large file: the job ingesting it (its URL in Location)")
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
    /// true: always ingest by a job (202); false: always while the request waits. Unset: by size.
    background: Option<bool>,
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
    let uploaded = state
        .service
        .uploads
        .upload(&principal, &name, &p.filename, body.to_vec(), p.background)
        .await?;
    Ok(match uploaded {
        Uploaded::Ingested(report) if report.added > 0 => {
            (StatusCode::CREATED, Json(report)).into_response()
        }
        Uploaded::Ingested(report) => (StatusCode::OK, Json(report)).into_response(),
        Uploaded::Started(job) => {
            let location = format!("/api/collections/{name}/uploads/{}", job.id);
            (
                StatusCode::ACCEPTED,
                [(axum::http::header::LOCATION, location)],
                Json(job),
            )
                .into_response()
        }
    })
}

#[derive(Serialize, JsonSchema)]
struct UploadJobs {
    jobs: Vec<UploadJob>,
}

async fn jobs(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(NamePath { name }): Path<NamePath>,
) -> Result<Json<UploadJobs>, ApiError> {
    let name = CollectionName::parse(&name)?;
    let jobs = state.service.uploads.jobs(&principal, &name).await?;
    Ok(Json(UploadJobs { jobs }))
}

async fn job(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<DocumentPath>,
) -> Result<Json<UploadJob>, ApiError> {
    let name = CollectionName::parse(&p.name)?;
    Ok(Json(
        state.service.uploads.job(&principal, &name, &p.id).await?,
    ))
}

async fn cancel(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<DocumentPath>,
) -> Result<Json<UploadJob>, ApiError> {
    let name = CollectionName::parse(&p.name)?;
    Ok(Json(
        state
            .service
            .uploads
            .cancel(&principal, &name, &p.id)
            .await?,
    ))
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
