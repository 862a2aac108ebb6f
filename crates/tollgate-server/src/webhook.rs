//! The webhook: each handoff event (opened, claimed, released, approved,
//! denied, resolved, expired) is POSTed as JSON to one URL, signed with
//! HMAC-SHA256, and retried with exponential backoff. Events wait in a
//! bounded queue: when it is full the event is dropped and counted (and
//! the count logged), so a slow receiver never holds up a decision.
//!
//! Plain HTTP only (no TLS stack in this crate): send it to a receiver on
//! the same host or network, or through a proxy that adds TLS.
//!
//! Each request carries `X-Tollgate-Event`, `X-Tollgate-Timestamp` (ms since
//! the Unix epoch) and `X-Tollgate-Signature: sha256=<hex>`, the HMAC-SHA256
//! under the shared secret of `<timestamp>.<body>`.

use crate::state::Announcer;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::json;
use sha2::Sha256;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc};
use tollgate_engine::Handoff;

/// Where and how handoff events are sent.
#[derive(Clone)]
pub struct WebhookConfig {
    host: String,
    port: u16,
    path: String,
    secret: Vec<u8>,
    /// Events that may wait; more are dropped.
    pub queue_max: usize,
    /// Attempts per event, the first included.
    pub attempts_max: u32,
    /// Wait before the first retry; doubled before each next one.
    pub backoff_first: Duration,
    /// Longest one attempt may take.
    pub attempt_timeout: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "WebhookConfig(http://{}:{}{})", self.host, self.port, self.path)
    }
}

/// Why a webhook cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not `http://host[:port][/path]`.
    #[error("the webhook URL must be http://host[:port][/path] (plain HTTP; put a TLS proxy in front): {0}")]
    Url(String),
    /// The secret is missing or too short.
    #[error("the webhook secret must be at least 16 bytes")]
    Secret,
    /// The secret file could not be read.
    #[error("reading the webhook secret from {path}: {source}")]
    SecretFile {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
}

impl WebhookConfig {
    /// Events to `url` signed with `secret`: a queue of 1,024, 6 attempts
    /// from 500 ms apart, 5 s each.
    pub fn new(url: &str, secret: &[u8]) -> Result<WebhookConfig, WebhookError> {
        if secret.len() < 16 {
            return Err(WebhookError::Secret);
        }
        let bad = || WebhookError::Url(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad())?),
            None => (authority, 80),
        };
        let fine = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '@' | '?' | '#'));
        if !fine(host) || !path.chars().all(|c| c.is_ascii_graphic()) {
            return Err(bad());
        }
        Ok(WebhookConfig {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
            secret: secret.to_vec(),
            queue_max: 1_024,
            attempts_max: 6,
            backoff_first: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(5),
        })
    }

    /// [`WebhookConfig::new`] with the secret read from a file (surrounding
    /// whitespace trimmed), so it is not on a command line.
    pub fn from_secret_file(url: &str, path: &Path) -> Result<WebhookConfig, WebhookError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| WebhookError::SecretFile { path: path.display().to_string(), source })?;
        WebhookConfig::new(url, text.trim().as_bytes())
    }
}

/// The signature of `body` sent at `timestamp_ms` under `secret`:
/// `sha256=` and the hex HMAC-SHA256 of `<timestamp_ms>.<body>`.
pub fn signature(secret: &[u8], timestamp_ms: i64, body: &[u8]) -> String {
    // INVARIANT: HMAC takes a key of any length, so this is never empty;
    // were it, no receiver would accept the event (it fails closed).
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

struct Delivery {
    event: String,
    body: Vec<u8>,
}

/// The running webhook: a queue and the task that sends it.
#[derive(Clone)]
pub struct Webhook {
    sender: mpsc::Sender<Delivery>,
    dropped: Arc<AtomicU64>,
    stop: Arc<Notify>,
    worker: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Webhook {
    /// Starts sending to `config`'s URL.
    pub fn start(config: WebhookConfig) -> Webhook {
        let (sender, receiver) = mpsc::channel(config.queue_max.max(1));
        let stop = Arc::new(Notify::new());
        let worker = tokio::spawn(work(config, receiver, Arc::clone(&stop)));
        Webhook { sender, dropped: Arc::new(AtomicU64::new(0)), stop, worker: Arc::new(Mutex::new(Some(worker))) }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Sends what is queued (for at most `drain`), then stops.
    pub async fn stop(&self, drain: Duration) {
        self.stop.notify_one();
        let worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(mut worker) = worker
            && tokio::time::timeout(drain, &mut worker).await.is_err()
        {
            worker.abort();
            eprintln!("tollgate serve: webhook events still queued at shutdown were not sent");
        }
    }
}

impl Announcer for Webhook {
    fn announce(&self, event: &str, handoff: &Handoff) {
        let body = json!({
            "event": event,
            "sent_ms": now_ms(),
            "handoff": crate::api::handoff_view(handoff.clone()),
        });
        let delivery = Delivery { event: event.to_owned(), body: body.to_string().into_bytes() };
        if self.sender.try_send(delivery).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            eprintln!("tollgate serve: webhook queue full or stopped: {event} dropped ({dropped} dropped so far)");
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn work(config: WebhookConfig, mut receiver: mpsc::Receiver<Delivery>, stop: Arc<Notify>) {
    loop {
        tokio::select! {
            delivery = receiver.recv() => match delivery {
                Some(delivery) => deliver(&config, &delivery).await,
                None => return,
            },
            () = stop.notified() => {
                while let Ok(delivery) = receiver.try_recv() {
                    deliver(&config, &delivery).await;
                }
                return;
            }
        }
    }
}

/// Sends one event, retrying with backoff until a 2xx or the attempts run out.
async fn deliver(config: &WebhookConfig, delivery: &Delivery) {
    let mut backoff = config.backoff_first;
    for attempt in 1..=config.attempts_max.max(1) {
        match tokio::time::timeout(config.attempt_timeout, post(config, delivery)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => return,
            Ok(Ok(status)) => {
                eprintln!("tollgate serve: webhook answered {status} to {} (attempt {attempt})", delivery.event)
            }
            Ok(Err(error)) => {
                eprintln!("tollgate serve: webhook failed for {} (attempt {attempt}): {error}", delivery.event)
            }
            Err(_) => eprintln!("tollgate serve: webhook timed out for {} (attempt {attempt})", delivery.event),
        }
        if attempt < config.attempts_max {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    eprintln!("tollgate serve: webhook gave up on {} after {} attempts", delivery.event, config.attempts_max);
}

/// One POST over a fresh connection; the status it got.
async fn post(config: &WebhookConfig, delivery: &Delivery) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect((config.host.as_str(), config.port)).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);
    let timestamp = now_ms();
    let request = hyper::Request::post(config.path.as_str())
        .header(hyper::header::HOST, format!("{}:{}", config.host, config.port))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("x-tollgate-event", delivery.event.as_str())
        .header("x-tollgate-timestamp", timestamp.to_string())
        .header("x-tollgate-signature", signature(&config.secret, timestamp, &delivery.body))
        .body(Full::new(Bytes::from(delivery.body.clone())))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    // Read the answer through, so the connection closes cleanly.
    let _ = response.into_body().collect().await;
    connection.abort();
    Ok(status)
}
