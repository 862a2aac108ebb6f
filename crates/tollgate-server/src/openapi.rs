//! The OpenAPI 3.1 document: the operations come from the handlers as they
//! are routed (utoipa-axum); here the parts every operation shares are
//! added: the bearer scheme, and the problem documents each may answer.

use serde_json::{Value as Json, json};

/// The document's fixed parts.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Tollgate", description = "Decisions on agents' tool calls, and the handoffs people work on.", version = "1"),
    components(schemas(crate::error::Problem)),
    tags(
        (name = "sessions", description = "An agent's sessions, calls and results."),
        (name = "investigations", description = "A request split into concerns, and joined."),
        (name = "handoffs", description = "Escalations people decide, and the agent's wait for them."),
        (name = "audit", description = "The audit log (admin)."),
        (name = "workflows", description = "The workflows the server runs (admin)."),
        (name = "operations", description = "Health, readiness, metrics, this document."),
    )
)]
pub(crate) struct Base;

/// Problems any operation may answer, and those of operations with a
/// token, with a body, or that change a handoff.
const ANY: [(&str, &str); 3] = [
    ("500", "Internal error (nothing is said of it)."),
    ("503", "The store is unreachable, or the request passed its deadline; send it again."),
    ("400", "The path or query is not what this call takes."),
];
const WITH_TOKEN: [(&str, &str); 5] = [
    ("401", "No token, or not a valid one."),
    ("403", "The token's role may not do this."),
    ("404", "Nothing by that id for this tenant."),
    ("409", "It conflicts with what is stored (an id taken, a handoff's state)."),
    ("429", "This token is over its request rate; see Retry-After."),
];
const WITH_BODY: [(&str, &str); 2] =
    [("413", "The body is over the server's limit."), ("415", "The body is not application/json.")];

/// The finished document as JSON text.
pub(crate) fn finish(document: utoipa::openapi::OpenApi) -> String {
    let mut document = serde_json::to_value(document).unwrap_or(Json::Null);
    let problem = json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    if let Some(paths) = document.get_mut("paths").and_then(Json::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            let secured = path.starts_with("/v1/");
            for operation in item.values_mut().filter_map(Json::as_object_mut) {
                let has_body = operation.contains_key("requestBody");
                if secured {
                    operation.insert("security".into(), json!([{"bearer": []}]));
                } else {
                    operation.remove("security");
                }
                let Some(responses) = operation.get_mut("responses").and_then(Json::as_object_mut) else { continue };
                let mut add = |(status, description): &(&str, &str)| {
                    responses.entry(*status).or_insert_with(|| json!({"description": description, "content": problem}));
                };
                ANY.iter().for_each(&mut add);
                if secured {
                    WITH_TOKEN.iter().for_each(&mut add);
                }
                if has_body {
                    WITH_BODY.iter().for_each(&mut add);
                }
            }
        }
    }
    if let Some(components) = document.get_mut("components").and_then(Json::as_object_mut) {
        components.insert(
            "securitySchemes".into(),
            json!({"bearer": {"type": "http", "scheme": "bearer", "description": "An API token: tg_..."}}),
        );
    }
    document.to_string()
}
