//! The engine as one tenant's caller sees it: the same calls, each refusing
//! another tenant's sessions and handoffs as if they did not exist. A
//! surface that serves several tenants (the HTTP API) calls the engine only
//! through this view.

use crate::calls::{CallDecision, Recorded};
use crate::handoffs::{Handoff, HandoffFilter};
use crate::investigations::{Concern, Investigation};
use crate::journal::Entry;
use crate::sessions::{Resume, SessionInfo};
use crate::{AuditProblem, AuditRecord, AuditReport, Engine, Error, WorkflowHandle};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tollgate_core::human::HumanAction;
use tollgate_core::{SessionState, ToolCall, ToolOutcome, Workflow};

/// Most audit records one [`Tenant::audit_records`] call reads from the
/// global chain looking for the tenant's (the page ends there; its
/// `next_after` says where to go on).
pub const AUDIT_SCAN_MAX: i64 = 10_000;

/// A page of one tenant's audit records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPage {
    /// The tenant's records, in the global chain's order.
    pub records: Vec<AuditRecord>,
    /// The global position read up to: ask again with `after` = this for the
    /// next page. Equal to the `after` asked with when nothing is left.
    pub next_after: i64,
}

/// The engine, for one tenant's caller.
#[derive(Clone, Copy)]
pub struct Tenant<'e> {
    engine: &'e Engine,
    tenant: &'e str,
}

impl Engine {
    /// The engine as `tenant`'s caller sees it.
    pub fn for_tenant<'e>(&'e self, tenant: &'e str) -> Tenant<'e> {
        Tenant { engine: self, tenant }
    }
}

impl Tenant<'_> {
    /// The tenant.
    pub fn name(&self) -> &str {
        self.tenant
    }

    /// The session `id` if it is this tenant's, else "no session".
    async fn own(&self, id: &str) -> Result<SessionInfo, Error> {
        self.engine.session(id).await?.filter(|s| s.tenant == self.tenant).ok_or_else(|| Error::no_session(id))
    }

    /// [`Engine::create_session_for`] this tenant.
    pub async fn create_session(
        &self,
        workflow: &WorkflowHandle,
        id: &str,
        parent: Option<&str>,
    ) -> Result<SessionInfo, Error> {
        self.engine.create_session_for(self.tenant, workflow, id, parent).await
    }

    /// [`Engine::session`], this tenant's only.
    pub async fn session(&self, id: &str) -> Result<Option<SessionInfo>, Error> {
        Ok(self.engine.session(id).await?.filter(|s| s.tenant == self.tenant))
    }

    /// [`Engine::journal`] of this tenant's session.
    pub async fn journal(&self, id: &str) -> Result<Vec<Entry>, Error> {
        self.own(id).await?;
        self.engine.journal(id).await
    }

    /// [`Engine::journal_page`] of this tenant's session.
    pub async fn journal_page(&self, id: &str, after: i64, limit: i64) -> Result<Vec<Entry>, Error> {
        self.own(id).await?;
        self.engine.journal_page(id, after, limit).await
    }

    /// [`Engine::state`] of this tenant's session.
    pub async fn state(&self, id: &str) -> Result<(Arc<Workflow>, SessionState), Error> {
        self.own(id).await?;
        self.engine.state(id).await
    }

    /// [`Engine::resume`] of this tenant's session.
    pub async fn resume(&self, id: &str) -> Result<Resume, Error> {
        self.own(id).await?;
        self.engine.resume(id).await
    }

    /// [`Engine::decide`] on this tenant's session.
    pub async fn decide(&self, session: &str, call: &ToolCall) -> Result<CallDecision, Error> {
        self.engine.decide_as(Some(self.tenant), session, call).await
    }

    /// [`Engine::record_result`] on this tenant's session.
    pub async fn record_result(
        &self,
        session: &str,
        call_id: &str,
        result: &Json,
        outcome: ToolOutcome,
    ) -> Result<Recorded, Error> {
        self.engine.record_result_as(Some(self.tenant), session, call_id, result, outcome).await
    }

    /// [`Engine::record_and_decide`] on this tenant's session.
    pub async fn record_and_decide(
        &self,
        session: &str,
        call_id: &str,
        result: &Json,
        outcome: ToolOutcome,
        next: &ToolCall,
    ) -> Result<(Recorded, CallDecision), Error> {
        self.engine.record_and_decide_as(Some(self.tenant), session, call_id, result, outcome, next).await
    }

    /// [`Engine::open_investigations`] of this tenant's session.
    pub async fn open_investigations(&self, parent: &str, concerns: &[Concern]) -> Result<Vec<Investigation>, Error> {
        self.engine.open_investigations_as(Some(self.tenant), parent, concerns).await
    }

    /// [`Engine::conclude`] this tenant's investigation.
    pub async fn conclude(&self, session: &str, outcome: &str) -> Result<(), Error> {
        self.engine.conclude_as(Some(self.tenant), session, outcome).await
    }

    /// [`Engine::join`] this tenant's session's investigations.
    pub async fn join(&self, parent: &str) -> Result<tollgate_core::Join, Error> {
        self.engine.join_as(Some(self.tenant), parent).await
    }

    /// This tenant's handoffs ([`Engine::handoffs`]).
    pub async fn handoffs(&self, filter: &HandoffFilter) -> Result<Vec<Handoff>, Error> {
        self.engine.handoffs(self.tenant, filter).await
    }

    /// One of this tenant's handoffs.
    pub async fn handoff(&self, id: &str) -> Result<Option<Handoff>, Error> {
        Ok(self.engine.handoff(id).await?.filter(|h| h.tenant == self.tenant))
    }

    /// [`Engine::act`] on one of this tenant's handoffs.
    pub async fn act(&self, id: &str, action: HumanAction) -> Result<Handoff, Error> {
        self.engine.act_as(Some(self.tenant), id, action).await
    }

    /// [`Engine::wait_for_handoff`] on one of this tenant's handoffs.
    pub async fn wait_for_handoff(&self, id: &str, timeout: Duration, poll: Duration) -> Result<Handoff, Error> {
        if self.handoff(id).await?.is_none() {
            return Err(Error::NotFound { what: crate::Missing::Handoff, id: id.to_owned() });
        }
        self.engine.wait_for_handoff(id, timeout, poll).await
    }

    /// Up to `limit` (1 to 1,000) of this tenant's audit records after
    /// global position `after`, in order, reading at most
    /// [`AUDIT_SCAN_MAX`] records of the global chain.
    pub async fn audit_records(&self, after: i64, limit: i64) -> Result<AuditPage, Error> {
        let limit = limit.clamp(1, 1_000);
        let usize_limit = usize::try_from(limit).unwrap_or(1_000);
        let mut ours: HashMap<String, bool> = HashMap::new();
        let mut page = AuditPage { records: Vec::new(), next_after: after.max(0) };
        let mut scanned = 0;
        while page.records.len() < usize_limit && scanned < AUDIT_SCAN_MAX {
            let batch = self.engine.audit_records(page.next_after, limit.min(AUDIT_SCAN_MAX - scanned)).await?;
            if batch.is_empty() {
                break;
            }
            for record in batch {
                scanned += 1;
                page.next_after = record.seq;
                let mine = match ours.get(&record.session_id) {
                    Some(mine) => *mine,
                    None => {
                        let mine = self.session(&record.session_id).await?.is_some();
                        ours.insert(record.session_id.clone(), mine);
                        mine
                    }
                };
                if mine {
                    page.records.push(record);
                    if page.records.len() == usize_limit {
                        break;
                    }
                }
            }
        }
        Ok(page)
    }

    /// [`Engine::verify_audit`] as this tenant may see it: the whole log is
    /// checked (the chains are global), but a break outside this tenant's
    /// sessions is reported by its position only.
    pub async fn verify_audit(&self) -> Result<AuditReport, Error> {
        let mut report = self.engine.verify_audit().await?;
        if let Some(problem) = report.problem.take() {
            let mine = match &problem.session_id {
                Some(session) => self.session(session).await?.is_some(),
                None => false,
            };
            report.problem = Some(if mine {
                problem
            } else {
                AuditProblem {
                    seq: problem.seq,
                    session_id: None,
                    message: format!("the audit log's chain breaks at record {}", problem.seq),
                }
            });
        }
        Ok(report)
    }
}
