//! The refund workflow in Tollgate's decision core: the reference workflow
//! `examples/support-refunds.toml`, unchanged, compiled once in [`TollgateRefund::new`].
//!
//! Tollgate is stateful the way its callers drive it: the session state is the fold of the
//! session's events through `apply`, and `decide` reads it without changing it. So each
//! [`RefundRequest`] becomes a session, driven exactly as a proxy drives one — every call is
//! decided, the decision applied, and, for an allowed call, its result recorded:
//!
//! 1. `get_customer`, whose result verifies the request's customer (or, for `None`, reports
//!    `verified: false`, which establishes nothing);
//! 2. `lookup_order`, whose result gives the order's owner, total and status (`delivered`). The
//!    workflow blocks the lookup when no customer is verified, and withholds its result when the
//!    order belongs to another customer (the `order-visible-to-customer` result check), so in those
//!    sessions no `order` fact exists and the refund is blocked at its gates;
//! 3. when `refunded_cents > 0`, the earlier `process_refund` of that amount on this order, with a
//!    successful result: it counts in the workflow's `refunded` aggregate. An earlier refund above
//!    $500 would itself have been escalated, so it is driven as several refunds of at most $500
//!    (at most [`EARLIER_REFUND_PARTS_MAX`] of them). It is driven only when the customer is
//!    verified and owns the order: otherwise the workflow refuses it, and the refund is blocked at
//!    its gates whatever was refunded before;
//!
//! and then the `process_refund` call is decided. [`Decision::Allow`], [`Decision::Block`] and
//! [`Decision::Escalate`] map to the [`Verdict`] of the same name.
//!
//! ## Units
//!
//! The workflow counts money in dollars, as doubles (`order.total` is a `double`; the escalation
//! is `args.amount > 500.0`). Cents become dollars as `cents as f64 / 100.0`: the double nearest to
//! the exact amount (the cast is exact up to 2^53 cents and the division rounds correctly), and
//! the amount itself for whole dollars. The boundaries of the samples therefore hold exactly: $500.00 is allowed and $500.01 escalated, and a refund of
//! exactly what remains after an earlier refund is allowed, one cent more blocked. For amounts with
//! cents, `order.total - refunded(...)` is a difference of doubles and may be off by an ulp, so a
//! refund of exactly the remaining amount can then be blocked: on a $100.10 order with $0.20
//! refunded, a refund of $99.90 is blocked (`100.1 - 0.2` is `99.89999999999999`), where Cedar and
//! Dogwood, counting cents, allow it. That comes from the workflow's choice of doubles for money,
//! not from this fixture; the samples have no such case.
//!
//! ## Two ways to measure
//!
//! [`TollgateRefund::decide`] drives the whole session and then decides, like Cedar building its
//! entities and Dogwood ingesting its history per decision. It does more work than either: the
//! history calls are *decided* too (argument schemas, gates, result checks) before their results
//! are recorded, because Tollgate only accepts a result for a call it allowed.
//!
//! [`TollgateRefund::prepare`] drives the session once and builds the `process_refund` call;
//! [`TollgateRefund::decide_prepared`] then decides that call alone, on the prepared state, which it
//! only reads: the same prepared session can be decided any number of times.

use std::error::Error;
use std::fmt;

use serde_json::{Value as Json, json};
use tollgate_core::{CallId, Decision, Event, SessionState, ToolCall, ToolOutcome, Workflow, apply, compile, decide};

use crate::{ESCALATE_ABOVE_CENTS, RefundRequest, Verdict};

/// The reference workflow, as the repository ships it.
pub const WORKFLOW: &str = include_str!("../../../examples/support-refunds.toml");

/// The email and zip code every session verifies with (the tool's argument schema checks their
/// shape; which customer they find is the result's business).
const EMAIL: &str = "customer@example.com";
const ZIP: &str = "94107";

/// The most earlier refunds (of at most $500 each) a prepared session is driven through.
pub const EARLIER_REFUND_PARTS_MAX: i64 = 64;

/// Id of the call that is decided; the history calls are numbered `h1`, `h2`, ….
const REFUND_CALL_ID: &str = "refund";

/// `cents` in the workflow's unit: dollars, as the nearest double.
pub fn dollars(cents: i64) -> f64 {
    // The cast is exact up to 2^53 cents in magnitude and the division rounds correctly, so this
    // is the double nearest to the exact amount, and the amount itself for whole dollars.
    cents as f64 / 100.0
}

/// Why the session a request describes cannot be prepared.
///
/// [`TollgateRefund::decide`] blocks these requests: the earlier refunds exceed the order's total,
/// which Cedar and Dogwood also block whenever the amount asked for is positive, or they are too
/// many to drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryError {
    /// The workflow refuses one of the earlier refunds although the customer is verified and owns
    /// the order: more would be refunded than the order's total. No session reaches that state.
    Refused {
        /// The history call the workflow refused.
        call: String,
        /// The verdict it got instead of `allow`.
        verdict: &'static str,
    },
    /// The earlier refunds, at most $500 each, would take more than
    /// [`EARLIER_REFUND_PARTS_MAX`] calls.
    TooLong {
        /// The calls they would take.
        parts: i64,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::Refused { call, verdict } => {
                write!(f, "the earlier refund {call} would not have been allowed ({verdict})")
            }
            HistoryError::TooLong { parts } => write!(
                f,
                "the earlier refunds would take {parts} calls of at most $500, over the limit of {EARLIER_REFUND_PARTS_MAX}"
            ),
        }
    }
}

impl Error for HistoryError {}

/// A session driven up to the refund, and the refund call to decide in it.
#[derive(Debug, Clone)]
pub struct Prepared {
    state: SessionState,
    call: ToolCall,
}

impl Prepared {
    /// The session state the refund is decided against.
    pub fn state(&self) -> &SessionState {
        &self.state
    }
    /// The `process_refund` call.
    pub fn call(&self) -> &ToolCall {
        &self.call
    }
}

/// The compiled reference workflow.
#[derive(Debug)]
pub struct TollgateRefund {
    workflow: Workflow,
}

impl TollgateRefund {
    /// Compile [`WORKFLOW`]; its problems, if any, are the error.
    pub fn new() -> Result<Self, Box<dyn Error + Send + Sync>> {
        let workflow = compile(WORKFLOW, "support-refunds.toml").map_err(|problems| {
            let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
            format!("the reference workflow does not compile: {}", problems.join("; "))
        })?;
        Ok(Self { workflow })
    }

    /// The compiled workflow.
    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    /// Drive a new session through the history `req` describes and build its refund call.
    pub fn prepare(&self, req: &RefundRequest) -> Result<Prepared, HistoryError> {
        let mut session = Session { workflow: &self.workflow, state: SessionState::new(&self.workflow), calls: 0 };

        let verification = match &req.verified_customer {
            Some(customer) => json!({"verified": true, "customer_id": customer, "email": EMAIL, "tier": "standard"}),
            None => json!({"verified": false, "customer_id": ""}),
        };
        session.run("get_customer", json!({"email": EMAIL, "zip": ZIP}), &verification);

        let order = json!({
            "order_id": req.order_id,
            "customer_id": req.order_owner,
            "total": dollars(req.order_total_cents),
            "status": "delivered",
        });
        session.run("lookup_order", json!({"order_id": req.order_id}), &order);

        // Whether the workflow could have refunded on this order at all: otherwise the refund is
        // blocked at its gates whatever was refunded, and an earlier refund would be refused too.
        let refundable = req.verified_customer.as_deref() == Some(req.order_owner.as_str());
        if refundable && req.refunded_cents > 0 {
            // Rounded up (the amount is positive here).
            let parts = (req.refunded_cents - 1) / ESCALATE_ABOVE_CENTS + 1;
            if parts > EARLIER_REFUND_PARTS_MAX {
                return Err(HistoryError::TooLong { parts });
            }
        }
        let mut remaining = req.refunded_cents;
        while refundable && remaining > 0 {
            let part = remaining.min(ESCALATE_ABOVE_CENTS);
            remaining -= part;
            let refunded = json!({"status": "refunded"});
            let (call, decision) =
                session.run("process_refund", json!({"order_id": req.order_id, "amount": dollars(part)}), &refunded);
            if !matches!(decision, Decision::Allow(_)) {
                return Err(HistoryError::Refused { call, verdict: decision.verdict().as_str() });
            }
        }

        let call = refund_call(req);
        Ok(Prepared { state: session.state, call })
    }

    /// Decide the prepared refund call; the session state is only read.
    pub fn decide_prepared(&self, prepared: &Prepared) -> Verdict {
        verdict(&decide(&self.workflow, &prepared.state, &prepared.call))
    }

    /// Decide one refund as its own session: drive the history, then decide the refund.
    ///
    /// A request whose session cannot be prepared is blocked (see [`HistoryError`]).
    pub fn decide(&self, req: &RefundRequest) -> Verdict {
        match self.prepare(req) {
            Ok(prepared) => self.decide_prepared(&prepared),
            Err(_) => Verdict::Block,
        }
    }
}

/// The `process_refund` call `req` asks to decide.
pub fn refund_call(req: &RefundRequest) -> ToolCall {
    ToolCall::new(
        REFUND_CALL_ID,
        "process_refund",
        json!({"order_id": req.order_id, "amount": dollars(req.amount_cents)}),
    )
}

/// The verdict of a decision.
pub fn verdict(decision: &Decision) -> Verdict {
    match decision {
        Decision::Allow(_) => Verdict::Allow,
        Decision::Block(_) => Verdict::Block,
        Decision::Escalate(_) => Verdict::Escalate,
    }
}

/// A session being driven, as a proxy drives one.
struct Session<'w> {
    workflow: &'w Workflow,
    state: SessionState,
    calls: usize,
}

impl Session<'_> {
    /// Decide a call and apply the decision; if it was allowed, record `result` as its successful
    /// result. Returns the call's id and its decision.
    fn run(&mut self, tool: &str, args: Json, result: &Json) -> (String, Decision) {
        self.calls += 1;
        let call = ToolCall::new(format!("h{}", self.calls), tool, args);
        let decision = decide(self.workflow, &self.state, &call);
        apply(self.workflow, &mut self.state, Event::Decided { call: &call, decision: &decision });
        if matches!(decision, Decision::Allow(_)) {
            let id: &CallId = &call.id;
            apply(
                self.workflow,
                &mut self.state,
                Event::ResultRecorded { call: id, result, outcome: ToolOutcome::Succeeded },
            );
        }
        (call.id.as_str().to_owned(), decision)
    }
}
