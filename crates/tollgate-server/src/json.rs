//! JSON request bodies: read whole within the server's body limit, then
//! decoded strictly; anything that does not decode is a 400 problem that
//! says why, never a panic and never a default.

use crate::error::Problem;
use crate::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body of type `T`.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Body<T>, Problem> {
        let json = request.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).is_some_and(|value| {
            value.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        if !json {
            return Err(Problem::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as Content-Type: application/json",
            ));
        }
        let max = state.limits().body_bytes_max;
        let bytes = axum::body::to_bytes(request.into_body(), max).await.map_err(|_| {
            Problem::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Body too large",
                format!("the body is over the limit of {max} bytes"),
            )
        })?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|error| Problem::bad_request(format!("the body is not what this call takes: {error}")))
    }
}

/// A query string of type `T`; one that does not decode is a 400 problem.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Query<T>, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|error| {
                Problem::bad_request(format!("the query is not what this call takes: {}", error.body_text()))
            })
    }
}

/// The `{id}` of a path; one that does not decode is a 400 problem.
pub struct Id(pub String);

impl FromRequestParts<AppState> for Id {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Id, Problem> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| Id(id))
            .map_err(|error| {
                Problem::bad_request(format!("the path is not what this call takes: {}", error.body_text()))
            })
    }
}
