//! One error shape for every response that is not a success: an RFC 9457
//! problem document (`application/problem+json`). An engine error becomes a
//! status in one match, on what happened; a 5xx says nothing of the inside
//! (it is logged instead), so a caller learns what to do, not how we fail.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tollgate_engine::ErrorKind;

/// A problem answered to the caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// What kind of problem: `/problems/<slug>`, one per kind below.
    #[serde(rename = "type")]
    pub kind: String,
    /// The kind, in a few words.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened here, as one sentence the caller can act on.
    pub detail: String,
    /// Seconds to wait before trying again (sent as `Retry-After`).
    #[serde(skip)]
    pub retry_after_seconds: Option<u64>,
}

impl Problem {
    /// A problem of `status`, kind `slug`, titled `title`, saying `detail`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            retry_after_seconds: None,
        }
    }

    /// 429: this token sent more requests than its rate allows.
    pub fn too_many_requests(retry_after_seconds: u64) -> Problem {
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests",
            format!("this token is over its request rate; try again in {retry_after_seconds} s"),
        );
        problem.retry_after_seconds = Some(retry_after_seconds);
        problem
    }

    /// 503: the request did not finish within the server's deadline.
    pub fn deadline(seconds: u64) -> Problem {
        let mut problem = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "deadline",
            "Deadline passed",
            format!(
                "the request did not finish within {seconds} s; it may still complete: send the same request again \
                 (a call re-sent with the same id gets its recorded decision)"
            ),
        );
        problem.retry_after_seconds = Some(1);
        problem
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed() -> Problem {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this path does not take this method",
        )
    }

    /// 400: the request cannot be accepted as it is.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request", detail)
    }

    /// 401: no token, or not one of ours.
    pub fn unauthenticated() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Unauthenticated",
            "send a valid API token as Authorization: Bearer tg_...",
        )
    }

    /// 403: the token's role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 404: nothing by that name (for this tenant).
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 500, opaque: the detail is logged, not answered.
    pub fn internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server could not answer; nothing was decided or stored on its account",
        )
    }
}

impl From<tollgate_engine::Error> for Problem {
    fn from(error: tollgate_engine::Error) -> Problem {
        match error.kind() {
            ErrorKind::BadRequest => Problem::bad_request(error.to_string()),
            ErrorKind::NotFound => Problem::not_found(error.to_string()),
            ErrorKind::Conflict => Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", error.to_string()),
            ErrorKind::Damaged => {
                eprintln!("tollgate serve: stored data is damaged: {error}");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "damaged",
                    "Stored data is damaged",
                    "stored data does not replay; a person must look at the audit log",
                )
            }
            ErrorKind::Unavailable => {
                eprintln!("tollgate serve: the store failed: {error}");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Unavailable",
                    "the store could not be reached; nothing was stored; send the same request again",
                )
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after_seconds {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
