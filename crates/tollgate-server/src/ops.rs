//! What operators and tools read without a token: liveness, readiness (the
//! store answers), Prometheus metrics and the OpenAPI document.

use crate::error::Problem;
use crate::state::AppState;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The OpenAPI document, rendered once.
#[derive(Clone)]
pub(crate) struct Document(pub(crate) Arc<String>);

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The server is up.", body = String, content_type = "text/plain")))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// The store answers: this replica can take requests.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "The store answers.", body = String, content_type = "text/plain")))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<&'static str, Problem> {
    state.engine().audit_head().await.map_err(Problem::from)?;
    Ok("ready")
}

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "The metrics.", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = crate::metrics::handle() else {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Unavailable",
            "metrics are not recorded in this process",
        )
        .into_response();
    };
    let waiting = state.engine().waiting_handoffs().await;
    if let Err(error) = &waiting {
        eprintln!("tollgate serve: the queue's gauges could not be read: {error}");
    }
    let mut text = handle.render();
    text.push_str(&crate::metrics::queue_gauges(waiting.as_deref().map_err(|_| ())));
    let mut response = text.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object)))]
pub(crate) async fn openapi(Extension(document): Extension<Document>) -> Response {
    let mut response = document.0.as_str().to_owned().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
