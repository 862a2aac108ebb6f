//! Who is at the desk and whether a form is theirs: the sign-in cookie, CSRF
//! tokens, the Origin check and the headers every desk response carries.

use crate::auth::Caller;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tollgate_engine::{AuditReport, Role};

/// The cookie that holds a signed-in person's token.
pub(crate) const COOKIE: &str = "tollgate_desk";

/// Longest a token in a cookie or the sign-in form may be, in bytes.
const TOKEN_BYTES_MAX: usize = 256;

/// How long the audit state is kept before it is checked again.
const AUDIT_CHECK_EVERY: Duration = Duration::from_secs(10);

/// A desk secret too short to make a key of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the desk's secret is {len} bytes; it takes at least 16")]
pub struct ShortSecret {
    len: usize,
}

/// The desk's own state: its CSRF key, and the last audit check.
pub struct Desk {
    key: [u8; 32],
    audit: Mutex<Option<(Instant, Arc<AuditReport>)>>,
}

impl Default for Desk {
    fn default() -> Desk {
        Desk::new()
    }
}

impl Desk {
    /// A desk with a key drawn from the operating system. Without one the
    /// desk would have no CSRF protection, so it does not start: fail closed.
    #[expect(clippy::panic, reason = "no randomness at start-up is a broken host, not a request to answer")]
    pub fn new() -> Desk {
        let mut key = [0u8; 32];
        if let Err(error) = getrandom::fill(&mut key) {
            panic!("the desk cannot draw a key from the operating system: {error}");
        }
        Desk::with_key(key)
    }

    /// A desk whose CSRF tokens are made with `key` (the same key on every
    /// replica lets a form rendered by one be sent to another).
    pub fn with_key(key: [u8; 32]) -> Desk {
        Desk { key, audit: Mutex::new(None) }
    }

    /// A desk whose key is the SHA-256 of `secret` (at least 16 bytes): what
    /// `tollgate serve --desk-key-file` gives every replica.
    pub fn from_secret(secret: &[u8]) -> Result<Desk, ShortSecret> {
        if secret.len() < 16 {
            return Err(ShortSecret { len: secret.len() });
        }
        Ok(Desk::with_key(Sha256::digest(secret).into()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // INVARIANT: HMAC takes a key of any length.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    /// The CSRF token of a sign-in: HMAC-SHA256 of its cookie, hex.
    pub(crate) fn csrf(&self, cookie: &str) -> String {
        let mut mac = self.mac();
        mac.update(cookie.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `sent` is the CSRF token of the sign-in `cookie` (compared
    /// in constant time).
    pub(crate) fn csrf_matches(&self, cookie: &str, sent: &str) -> bool {
        let Ok(sent) = hex::decode(sent) else { return false };
        let mut mac = self.mac();
        mac.update(cookie.as_bytes());
        mac.verify_slice(&sent).is_ok()
    }

    /// The audit log's state, checked again when the last check is older
    /// than ten seconds (a check reads the whole log).
    pub(crate) async fn audit(&self, state: &AppState) -> Result<Arc<AuditReport>, tollgate_engine::Error> {
        let mut cached = self.audit.lock().await;
        if let Some((at, report)) = cached.as_ref()
            && at.elapsed() < AUDIT_CHECK_EVERY
        {
            return Ok(Arc::clone(report));
        }
        let report = Arc::new(state.engine().verify_audit().await?);
        *cached = Some((Instant::now(), Arc::clone(&report)));
        Ok(report)
    }
}

/// A person signed in at the desk: who they are, and the CSRF token their
/// forms carry.
pub(crate) struct Person {
    /// The token's caller (a reviewer or an admin).
    pub caller: Caller,
    /// The CSRF token for their forms.
    pub csrf: String,
    /// Their cookie (the token), to check a form's CSRF token against.
    pub cookie: String,
}

impl Person {
    /// Whether they may act on handoffs (admins may only look).
    pub fn may_act(&self) -> bool {
        self.caller.role == Role::Reviewer
    }
}

/// The token in the desk's cookie, if it holds something like one.
pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| plausible_token(value))
}

/// Whether `text` could be a token: short, printable ASCII, no separators
/// (so it can be written back into a cookie as it is).
pub(crate) fn plausible_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= TOKEN_BYTES_MAX
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Whether the request came over HTTPS (as a proxy in front says).
fn https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value that signs in with `token`.
pub(crate) fn sign_in_cookie(token: &str, headers: &HeaderMap) -> String {
    let secure = if https(headers) { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/desk; HttpOnly; SameSite=Strict{secure}")
}

/// The `Set-Cookie` value that signs out.
pub(crate) fn sign_out_cookie(headers: &HeaderMap) -> String {
    let secure = if https(headers) { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/desk; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// Whether a POST comes from the desk's own pages: an `Origin` (or, lacking
/// one, `Sec-Fetch-Site`) that names another site is refused.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if headers.get("sec-fetch-site").is_some_and(|site| site.as_bytes() == b"cross-site") {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), headers.get(header::HOST).map(|h| h.to_str())) else {
        return false;
    };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    !origin_host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Where a sign-in may send the person afterwards: desk pages only.
pub(crate) fn desk_page(next: &str) -> Option<&str> {
    let path = next.split(['?', '#']).next().unwrap_or("");
    let desk = path == "/desk" || path.starts_with("/desk/");
    let clean = !next.contains("//")
        && !next.contains('\\')
        && !next.contains("/..")
        && !next.starts_with("/desk/sign-")
        && next.chars().all(|c| c.is_ascii_graphic());
    (desk && clean).then_some(next)
}

/// Why a request is not let into the desk.
pub(crate) enum Refused {
    /// Nobody is signed in: to the sign-in page, and back here after.
    SignIn { next: String },
    /// The cookie's token no longer works (revoked): signed out.
    SignedOut { next: String, clear: String },
    /// The store could not be read.
    Unavailable,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let to = |next: &str, why: &str| {
            let next = desk_page(next).map(|next| format!("&next={}", encode(next))).unwrap_or_default();
            format!("/desk/sign-in?why={why}{next}")
        };
        match self {
            Refused::SignIn { next } => Redirect::to(&to(&next, "signed-out")).into_response(),
            Refused::SignedOut { next, clear } => {
                let mut response = Redirect::to(&to(&next, "revoked")).into_response();
                if let Ok(value) = HeaderValue::from_str(&clear) {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                }
                response
            }
            Refused::Unavailable => super::views::unavailable(),
        }
    }
}

/// `text` percent-encoded for a query string.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Person, Refused> {
        // After signing in, back to the page asked for (a form's address is
        // not a page: back to the queue).
        let next = match parts.method {
            axum::http::Method::GET => parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default(),
            _ => "/desk".to_owned(),
        };
        let Some(cookie) = cookie_token(&parts.headers) else { return Err(Refused::SignIn { next }) };
        let found = state.engine().authenticate(&cookie).await.map_err(|_| Refused::Unavailable)?;
        let token = match found {
            Some(token) if matches!(token.role, Role::Reviewer | Role::Admin) => token,
            _ => return Err(Refused::SignedOut { next, clear: sign_out_cookie(&parts.headers) }),
        };
        let desk = parts.extensions.get::<Arc<Desk>>().ok_or(Refused::Unavailable)?;
        let csrf = desk.csrf(&cookie);
        let caller = Caller { token: token.id, tenant: token.tenant, role: token.role, name: token.name };
        Ok(Person { caller, csrf, cookie })
    }
}

/// The headers every desk response carries: only the desk's own script and
/// styles, never framed, never sniffed, never cached (assets, whose address
/// changes with their content, set their own caching).
pub(crate) async fn headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_with_one_secret_accept_each_others_forms_and_others_do_not() {
        let secret = b"a secret every replica reads from one file";
        let (one, two) = (Desk::from_secret(secret).unwrap(), Desk::from_secret(secret).unwrap());
        let token = one.csrf("tg_cookie");
        assert!(two.csrf_matches("tg_cookie", &token));
        assert!(!Desk::new().csrf_matches("tg_cookie", &token));
        assert!(!Desk::from_secret(b"another secret of enough bytes").unwrap().csrf_matches("tg_cookie", &token));
        assert_eq!(Desk::from_secret(b"short").err(), Some(ShortSecret { len: 5 }));
    }

    #[test]
    fn only_desk_pages_are_followed_after_sign_in() {
        for good in ["/desk", "/desk/audit", "/desk/handoffs/h_1?x=1", "/desk?status=all"] {
            assert_eq!(desk_page(good), Some(good), "{good}");
        }
        for bad in [
            "//evil.example/desk",
            "https://evil.example/desk",
            "/deskx",
            "/desk/../v1",
            "/desk\\x",
            "",
            "/desk/sign-out",
        ] {
            assert_eq!(desk_page(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_post_from_another_origin_is_refused() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(same_origin(&headers(&[("host", "desk.test"), ("origin", "http://desk.test")])));
        assert!(same_origin(&headers(&[("host", "desk.test")])));
        assert!(!same_origin(&headers(&[("host", "desk.test"), ("origin", "http://evil.test")])));
        assert!(!same_origin(&headers(&[("host", "desk.test"), ("origin", "null")])));
        assert!(!same_origin(&headers(&[("host", "desk.test"), ("sec-fetch-site", "cross-site")])));
    }

    #[test]
    fn a_csrf_token_belongs_to_one_sign_in_under_one_key() {
        let desk = Desk::with_key([7; 32]);
        let token = desk.csrf("tg_ann");
        assert!(desk.csrf_matches("tg_ann", &token));
        assert!(!desk.csrf_matches("tg_bob", &token));
        assert!(!desk.csrf_matches("tg_ann", ""));
        assert!(!Desk::with_key([8; 32]).csrf_matches("tg_ann", &token));
    }
}
