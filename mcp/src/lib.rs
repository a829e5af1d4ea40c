//! Lariat's MCP servers (rmcp). The knowledge server: `search`, `ask`, `list_collections`,
//! `get_document` and `get_passage`, each acting with one caller's permissions; the tools are thin
//! adapters over `service::Service` (`search` is `Knowledge::search_as`, `ask` is the chat API's
//! `Chat::start`). The site servers ([`site`]): a domain's external website for agents. Domain
//! errors come back as tool errors (`isError`), so the servers keep serving.

pub mod site;

use std::sync::Arc;

use base::principal::Principal;
use base::{CollectionName, Hit, Passage};
use base64::Engine as _;
use chat::ChatRequest;
use chat::answer::Citation;
use chat::export::ExportFormat;
use chat::grounding::CitationCheck;
use knowledge::{DocumentView, SearchRequest};
use rmcp::RoleServer;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, Json, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use service::Service;

/// The knowledge server. Over stdio it acts for one fixed caller; over HTTP for the caller the
/// HTTP layer authenticated, whose `Principal` it finds in the request's extensions.
#[derive(Clone)]
pub struct KnowledgeServer {
    service: Arc<Service>,
    principal: Option<Principal>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// What to look for, in natural language or keywords.
    pub query: String,
    /// Search only this collection (see list_collections); default: every readable collection.
    pub collection: Option<String>,
    /// How many passages to return (1-1000, default 10).
    pub k: Option<i64>,
    /// Ranking: "hybrid" (default, BM25 and vectors fused), "bm25" or "dense".
    pub mode: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchOutput {
    pub query: String,
    pub mode: String,
    pub hits: Vec<Hit>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AskArgs {
    /// The question to answer from the knowledge base.
    pub question: String,
    /// Answer only from this collection; default: every readable collection.
    pub collection: Option<String>,
    /// Continue this conversation (ids come back from earlier answers).
    pub conversation_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AskOutput {
    pub answer: String,
    /// The sources the answer cites.
    pub citations: Vec<Citation>,
    pub conversation_id: Option<String>,
    /// Whether the answer is the passages' own sentences (no language model configured).
    pub extractive: bool,
    /// Cited sentences the cited passage does not support.
    pub unsupported_sentences: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CollectionInfo {
    pub name: String,
    pub model: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CollectionsOutput {
    pub collections: Vec<CollectionInfo>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExportArgs {
    /// The conversation's id (ask's conversation_id).
    pub conversation_id: String,
    /// pdf (default), md or json.
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct IdArgs {
    /// The id, as returned by search (document_id or chunk_id).
    pub id: String,
}

/// A tool error's text: the domain error's code and message.
pub(crate) fn tool_error(e: base::Error) -> String {
    if e.code() == base::ErrorCode::Internal {
        tracing::error!(error = %e, "tool failed");
    }
    format!("{}: {}", e.code(), e.public_message())
}

fn collections(name: Option<&str>) -> base::Result<Option<Vec<CollectionName>>> {
    name.map(|c| CollectionName::parse(c).map(|n| vec![n]))
        .transpose()
}

#[tool_router(router = tool_router)]
impl KnowledgeServer {
    pub fn new(service: Arc<Service>, principal: Option<Principal>) -> Self {
        Self {
            service,
            principal,
            tool_router: Self::tool_router(),
        }
    }

    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Principal, String> {
        caller(&self.principal, ctx)
    }

    /// Ranked passages from the knowledge base, with what a citation needs (title, source,
    /// location, chunk id).
    #[tool(
        name = "search",
        annotations(title = "Search the knowledge base", read_only_hint = true)
    )]
    async fn search(
        &self,
        Parameters(args): Parameters<SearchArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<SearchOutput>, String> {
        let principal = self.caller(&ctx)?;
        let names: Vec<String> = args.collection.into_iter().collect();
        let request = SearchRequest::parse(&args.query, &names, args.mode.as_deref(), args.k)
            .map_err(tool_error)?;
        let results = self
            .service
            .knowledge
            .search_as(&principal, &request)
            .await
            .map_err(tool_error)?;
        Ok(Json(SearchOutput {
            query: results.query,
            mode: results.mode.as_str().to_owned(),
            hits: results.hits,
        }))
    }

    /// An answer grounded in the knowledge base, citing its sources as [n], through the same
    /// path as the chat API (kept as a conversation, counted against the caller's plan).
    #[tool(
        name = "ask",
        annotations(title = "Ask the knowledge base", read_only_hint = true)
    )]
    async fn ask(
        &self,
        Parameters(args): Parameters<AskArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<AskOutput>, String> {
        let principal = self.caller(&ctx)?;
        let request = ChatRequest {
            message: args.question,
            conversation_id: args.conversation_id,
            collections: collections(args.collection.as_deref()).map_err(tool_error)?,
            history: Vec::new(),
            model: None,
            persist: true,
        };
        let answer = self
            .service
            .chat
            .answer(principal, request)
            .await
            .map_err(tool_error)?;
        let check: CitationCheck = answer.done.citation_check;
        Ok(Json(AskOutput {
            answer: answer.text,
            citations: answer.cited,
            conversation_id: answer.meta.conversation_id,
            extractive: answer.meta.extractive,
            unsupported_sentences: check.unsupported.into_iter().map(|u| u.sentence).collect(),
        }))
    }

    /// The collections the caller may read.
    #[tool(
        name = "list_collections",
        annotations(title = "List collections", read_only_hint = true)
    )]
    async fn list_collections(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CollectionsOutput>, String> {
        let principal = self.caller(&ctx)?;
        let heads = self
            .service
            .knowledge
            .readable_collections(&principal)
            .await
            .map_err(tool_error)?;
        Ok(Json(CollectionsOutput {
            collections: heads
                .into_iter()
                .map(|h| CollectionInfo {
                    name: h.name,
                    model: h.model,
                })
                .collect(),
        }))
    }

    /// A whole document (by document_id) with its passages in order.
    #[tool(
        name = "get_document",
        annotations(title = "Read a document", read_only_hint = true)
    )]
    async fn get_document(
        &self,
        Parameters(args): Parameters<IdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<DocumentView>, String> {
        let principal = self.caller(&ctx)?;
        let doc = self
            .service
            .knowledge
            .document(&principal, args.id.trim())
            .await
            .map_err(tool_error)?;
        Ok(Json(doc))
    }

    /// One passage (by chunk_id) with its title, source and location.
    #[tool(
        name = "get_passage",
        annotations(title = "Read a passage", read_only_hint = true)
    )]
    async fn get_passage(
        &self,
        Parameters(args): Parameters<IdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Passage>, String> {
        let principal = self.caller(&ctx)?;
        let passage = self
            .service
            .knowledge
            .passage(&principal, args.id.trim())
            .await
            .map_err(tool_error)?;
        Ok(Json(passage))
    }

    /// One of the caller's conversations as a file: a PDF (with its cited passages in an
    /// appendix), Markdown or JSON, returned as an embedded resource (PDF as base64).
    #[tool(
        name = "export_conversation",
        annotations(title = "Export a conversation", read_only_hint = true)
    )]
    async fn export_conversation(
        &self,
        Parameters(args): Parameters<ExportArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, String> {
        let principal = self.caller(&ctx)?;
        let format =
            ExportFormat::parse(args.format.as_deref().unwrap_or("pdf")).map_err(tool_error)?;
        let id = args.conversation_id.trim();
        let file = self
            .service
            .chat
            .export(&principal, id, format)
            .await
            .map_err(tool_error)?;
        let uri = format!("lariat://conversations/{id}/{}", file.filename);
        let mime_type = Some(format.content_type().to_owned());
        let contents = match format {
            ExportFormat::Pdf => ResourceContents::BlobResourceContents {
                uri,
                mime_type,
                blob: base64::engine::general_purpose::STANDARD.encode(&file.bytes),
                meta: None,
            },
            ExportFormat::Md | ExportFormat::Json => ResourceContents::TextResourceContents {
                uri,
                mime_type,
                text: String::from_utf8(file.bytes).map_err(|e| e.to_string())?,
                meta: None,
            },
        };
        Ok(CallToolResult::success(vec![ContentBlock::resource(
            contents,
        )]))
    }
}

/// Who is calling: the server's fixed caller (stdio), or the one the HTTP layer authenticated
/// and put in the request's extensions.
pub(crate) fn caller(
    fixed: &Option<Principal>,
    ctx: &RequestContext<RoleServer>,
) -> Result<Principal, String> {
    if let Some(p) = fixed {
        return Ok(p.clone());
    }
    ctx.extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>())
        .cloned()
        .ok_or_else(|| "unauthorized: no credentials reached this server".to_owned())
}

/// Resources per `resources/list` page.
const RESOURCE_PAGE: usize = 100;

/// A document's resource URI.
const DOCUMENT_URI: &str = "lariat://documents/";

/// A domain error as a protocol error (resources have no tool-error channel).
fn protocol_error(e: base::Error) -> ErrorData {
    match e.code() {
        base::ErrorCode::NotFound => ErrorData::resource_not_found(e.to_string(), None),
        base::ErrorCode::InvalidInput => ErrorData::invalid_params(e.to_string(), None),
        _ => {
            if e.code() == base::ErrorCode::Internal {
                tracing::error!(error = %e, "resource read failed");
            }
            ErrorData::internal_error(e.public_message(), None)
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for KnowledgeServer {
    /// Every document the caller may read, as `lariat://documents/{id}`.
    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let start = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(c) => c.parse::<usize>().map_err(|_| {
                ErrorData::invalid_params(format!("{c:?} is not a cursor this server gave"), None)
            })?,
        };
        let principal = self
            .caller(&context)
            .map_err(|m| ErrorData::invalid_request(m, None))?;
        let k = &self.service.knowledge;
        let mut resources = Vec::new();
        for head in k
            .readable_collections(&principal)
            .await
            .map_err(protocol_error)?
        {
            let name = CollectionName::parse(&head.name).map_err(protocol_error)?;
            for doc in k.documents(Some(&name)).await.map_err(protocol_error)? {
                resources.push(
                    Resource::new(format!("{DOCUMENT_URI}{}", doc.id), doc.title)
                        .with_description(format!("{} ({})", doc.source, doc.collection))
                        .with_mime_type("text/plain"),
                );
            }
        }
        // pages of RESOURCE_PAGE, the cursor being the next page's offset
        let total = resources.len();
        let mut page = ListResourcesResult::with_all_items(
            resources
                .into_iter()
                .skip(start)
                .take(RESOURCE_PAGE)
                .collect(),
        );
        if start + RESOURCE_PAGE < total {
            page.next_cursor = Some((start + RESOURCE_PAGE).to_string());
        }
        Ok(page)
    }

    /// A document's text (its passages in order).
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let principal = self
            .caller(&context)
            .map_err(|m| ErrorData::invalid_request(m, None))?;
        let id = request.uri.strip_prefix(DOCUMENT_URI).ok_or_else(|| {
            ErrorData::resource_not_found(
                format!("{} is not a lariat document URI", request.uri),
                None,
            )
        })?;
        let doc = self
            .service
            .knowledge
            .document(&principal, id)
            .await
            .map_err(protocol_error)?;
        let text = doc
            .passages
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri.clone()).with_mime_type("text/plain"),
        ])
        .into())
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("lariat", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Lariat's knowledge base. Use `search` for ranked passages, `ask` for a cited \
                 answer, `get_passage`/`get_document` to read what a citation points at.",
        )
    }
}

/// Serves `server` on stdin/stdout until the client closes it.
pub async fn serve_stdio<S: ServerHandler>(server: S) -> anyhow::Result<()> {
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

/// Which `Host` and `Origin` headers the HTTP servers accept (DNS-rebinding protection): empty
/// host list = any host; empty origin list = no origin check.
#[derive(Debug, Clone, Default)]
pub struct HttpGuard {
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
}

/// A server as a Streamable HTTP service (a tower service to mount under `/mcp`). The HTTP layer
/// in front of it must authenticate each request and put the caller's `Principal` in the
/// request's extensions.
pub fn http_service<S: ServerHandler + Send + 'static>(
    make: impl Fn() -> S + Send + Sync + 'static,
    guard: &HttpGuard,
    cancel: tokio_util::sync::CancellationToken,
) -> StreamableHttpService<S, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default();
    config.cancellation_token = cancel;
    config.allowed_hosts = guard.allowed_hosts.clone();
    config.allowed_origins = guard.allowed_origins.clone();
    StreamableHttpService::new(
        move || Ok(make()),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
