//! The human half of an escalation, in the core: an escalated call opens a
//! handoff; while it waits the same call is blocked (no second handoff);
//! claims are exclusive and deciding needs the claim; an approval lets the
//! identical call through once and only before it expires; other arguments,
//! a used approval or an expired one are not covered, and the decision says
//! so; a denial blocks with the reviewer's reason; the state round-trips
//! through a checkpoint; a handoff tool declared to run goes through with
//! its handoff.

use serde_json::json;
use tollgate_core::human::{HandoffStatus, HumanAction};
use tollgate_core::{
    CallId, Decision, Effect, Event, SessionState, ToolCall, ToolOutcome, Verdict, Workflow, apply, compile, decide,
};

const REFERENCE: &str = include_str!("../../../../examples/support-refunds.toml");
/// Session clock of the tests: 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const MINUTE: i64 = 60_000;

fn reference() -> Workflow {
    compile(REFERENCE, "support-refunds.toml").unwrap_or_else(|p| panic!("{p:?}"))
}

struct Session<'w> {
    workflow: &'w Workflow,
    state: SessionState,
}

impl<'w> Session<'w> {
    /// A verified customer with one delivered order of $5,000.
    fn verified(workflow: &'w Workflow) -> Session<'w> {
        let mut session = Session { workflow, state: SessionState::new(workflow) };
        session.call("v", "get_customer", json!({"email": "alice@example.com", "zip": "94107"}), T0);
        session.result("v", json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"}));
        session.call("o", "lookup_order", json!({"order_id": "#W1"}), T0);
        session.result("o", json!({"order_id": "#W1", "customer_id": "c_42", "total": 5000.0, "status": "delivered"}));
        session
    }

    fn call(&mut self, id: &str, tool: &str, args: serde_json::Value, now_ms: i64) -> Decision {
        let call = ToolCall::new(id, tool, args).at(now_ms);
        let decision = decide(self.workflow, &self.state, &call);
        apply(self.workflow, &mut self.state, Event::Decided { call: &call, decision: &decision });
        decision
    }

    fn refund(&mut self, id: &str, amount: f64, now_ms: i64) -> Decision {
        self.call(id, "process_refund", json!({"order_id": "#W1", "amount": amount}), now_ms)
    }

    fn result(&mut self, id: &str, result: serde_json::Value) {
        let call = CallId::new(id);
        let event = Event::ResultRecorded { call: &call, result: &result, outcome: ToolOutcome::Succeeded };
        apply(self.workflow, &mut self.state, event);
    }

    fn act(&mut self, call: &str, action: HumanAction, now_ms: i64) -> Vec<Effect> {
        let call = CallId::new(call);
        apply(self.workflow, &mut self.state, Event::Human { call: &call, action: &action, now_ms })
    }

    fn status(&self, call: &str) -> HandoffStatus {
        self.state.handoff(&CallId::new(call)).map(|h| h.status.clone()).unwrap_or_else(|| panic!("no handoff {call}"))
    }
}

fn rule_ids(decision: &Decision) -> Vec<&str> {
    decision.rule_ids()
}

fn claim(who: &str) -> HumanAction {
    HumanAction::Claim { reviewer: who.into() }
}

fn approve(who: &str, expires_ms: i64) -> HumanAction {
    HumanAction::Approve { reviewer: who.into(), expires_ms }
}

#[test]
fn an_approval_lets_the_identical_call_through_once_and_no_more() {
    let workflow = reference();
    let mut session = Session::verified(&workflow);
    assert_eq!(session.refund("r1", 800.0, T0).verdict(), Verdict::Escalate);
    assert_eq!(session.status("r1"), HandoffStatus::Open);

    // Waiting for a person, the same call is blocked, not escalated again.
    let again = session.refund("r2", 800.0, T0 + MINUTE);
    assert_eq!(rule_ids(&again), ["tollgate.handoff.waiting"], "{again:?}");
    assert_eq!(session.state.handoffs().len(), 1, "no second handoff");

    // Deciding needs the claim; a claim is exclusive.
    let refused = session.act("r1", approve("ann", T0 + 60 * MINUTE), T0 + MINUTE);
    assert!(matches!(&refused[..], [Effect::HandoffUnchanged { reason, .. }] if reason.contains("claim")));
    session.act("r1", claim("ann"), T0 + MINUTE);
    let taken = session.act("r1", claim("bob"), T0 + MINUTE);
    assert!(matches!(&taken[..], [Effect::HandoffUnchanged { reason, .. }] if reason.contains("claimed by ann")));
    let stale = session.act("r1", approve("bob", T0 + 60 * MINUTE), T0 + MINUTE);
    assert!(matches!(&stale[..], [Effect::HandoffUnchanged { .. }]), "{stale:?}");
    session.act("r1", approve("ann", T0 + 60 * MINUTE), T0 + 2 * MINUTE);
    assert!(matches!(session.status("r1"), HandoffStatus::Approved { consumed: false, .. }));

    // Other arguments are not covered, and the decision says so.
    let other = session.refund("r3", 801.0, T0 + 3 * MINUTE);
    assert_eq!(other.verdict(), Verdict::Escalate);
    assert!(rule_ids(&other).contains(&"tollgate.handoff.not_covered"), "{other:?}");

    // The identical call runs once, on the approval.
    let approved = session.refund("r4", 800.0, T0 + 4 * MINUTE);
    let Decision::Allow(allowed) = &approved else { panic!("{approved:?}") };
    assert_eq!(allowed.approved_by, Some(CallId::new("r1")));
    assert!(allowed.idempotency_key.is_some(), "a side effect keeps its key");
    assert!(matches!(session.status("r1"), HandoffStatus::Approved { consumed: true, .. }));

    // Once: the next identical call needs a person again.
    let second = session.refund("r5", 800.0, T0 + 5 * MINUTE);
    assert_eq!(second.verdict(), Verdict::Escalate);
    assert!(rule_ids(&second).contains(&"tollgate.handoff.not_covered"), "{second:?}");
}

#[test]
fn an_expired_approval_covers_nothing_and_a_denial_blocks_with_its_reason() {
    let workflow = reference();
    let mut session = Session::verified(&workflow);
    session.refund("r1", 800.0, T0);
    session.act("r1", claim("ann"), T0);
    session.act("r1", approve("ann", T0 + 10 * MINUTE), T0);
    let late = session.refund("r2", 800.0, T0 + 11 * MINUTE);
    assert_eq!(late.verdict(), Verdict::Escalate, "{late:?}");
    let note = late.reasons().iter().find(|r| r.rule_id == "tollgate.handoff.not_covered").map(|r| &r.message);
    assert!(note.is_some_and(|m| m.contains("expired")), "{late:?}");

    // The new handoff (of r2) is denied: the same call is blocked with the reason.
    session.act("r2", claim("bob"), T0 + 12 * MINUTE);
    session.act("r2", HumanAction::Deny { reviewer: "bob".into(), reason: "duplicate claim".into() }, T0 + 12 * MINUTE);
    let denied = session.refund("r3", 800.0, T0 + 13 * MINUTE);
    assert_eq!(rule_ids(&denied), ["tollgate.handoff.denied"]);
    assert!(
        denied.reasons()[0].message.contains("bob denied this call")
            && denied.reasons()[0].message.contains("duplicate claim")
    );
    // An ended handoff takes no more actions.
    let after = session.act("r2", claim("ann"), T0 + 14 * MINUTE);
    assert!(matches!(&after[..], [Effect::HandoffUnchanged { reason, .. }] if reason.contains("denied")));
    // An approval that ends before it is given is refused.
    session.refund("r9", 700.0, T0 + 15 * MINUTE);
    session.act("r9", claim("ann"), T0 + 15 * MINUTE);
    let backwards = session.act("r9", approve("ann", T0 + 15 * MINUTE), T0 + 15 * MINUTE);
    assert!(matches!(&backwards[..], [Effect::HandoffUnchanged { .. }]));
}

#[test]
fn a_handoff_left_waiting_past_its_expiry_no_longer_holds_the_call() {
    let workflow = reference();
    let mut session = Session::verified(&workflow);
    session.refund("r1", 800.0, T0);
    let day = 24 * 60 * MINUTE;
    assert_eq!(rule_ids(&session.refund("r2", 800.0, T0 + day)), ["tollgate.handoff.waiting"]);
    let later = session.refund("r3", 800.0, T0 + day + 1);
    assert_eq!(later.verdict(), Verdict::Escalate, "{later:?}");
    // The clock's expiry of a waiting handoff; a decided one does not expire.
    session.act("r1", HumanAction::Expire, T0 + day + 2);
    assert_eq!(session.status("r1"), HandoffStatus::Expired);
}

#[test]
fn handoffs_survive_a_checkpoint_exactly() {
    let workflow = reference();
    let mut session = Session::verified(&workflow);
    session.refund("r1", 800.0, T0);
    session.refund("r2", 900.0, T0);
    session.act("r1", claim("ann"), T0);
    session.act("r1", approve("ann", T0 + MINUTE), T0);
    session.act("r2", claim("bob"), T0);
    session.act("r2", HumanAction::Resolve { reviewer: "bob".into(), note: "refunded by bank transfer".into() }, T0);
    let restored = SessionState::from_checkpoint(&workflow, &session.state.to_checkpoint(&workflow)).unwrap();
    assert_eq!(restored, session.state);
    assert_eq!(restored.handoffs().len(), 2);
    let resolved = Session { workflow: &workflow, state: restored }.refund("r3", 900.0, T0 + 1).clone();
    assert_eq!(rule_ids(&resolved), ["tollgate.handoff.resolved"]);
}

#[test]
fn a_handoff_tool_declared_to_run_goes_through_with_its_handoff() {
    let runs = REFERENCE.replace(
        "[handoff]\ntool = \"escalate_to_human\"",
        "[handoff]\ntool = \"escalate_to_human\"\ntool_runs = true",
    );
    assert_ne!(runs, REFERENCE);
    let workflow = compile(&runs, "runs.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let mut session = Session::verified(&workflow);
    let args = json!({"customer_id": "c_42", "conversation_summary": "wants a manager", "root_cause": "r",
                      "recommended_action": "call back", "urgency": "high"});
    let decision = session.call("h1", "escalate_to_human", args, T0);
    let Decision::Allow(allowed) = &decision else { panic!("{decision:?}") };
    assert!(allowed.handoff.as_ref().is_some_and(|h| h.customer_id.as_deref() == Some("c_42")));
    assert_eq!(session.status("h1"), HandoffStatus::Open);
    // Incomplete, it is blocked as before, and nothing is queued.
    let incomplete = session.call("h2", "escalate_to_human", json!({"customer_id": "c_42"}), T0);
    assert_eq!(incomplete.verdict(), Verdict::Block);
    assert_eq!(session.state.handoffs().len(), 1);
    // Without the declaration the call is escalated (and its handoff opened).
    let workflow = reference();
    let mut plain = Session::verified(&workflow);
    let args = json!({"customer_id": "c_42", "conversation_summary": "s", "root_cause": "r",
                      "recommended_action": "a", "urgency": "high"});
    assert_eq!(plain.call("h1", "escalate_to_human", args, T0).verdict(), Verdict::Escalate);
}
