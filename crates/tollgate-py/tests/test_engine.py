"""The in-process backend: decisions, results, exceptions by kind, failures
as blocks, handoffs waited on, and what the CLI reads back."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

import tollgate
from conftest import ALICE, EXAMPLES, VERIFY, order, verified_with_order


def test_blocked_allowed_and_escalated(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    s = engine.session("s1", refunds)
    blocked = s.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="early")
    assert blocked.blocked and not blocked.allowed and not bool(blocked)
    assert blocked.verdict == "block" and blocked.stage == "gates"
    assert "refund-order-owned" in blocked.rule_ids
    assert "look up order #W1" in blocked.message
    assert [m["fact"] for m in blocked.missing] == ["customer", "order"]

    verified_with_order(s)
    allowed = s.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="r1")
    assert allowed.allowed and allowed.message == ""
    assert allowed.idempotency_key == "s1/process_refund:r1"
    assert s.record(allowed, {"refund_id": "rf_1"}).recorded

    escalated = s.decide("process_refund", {"order_id": "#W1", "amount": 800}, call_id="r2", summary="wants 800 back")
    assert escalated.escalated and escalated.verdict == "escalate"
    assert escalated.rule_ids == ["refund-over-500"] and escalated.urgency == "high"
    assert escalated.handoff_id is not None and escalated.handoff_id.startswith("h_")
    assert escalated.handoff["customer_id"] == "c_42"
    assert engine.handoff(escalated.handoff_id).status == "open"


def test_a_call_id_sent_again_gets_its_decision_back(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    s = engine.session("s1", refunds)
    verified_with_order(s)
    first = s.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="r1")
    again = s.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="r1")
    assert first.allowed and not first.replayed
    assert again.allowed and again.replayed and again.idempotency_key == first.idempotency_key
    other = s.decide("process_refund", {"order_id": "#W1", "amount": 31}, call_id="r1")
    assert other.blocked and other.rule_ids == ["tollgate.call_id_reused"]


def test_results_establish_facts_and_a_failing_result_check_withholds(
    engine: tollgate.Engine, refunds: tollgate.Workflow
) -> None:
    s = engine.session("s1", refunds)
    d = s.decide(*VERIFY, call_id="v")
    assert s.record(d, ALICE).effects == [{"established": "customer", "key": None}]
    d = s.decide("lookup_order", {"order_id": "#W9"}, call_id="o9")
    withheld = s.record(d, order("#W9", 10.0, customer="c_7"))
    assert withheld.withheld
    # The order of another customer was not established: a refund is still gated.
    assert s.decide("process_refund", {"order_id": "#W9", "amount": 5}).blocked


def test_a_failed_tool_releases_its_amount(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    s = engine.session("s1", refunds)
    verified_with_order(s, total=100.0)
    d = s.decide("process_refund", {"order_id": "#W1", "amount": 100}, call_id="r1")
    assert d.allowed
    assert s.decide("process_refund", {"order_id": "#W1", "amount": 1}, call_id="r2").blocked
    s.record(d, error="payment processor timeout")
    assert s.decide("process_refund", {"order_id": "#W1", "amount": 100}, call_id="r3").allowed


def test_errors_are_exceptions_of_their_kind(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    with pytest.raises(tollgate.NotFound):
        engine.session("nobody")
    with pytest.raises(tollgate.NotFound):
        engine.handoff("h_000000000000000000000000")
    with pytest.raises(tollgate.BadRequest, match="does not compile"):
        engine.workflow_text("[workflow]\nname = 1\n")
    engine.session("s1", refunds)
    with pytest.raises(tollgate.Conflict, match="exists already"):
        engine._native.create_session(refunds.hash, "s1")
    with pytest.raises(tollgate.BadRequest):
        engine.session("not an id!", refunds)
    with pytest.raises(tollgate.BadRequest, match="not JSON"):
        engine.session("s1").record("c1", {"when": {1, 2}})
    # Every kind is a TollgateError, so one except clause catches them all.
    for kind in (tollgate.BadRequest, tollgate.NotFound, tollgate.Conflict, tollgate.Damaged, tollgate.Unavailable):
        assert issubclass(kind, tollgate.TollgateError)


def test_a_failure_to_decide_is_a_block(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    s = engine.session("s1", refunds)
    not_json = s.decide("get_customer", {"email": float("nan"), "zip": "94107"})
    assert not_json.blocked and not_json.stage == "error"
    assert not_json.rule_ids == ["tollgate.error.bad_request"]
    assert isinstance(not_json.error, tollgate.BadRequest)
    assert "must not run" in not_json.message

    nowhere = engine._native.decide("no-such-session", "c1", "get_customer", {"email": "a@b.c", "zip": "94107"})
    assert nowhere.blocked and isinstance(nowhere.error, tollgate.NotFound)

    engine.close()
    closed = s.decide(*VERIFY)
    assert closed.blocked and closed.rule_ids == ["tollgate.error.unavailable"]
    assert isinstance(closed.error, tollgate.Unavailable)
    assert not closed


def test_waiting_on_a_handoff_and_the_approved_call(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    s = engine.session("s1", refunds)
    verified_with_order(s, total=2000.0)
    args = {"order_id": "#W1", "amount": 800}
    escalated = s.decide("process_refund", args, call_id="r1")
    assert escalated.escalated
    # Nobody acted: the wait ends at its timeout with the handoff still open.
    assert not s.wait(escalated, timeout=0.05).settled
    # While it waits, the same call is blocked, not escalated again.
    assert s.decide("process_refund", args, call_id="r1-again").rule_ids == ["tollgate.handoff.waiting"]

    waiting = threading.Event()

    def reviewer() -> None:
        waiting.wait()
        engine.claim(escalated.handoff_id, "Ann")
        engine.approve(escalated.handoff_id, "Ann", expires_in_seconds=600)

    thread = threading.Thread(target=reviewer)
    thread.start()
    waiting.set()
    outcome = s.wait(escalated, timeout=30)
    thread.join()
    assert outcome.settled and outcome.approved and outcome.claimed_by == "Ann"

    retried = s.decide("process_refund", args, call_id="r1-approved")
    assert retried.allowed and retried.approved_by == "r1"
    # The approval is used up: once more, and it escalates afresh.
    assert s.decide("process_refund", args, call_id="r1-twice").escalated


def test_a_denial_reaches_the_agent_as_a_block(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    s = engine.session("s1", refunds)
    verified_with_order(s)
    args = {"order_id": "#W1", "amount": 800}
    escalated = s.decide("process_refund", args, call_id="r1")
    engine.claim(escalated.handoff_id, "Ann")
    denied = engine.deny(escalated.handoff_id, "Ann", "the order was a chargeback already")
    assert denied.status == "denied" and denied.reason == "the order was a chargeback already"
    with pytest.raises(tollgate.Conflict):
        engine.approve(escalated.handoff_id, "Ann")
    retried = s.decide("process_refund", args, call_id="r1-retry")
    assert retried.blocked and retried.rule_ids == ["tollgate.handoff.denied"]
    assert "chargeback" in retried.message


def test_in_doubt_lists_an_allowed_call_without_result(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    s = engine.session("s1", refunds)
    verified_with_order(s)
    d = s.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="r1")
    assert [(c.call_id, c.idempotency_key) for c in s.in_doubt()] == [("r1", "s1/process_refund:r1")]
    s.record(d, {"refund_id": "rf_1"})
    assert s.in_doubt() == []


def test_in_memory_decides_as_the_durable_engine(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    memory = tollgate.Engine.in_memory()
    assert memory.backend == "memory" and engine.backend == "sqlite"
    sessions = [e.session("s1", e.workflow(EXAMPLES / "support-refunds.toml")) for e in (engine, memory)]
    for s in sessions:
        verified_with_order(s)
    steps = [("r1", 30), ("r2", 2000), ("r3", 800), ("r4", 100)]
    seen = [[s.decide("process_refund", {"order_id": "#W1", "amount": a}, call_id=c).to_json() for c, a in steps] for s in sessions]
    assert seen[0] == seen[1]
    assert [d["decision"]["verdict"] for d in seen[0]] == ["allow", "block", "escalate", "allow"]
    with pytest.raises(tollgate.BadRequest, match="in-memory"):
        memory.handoffs()


def test_investigations(engine: tollgate.Engine) -> None:
    wf = engine.workflow(EXAMPLES / "multi-concern.toml")
    parent = engine.session("case", wf)
    d = parent.decide(*VERIFY, call_id="v")
    parent.record(d, ALICE)
    children = parent.open_investigations([{"id": "refund", "concern": "refund #W1"}, {"id": "address", "concern": "new address"}])
    assert [c.id for c in children] == ["case:refund", "case:address"]
    with pytest.raises(tollgate.Conflict, match="still running"):
        parent.join()
    for child in children:
        child.conclude("done")
    joined = parent.join()
    assert [f["concern_id"] for f in joined["findings"]] == ["refund", "address"]


def test_the_cli_reads_what_python_wrote(
    engine: tollgate.Engine, refunds: tollgate.Workflow, db: str, tollgate_bin: str
) -> None:
    s = engine.session("py-session", refunds)
    verified_with_order(s)
    escalated = s.decide("process_refund", {"order_id": "#W1", "amount": 800}, call_id="r1")
    engine.claim(escalated.handoff_id, "Ann")
    listed = subprocess.run([tollgate_bin, "sessions", "list", "--db", db], capture_output=True, text=True, check=True)
    assert "py-session" in listed.stdout
    shown = subprocess.run([tollgate_bin, "sessions", "show", "py-session", "--db", db], capture_output=True, text=True, check=True)
    assert "refund-over-500" in shown.stdout
    verified = subprocess.run([tollgate_bin, "audit", "verify", "--db", db], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert engine.verify_audit()["intact"]


def test_a_signed_audit_head(tmp_path, tollgate_bin: str) -> None:
    key = tmp_path / "audit.key"
    public = subprocess.run([tollgate_bin, "audit", "keygen", "--out", str(key)], capture_output=True, text=True, check=True)
    db = str(tmp_path / "signed.db")
    engine = tollgate.Engine(db, audit_key_file=key)
    s = engine.session("s1", engine.workflow(EXAMPLES / "support-refunds.toml"))
    s.decide(*VERIFY)
    engine.close()
    checked = subprocess.run(
        [tollgate_bin, "audit", "verify", "--db", db, "--key", public.stdout.strip()], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_decision_json_is_the_wire_answer(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    s = engine.session("s1", refunds)
    d = s.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="c1")
    answer = d.to_json()
    assert answer["call"] == "c1" and answer["decision"]["verdict"] == "block" and answer["replayed"] is False
    again = tollgate.Decision.from_json(json.loads(json.dumps(answer)), "process_refund")
    assert again.to_json() == answer and again.rule_ids == d.rule_ids
    with pytest.raises(tollgate.BadRequest, match="not a decision"):
        tollgate.Decision.from_json({"call": "c1", "decision": {"verdict": "maybe"}, "replayed": False}, "t")


def test_a_session_opened_under_another_workflow_is_a_conflict(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    engine.session("s1", refunds)
    assert engine.session("s1", refunds).id == "s1"
    other = engine.workflow(EXAMPLES / "tau2-retail.toml")
    with pytest.raises(tollgate.Conflict, match="another workflow"):
        engine.session("s1", other)
    memory = tollgate.Engine.in_memory()
    memory.session("m1", memory.workflow(EXAMPLES / "support-refunds.toml"))
    with pytest.raises(tollgate.Conflict):
        memory.session("m1", memory.workflow(EXAMPLES / "tau2-retail.toml"))


def test_result_of_reads_what_frameworks_hand_back() -> None:
    from tollgate.adapters import result_of

    assert result_of('{"a": 1}') == {"a": 1}
    assert result_of("plain words") == "plain words"
    assert result_of({"type": "text", "text": "user_1"}) == "user_1"
    assert result_of([{"type": "text", "text": '{"id": "#W1"}'}]) == {"id": "#W1"}
    assert result_of({"content": [{"type": "text", "text": "[1, 2]"}]}) == [1, 2]
    assert result_of({"structuredContent": {"x": True}, "content": []}) == {"x": True}
    assert result_of({"order_id": "#W1"}) == {"order_id": "#W1"}
