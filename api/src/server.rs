//! The server: the REST API, the web app and the MCP endpoints on one router, with the layers
//! every request goes through (request ids, metrics, body limits, CORS), served until a shutdown
//! signal.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use service::Service;

use crate::http::*;

/// Largest request body accepted.
const BODY_LIMIT: usize = 1024 * 1024;

pub fn router(
    service: Arc<Service>,
    uploads: Arc<ingest::Pipeline>,
    config: &service::Config,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Router> {
    let cors_origins = &config.server.cors_origins;
    let max_upload = usize::try_from(uploads.limits.max_file_bytes).unwrap_or(usize::MAX);
    let state = AppState {
        service: service.clone(),
        uploads,
        trusted_proxies: Arc::new(config.server.trusted_proxy_nets()?),
        metrics_token: config.server.metrics_token.clone(),
        cookies: crate::session::Cookies::new(
            &config.mail.public_url,
            config.auth.refresh_ttl_secs,
        ),
    };
    let guard = mcp::HttpGuard {
        allowed_hosts: config.server.mcp_allowed_hosts.clone(),
        allowed_origins: config.server.mcp_allowed_origins.clone(),
    };
    let knowledge_server = {
        let service = service.clone();
        move || mcp::KnowledgeServer::new(service.clone(), None)
    };
    let mut mcp = Router::new().nest_service(
        "/mcp",
        mcp::http_service(knowledge_server, &guard, shutdown.clone()),
    );
    for domain in mcp::site::DOMAINS {
        // one server value per domain: the site adapter (its session, rate limit, robots.txt)
        // is shared by every MCP session
        let server = mcp::site::SiteServer::new(service.clone(), None, domain, config);
        mcp = mcp.nest_service(
            &format!("/mcp/sites/{domain}"),
            mcp::http_service(move || server.clone(), &guard, shutdown.clone()),
        );
    }
    let mcp = mcp.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        mcp_auth,
    ));
    // where the pages' forms may lead: sign-in providers, Stripe's hosted pages
    let mut form_origins = service.accounts.sso_origins();
    form_origins.extend(service.billing.page_origins());
    let mut api = crate::http::openapi::base();
    let documented = crate::http::routes(max_upload);
    let router = documented.finish_api(&mut api);
    let api = Arc::new(api);
    let router = router
        .route(
            "/openapi.json",
            get(move || std::future::ready(Json(api.clone()))),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/{*resource}",
            get(protected_resource),
        )
        .merge(mcp)
        .merge(crate::web::routes(&form_origins))
        .route_layer(axum::middleware::from_fn(label_route))
        .fallback(|| async { ApiError(base::Error::NotFound("no such endpoint".into())) })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(observe))
        .with_state(state);
    if cors_origins.is_empty() {
        return Ok(router);
    }
    let origins = cors_origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o).map_err(|_| {
                base::Error::InvalidInput(format!("server.cors_origins: bad origin {o:?}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods(tower_http::cors::Any)
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER, REQUEST_ID.clone()]);
    Ok(router.layer(cors))
}

/// This server's address as the client named it (the `Host` header).
fn base_url(headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The OAuth 2.0 protected-resource metadata (RFC 9728) the MCP authorization spec points
/// clients at: bearer tokens in the header; tokens and API keys come from this server's own
/// sign-in (`/api/auth/signin`, `/api/keys`).
async fn protected_resource(
    headers: axum::http::HeaderMap,
    resource: Option<axum::extract::Path<String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let base = base_url(&headers);
    let resource = resource.map_or_else(|| "mcp".to_owned(), |p| p.0);
    let name = match resource.strip_prefix("mcp/sites/") {
        None if resource == "mcp" => "Lariat knowledge base".to_owned(),
        Some(domain) if mcp::site::DOMAINS.contains(&domain) => {
            format!("Lariat {domain} site tools")
        }
        _ => {
            return Err(ApiError(base::Error::NotFound(format!(
                "no protected resource /{resource}"
            ))));
        }
    };
    Ok(Json(json!({
        "resource": format!("{base}/{resource}"),
        "authorization_servers": [],
        "bearer_methods_supported": ["header"],
        "resource_name": name,
        "resource_documentation": format!("{base}/openapi.json"),
    })))
}

/// Authenticates `/mcp` like the REST API; the caller's `Principal` rides in the request's
/// extensions to the tools. Missing or bad credentials: 401 naming the metadata document.
async fn mcp_auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match Auth::from_request_parts(&mut parts, &state).await {
        Ok(Auth(principal)) => {
            req = Request::from_parts(parts, body);
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => {
            let mut response = e.into_response();
            if response.status() == StatusCode::UNAUTHORIZED {
                let challenge = format!(
                    "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource{}\"",
                    base_url(&parts.headers),
                    parts.uri.path().trim_end_matches('/')
                );
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            response
        }
    }
}

static REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// The route a request matched, carried out on its response for [`observe`].
#[derive(Clone)]
struct RouteLabel(String);

/// Inside the router: notes which route matched (only known once routing is done).
async fn label_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

/// Around every request (API, MCP, unknown paths): an id (the client's `x-request-id` when
/// sane) in a log span and on the response, and its count and latency in the metrics by route.
async fn observe(req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!(
        "request",
        %method,
        route = tracing::field::Empty,
        %request_id
    );
    let mut response = CURRENT_REQUEST
        .scope(request_id.clone(), next.run(req).instrument(span.clone()))
        .await;
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or("unmatched", |r| r.0.as_str())
        .to_owned();
    span.record("route", route.as_str());
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    let m = base::metrics::Metrics::get();
    m.http_requests
        .with_label_values(&[method.as_str(), route.as_str(), &status.to_string()])
        .inc();
    m.http_seconds
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(seconds);
    span.in_scope(|| tracing::info!(status, ms = seconds * 1000.0, "handled"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    response
}

/// Serves until Ctrl-C or SIGTERM, then stops accepting and lets in-flight requests and streams
/// finish for at most `server.shutdown_grace_secs`.
pub async fn serve(
    service: Arc<Service>,
    uploads: Arc<ingest::Pipeline>,
    addr: &str,
    config: &service::Config,
) -> anyhow::Result<()> {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let app = router(service.clone(), uploads, config, shutdown.clone())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| base::Error::Unavailable(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    // Streamed events are small writes: without TCP_NODELAY, Nagle's algorithm holds each one
    // back until the client's (delayed) ACK of the previous, adding ~40 ms to the first token.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    // the outbox's sender, for as long as the server runs
    let sender = tokio::spawn(service.mail.clone().run());
    // scheduled jobs (retention, mail, billing), each occurrence once among the servers
    let jobs = config.jobs.enabled.then(|| {
        let jobs = service.jobs.clone();
        tokio::spawn(async move {
            if let Err(e) = jobs.run().await {
                tracing::error!(error = %e, "the job runner stopped");
            }
        })
    });
    eprintln!("lariat listening on http://{local}");
    let answering: Vec<String> = config
        .providers()
        .iter()
        .map(|p| format!("{} ({})", p.model, p.name))
        .collect();
    if answering.is_empty() {
        eprintln!(
            "answers are extractive: no model is configured (`make setup-llm` installs a local one)"
        );
    } else {
        eprintln!("answers by {}", answering.join(", else "));
    }
    let (signalled, stopping) = tokio::sync::oneshot::channel::<()>();
    let uploads = service.uploads.clone();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        // ends the MCP sessions' open event streams so shutdown is not held up by them
        shutdown.cancel();
        // upload jobs stop now (recorded interrupted): they would outlast any grace
        uploads.interrupt();
        let _ = signalled.send(());
    });
    // what is still running once the grace is over is ended with the server
    let grace = std::time::Duration::from_secs(config.server.shutdown_grace_secs);
    tokio::select! {
        served = server.into_future() => served?,
        () = async {
            if stopping.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the shutdown grace were ended");
        }
    }
    sender.abort();
    if let Some(jobs) = jobs {
        jobs.abort();
    }
    service
        .uploads
        .stopped(std::time::Duration::from_secs(5))
        .await;
    service.knowledge.flush().await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
