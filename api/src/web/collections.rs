//! Collections in the browser: readers see them with their counts and browse their documents;
//! their curators upload files (the page's module posts each to the API's upload route, showing
//! its progress), delete documents, and change settings and members.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base::principal::Principal;
use base::{CollectionName, Error, MemberRole, Visibility};
use knowledge::collections::{CollectionUpdate, CollectionView, DocumentPage};
use knowledge::store::Member;
use operations::jobs::JobStatus;
use operations::sources::{NewSource, SourceKind, SourceUpdate, SourceView, SyncReport};
use operations::store::{UploadJob, UploadStatus};
use serde::Deserialize;

use super::admin::JobRow;
use super::pages::{Layout, Viewer, encode, error_page, page};
use crate::http::AppState;

/// Documents to a page of the list.
const PER_PAGE: usize = 25;

#[derive(Template)]
#[template(path = "collections.html")]
struct CollectionsPage {
    layout: Layout,
    collections: Vec<CollectionView>,
}

pub async fn list(State(state): State<AppState>, Viewer(principal): Viewer) -> Response {
    match state.service.collections.readable(&principal).await {
        Ok(collections) => page(
            &CollectionsPage {
                layout: Layout::of(&state, &principal).await,
                collections,
            },
            StatusCode::OK,
        ),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Deserialize, Default)]
pub struct DocumentQuery {
    #[serde(default)]
    q: String,
    page: Option<usize>,
    /// What a form just did, as one of [`Notice`]'s names.
    done: Option<String>,
}

/// What the page says after a form of it succeeded (only these: nothing a link carries is shown).
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "deleted" => "The document was deleted.",
        "settings" => "The settings were saved.",
        "member" => "The members were updated.",
        "source" => "The sources were updated.",
        "sync" => "The sync started; its outcome shows under Sources when it ends.",
        "cancelled" => "The upload job was asked to stop.",
        _ => return None,
    })
}

/// The documents list (also served alone, for filtering and after uploads).
#[derive(Template)]
#[template(path = "documents.html")]
struct DocumentsFragment {
    name: String,
    q: String,
    docs: DocumentPage,
    curates: bool,
}

#[derive(Template)]
#[template(path = "collection.html")]
struct CollectionPage {
    layout: Layout,
    name: String,
    view: CollectionView,
    q: String,
    docs: DocumentPage,
    curates: bool,
    notice: Option<&'static str>,
    instructions: String,
    members: Vec<Member>,
    sources: Vec<SourceRow>,
    uploads: Vec<UploadRow>,
    max_upload_mb: u64,
    /// Whether the viewer may add folder sources (admins only).
    adds_folders: bool,
}

/// A source on its collection's page.
struct SourceRow {
    id: String,
    kind: &'static str,
    /// One per line, as the edit form shows them.
    targets: String,
    schedule: String,
    max_misses: u32,
    sync: JobRow,
}

impl From<SourceView> for SourceRow {
    fn from(v: SourceView) -> Self {
        let mut sync = JobRow::from(JobStatus {
            name: v.job,
            schedule: v.source.schedule.clone(),
            next_run: v.next_sync,
            last_run: v.last_sync.clone(),
        });
        // a finished sync's counts, in words
        if let Some(r) = v
            .last_sync
            .and_then(|run| serde_json::from_value::<SyncReport>(run.outcome).ok())
        {
            let mut detail = format!(
                "{} checked, {} not modified, {} added, {} updated, {} missing, {} deleted, {} failed",
                r.checked, r.not_modified, r.added, r.updated, r.missing, r.deleted, r.failed
            );
            for f in r.failures.iter().take(5) {
                detail.push_str(&format!("; {}: {}", f.path, f.reason));
            }
            sync.detail = detail;
        }
        SourceRow {
            id: v.source.id,
            kind: v.source.kind.as_str(),
            targets: v.source.targets.join("\n"),
            schedule: v.source.schedule,
            max_misses: v.source.max_misses,
            sync,
        }
    }
}

/// An upload job on its collection's page.
struct UploadRow {
    id: String,
    filename: String,
    started: String,
    status: String,
    running: bool,
    error: String,
    passages_done: u64,
    passages_total: u64,
}

impl From<UploadJob> for UploadRow {
    fn from(j: UploadJob) -> Self {
        UploadRow {
            running: j.status == UploadStatus::Running,
            id: j.id,
            filename: j.filename,
            started: base::format_time(j.created_at),
            status: j.status.to_string(),
            error: j.error,
            passages_done: j.progress.passages_done,
            passages_total: j.progress.passages_total,
        }
    }
}

/// The collection's name from its path: one that cannot exist is as unknown as any other.
fn collection_name(raw: &str) -> Result<CollectionName, Error> {
    CollectionName::parse(raw).map_err(|_| Error::NotFound(format!("unknown collection {raw}")))
}

/// The collection named in the path, if the caller may read it, and the page of its documents
/// the query asks for.
async fn documents_of(
    state: &AppState,
    principal: &Principal,
    raw: &str,
    query: &DocumentQuery,
) -> Result<(CollectionName, CollectionView, DocumentPage), Error> {
    let collections = &state.service.collections;
    let name = collection_name(raw)?;
    let view = collections.view(principal, &name).await?;
    let page = query.page.unwrap_or(1);
    let docs = collections
        .document_page(principal, &name, &query.q, page, PER_PAGE)
        .await?;
    Ok((name, view, docs))
}

pub async fn show(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(raw): Path<String>,
    Query(query): Query<DocumentQuery>,
) -> Response {
    let collections = &state.service.collections;
    let result = async {
        let (name, view, docs) = documents_of(&state, &principal, &raw, &query).await?;
        let (instructions, members, sources, uploads) = if view.curates {
            (
                collections.instructions(&principal, &name).await?,
                collections.members(&principal, &name).await?,
                state.service.sources.list(&principal, &name).await?,
                state.service.uploads.jobs(&principal, &name).await?,
            )
        } else {
            (String::new(), Vec::new(), Vec::new(), Vec::new())
        };
        Ok::<_, Error>((name, view, docs, instructions, members, sources, uploads))
    }
    .await;
    match result {
        Ok((name, view, docs, instructions, members, sources, uploads)) => page(
            &CollectionPage {
                layout: Layout::of(&state, &principal).await,
                name: name.as_str().to_owned(),
                curates: view.curates,
                view,
                q: query.q,
                docs,
                notice: notice(query.done.as_deref()),
                instructions,
                members,
                sources: sources.into_iter().map(SourceRow::from).collect(),
                uploads: uploads.into_iter().map(UploadRow::from).collect(),
                max_upload_mb: state.uploads.limits.max_file_bytes / (1024 * 1024),
                adds_folders: principal.is_admin(),
            },
            StatusCode::OK,
        ),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

/// The documents list alone (htmx fragment): filtering, paging, and after uploads.
pub async fn documents(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(raw): Path<String>,
    Query(query): Query<DocumentQuery>,
) -> Response {
    match documents_of(&state, &principal, &raw, &query).await {
        Ok((name, view, docs)) => page(
            &DocumentsFragment {
                name: name.as_str().to_owned(),
                q: query.q,
                docs,
                curates: view.curates,
            },
            StatusCode::OK,
        ),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

/// Runs a curator's form against the collection named in the path, then goes back to the
/// collection's page saying what was done (or shows why it was not).
async fn act(
    principal: &Principal,
    raw: &str,
    done: &str,
    change: impl AsyncFnOnce(&CollectionName) -> Result<(), Error>,
) -> Response {
    let result = async {
        let name = collection_name(raw)?;
        change(&name).await?;
        Ok::<_, Error>(name)
    }
    .await;
    match result {
        Ok(name) => Redirect::to(&format!(
            "/collections/{}?done={done}",
            encode(name.as_str())
        ))
        .into_response(),
        Err(e) => error_page(Some(principal.user.clone()), &e),
    }
}

pub async fn delete_document(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path((raw, id)): Path<(String, String)>,
) -> Response {
    let collections = &state.service.collections;
    act(&principal, &raw, "deleted", async |name| {
        collections.delete_document(&principal, name, &id).await
    })
    .await
}

#[derive(Deserialize)]
pub struct Settings {
    visibility: String,
    instructions: String,
    /// Absent: kept as it is.
    conversation_retention_days: Option<String>,
}

pub async fn settings(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(raw): Path<String>,
    Form(form): Form<Settings>,
) -> Response {
    let collections = &state.service.collections;
    act(&principal, &raw, "settings", async |name| {
        let update = CollectionUpdate {
            visibility: Some(Visibility::parse(&form.visibility)?),
            // browsers send CRLF line ends; the prompt reads LF
            instructions: Some(form.instructions.replace("\r\n", "\n")),
            conversation_retention_days: form
                .conversation_retention_days
                .as_deref()
                .map(|days| {
                    days.trim().parse().map_err(|_| {
                        Error::InvalidInput(
                            "the retention is a whole number of days (0 keeps conversations)"
                                .into(),
                        )
                    })
                })
                .transpose()?,
        };
        collections.update(&principal, name, &update).await
    })
    .await
}

#[derive(Deserialize)]
pub struct NewMember {
    email: String,
    role: String,
}

pub async fn add_member(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(raw): Path<String>,
    Form(form): Form<NewMember>,
) -> Response {
    let collections = &state.service.collections;
    act(&principal, &raw, "member", async |name| {
        let role = MemberRole::parse(&form.role)?;
        collections
            .set_member_by_email(&principal, name, &form.email, Some(role))
            .await
    })
    .await
}

pub async fn remove_member(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path((raw, user_id)): Path<(String, String)>,
) -> Response {
    let collections = &state.service.collections;
    act(&principal, &raw, "member", async |name| {
        collections
            .set_member(&principal, name, &user_id, None)
            .await
    })
    .await
}

/// A source as the add and edit forms send it: targets one per line.
#[derive(Deserialize)]
pub struct SourceForm {
    kind: Option<String>,
    targets: String,
    schedule: String,
    max_misses: Option<u32>,
}

impl SourceForm {
    fn targets(&self) -> Vec<String> {
        self.targets.lines().map(str::to_owned).collect()
    }
}

pub async fn add_source(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(raw): Path<String>,
    Form(form): Form<SourceForm>,
) -> Response {
    let sources = &state.service.sources;
    act(&principal, &raw, "source", async |name| {
        let new = NewSource {
            kind: SourceKind::parse(form.kind.as_deref().unwrap_or_default())?,
            targets: form.targets(),
            schedule: form.schedule.clone(),
            max_misses: form.max_misses,
        };
        sources.add(&principal, name, &new).await.map(drop)
    })
    .await
}

pub async fn update_source(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path((raw, id)): Path<(String, String)>,
    Form(form): Form<SourceForm>,
) -> Response {
    let sources = &state.service.sources;
    act(&principal, &raw, "source", async |name| {
        let update = SourceUpdate {
            targets: Some(form.targets()),
            schedule: Some(form.schedule.clone()),
            max_misses: form.max_misses,
        };
        sources
            .update(&principal, name, &id, &update)
            .await
            .map(drop)
    })
    .await
}

pub async fn remove_source(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path((raw, id)): Path<(String, String)>,
) -> Response {
    let sources = &state.service.sources;
    act(&principal, &raw, "source", async |name| {
        sources.remove(&principal, name, &id, false).await.map(drop)
    })
    .await
}

pub async fn cancel_upload(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path((raw, id)): Path<(String, String)>,
) -> Response {
    let uploads = &state.service.uploads;
    act(&principal, &raw, "cancelled", async |name| {
        uploads.cancel(&principal, name, &id).await.map(drop)
    })
    .await
}

pub async fn sync_source(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path((raw, id)): Path<(String, String)>,
) -> Response {
    let service = &state.service;
    act(&principal, &raw, "sync", async |name| {
        service
            .sync_source(&principal, name, &id, false)
            .await
            .map(drop)
    })
    .await
}

#[derive(Template)]
#[template(path = "document.html")]
struct DocumentPageView {
    layout: Layout,
    document: knowledge::DocumentView,
}

/// A whole document, passage by passage (each an anchor a citation's panel links to).
pub async fn document(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(id): Path<String>,
) -> Response {
    match state.service.knowledge.document(&principal, &id).await {
        Ok(document) => page(
            &DocumentPageView {
                layout: Layout::of(&state, &principal).await,
                document,
            },
            StatusCode::OK,
        ),
        Err(e) => error_page(Some(principal.user), &e),
    }
}
