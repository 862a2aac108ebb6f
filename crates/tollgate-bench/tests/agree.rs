//! Tollgate and both peers must give every sample request its expected verdict, so the benchmark
//! compares engines deciding the same thing.

use tollgate_bench::cedar_refund::CedarRefund;
use tollgate_bench::dogwood_refund::{self, DogwoodRefund};
use tollgate_bench::tollgate_refund::{self, HistoryError, TollgateRefund};
use tollgate_bench::{RefundRequest, Verdict, sample_requests};

#[test]
fn samples_cover_every_outcome() {
    let samples = sample_requests();
    for verdict in [Verdict::Allow, Verdict::Block, Verdict::Escalate] {
        assert!(samples.iter().any(|(_, v)| *v == verdict), "no sample expects {verdict:?}");
    }
}

#[test]
fn cedar_decides_every_sample_as_expected() {
    let cedar = CedarRefund::new().unwrap();
    for (req, expected) in sample_requests() {
        assert_eq!(cedar.decide(&req), expected, "cedar on {req:?}");
    }
}

#[test]
fn dogwood_decides_every_sample_as_expected() {
    let dogwood = DogwoodRefund::new().unwrap();
    for (req, expected) in sample_requests() {
        assert_eq!(dogwood.decide(&req), expected, "dogwood on {req:?}");
    }
}

#[test]
fn tollgate_decides_every_sample_as_expected() {
    let tollgate = TollgateRefund::new().unwrap();
    for (req, expected) in sample_requests() {
        assert_eq!(tollgate.decide(&req), expected, "tollgate on {req:?}");
        let prepared = tollgate.prepare(&req).unwrap();
        assert_eq!(tollgate.decide_prepared(&prepared), expected, "tollgate (prepared) on {req:?}");
    }
}

#[test]
fn verdicts_do_not_depend_on_the_previous_decision() {
    // The benchmark rotates through the samples on one fixture: run the list forwards and
    // backwards twice so every sample follows several others.
    let cedar = CedarRefund::new().unwrap();
    let dogwood = DogwoodRefund::new().unwrap();
    let tollgate = TollgateRefund::new().unwrap();
    let samples = sample_requests();
    let order = samples.iter().chain(samples.iter().rev()).chain(samples.iter()).chain(samples.iter().rev());
    for (req, expected) in order {
        assert_eq!(cedar.decide(req), *expected, "cedar on {req:?}");
        assert_eq!(dogwood.decide(req), *expected, "dogwood on {req:?}");
        assert_eq!(tollgate.decide(req), *expected, "tollgate on {req:?}");
    }
}

/// The decide-only benchmark decides the same prepared sessions over and over: deciding must leave
/// them exactly as they were.
#[test]
fn tollgate_decide_prepared_leaves_the_session_unchanged() {
    let tollgate = TollgateRefund::new().unwrap();
    for (req, expected) in sample_requests() {
        let prepared = tollgate.prepare(&req).unwrap();
        let before = prepared.state().clone();
        for _ in 0..3 {
            assert_eq!(tollgate.decide_prepared(&prepared), expected, "tollgate on {req:?}");
        }
        assert_eq!(prepared.state(), &before, "deciding changed the session of {req:?}");
    }
}

/// The workflow counts dollars as doubles: whole-dollar boundaries are exact, including the
/// remaining amount after earlier refunds, and earlier refunds over $500 (driven as several
/// refunds of at most $500 each) all count.
#[test]
fn tollgate_boundaries_in_dollars() {
    let tollgate = TollgateRefund::new().unwrap();
    assert_eq!(tollgate_refund::dollars(50_000), 500.0);
    assert_eq!(tollgate_refund::dollars(18_000), 180.0);
    assert!(tollgate_refund::dollars(50_001) > 500.0);

    let req = |total: i64, refunded: i64, amount: i64| {
        let mut req = refund("#W1", amount);
        req.order_total_cents = total;
        req.refunded_cents = refunded;
        req
    };
    // The escalation boundary: $500.00 allowed, $500.01 escalated.
    assert_eq!(tollgate.decide(&req(200_000, 0, 50_000)), Verdict::Allow);
    assert_eq!(tollgate.decide(&req(200_000, 0, 50_001)), Verdict::Escalate);
    // The remaining-amount boundary, after $1,234 refunded in three parts ($500, $500, $234).
    assert_eq!(tollgate.decide(&req(200_000, 123_400, 50_000)), Verdict::Allow);
    assert_eq!(tollgate.decide(&req(160_000, 123_400, 36_600)), Verdict::Allow);
    assert_eq!(tollgate.decide(&req(160_000, 123_400, 36_601)), Verdict::Block);
    // Over $500 and over the remaining amount: blocking wins.
    assert_eq!(tollgate.decide(&req(160_000, 100_000, 60_001)), Verdict::Block);
    // Cedar and Dogwood agree on all of these.
    let cedar = CedarRefund::new().unwrap();
    let dogwood = DogwoodRefund::new().unwrap();
    for (total, refunded, amount) in [(160_000, 123_400, 36_600), (160_000, 123_400, 36_601), (200_000, 0, 50_001)] {
        let r = req(total, refunded, amount);
        assert_eq!(cedar.decide(&r), tollgate.decide(&r), "cedar on {r:?}");
        assert_eq!(dogwood.decide(&r), tollgate.decide(&r), "dogwood on {r:?}");
    }
}

/// A session the workflow could not have reached is not prepared, and `decide` blocks it.
#[test]
fn tollgate_refuses_impossible_histories() {
    let tollgate = TollgateRefund::new().unwrap();
    // More refunded than the order's total.
    let mut req = refund("#W1", 100);
    req.refunded_cents = 30_100;
    assert!(matches!(tollgate.prepare(&req), Err(HistoryError::Refused { .. })), "{req:?}");
    assert_eq!(tollgate.decide(&req), Verdict::Block);
    // Earlier refunds that would take too many calls to drive.
    let mut req = refund("#W1", 100);
    req.order_total_cents = i64::MAX;
    req.refunded_cents = i64::MAX - 1;
    assert!(matches!(tollgate.prepare(&req), Err(HistoryError::TooLong { .. })), "{req:?}");
    assert_eq!(tollgate.decide(&req), Verdict::Block);
    // Not verified, or another customer's order: the earlier refund does not matter.
    let mut req = refund("#W1", 100);
    req.refunded_cents = 90_000;
    req.order_owner = "c_99".to_owned();
    assert_eq!(tollgate.decide(&req), Verdict::Block);
}

fn refund(order_id: &str, amount_cents: i64) -> RefundRequest {
    RefundRequest {
        verified_customer: Some("c_42".to_owned()),
        order_id: order_id.to_owned(),
        order_owner: "c_42".to_owned(),
        order_total_cents: 30_000,
        refunded_cents: 0,
        amount_cents,
    }
}

/// Dogwood sums the session's earlier refunds on the order itself: check it with several of them,
/// and that refunds on another order do not count.
#[test]
fn dogwood_sums_earlier_refunds_of_the_same_order_only() {
    let dogwood = DogwoodRefund::new().unwrap();
    let decide = |history: &[dogwood_language::Event], amount: i64| {
        dogwood.begin_session(history);
        let ts = i64::try_from(history.len()).unwrap() + 1;
        dogwood.decide_event(&dogwood_refund::refund_request_event(ts, "#W1", amount))
    };
    let base = || {
        vec![
            dogwood_refund::verify_event(1, Some("c_42")),
            dogwood_refund::lookup_event(2, "#W1", "c_42", 30_000),
            dogwood_refund::lookup_event(3, "#W2", "c_42", 90_000),
        ]
    };

    // 10_000 + 5_000 already refunded on #W1 (and 40_000 on #W2, which must not count).
    let mut history = base();
    history.push(dogwood_refund::refunded_event(4, "#W1", 10_000));
    history.push(dogwood_refund::refunded_event(5, "#W2", 40_000));
    history.push(dogwood_refund::refunded_event(6, "#W1", 5_000));
    assert_eq!(decide(&history, 15_000), Verdict::Allow, "15_000 remain on #W1");
    assert_eq!(decide(&history, 15_001), Verdict::Block, "only 15_000 remain on #W1");

    // Two equal earlier refunds both count (the sum ranges over timepoints, not distinct amounts).
    let mut history = base();
    history.push(dogwood_refund::refunded_event(4, "#W1", 10_000));
    history.push(dogwood_refund::refunded_event(5, "#W1", 10_000));
    assert_eq!(decide(&history, 10_000), Verdict::Allow);
    assert_eq!(decide(&history, 10_001), Verdict::Block);

    // No lookup of this order: blocked even though the customer is verified.
    let history =
        vec![dogwood_refund::verify_event(1, Some("c_42")), dogwood_refund::lookup_event(2, "#W2", "c_42", 90_000)];
    assert_eq!(decide(&history, 100), Verdict::Block);

    // The order was looked up before the customer was verified: order of events does not matter.
    let history =
        vec![dogwood_refund::lookup_event(1, "#W1", "c_42", 30_000), dogwood_refund::verify_event(2, Some("c_42"))];
    assert_eq!(decide(&history, 100), Verdict::Allow);

    // The same requests through `decide` agree.
    assert_eq!(dogwood.decide(&refund("#W1", 30_000)), Verdict::Allow);
    assert_eq!(dogwood.decide(&refund("#W1", 30_001)), Verdict::Block);
}

/// Amounts near the ends of `i64` are blocked: Cedar's overflowing arithmetic is an error, which
/// leaves the policy unsatisfied, Dogwood's arithmetic saturates, and Tollgate's doubles do not
/// overflow.
#[test]
fn extreme_amounts_are_blocked() {
    let cedar = CedarRefund::new().unwrap();
    let dogwood = DogwoodRefund::new().unwrap();
    let tollgate = TollgateRefund::new().unwrap();
    let mut req = refund("#W1", i64::MAX);
    req.refunded_cents = i64::MIN + 1;
    assert_eq!(cedar.decide(&req), Verdict::Block);
    assert_eq!(tollgate.decide(&req), Verdict::Block);
    let mut req = refund("#W1", i64::MAX);
    req.refunded_cents = 1;
    assert_eq!(dogwood.decide(&req), Verdict::Block);
    assert_eq!(tollgate.decide(&req), Verdict::Block);
}
