//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the handlers themselves:
//! every REST route is registered through aide's `ApiRouter`, which reads each handler's
//! extractors (path, query, JSON body, credentials) and return type (the JSON it answers, the
//! error shape) from their schemars schemas. A route cannot be served without being documented,
//! nor documented with other types than it uses.

use aide::generate::GenContext;
use aide::openapi::{
    Info, MediaType, OpenApi, Operation, ReferenceOr, Response, SchemaObject, SecurityRequirement,
    SecurityScheme, StatusCode,
};
use aide::operation::{OperationInput, OperationOutput};
use aide::transform::TransformOperation;
use axum::Json;
use axum::http::StatusCode as HttpStatus;
use axum::response::{IntoResponse, Response as HttpResponse};
use schemars::JsonSchema;
use serde::Serialize;

use super::{ApiError, Auth, Body, ClientAddr, MaybeAuth, Params, SigningIn};

/// The error every route may answer with, under the status its code maps to.
#[derive(Serialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, JsonSchema)]
pub struct ErrorDetail {
    pub code: base::ErrorCode,
    /// The same as `code`, for clients written against OpenAI's error shape.
    #[serde(rename = "type")]
    pub kind: base::ErrorCode,
    pub message: String,
}

const BEARER: &str = "bearer";

/// The document's frame; aide fills in the paths and schemas as the router is finished.
pub fn base() -> OpenApi {
    let mut api = OpenApi {
        info: Info {
            title: "Lariat".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: Some(
                "Knowledge assistant: search, streamed answers with citations, accounts.".into(),
            ),
            ..Info::default()
        },
        ..OpenApi::default()
    };
    api.components
        .get_or_insert_with(Default::default)
        .security_schemes
        .insert(
            BEARER.into(),
            ReferenceOr::Item(SecurityScheme::Http {
                scheme: "bearer".into(),
                bearer_format: None,
                description: Some(
                    "An access token from /api/auth/signin or an API key (lrt_…)".into(),
                ),
                extensions: Default::default(),
            }),
        );
    api
}

/// What an extractor that can refuse a request answers: the error, as the default response.
fn refusal(ctx: &mut GenContext, operation: &mut Operation) -> Vec<(Option<StatusCode>, Response)> {
    ApiError::inferred_responses(ctx, operation)
}

/// Routes with `Auth` need a bearer token; the others are open.
impl OperationInput for Auth {
    fn operation_input(_ctx: &mut GenContext, operation: &mut Operation) {
        let requirement: SecurityRequirement = [(BEARER.to_owned(), Vec::new())].into();
        if !operation.security.contains(&requirement) {
            operation.security.push(requirement);
        }
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        refusal(ctx, operation)
    }
}

impl OperationInput for ClientAddr {}

impl OperationInput for MaybeAuth {}

impl OperationInput for SigningIn {}

/// A JSON body, documented as `Json<T>` is; its rejections answer with [`ErrorBody`].
impl<T: JsonSchema> OperationInput for Body<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        Json::<T>::operation_input(ctx, operation);
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        refusal(ctx, operation)
    }
}

/// Query parameters, documented as `Query<T>` is; its rejections answer with [`ErrorBody`].
impl<T: JsonSchema> OperationInput for Params<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        axum::extract::Query::<T>::operation_input(ctx, operation);
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        refusal(ctx, operation)
    }
}

/// Every failure: the default response.
impl OperationOutput for ApiError {
    type Inner = ErrorBody;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<Response> {
        let mut response = Json::<ErrorBody>::operation_response(ctx, operation)?;
        response.description = "An error: its code, and a message for people".into();
        Some(response)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        Self::operation_response(ctx, operation)
            .map(|r| vec![(None, r)])
            .unwrap_or_default()
    }
}

/// A JSON answer with 201 Created.
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> HttpResponse {
        (HttpStatus::CREATED, Json(self.0)).into_response()
    }
}

impl<T: JsonSchema> OperationOutput for Created<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<Response> {
        Json::<T>::operation_response(ctx, operation)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        operation: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        Self::operation_response(ctx, operation)
            .map(|r| vec![(Some(StatusCode::Code(201)), r)])
            .unwrap_or_default()
    }
}

/// Documents a text answer on 200 of the given media type, whose items `schema` describes (the
/// handler returns a plain `Response`).
fn text_response<'t>(
    op: TransformOperation<'t>,
    media_type: &str,
    description: &str,
    schema: schemars::Schema,
) -> TransformOperation<'t> {
    let mut op = op;
    let media = MediaType {
        schema: Some(SchemaObject {
            json_schema: schema,
            example: None,
            external_docs: None,
        }),
        ..MediaType::default()
    };
    let responses = op
        .inner_mut()
        .responses
        .get_or_insert_with(Default::default);
    let ok = responses
        .responses
        .entry(StatusCode::Code(200))
        .or_insert_with(|| ReferenceOr::Item(Response::default()));
    if let ReferenceOr::Item(ok) = ok {
        ok.description = if ok.description.is_empty() {
            description.into()
        } else {
            format!("{}; {description}", ok.description)
        };
        ok.content.insert(media_type.into(), media);
    }
    op
}

/// Prometheus' text exposition format.
pub fn metrics_text(op: TransformOperation<'_>) -> TransformOperation<'_> {
    text_response(
        op,
        "text/plain",
        "Prometheus text exposition format",
        schemars::json_schema!({"type": "string"}),
    )
}

/// A conversation's export: a PDF (binary), Markdown or JSON file, as `format` asks.
pub fn export_file(op: TransformOperation<'_>) -> TransformOperation<'_> {
    let op = text_response(
        op,
        "application/pdf",
        "format=pdf (default): the conversation and its sources as a PDF",
        schemars::json_schema!({"type": "string", "contentMediaType": "application/pdf"}),
    );
    let op = text_response(
        op,
        "text/markdown",
        "format=md: the same as Markdown",
        schemars::json_schema!({"type": "string"}),
    );
    text_response(
        op,
        "application/json",
        "format=json: the conversation as GET /api/conversations/{id} returns it",
        schemars::json_schema!({"type": "object"}),
    )
}

/// A report that is also served as CSV (`format=csv`).
pub fn with_csv(op: TransformOperation<'_>) -> TransformOperation<'_> {
    text_response(
        op,
        "text/csv",
        "with format=csv: the table as CSV (RFC 4180)",
        schemars::json_schema!({"type": "string"}),
    )
}

/// Server-sent events, each a JSON object in `data`; `names` are the events' names (none: the
/// events are unnamed, as OpenAI's stream).
pub fn event_stream<'t>(
    op: TransformOperation<'t>,
    description: &str,
    names: &[&str],
) -> TransformOperation<'t> {
    let data = serde_json::json!({"type": "string", "contentMediaType": "application/json"});
    let schema = if names.is_empty() {
        schemars::json_schema!({"type": "object", "required": ["data"], "properties": {"data": data}})
    } else {
        schemars::json_schema!({"type": "object", "required": ["event", "data"],
            "properties": {"event": {"enum": names}, "data": data}})
    };
    text_response(
        op,
        "text/event-stream",
        &format!("server-sent events: {description}"),
        schema,
    )
}
