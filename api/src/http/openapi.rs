//! The OpenAPI 3.1 document served at `/openapi.json`: every endpoint, its parameters, bodies and
//! the error shape. Kept beside the routes; a test checks that each route is documented.

use serde_json::{Value, json};

fn error_ref() -> Value {
    json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// One operation. `body` is a JSON schema for the request body; `query` names query parameters.
fn op(summary: &str, public: bool, query: &[&str], body: Option<Value>, ok: &str) -> Value {
    let mut o = json!({
        "summary": summary,
        "responses": {ok: {"description": "success"}, "default": error_ref()},
    });
    if public {
        o["security"] = json!([]);
    }
    let mut params: Vec<Value> = query
        .iter()
        .map(|q| json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}))
        .collect();
    if let Some(b) = body {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    if !params.is_empty() {
        o["parameters"] = Value::Array(std::mem::take(&mut params));
    }
    o
}

fn object(required: &[&str], props: Value) -> Value {
    json!({"type": "object", "required": required, "properties": props})
}

fn path_param(mut operation: Value, names: &[&str]) -> Value {
    let params: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    let existing = operation["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    operation["parameters"] = Value::Array(params.into_iter().chain(existing).collect());
    operation
}

pub fn document() -> Value {
    let mut doc = base_document();
    let s = |t: &str| json!({"type": t});
    let more = json!({
            "/api/collections/{name}/documents": {
                "get": path_param(op("The collection's documents (readers)", false, &[], None, "200"), &["name"]),
                "post": path_param(op("Upload one file (the body) to ingest; curators of the collection, admins", false, &["filename"], None, "201"), &["name"])},
            "/api/collections/{name}/documents/{id}": {"delete": path_param(op("Delete a document (curators, admins)", false, &[], None, "204"), &["name", "id"])},
            "/api/admin/users": {"get": op("All users (admins)", false, &[], None, "200")},
            "/api/admin/users/{id}": {"patch": path_param(op("Change a user's role, plan or disabled flag (admins)", false, &[],
                Some(json!({"type": "object", "properties": {"role": {"enum": ["user", "curator", "admin"]}, "plan": s("string"), "disabled": s("boolean")}})), "200"), &["id"])},
            "/api/chat": {"post": op("Answer a question as server-sent events: meta, citations, delta…, done | error", false, &[],
                Some(object(&["message"], json!({"message": s("string"), "conversation_id": s("string"),
                    "collections": {"type": "array", "items": s("string")}, "model": s("string")}))), "200")},
            "/api/conversations": {"get": op("The caller's conversations, newest first", false, &["limit", "offset"], None, "200")},
            "/api/conversations/search": {"get": op("Conversations whose title or messages contain q", false, &["q", "limit"], None, "200")},
            "/api/conversations/{id}": {
                "get": path_param(op("A conversation with its messages", false, &[], None, "200"), &["id"]),
                "patch": path_param(op("Rename", false, &[], Some(object(&["title"], json!({"title": s("string")}))), "200"), &["id"]),
                "delete": path_param(op("Delete", false, &[], None, "204"), &["id"])},
            "/v1/models": {"get": op("OpenAI-compatible: one model per readable collection", false, &[], None, "200")},
            "/v1/chat/completions": {"post": op("OpenAI-compatible chat completions (stream or not), with citations", false, &[],
                Some(object(&["model", "messages"], json!({"model": s("string"), "stream": s("boolean"),
                    "messages": {"type": "array", "items": object(&["role"], json!({"role": s("string"), "content": {}}))}}))), "200")}
    });
    if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), more) {
        paths.extend(more);
    }
    doc
}

fn base_document() -> Value {
    let s = |t: &str| json!({"type": t});
    let creds = object(
        &["email", "password"],
        json!({"email": s("string"), "password": s("string")}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Lariat", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Knowledge assistant: search, streamed answers with citations, accounts."},
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "An access token from /api/auth/signin or an API key (lrt_…)"}},
            "schemas": {"Error": object(&["error"], json!({"error": object(&["code", "message"], json!({
                "code": {"type": "string", "enum": ["invalid_input", "unauthorized", "forbidden", "not_found",
                    "conflict", "rate_limited", "quota_exceeded", "upstream_error", "unavailable", "internal"]},
                "message": s("string")}))}))}
        },
        "paths": {
            "/healthz": {"get": op("Liveness and configuration summary", true, &[], None, "200")},
            "/readyz": {"get": op("Readiness: the store answers", true, &[], None, "200")},
            "/metrics": {"get": op("Prometheus metrics", true, &[], None, "200")},
            "/openapi.json": {"get": op("This document", true, &[], None, "200")},
            "/api/auth/signup": {"post": op("Create an account", true, &[], Some(creds.clone()), "201")},
            "/api/auth/signin": {"post": op("Sign in: access and refresh tokens", true, &[], Some(creds), "200")},
            "/api/auth/refresh": {"post": op("Trade a refresh token for a new pair (rotation)", true, &[],
                Some(object(&["refresh_token"], json!({"refresh_token": s("string")}))), "200")},
            "/api/auth/signout": {"post": op("Revoke the current session", false, &[], None, "204")},
            "/api/auth/me": {"get": op("The caller", false, &[], None, "200")},
            "/api/keys": {
                "post": op("Create an API key (shown once)", false, &[], Some(object(&["name"], json!({"name": s("string")}))), "201"),
                "get": op("The caller's API keys", false, &[], None, "200")},
            "/api/keys/{id}": {"delete": path_param(op("Revoke an API key", false, &[], None, "204"), &["id"])},
            "/api/usage": {"get": op("This month's usage and what remains of the plan", false, &[], None, "200")},
            "/api/search": {"get": op("Ranked passages from readable collections", false, &["q", "collection", "mode", "k"], None, "200")},
            "/api/collections": {"get": op("Readable collections", false, &[], None, "200")},
            "/api/collections/{name}": {"patch": path_param(op("Change visibility or instructions (curators, admins)", false, &[],
                Some(json!({"type": "object", "properties": {"visibility": {"enum": ["public", "private"]}, "instructions": s("string")}})), "204"), &["name"])},
            "/api/collections/{name}/members/{user_id}": {
                "put": path_param(op("Add or change a member", false, &[], Some(object(&["role"], json!({"role": {"enum": ["reader", "curator"]}}))), "204"), &["name", "user_id"]),
                "delete": path_param(op("Remove a member", false, &[], None, "204"), &["name", "user_id"])}
        }
    })
}
