//! The refund workflow in Dogwood 1.1: Cedar plus past-time temporal rules, with a stateful
//! authorizer.
//!
//! Dogwood is used the way it is designed: the session's earlier tool calls are events in the
//! authorizer's history, and the temporal rules look back over them. Nothing about the session is
//! passed in with the refund request, which carries only the tool's own arguments (`order_id`,
//! `amount`). The shared rule body, the `refundable()` macro of [`POLICIES`], says:
//!
//! - some `get_customer` call returned `verified: true` for a customer `c`;
//! - a `lookup_order` of this very order returned owner `c` and a total `tot`;
//! - the amounts of the `process_refund` calls that went through for this order (their `response`
//!   events) sum to `done` (an empty sum is 0), and `done + amount <= tot`.
//!
//! The sum is Dogwood's own `sum … for … where formerly …` aggregate over the history. Comparing
//! it with `tot - amount` needs `+` in a temporal comparison, which Dogwood 1.1 gates behind its
//! `experimental-arithmetic` Cargo feature; this crate turns that feature on (without it, the
//! fallback would be to pass the remaining amount in the request context).
//!
//! Escalation is a second `permit` rule, annotated `@escalate`, with the same temporal body and the
//! Cedar condition `amount > 50000` in place of `amount <= 50000`. The two cannot both hold, so an
//! `Allow` whose reason is the escalate rule is [`Verdict::Escalate`], any other `Allow` is
//! [`Verdict::Allow`], and `Deny` is [`Verdict::Block`].
//!
//! ## One session per decision
//!
//! [`DogwoodRefund::decide`] decides each [`RefundRequest`] as its own session: it starts a fresh
//! history, feeds the session's earlier tool results as `response` (history-only) events — the
//! customer verification (a failed one when no customer is verified), the order lookup, and the
//! earlier refund on this order when `refunded_cents > 0` — and then the `process_refund` `request`
//! event, whose response is the verdict. Building and ingesting those events is part of the
//! measured decision, as building entities and context is for Cedar; lowering and validating the
//! policies happen once, in [`DogwoodRefund::new`].
//!
//! A fresh history per session comes from `SessionHistory`, a private, thin [`TemporalEngine`] around
//! Dogwood's own [`InMemoryTemporalEngine`] that swaps in a newly prepared engine when a session
//! starts. (An `Authorizer` cannot be cloned and is built from a `LoweredPolicySet`, which cannot be
//! cloned either, so the alternative, a new authorizer per session, would re-lower the policies
//! every time.) Dogwood's own answer for many sessions in one authorizer, a `sessionId` pin with
//! `partition_temporal`, evaluates the same rules over the same per-session trace, but keeps every
//! session's trace forever, which a benchmark running millions of sessions cannot afford. Since the
//! history only ever holds one session, the event schema is Dogwood's unpinned one.

use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dogwood_language::cedar::Schema;
use dogwood_language::{
    Authorizer, Decision, Event, EventSignature, InMemoryTemporalEngine, LoweredPolicySet, PolicySchema, ServiceSchema,
    TemporalBindings, TemporalEngine, TemporalField, UNPINNED_EVENT_SCHEMA, Validator, Value,
};

use crate::{RefundRequest, Verdict};

/// The action schema: the three tools of the refund flow, with their inputs and outputs.
pub const ACTION_SCHEMA: &str = r#"
namespace Shop {
  entity Agent;
  entity Gateway;

  type GetCustomerInput = { email: String };
  type GetCustomerOutput = { verified: Bool, customer_id: String };
  type LookupOrderInput = { order_id: String };
  type LookupOrderOutput = { customer_id: String, total: Long };
  type ProcessRefundInput = { order_id: String, amount: Long };
  type ProcessRefundOutput = { status: String };

  action "get_customer" appliesTo {
    principal: [Agent], resource: [Gateway],
    context: { input: GetCustomerInput, output?: GetCustomerOutput }
  };
  action "lookup_order" appliesTo {
    principal: [Agent], resource: [Gateway],
    context: { input: LookupOrderInput, output?: LookupOrderOutput }
  };
  action "process_refund" appliesTo {
    principal: [Agent], resource: [Gateway],
    context: { input: ProcessRefundInput, output?: ProcessRefundOutput }
  };
}
"#;

/// The policies: the shared temporal gate and one `permit` per non-blocking outcome.
pub const POLICIES: &str = r#"
def temporal refundable() {
  exists (c: String). exists (tot: Long). exists (done: Long). (
    formerly within 1d Shop::Action::"get_customer"::response{ output.verified: true, output.customer_id: c }
    && formerly within 1d Shop::Action::"lookup_order"::response{
         input.order_id: context.input.order_id, output.customer_id: c, output.total: tot }
    && (sum a for (a: Long), (t: Timepoint). where formerly within 1d
         (Shop::Action::"process_refund"::response{ input.order_id: context.input.order_id, input.amount: a }
          && tp(t))) == done
    && done + context.input.amount <= tot
  )
};

@id("refund-allow")
permit (principal, action == Shop::Action::"process_refund", resource)
when { context.input.amount <= 50000 }
when temporal { refundable() };

@id("refund-escalate")
@escalate("refunds above $500 need human approval")
permit (principal, action == Shop::Action::"process_refund", resource)
when { context.input.amount > 50000 }
when temporal { refundable() };
"#;

const PRINCIPAL_TYPE: &str = "Shop::Agent";
const PRINCIPAL_ID: &str = "support-agent";
const RESOURCE_TYPE: &str = "Shop::Gateway";
const RESOURCE_ID: &str = "tools";

/// Dogwood's in-memory temporal engine, holding the history of one session at a time.
///
/// [`TemporalEngine::prepare`] keeps the leaves and schema; when the shared `new_session` flag is
/// set, the next observed event first replaces the engine with a newly prepared one, whose history
/// is empty.
struct SessionHistory {
    engine: InMemoryTemporalEngine,
    leaves: Vec<TemporalField>,
    schema: Option<Schema>,
    signatures: Vec<EventSignature>,
    new_session: Arc<AtomicBool>,
    /// Set when re-preparing failed (the built-in engine never fails): every decision then fails.
    broken: Option<String>,
}

impl TemporalEngine for SessionHistory {
    fn prepare(
        &mut self,
        leaves: &[TemporalField],
        schema: &Schema,
        events: &[EventSignature],
    ) -> Result<(), dogwood_language::Error> {
        self.leaves = leaves.to_vec();
        self.schema = Some(schema.clone());
        self.signatures = events.to_vec();
        self.engine.prepare(leaves, schema, events)
    }

    fn observe(&mut self, event: &Event) {
        if self.new_session.swap(false, Ordering::Relaxed) {
            let mut engine = InMemoryTemporalEngine::new();
            self.broken = match &self.schema {
                Some(schema) => engine.prepare(&self.leaves, schema, &self.signatures).err().map(|e| e.to_string()),
                None => Some("the temporal engine was never prepared".to_owned()),
            };
            self.engine = engine;
        }
        self.engine.observe(event);
    }

    fn evaluate(&mut self) -> Result<TemporalBindings, String> {
        match &self.broken {
            Some(reason) => Err(reason.clone()),
            None => self.engine.evaluate(),
        }
    }
}

/// The lowered and validated Dogwood policies inside a stateful authorizer.
pub struct DogwoodRefund {
    authorizer: Mutex<Authorizer>,
    new_session: Arc<AtomicBool>,
    escalate_rule: usize,
}

impl std::fmt::Debug for DogwoodRefund {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DogwoodRefund").field("escalate_rule", &self.escalate_rule).finish_non_exhaustive()
    }
}

impl DogwoodRefund {
    /// Lower [`POLICIES`] against [`ACTION_SCHEMA`] and the unpinned event schema, validate them
    /// (errors fail; the experimental-arithmetic warning is expected) and build the authorizer.
    pub fn new() -> Result<Self, Box<dyn Error + Send + Sync>> {
        let service = ServiceSchema::builder().event_schema_str(UNPINNED_EVENT_SCHEMA).build()?;
        let policy_schema = PolicySchema::from_cedarschema_str(ACTION_SCHEMA)?;
        let policies = LoweredPolicySet::from_str(POLICIES, &service, &policy_schema)?;
        let validation = Validator::new().validate(&policies);
        if !validation.validation_passed() {
            let errors: Vec<String> = validation.validation_errors().map(ToString::to_string).collect();
            return Err(format!("the Dogwood refund policies do not validate: {}", errors.join("; ")).into());
        }
        let escalate_rule = policies
            .as_cedar()
            .policies()
            .find(|p| p.annotation("escalate").is_some())
            .and_then(|p| policies.rule_ref(p.id().as_ref()))
            .map(|rule| rule.rule_index)
            .ok_or("no rule is annotated @escalate")?;

        let new_session = Arc::new(AtomicBool::new(false));
        let history = SessionHistory {
            engine: InMemoryTemporalEngine::new(),
            leaves: Vec::new(),
            schema: None,
            signatures: Vec::new(),
            new_session: Arc::clone(&new_session),
            broken: None,
        };
        let authorizer = Authorizer::builder(policies).temporal_engine(history).build()?;
        Ok(Self { authorizer: Mutex::new(authorizer), new_session, escalate_rule })
    }

    /// The events a session has produced before it asks for `req`'s refund, timestamped from 1.
    pub fn history(req: &RefundRequest) -> Vec<Event> {
        let mut events = Vec::with_capacity(3);
        events.push(verify_event(1, req.verified_customer.as_deref()));
        events.push(lookup_event(2, &req.order_id, &req.order_owner, req.order_total_cents));
        if req.refunded_cents > 0 {
            events.push(refunded_event(3, &req.order_id, req.refunded_cents));
        }
        events
    }

    /// Start a new session (an empty history) and ingest `history`, in order.
    pub fn begin_session(&self, history: &[Event]) {
        let mut authorizer = self.authorizer.lock().unwrap_or_else(PoisonError::into_inner);
        self.new_session.store(true, Ordering::Relaxed);
        for event in history {
            // History events are `response`s: they produce no verdict.
            let _ = authorizer.is_authorized(event);
        }
    }

    /// Ingest a decision event into the current session and map the response to a verdict.
    ///
    /// An event that produces no verdict (not a decision kind) is blocked.
    pub fn decide_event(&self, event: &Event) -> Verdict {
        let mut authorizer = self.authorizer.lock().unwrap_or_else(PoisonError::into_inner);
        match authorizer.is_authorized(event) {
            None => Verdict::Block,
            Some(response) => match response.decision() {
                Decision::Deny => Verdict::Block,
                Decision::Allow
                    if response.diagnostics().reason().any(|rule| rule.rule_index == self.escalate_rule) =>
                {
                    Verdict::Escalate
                }
                Decision::Allow => Verdict::Allow,
            },
        }
    }

    /// Decide one refund as its own session: fresh history, the session's earlier tool results,
    /// then the `process_refund` request.
    pub fn decide(&self, req: &RefundRequest) -> Verdict {
        let history = Self::history(req);
        let next = i64::try_from(history.len()).unwrap_or(i64::MAX - 1) + 1;
        self.begin_session(&history);
        self.decide_event(&refund_request_event(next, &req.order_id, req.amount_cents))
    }
}

/// The namespace path of the refund flow's actions, as [`Event::builder_for`] takes it.
const ACTION_NAMESPACE: &[&str] = &["Shop", "Action"];

/// An event of the tool `action` (a bare action id such as `process_refund`).
///
/// The action is passed as structured parts: [`Event::builder`] takes a combined
/// `Shop::Action::process_refund` with an *unquoted* id, and the Cedar-style quoted form
/// (`Shop::Action::"process_refund"`) would keep the quotes in the id, so the event would
/// match no policy and every request would be denied.
fn tool_event(action: &str, kind: &str, ts: i64) -> dogwood_language::EventBuilder {
    Event::builder_for(ACTION_NAMESPACE, action, kind)
        .timestamp(ts)
        .principal_for(PRINCIPAL_TYPE, PRINCIPAL_ID)
        .resource_for(RESOURCE_TYPE, RESOURCE_ID)
}

/// A `get_customer` result: verified as `customer`, or (for `None`) a failed verification.
pub fn verify_event(ts: i64, customer: Option<&str>) -> Event {
    tool_event("get_customer", "response", ts)
        .field("input", "email", Value::String("customer@example.com".to_owned()))
        .field("output", "verified", Value::Bool(customer.is_some()))
        .field("output", "customer_id", Value::String(customer.unwrap_or_default().to_owned()))
        .build()
}

/// A `lookup_order` result: order `order_id` belongs to `owner` and totals `total_cents`.
pub fn lookup_event(ts: i64, order_id: &str, owner: &str, total_cents: i64) -> Event {
    tool_event("lookup_order", "response", ts)
        .field("input", "order_id", Value::String(order_id.to_owned()))
        .field("output", "customer_id", Value::String(owner.to_owned()))
        .field("output", "total", Value::Int(total_cents))
        .build()
}

/// A `process_refund` that went through: `amount_cents` refunded on `order_id`.
pub fn refunded_event(ts: i64, order_id: &str, amount_cents: i64) -> Event {
    tool_event("process_refund", "response", ts)
        .field("input", "order_id", Value::String(order_id.to_owned()))
        .field("input", "amount", Value::Int(amount_cents))
        .field("output", "status", Value::String("refunded".to_owned()))
        .build()
}

/// The `process_refund` call to decide: its arguments go both to the logged record (read by the
/// temporal rules) and to the Cedar request context (read by the `when` clauses).
pub fn refund_request_event(ts: i64, order_id: &str, amount_cents: i64) -> Event {
    tool_event("process_refund", "request", ts)
        .field("input", "order_id", Value::String(order_id.to_owned()))
        .field("input", "amount", Value::Int(amount_cents))
        .request_context("input", "order_id", Value::String(order_id.to_owned()))
        .request_context("input", "amount", Value::Int(amount_cents))
        .build()
}
