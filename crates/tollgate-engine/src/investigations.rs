//! Investigations: a parent session opens one child session per concern of
//! a multi-concern request; the children run concurrently as ordinary
//! sessions and are joined. Opening, concluding and joining go through the
//! group commit like decisions, journaled and audited.
//!
//! The case (a parent and its investigations) is serialised on the
//! parent's row: a child's job locks its parent too (see `commit_group`),
//! so a decision reads its siblings' aggregates while none can change, and
//! journals the totals it decided with.

use crate::calls::over_text_limit;
use crate::error::Conflict;
use crate::journal::{Concluded, InvestigationOpened, InvestigationsOpened, Kind, OpenedConcern, Record, join_key};
use crate::sessions::{Cached, Loaded, append, cached, load_stored};
use crate::{Engine, Error, check_id};
use std::collections::HashMap;
use tollgate_core::{Case, Event, Opened, SessionState, Workflow, apply};
use tollgate_store::{NewSession, SessionInfo, SessionTx};

/// One concern of a multi-concern request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Concern {
    /// The concern's id (letters, digits, `-`, `_`, `.`, no `:`): the child
    /// session is `{parent}:{id}`.
    pub id: String,
    /// The concern, in the agent's (or customer's) words.
    pub concern: String,
    /// The tools the investigation may call; `None`: every tool.
    pub tools: Option<Vec<String>>,
}

/// Concerns one opening may name at most: a request is split into a few
/// investigations, not thousands (each is a session, locked with its parent).
pub const CONCERNS_MAX: usize = 32;

/// An opened investigation: its concern id, its session and its concern.
pub type Investigation = Opened;

impl Engine {
    /// Checks an opening before it is queued (ids, texts, tools) and makes
    /// the child rows it needs.
    pub(crate) async fn prepare_opening(
        &self,
        tenant: Option<&str>,
        parent: &str,
        concerns: &[Concern],
    ) -> Result<(), Error> {
        check_id("session", parent)?;
        let info = self
            .store
            .session(parent)
            .await?
            .filter(|info| tenant.is_none_or(|tenant| info.tenant == tenant))
            .ok_or_else(|| Error::no_session(parent))?;
        if info.parent_id.is_some() {
            return Err(Error::bad_request(format!(
                "session {parent} is an investigation itself; investigations are not nested"
            )));
        }
        let workflow = self.workflow(&info.workflow_hash).await?;
        if concerns.is_empty() || concerns.len() > CONCERNS_MAX {
            return Err(Error::bad_request(format!(
                "an opening names 1 to {CONCERNS_MAX} concerns, not {}",
                concerns.len()
            )));
        }
        for (index, concern) in concerns.iter().enumerate() {
            if concerns.iter().take(index).any(|earlier| earlier.id == concern.id) {
                return Err(Error::bad_request(format!("concern id {} is given twice", concern.id)));
            }
            if concern.id.contains(':') {
                return Err(Error::bad_request(format!("concern id {:?} contains ':'", concern.id)));
            }
            check_id("concern", &concern.id)?;
            check_id("session", &format!("{parent}:{}", concern.id))?;
            if concern.concern.trim().is_empty() {
                return Err(Error::bad_request(format!("concern {} has no text", concern.id)));
            }
            if let Some(message) = over_text_limit(&workflow, &format!("concern {}", concern.id), &concern.concern) {
                return Err(Error::bad_request(message));
            }
            for tool in concern.tools.iter().flatten() {
                if workflow.tool(tool).is_none() {
                    return Err(Error::bad_request(format!(
                        "concern {} names tool '{tool}', which workflow {} does not declare",
                        concern.id,
                        workflow.name()
                    )));
                }
            }
        }
        // The child rows exist before the commit that opens them; a crash in
        // between leaves a child with an empty journal, which opening again
        // completes.
        for concern in concerns {
            let child = format!("{parent}:{}", concern.id);
            if self.store.session(&child).await?.is_none() {
                self.store
                    .create_session(&NewSession {
                        id: child,
                        workflow_hash: info.workflow_hash.clone(),
                        workflow_name: info.workflow_name.clone(),
                        workflow_version: info.workflow_version,
                        parent_id: Some(parent.to_owned()),
                        created_ms: self.clock.now_ms(),
                        // An investigation belongs to its parent's tenant.
                        tenant: info.tenant.clone(),
                    })
                    .await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn open_in(
        &self,
        tx: &mut SessionTx,
        overlay: &mut HashMap<String, Cached>,
        parent: &str,
        concerns: &[Concern],
    ) -> Result<Vec<Investigation>, Error> {
        tx.lock(parent).await?;
        let Loaded { workflow, state: parent_state, info: parent_info, checkpoint_seq: parent_checkpoint } =
            self.load_locked(tx, parent, Some(&mut *overlay)).await?;
        let inherited = parent_state.identity_facts(&workflow);
        let mut all = Vec::with_capacity(concerns.len());
        let mut new = Vec::new();
        let mut refused = None;
        for concern in concerns {
            let session = format!("{parent}:{}", concern.id);
            match parent_state.investigations().iter().find(|o| o.concern_id == concern.id) {
                Some(known) if known.concern == concern.concern => all.push(known.clone()),
                Some(_) => {
                    refused = Some(format!("concern {} of session {parent} was opened with other text", concern.id));
                }
                None => {
                    let opened = Opened { concern_id: concern.id.clone(), session, concern: concern.concern.clone() };
                    all.push(opened.clone());
                    new.push((opened, concern.tools.clone()));
                }
            }
        }
        overlay.insert(parent.to_owned(), cached(&parent_info, parent_info.last_seq, parent_checkpoint, parent_state));
        if let Some(message) = refused {
            return Err(Conflict::State(message).into());
        }
        if new.is_empty() {
            return Ok(all);
        }
        let now = self.clock.now_ms();
        // Every child is checked before anything is appended: a refused
        // child must not leave its siblings opened without the parent's record.
        let mut children = Vec::with_capacity(new.len());
        let mut not_new = None;
        for (opened, _) in &new {
            let child = opened.session.as_str();
            tx.lock(child).await?;
            let loaded = self.load_locked(tx, child, Some(&mut *overlay)).await?;
            if loaded.info.parent_id.as_deref() != Some(parent) || loaded.state.concern().is_some() {
                not_new = Some(format!("session {child} is not a new investigation of {parent}"));
            }
            children.push(loaded);
        }
        if let Some(message) = not_new {
            for (Loaded { state, info, checkpoint_seq, .. }, (opened, _)) in children.into_iter().zip(&new) {
                overlay.insert(opened.session.clone(), cached(&info, info.last_seq, checkpoint_seq, state));
            }
            return Err(Conflict::State(message).into());
        }
        for (Loaded { mut state, info, checkpoint_seq, .. }, (opened, tools)) in children.into_iter().zip(&new) {
            let child = opened.session.as_str();
            tx.lock(child).await?;
            apply(
                &workflow,
                &mut state,
                Event::InvestigationOpened { concern: &opened.concern, tools: tools.as_deref(), inherited: &inherited },
            );
            let record = Record::Opened(InvestigationOpened {
                concern: opened.concern.clone(),
                concern_id: opened.concern_id.clone(),
                inherited: inherited.clone(),
                parent: parent.to_owned(),
                tools: tools.clone(),
            });
            let seq = append(tx, child, &record, now, None).await?;
            overlay.insert(child.to_owned(), cached(&info, seq, checkpoint_seq, state));
        }
        tx.lock(parent).await?;
        let Loaded { mut state, info, checkpoint_seq, .. } = self.load_locked(tx, parent, Some(&mut *overlay)).await?;
        let opened: Vec<Opened> = new.iter().map(|(o, _)| o.clone()).collect();
        apply(&workflow, &mut state, Event::InvestigationsOpened { opened: &opened });
        let record = Record::Investigations(InvestigationsOpened {
            opened: new
                .iter()
                .map(|(o, tools)| OpenedConcern {
                    concern: o.concern.clone(),
                    concern_id: o.concern_id.clone(),
                    session: o.session.clone(),
                    tools: tools.clone(),
                })
                .collect(),
        });
        let seq = append(tx, parent, &record, now, None).await?;
        overlay.insert(parent.to_owned(), cached(&info, seq, checkpoint_seq, state));
        Ok(all)
    }

    pub(crate) async fn conclude_in(
        &self,
        tx: &mut SessionTx,
        overlay: &mut HashMap<String, Cached>,
        session: &str,
        outcome: &str,
    ) -> Result<(), Error> {
        tx.lock(session).await?;
        let Loaded { workflow, mut state, info, checkpoint_seq } =
            self.load_locked(tx, session, Some(&mut *overlay)).await?;
        let refused = if state.concern().is_none() {
            Some(Error::bad_request(format!("session {session} is not an investigation")))
        } else if state.ending().is_some() {
            Some(Conflict::State(format!("investigation {session} has ended already")).into())
        } else if outcome.trim().is_empty() {
            Some(Error::bad_request(format!("investigation {session} needs an outcome to conclude")))
        } else {
            over_text_limit(&workflow, &format!("the outcome of investigation {session}"), outcome)
                .map(Error::bad_request)
        };
        if let Some(error) = refused {
            overlay.insert(session.to_owned(), cached(&info, info.last_seq, checkpoint_seq, state));
            return Err(error);
        }
        apply(&workflow, &mut state, Event::Concluded { outcome });
        let record = Record::Concluded(Concluded { outcome: outcome.to_owned() });
        let seq = append(tx, session, &record, self.clock.now_ms(), None).await?;
        overlay.insert(session.to_owned(), cached(&info, seq, checkpoint_seq, state));
        Ok(())
    }

    pub(crate) async fn join_in(
        &self,
        tx: &mut SessionTx,
        overlay: &mut HashMap<String, Cached>,
        parent: &str,
    ) -> Result<tollgate_core::Join, Error> {
        tx.lock(parent).await?;
        let Loaded { workflow, state, info, checkpoint_seq } =
            self.load_locked(tx, parent, Some(&mut *overlay)).await?;
        if state.investigations().is_empty() {
            overlay.insert(parent.to_owned(), cached(&info, info.last_seq, checkpoint_seq, state));
            return Err(Error::bad_request(format!("session {parent} has no investigations to join")));
        }
        let mut children = Vec::with_capacity(state.investigations().len());
        for opened in state.investigations() {
            children.push(self.load_other(tx, overlay, &workflow, &opened.session).await?);
        }
        let pairs: Vec<(&Opened, &SessionState)> = state.investigations().iter().zip(&children).collect();
        let joined = tollgate_core::join(&workflow, &state, &pairs);
        let join = match joined {
            Ok(join) => join,
            Err(running) => {
                overlay.insert(parent.to_owned(), cached(&info, info.last_seq, checkpoint_seq, state));
                return Err(Conflict::Running { parent: parent.to_owned(), running }.into());
            }
        };
        let record = Record::Joined(tollgate_protocol::join_json(&join));
        // Journaled once per set of investigations: ended investigations do
        // not change, and none is ever removed, so the join of the first n
        // is always the same. Joining again (a resumed caller, a retry)
        // gives it back without a second record.
        let key = join_key(state.investigations().len());
        if tx.find_call(parent, &key, Kind::Joined.as_str()).await?.is_some_and(|earlier| earlier.body == record.body())
        {
            overlay.insert(parent.to_owned(), cached(&info, info.last_seq, checkpoint_seq, state));
            return Ok(join);
        }
        let seq = append(tx, parent, &record, self.clock.now_ms(), None).await?;
        overlay.insert(parent.to_owned(), cached(&info, seq, checkpoint_seq, state));
        Ok(join)
    }

    /// The case a session's decision is made in: for an investigation, the
    /// aggregates of its parent and siblings; for a parent, those of its
    /// investigations and which still run. Read under the parent's lock.
    pub(crate) async fn case_of(
        &self,
        tx: &mut SessionTx,
        overlay: &mut HashMap<String, Cached>,
        workflow: &Workflow,
        info: &SessionInfo,
        state: &SessionState,
    ) -> Result<Case, Error> {
        if let Some(parent) = &info.parent_id {
            // Locked with the group already when the ids follow the
            // `{parent}:{concern}` scheme; this is a no-op then.
            tx.lock_all(&[parent.as_str()]).await?;
            let parent_state = self.load_other(tx, overlay, workflow, parent).await?;
            let mut others = vec![];
            for sibling in parent_state.investigations().iter().filter(|o| o.session != info.id) {
                others.push(self.load_other(tx, overlay, workflow, &sibling.session).await?);
            }
            Ok(Case::from_sessions(workflow, std::iter::once(&parent_state).chain(&others), Vec::new()))
        } else if !state.investigations().is_empty() {
            let mut children = Vec::with_capacity(state.investigations().len());
            let mut running = Vec::new();
            for opened in state.investigations() {
                let child = self.load_other(tx, overlay, workflow, &opened.session).await?;
                if child.ending().is_none() {
                    running.push(opened.concern_id.clone());
                }
                children.push(child);
            }
            Ok(Case::from_sessions(workflow, &children, running))
        } else {
            Ok(Case::default())
        }
    }

    /// Another session of the case as this transaction sees it: the group's
    /// overlay if a job of the group wrote it, else the engine's cache if it
    /// is current, else checkpoint plus journal (appends of this transaction
    /// included). The session is locked first (its row tells whether the
    /// cache is current; the case is serialised on the parent's row, taken
    /// before any of its children's). Does not change the transaction's
    /// current session.
    async fn load_other(
        &self,
        tx: &mut SessionTx,
        overlay: &HashMap<String, Cached>,
        workflow: &Workflow,
        session: &str,
    ) -> Result<SessionState, Error> {
        if let Some(entry) = overlay.get(session) {
            return Ok(entry.state.clone());
        }
        tx.lock_all(&[session]).await?;
        if let Some(row) = tx.held(session) {
            let cache = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // INVARIANT: as for a session's own state, the cache is used only
            // while the stored journal (read under the lock) ends where it does.
            if let Some(entry) = cache.get(session).filter(|e| e.is_current(row)) {
                return Ok(entry.state.clone());
            }
        }
        Ok(load_stored(tx, workflow, session).await?.0)
    }
}
