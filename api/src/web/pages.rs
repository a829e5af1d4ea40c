//! The pages: each parses what it was sent, calls the services the API calls, and renders a
//! template. Everything a user or a document supplied reaches the page escaped, except answers,
//! which are sanitised HTML (see [`super::render`]).

use askama::Template;
use axum::Form;
use axum::extract::FromRequestParts;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base::Error;
use base::principal::{Principal, User};
use base::types::AnswerStatus;
use chat::answer::Citation;
use chat::feedback::{MessageRating, Rating};
use chat::store::{ConversationSummary, Speaker, StoredMessage};
use identity::accounts::Client;
use identity::accounts::sso::SsoProvider;
use knowledge::PassageInContext;
use knowledge::store::CollectionHead;
use serde::Deserialize;

use super::{assets, render};
use crate::http::{AppState, ClientAddr, SigningIn, public_message, status_of};
use crate::session;

/// What every page's frame needs.
pub struct Layout {
    pub user: Option<User>,
    /// The signed-in user must verify their address before asking (a banner says so).
    pub must_verify: bool,
    /// A payment failed and is not made good (a banner says so).
    pub payment_problem: bool,
}

impl Layout {
    pub async fn of(state: &AppState, principal: &Principal) -> Self {
        let payment_problem = match state
            .service
            .billing
            .payment_problem(&principal.user.id)
            .await
        {
            Ok(problem) => problem,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the billing state for the banner");
                false
            }
        };
        Layout {
            user: Some(principal.user.clone()),
            must_verify: !principal.may_chat,
            payment_problem,
        }
    }

    pub fn anonymous() -> Self {
        Layout {
            user: None,
            must_verify: false,
            payment_problem: false,
        }
    }

    pub fn asset(&self, name: &str) -> String {
        assets::url(name)
    }

    pub fn is_admin(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.role == base::principal::Role::Admin)
    }
}

pub(super) fn page(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: &'static str,
    message: String,
}

/// A failed call as a page with the error's status; its message is the public one.
pub(super) fn error_page(user: Option<User>, e: &Error) -> Response {
    let status = status_of(e.code());
    let heading = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    page(
        &ErrorPage {
            layout: Layout {
                user,
                ..Layout::anonymous()
            },
            heading,
            message: public_message(e),
        },
        status,
    )
}

/// The signed-in user of a page; without one the browser is sent to renewal when it holds an
/// expired or revoked session, to sign-in when it holds none, and brought back afterwards.
pub struct Viewer(pub Principal);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/chat".to_owned(), |p| p.to_string());
        let Some(token) = session::cookie(&parts.headers, state.cookies.access()) else {
            return Err(Redirect::to(&format!("/signin?next={}", encode(&next))).into_response());
        };
        let address = crate::http::client_address(parts, &state.trusted_proxies);
        match state.service.authenticate(token, address).await {
            Ok(principal) => Ok(Viewer(principal)),
            Err(e) if e.code() == base::ErrorCode::Unauthorized => {
                Err(
                    Redirect::to(&format!("{}?next={}", session::RENEW_PATH, encode(&next)))
                        .into_response(),
                )
            }
            Err(e) => Err(error_page(None, &e)),
        }
    }
}

pub(super) fn encode(s: &str) -> String {
    askama::filters::urlencode_strict(s)
        .map(|e| e.to_string())
        .unwrap_or_default()
}

pub async fn home(_: Viewer) -> Redirect {
    Redirect::to("/chat")
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage {
    layout: Layout,
    signup: bool,
    /// What a finished flow that lands here says (a reset password, an erased account).
    notice: Option<&'static str>,
    error: Option<String>,
    email: String,
    next: String,
    /// The single-sign-on buttons.
    providers: Vec<SsoProvider>,
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
    /// `reset` after a password reset, `erased` after an erasure.
    done: Option<String>,
}

fn signin_form(state: &AppState, signup: bool, q: &Next) -> Response {
    let next = q.next.as_deref();
    page(
        &SigninPage {
            layout: Layout::anonymous(),
            signup,
            notice: match q.done.as_deref() {
                Some("reset") => Some("Your password is changed: sign in with the new one."),
                Some("erased") => Some("Your account and everything in it are erased."),
                _ => None,
            },
            error: None,
            email: String::new(),
            next: session::local_path(next),
            providers: state.service.accounts.sso_providers(),
        },
        StatusCode::OK,
    )
}

pub async fn signin_page(State(state): State<AppState>, Query(q): Query<Next>) -> Response {
    signin_form(&state, false, &q)
}

pub async fn signup_page(State(state): State<AppState>, Query(q): Query<Next>) -> Response {
    signin_form(&state, true, &q)
}

/// The sign-in page again, saying why signing in failed.
pub(super) fn signin_failed(
    state: &AppState,
    signup: bool,
    e: &Error,
    email: &str,
    next: String,
) -> Response {
    page(
        &SigninPage {
            layout: Layout::anonymous(),
            signup,
            notice: None,
            error: Some(public_message(e)),
            email: email.chars().take(320).collect(),
            next,
            providers: state.service.accounts.sso_providers(),
        },
        status_of(e.code()),
    )
}

#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
    next: Option<String>,
}

/// Signs in (after signing up, for a new account) and starts the browser session.
async fn start_session(
    state: &AppState,
    client: Client,
    form: Credentials,
    signup: bool,
) -> Response {
    let accounts = &state.service.accounts;
    let result = async {
        if signup {
            accounts
                .signup(&form.email, &form.password, client.address)
                .await?;
        }
        accounts.signin(&form.email, &form.password, &client).await
    }
    .await;
    let next = session::local_path(form.next.as_deref());
    match result {
        Ok(pair) => redirect_setting(&next, state.cookies.start(&pair)),
        Err(e) => signin_failed(state, signup, &e, &form.email, next),
    }
}

pub async fn signin(
    State(state): State<AppState>,
    SigningIn(client): SigningIn,
    Form(form): Form<Credentials>,
) -> Response {
    start_session(&state, client, form, false).await
}

pub async fn signup(
    State(state): State<AppState>,
    SigningIn(client): SigningIn,
    Form(form): Form<Credentials>,
) -> Response {
    start_session(&state, client, form, true).await
}

/// A redirect that also sets (or clears) cookies.
pub(super) fn redirect_setting(
    to: &str,
    cookies: impl IntoIterator<Item = axum::http::HeaderValue>,
) -> Response {
    let mut response = Redirect::to(to).into_response();
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

pub(super) fn ended(state: &AppState, to: &str) -> Response {
    redirect_setting(to, state.cookies.end())
}

/// Who the browser is signed in as, if anyone (for routes open to both).
pub(super) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    address: Option<std::net::IpAddr>,
) -> Option<Principal> {
    let token = session::cookie(headers, state.cookies.access())?;
    state.service.authenticate(token, address).await.ok()
}

/// Revokes the session (as the API's sign-out does) and forgets its cookies.
pub async fn signout(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
) -> Response {
    if let Some(principal) = signed_in(&state, &headers, addr).await
        && let Err(e) = state.service.accounts.signout(&principal).await
    {
        return error_page(Some(principal.user), &e);
    }
    ended(&state, "/signin")
}

/// Trades the refresh cookie for a new pair (rotation), then goes back where the browser was.
pub async fn renew(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let next = session::local_path(q.next.as_deref());
    let Some(refresh) = session::cookie(&headers, state.cookies.refresh()) else {
        return ended(&state, &format!("/signin?next={}", encode(&next)));
    };
    match state.service.accounts.refresh(refresh).await {
        Ok(pair) => redirect_setting(&next, state.cookies.start(&pair)),
        Err(e) if e.code() == base::ErrorCode::Unauthorized => {
            ended(&state, &format!("/signin?next={}", encode(&next)))
        }
        Err(e) => error_page(None, &e),
    }
}

/// A stored message, ready for its template.
pub struct MessageView {
    id: String,
    conversation: String,
    role: Speaker,
    text: String,
    html: String,
    extractive: bool,
    status: AnswerStatus,
    citations: Vec<Citation>,
    unsupported: usize,
    rating: Option<Rating>,
}

impl MessageView {
    fn new(m: StoredMessage, conversation: &str) -> Self {
        let numbers: Vec<usize> = m.citations.iter().map(|c| c.n).collect();
        let html = if m.role == Speaker::Assistant {
            let unsupported: Vec<&str> =
                m.unsupported.iter().map(|u| u.sentence.as_str()).collect();
            render::answer_html(&m.content, &numbers, &unsupported)
        } else {
            String::new()
        };
        MessageView {
            id: m.id,
            conversation: conversation.to_owned(),
            rating: m.rating.map(|r| r.rating),
            extractive: m.role == Speaker::Assistant && m.model.as_deref() == Some("extractive"),
            role: m.role,
            text: m.content,
            html,
            status: m.status,
            citations: m.citations,
            unsupported: m.unsupported.len(),
        }
    }
}

#[derive(Template)]
#[template(path = "conversations.html")]
struct ConversationList<'a> {
    conversations: &'a [ConversationSummary],
    current: &'a str,
    searched: bool,
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    layout: Layout,
    title: String,
    conversation_id: String,
    list: String,
    messages: Vec<MessageView>,
    collections: Vec<CollectionHead>,
}

/// The chat: the caller's conversations, the open one's messages, the box to ask in.
pub async fn chat(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    id: Option<Path<String>>,
) -> Response {
    let chat = &state.service.chat;
    let result = async {
        let conversations = chat.conversations(&principal, 50, 0).await?;
        let open = match &id {
            Some(Path(id)) => Some(chat.conversation(&principal, id).await?),
            None => None,
        };
        let collections = state
            .service
            .knowledge
            .readable_collections(&principal)
            .await?;
        Ok::<_, Error>((conversations, open, collections))
    }
    .await;
    let (conversations, open, collections) = match result {
        Ok(r) => r,
        Err(e) => return error_page(Some(principal.user), &e),
    };
    let conversation_id = open
        .as_ref()
        .map(|c| c.summary.id.clone())
        .unwrap_or_default();
    let list = ConversationList {
        conversations: &conversations,
        current: &conversation_id,
        searched: false,
    }
    .render()
    .unwrap_or_default();
    let (title, messages) = match open {
        Some(c) => (
            c.summary.title,
            c.messages
                .into_iter()
                .map(|m| MessageView::new(m, &c.summary.id))
                .collect(),
        ),
        None => ("New conversation".to_owned(), Vec::new()),
    };
    page(
        &ChatPage {
            layout: Layout::of(&state, &principal).await,
            title,
            conversation_id,
            list,
            messages,
            collections,
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct Title {
    title: String,
}

pub async fn rename(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(id): Path<String>,
    Form(form): Form<Title>,
) -> Response {
    match state
        .service
        .chat
        .rename(&principal, &id, &form.title)
        .await
    {
        Ok(()) => Redirect::to(&format!("/chat/{}", encode(&id))).into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(id): Path<String>,
) -> Response {
    match state.service.chat.delete(&principal, &id).await {
        Ok(()) => Redirect::to("/chat").into_response(),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    current: Option<String>,
}

/// The conversation list (htmx fragment), all of it or those matching `q`.
pub async fn conversation_list(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    let chat = &state.service.chat;
    let query = q.q.as_deref().map(str::trim).unwrap_or_default();
    let result = if query.is_empty() {
        chat.conversations(&principal, 50, 0).await
    } else {
        chat.search(&principal, query, 50).await
    };
    match result {
        Ok(conversations) => page(
            &ConversationList {
                conversations: &conversations,
                current: q.current.as_deref().unwrap_or_default(),
                searched: !query.is_empty(),
            },
            StatusCode::OK,
        ),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessageFragment {
    m: MessageView,
}

/// One stored message (htmx fragment): the chat swaps a streamed answer for it when it is done.
pub async fn message(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path((id, message)): Path<(String, String)>,
) -> Response {
    match state.service.chat.message(&principal, &id, &message).await {
        Ok(m) => page(
            &MessageFragment {
                m: MessageView::new(m, &id),
            },
            StatusCode::OK,
        ),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Deserialize)]
pub struct RatingForm {
    rating: String,
    comment: Option<String>,
}

/// A reader rates an answer (the thumbs under it); back to it in its conversation.
pub async fn rate(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path((id, message)): Path<(String, String)>,
    Form(form): Form<RatingForm>,
) -> Response {
    let rated = match MessageRating::parse(&form.rating, form.comment.as_deref()) {
        Ok(rating) => {
            state
                .service
                .chat
                .rate(&principal, &id, &message, rating)
                .await
        }
        Err(e) => Err(e),
    };
    match rated {
        Ok(_) => {
            Redirect::to(&format!("/chat/{}#msg-{}", encode(&id), encode(&message))).into_response()
        }
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Template)]
#[template(path = "passage.html")]
struct PassagePanel {
    view: PassageInContext,
}

impl PassagePanel {
    /// The cited passage's chunk id, the anchor of its place in the whole document.
    fn cited_id(&self) -> &str {
        self.view
            .document
            .passages
            .get(self.view.cited)
            .map_or("", |p| p.chunk_id.as_str())
    }
}

/// A cited passage among its neighbours (htmx fragment for the side panel).
pub async fn passage(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(chunk_id): Path<String>,
) -> Response {
    match state
        .service
        .knowledge
        .passage_in_context(&principal, &chunk_id, 2)
        .await
    {
        Ok(view) => page(&PassagePanel { view }, StatusCode::OK),
        Err(e) => error_page(Some(principal.user), &e),
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    collection: Option<String>,
    mode: Option<String>,
}

/// A hit as the search page shows it: the passage's text escaped, the query's words marked.
pub struct HitView {
    title: String,
    collection: String,
    source: String,
    location: String,
    html: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    layout: Layout,
    q: String,
    collection: String,
    mode: String,
    modes: &'static [&'static str],
    collections: Vec<CollectionHead>,
    hits: Vec<HitView>,
    error: Option<String>,
}

pub async fn search(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Query(p): Query<SearchQuery>,
) -> Response {
    let knowledge = &state.service.knowledge;
    let collections = match knowledge.readable_collections(&principal).await {
        Ok(c) => c,
        Err(e) => return error_page(Some(principal.user), &e),
    };
    let q = p.q.unwrap_or_default();
    let collection = p.collection.unwrap_or_default();
    let mode = p.mode.unwrap_or_else(|| "hybrid".to_owned());
    let mut hits = Vec::new();
    let mut error = None;
    let mut status = StatusCode::OK;
    if !q.trim().is_empty() {
        let chosen: Vec<String> = Some(collection.clone())
            .filter(|c| !c.is_empty())
            .into_iter()
            .collect();
        let found = match knowledge::SearchRequest::parse(&q, &chosen, Some(&mode), None) {
            Ok(request) => knowledge.search_as(&principal, &request).await,
            Err(e) => Err(e),
        };
        match found {
            Ok(results) => {
                hits = results
                    .hits
                    .into_iter()
                    .map(|h| HitView {
                        html: render::highlight(&base::plain_text(&h.passage.text), &q),
                        title: h.passage.title,
                        collection: h.passage.collection,
                        source: h.passage.source,
                        location: h.passage.location,
                    })
                    .collect();
            }
            Err(e) => {
                status = status_of(e.code());
                error = Some(public_message(&e));
            }
        }
    }
    page(
        &SearchPage {
            layout: Layout::of(&state, &principal).await,
            q,
            collection,
            mode,
            modes: &["hybrid", "bm25", "dense"],
            collections,
            hits,
            error,
        },
        status,
    )
}
