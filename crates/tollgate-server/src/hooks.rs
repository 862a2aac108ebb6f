//! `POST /v1/hooks/claude-code`: Claude Code's `type: "http"` hooks answered
//! by the server, so a fleet of agents needs no `tollgate` binary and no
//! store of its own. The body is the hook event; the answer is what
//! `tollgate hook` would print, decided by the same code in the tenant its
//! agent token acts for, under a workflow the server runs (`?workflow=NAME`,
//! or the only one).
//!
//! Claude Code lets a call through when an HTTP hook answers with any
//! status but 2xx, cannot connect or times out. So this route answers every
//! request with 200 and, when anything goes wrong (no or a bad token, a body
//! over the limit or not an event, no such workflow, the store, the
//! server's deadline), the refusal shaped for the event: a denied call, a
//! withheld output. It sits outside the API's middleware, whose problems
//! (401, 413, 429, 503) would let calls through; only an unreachable server
//! is left to the client (`hook install` sets its timeout, and docs say to
//! keep the server up as a dependency of the agent).

use crate::state::AppState;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use std::time::Duration;
use tollgate_engine::Role;
use tollgate_hook::{Answer, Client};

/// The route, to be merged outside the API's middleware.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/hooks/claude-code", post(claude_code))
}

/// `?workflow=`: the workflow the hook's sessions run under.
#[derive(Deserialize)]
struct Which {
    workflow: Option<String>,
}

async fn claude_code(
    State(state): State<AppState>,
    Query(which): Query<Which>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = state.limits().body_bytes_max;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => return send(tollgate_hook::refusal_for(Client::ClaudeCode, b"", &over(limit))),
    };
    let seconds = state.limits().request_seconds_max;
    let work = tokio::spawn(answer(state, which.workflow, headers, bytes.clone()));
    let answer = match tokio::time::timeout(Duration::from_secs(seconds), work).await {
        Ok(Ok(answer)) => answer,
        // The task failed (a panic): refused like anything else.
        Ok(Err(error)) => {
            tollgate_hook::refusal_for(Client::ClaudeCode, &bytes, &format!("the server failed ({error})"))
        }
        // Past the deadline the decision may still be committed; the agent
        // hears "refused", and a call allowed meanwhile is in doubt.
        Err(_) => tollgate_hook::refusal_for(
            Client::ClaudeCode,
            &bytes,
            &format!("the server did not decide within {seconds} s"),
        ),
    };
    send(answer)
}

fn over(limit: usize) -> String {
    format!("the event is over the server's limit of {limit} bytes")
}

async fn answer(state: AppState, workflow: Option<String>, headers: HeaderMap, event: Bytes) -> Answer {
    let refuse = |what: &str| tollgate_hook::refusal_for(Client::ClaudeCode, &event, what);
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    if presented.is_none() {
        return refuse("the hook sent no token (an Authorization: Bearer tg_... header)");
    }
    // The API's own path (shape, cache, store, rate); its problem becomes
    // the refusal's words.
    let caller = match crate::auth::authenticate(&state, presented).await {
        Ok(caller) => caller,
        Err(problem) => return refuse(&format!("the hook's token was refused: {}", problem.detail)),
    };
    if caller.role != Role::Agent {
        return refuse(&format!("the hook's token is a {} token; hooks need an agent token", caller.role));
    }
    let handle = match workflow.as_deref() {
        Some(name) => state.workflow(name),
        None => {
            let all = state.workflows();
            if all.len() == 1 { all.into_iter().next() } else { None }
        }
    };
    let Some(handle) = handle else {
        return refuse(&match workflow {
            Some(name) => format!("this server runs no workflow {name:?}"),
            None => "this server runs several workflows: name one in the hook's URL (?workflow=NAME)".to_owned(),
        });
    };
    tollgate_hook::answer_served(Client::ClaudeCode, state.engine(), &caller.tenant, &handle, &event).await
}

/// The answer as Claude Code reads an HTTP hook's: 200 and the JSON a
/// command hook prints. A refusal a command hook gives by exit code 2 with
/// no JSON (a failure to record a lifecycle or failure event) becomes a
/// `block` decision with its reason.
fn send(answer: Answer) -> Response {
    let body = if answer.stdout.trim().is_empty() {
        if answer.exit_code == 0 {
            "{}".to_owned()
        } else {
            serde_json::json!({ "decision": "block", "reason": answer.stderr }).to_string()
        }
    } else {
        answer.stdout
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
