//! Signing in with a token, and out.

use super::Desk;
use super::actions::refuse_form;
use super::security::{Person, desk_page, plausible_token, same_origin, sign_in_cookie, sign_out_cookie};
use super::views::{self, Chrome, render};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;
use tollgate_engine::Role;

#[derive(Template)]
#[template(path = "desk/sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    /// Why the person is here, or why the token was refused.
    message: Option<String>,
    /// Whether the message is a refusal.
    refused: bool,
    next: String,
}

/// The sign-in page's query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Arrival {
    why: Option<String>,
    next: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Credentials {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

fn page(status: StatusCode, message: Option<&str>, refused: bool, next: &str) -> Response {
    let next = desk_page(next).unwrap_or("").to_owned();
    render(status, &SignInPage { chrome: Chrome::anonymous(), message: message.map(str::to_owned), refused, next })
}

/// `GET /desk/sign-in`.
pub(crate) async fn form(Query(arrival): Query<Arrival>) -> Response {
    let message = match arrival.why.as_deref() {
        Some("revoked") => Some("Your token no longer works (it was revoked), so you were signed out."),
        Some("bye") => Some("You are signed out."),
        Some("signed-out") => Some("Sign in to use the desk."),
        _ => None,
    };
    page(StatusCode::OK, message, false, arrival.next.as_deref().unwrap_or(""))
}

/// `POST /desk/sign-in`: a reviewer's (or an admin's) token signs in.
pub(crate) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    if !same_origin(&headers) {
        let why = "This sign-in was sent from another site; it was refused.";
        return page(StatusCode::FORBIDDEN, Some(why), true, "");
    }
    let token = form.token.trim();
    let unknown = "That token is not one this desk accepts: it is mistyped, incomplete or revoked.";
    if !plausible_token(token) {
        return page(StatusCode::UNAUTHORIZED, Some(unknown), true, &form.next);
    }
    let found = match state.engine().authenticate(token).await {
        Ok(found) => found,
        Err(_) => return views::unavailable(),
    };
    match found {
        None => page(StatusCode::UNAUTHORIZED, Some(unknown), true, &form.next),
        Some(found) if found.role == Role::Agent => page(
            StatusCode::FORBIDDEN,
            Some("That is an agent's token. The desk takes a reviewer's token (or an admin's, to look)."),
            true,
            &form.next,
        ),
        Some(_) => {
            let to = desk_page(&form.next).unwrap_or("/desk");
            let mut response = Redirect::to(to).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&sign_in_cookie(token, &headers)) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
    }
}

/// The sign-out form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignOut {
    #[serde(default)]
    csrf: String,
}

/// `POST /desk/sign-out`.
pub(crate) async fn sign_out(
    axum::Extension(desk): axum::Extension<Arc<Desk>>,
    headers: HeaderMap,
    person: Person,
    Form(form): Form<SignOut>,
) -> Response {
    if let Some(refused) = refuse_form(&desk, &headers, &person, &form.csrf) {
        return refused;
    }
    let mut response = Redirect::to("/desk/sign-in?why=bye").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&sign_out_cookie(&headers)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
