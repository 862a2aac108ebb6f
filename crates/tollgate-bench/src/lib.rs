//! Benchmark fixtures that decide Tollgate's reference refund workflow with Tollgate's decision
//! core and with two peer policy engines.
//!
//! The crate exists for `benches/decide.rs` and `benches/latency.rs`, which measure how long one
//! refund decision takes in Tollgate's decision core and in two peers deciding the very same rule:
//!
//! - [`tollgate_refund`]: `tollgate-core` on the reference workflow
//!   `examples/support-refunds.toml`, unchanged. Each request becomes a session driven as a proxy
//!   drives one (verification, order lookup, earlier refunds: each call decided, then its result
//!   recorded), in which the `process_refund` call is decided. The workflow counts dollars, as
//!   doubles; the fixture converts the cents below.
//! - [`cedar_refund`]: Cedar 4.11 (stateless). The session state is handed over as entities and
//!   context with every request, so building them is part of each measured decision.
//! - [`dogwood_refund`]: Dogwood 1.1 (Cedar plus past-time temporal rules, with a stateful
//!   authorizer). The session's earlier tool calls are fed to the authorizer as history events and
//!   the temporal rules gate the refund.
//!
//! The rule, as Tollgate's `process_refund` enforces it (in cents here):
//!
//! - **Allow** when a customer is verified in the session, the order belongs to that customer,
//!   `amount <= total - already_refunded` and `amount <= 50_000`;
//! - **Escalate** when all of that holds except that `amount > 50_000`;
//! - **Block** otherwise.
//!
//! (The reference workflow also requires the order to be `delivered` or `returned`; the Tollgate
//! fixture's orders are all delivered, and the peers leave that check out.)
//!
//! [`sample_requests`] lists requests with the verdict each one must get; `tests/agree.rs`
//! checks all three engines against it.

pub mod cedar_refund;
pub mod dogwood_refund;
pub mod tollgate_refund;

/// Refunds above this many cents need a human: the `refund-over-500` escalation.
pub const ESCALATE_ABOVE_CENTS: i64 = 50_000;

/// One `process_refund` call together with the session state it is decided against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The customer verified in this session, if any.
    pub verified_customer: Option<String>,
    /// The order the refund is for.
    pub order_id: String,
    /// The customer the order belongs to (as the order lookup returned it).
    pub order_owner: String,
    /// The order's total, in cents (as the order lookup returned it).
    pub order_total_cents: i64,
    /// What this session has already refunded on this order, in cents.
    pub refunded_cents: i64,
    /// The refund asked for, in cents.
    pub amount_cents: i64,
}

/// The outcome of one refund decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The refund may run.
    Allow,
    /// The refund may not run.
    Block,
    /// The refund is otherwise allowed but too large: a human must approve it.
    Escalate,
}

fn request(
    verified_customer: Option<&str>,
    order_id: &str,
    order_owner: &str,
    order_total_cents: i64,
    refunded_cents: i64,
    amount_cents: i64,
) -> RefundRequest {
    RefundRequest {
        verified_customer: verified_customer.map(str::to_owned),
        order_id: order_id.to_owned(),
        order_owner: order_owner.to_owned(),
        order_total_cents,
        refunded_cents,
        amount_cents,
    }
}

/// Requests covering every outcome, each with the verdict it must get.
///
/// The benchmark cycles through all of them, so one measured "decision" is the mean over this mix.
pub fn sample_requests() -> Vec<(RefundRequest, Verdict)> {
    vec![
        // Allow: verified owner, first refund, well under both limits.
        (request(Some("c_42"), "#W1001", "c_42", 120_000, 0, 2_500), Verdict::Allow),
        // Allow: exactly the remaining amount after earlier refunds (boundary).
        (request(Some("c_42"), "#W1002", "c_42", 30_000, 12_000, 18_000), Verdict::Allow),
        // Allow: exactly $500 (boundary of the escalation).
        (request(Some("c_7"), "#W1003", "c_7", 90_000, 0, 50_000), Verdict::Allow),
        // Block: no verified customer in the session.
        (request(None, "#W1004", "c_42", 120_000, 0, 2_500), Verdict::Block),
        // Block: the order belongs to another customer.
        (request(Some("c_42"), "#W1005", "c_99", 120_000, 0, 2_500), Verdict::Block),
        // Block: more than what remains refundable.
        (request(Some("c_42"), "#W1006", "c_42", 30_000, 12_000, 18_001), Verdict::Block),
        // Block: over the remaining amount and over $500 (blocking wins over escalating).
        (request(Some("c_42"), "#W1007", "c_42", 80_000, 40_000, 60_000), Verdict::Block),
        // Block: another customer's order, over $500.
        (request(Some("c_42"), "#W1008", "c_99", 200_000, 0, 80_000), Verdict::Block),
        // Escalate: verified owner, within the remaining amount, over $500.
        (request(Some("c_42"), "#W1009", "c_42", 200_000, 0, 80_000), Verdict::Escalate),
        // Escalate: one cent over $500, after an earlier refund.
        (request(Some("c_7"), "#W1010", "c_7", 150_000, 20_000, 50_001), Verdict::Escalate),
    ]
}
