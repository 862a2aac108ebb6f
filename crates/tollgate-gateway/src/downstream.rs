//! The gateway's clients, as upstreams reach them: progress goes to the
//! client whose request carried its token; logging and list changes go to
//! every connected client; a request an upstream makes (sampling,
//! elicitation, roots) goes to the client that most recently sent a request
//! (with a stdio client, the only one).

#![expect(
    deprecated,
    reason = "logging, sampling, elicitation, roots and resource subscriptions are deprecated by the newest \
              protocol; older clients and servers use them, and the gateway relays them as they are"
)]

use rmcp::RoleServer;
use rmcp::model::{
    ErrorData, LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken,
    ResourceUpdatedNotificationParam,
};
use rmcp::service::Peer;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Most clients kept for notifications; the oldest is dropped beyond.
const PEERS_MAX: usize = 1_024;

/// Which list changed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Changed {
    Tools,
    Prompts,
    Resources,
}

/// An upstream's name and a progress token it reports under.
type UpstreamToken = (String, ProgressToken);
/// The client that asked and the progress token it gave.
type ClientToken = (Peer<RoleServer>, ProgressToken);

#[derive(Default)]
pub(crate) struct Downstream {
    peers: Mutex<Vec<Peer<RoleServer>>>,
    active: Mutex<Option<Peer<RoleServer>>>,
    progress: Mutex<HashMap<UpstreamToken, ClientToken>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Downstream {
    /// A client that completed `initialize`: it hears notifications.
    pub(crate) fn connected(&self, peer: &Peer<RoleServer>) {
        let mut peers = lock(&self.peers);
        peers.retain(|p| !p.is_transport_closed());
        if peers.len() >= PEERS_MAX {
            peers.remove(0);
        }
        peers.push(peer.clone());
    }

    /// A client sent a request: an upstream's own requests go to it.
    pub(crate) fn request(&self, peer: &Peer<RoleServer>) {
        *lock(&self.active) = Some(peer.clone());
    }

    /// Progress `upstream` reports under `upstream_token` goes to `peer`
    /// under `token`, until [`Downstream::progress_done`].
    pub(crate) fn relay_progress(
        &self,
        upstream: &str,
        upstream_token: &ProgressToken,
        peer: &Peer<RoleServer>,
        token: &ProgressToken,
    ) {
        lock(&self.progress).insert((upstream.to_owned(), upstream_token.clone()), (peer.clone(), token.clone()));
    }

    pub(crate) fn progress_done(&self, upstream: &str, upstream_token: &ProgressToken) {
        lock(&self.progress).remove(&(upstream.to_owned(), upstream_token.clone()));
    }

    /// The client an upstream's own request goes to.
    pub(crate) fn active(&self, upstream: &str) -> Result<Peer<RoleServer>, ErrorData> {
        lock(&self.active).clone().filter(|peer| !peer.is_transport_closed()).ok_or_else(|| {
            ErrorData::internal_error(format!("upstream {upstream} asked a client, and no client is connected"), None)
        })
    }

    fn everyone(&self) -> Vec<Peer<RoleServer>> {
        let mut peers = lock(&self.peers).clone();
        if peers.is_empty()
            && let Some(active) = lock(&self.active).clone()
        {
            peers.push(active);
        }
        peers.retain(|p| !p.is_transport_closed());
        peers
    }

    pub(crate) async fn progress(&self, upstream: &str, mut params: ProgressNotificationParam) {
        let relay = lock(&self.progress).get(&(upstream.to_owned(), params.progress_token.clone())).cloned();
        if let Some((peer, token)) = relay {
            params.progress_token = token;
            let _ = peer.notify_progress(params).await;
        }
    }

    pub(crate) async fn logging(&self, params: LoggingMessageNotificationParam) {
        for peer in self.everyone() {
            let _ = peer.notify_logging_message(params.clone()).await;
        }
    }

    pub(crate) async fn resource_updated(&self, params: ResourceUpdatedNotificationParam) {
        for peer in self.everyone() {
            let _ = peer.notify_resource_updated(params.clone()).await;
        }
    }

    pub(crate) async fn list_changed(&self, changed: Changed) {
        for peer in self.everyone() {
            let _ = match changed {
                Changed::Tools => peer.notify_tool_list_changed().await,
                Changed::Prompts => peer.notify_prompt_list_changed().await,
                Changed::Resources => peer.notify_resource_list_changed().await,
            };
        }
    }
}
