"""The remote backend against two `tollgate serve` replicas on one
PostgreSQL schema (a fresh schema per test, on the test server at
$TOLLGATE_TEST_POSTGRES, by default postgres://postgres@127.0.0.1:5432/test),
with every request going to the other replica than the one before: the
facts one replica learned gate the calls the other decides, a reviewer's
approval given on one is honoured by the other, and refunds sent through
both at once never add up to more than the workflow's limit."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Iterator

import pytest

import tollgate
import tollgate.remote as remote
from conftest import ALICE, EXAMPLES, VERIFY, cli_token, need, order

pytest.importorskip("httpx")

POSTGRES = os.environ.get("TOLLGATE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")


def psql(sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", POSTGRES, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True)


@pytest.fixture
def schema_url() -> Iterator[str]:
    """The URL of a new, empty schema, dropped afterwards."""
    need(shutil.which("psql") is not None, "psql is not installed")
    name = f"tg_py_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    made = psql(f"CREATE SCHEMA {name}")
    need(made.returncode == 0, f"PostgreSQL at {POSTGRES} is unreachable: {made.stderr.strip()}")
    separator = "&" if "?" in POSTGRES else "?"
    try:
        yield f"{POSTGRES}{separator}options=-c%20search_path%3D{name}"
    finally:
        psql(f"DROP SCHEMA {name} CASCADE")


class Replicas:
    def __init__(self, urls: list[str], agent: str, reviewer: str) -> None:
        self.urls, self.agent, self.reviewer = urls, agent, reviewer


@pytest.fixture
def replicas(tollgate_bin: str, schema_url: str) -> Iterator[Replicas]:
    # The CLI makes the schema's tables before either replica starts.
    agent = cli_token(tollgate_bin, schema_url, "agent", "support bot")
    reviewer = cli_token(tollgate_bin, schema_url, "reviewer", "Ann")
    processes: list[subprocess.Popen[str]] = []
    urls: list[str] = []
    try:
        for _ in range(2):
            process = subprocess.Popen(
                [tollgate_bin, "serve", "--workflow", str(EXAMPLES / "support-refunds.toml"), "--db", schema_url, "--listen", "127.0.0.1:0"],
                stderr=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                text=True,
            )
            processes.append(process)
            assert process.stderr is not None
            line = process.stderr.readline()
            found = re.search(r"serving on (http://[0-9.:]+)", line)
            assert found, line
            threading.Thread(target=process.stderr.read, daemon=True).start()
            urls.append(found.group(1))
        assert urls[0] != urls[1]
        yield Replicas(urls, agent, reviewer)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def test_what_one_replica_learned_gates_what_the_other_decides(replicas: Replicas, tollgate_bin: str, schema_url: str) -> None:
    one, two = (remote.Client(url, replicas.agent) for url in replicas.urls)
    on_one = one.session("rep-1", workflow="support-refunds")
    on_two = two.session("rep-1")  # the same session, opened on the other replica

    early = on_two.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="early")
    assert early.blocked and "refund-order-owned" in early.rule_ids
    # Each call decided by one replica, its result recorded through the other.
    verify = on_one.decide(*VERIFY, call_id="verify")
    assert verify.allowed, verify.message
    assert on_two.record(verify, ALICE).recorded
    lookup = on_two.decide("lookup_order", {"order_id": "#W1"}, call_id="lookup")
    assert lookup.allowed, lookup.message
    assert on_one.record(lookup, order("#W1", 2000.0)).recorded

    small = on_two.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="small")
    assert small.allowed and small.idempotency_key == "rep-1/process_refund:small"
    assert [c.call_id for c in on_one.in_doubt()] == ["small"]
    again = on_one.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="small")
    assert again.replayed and again.allowed
    assert on_one.record(small, {"refund_id": "rf_1"}).recorded
    assert on_two.in_doubt() == []

    # An escalation decided on one, approved through the other, waited for
    # on the first: the identical call is allowed on the second, once.
    large = on_one.decide("process_refund", {"order_id": "#W1", "amount": 800}, call_id="large")
    assert large.escalated and large.handoff_id
    reviewer = remote.Client(replicas.urls[1], replicas.reviewer)
    reviewer.claim(large.handoff_id)
    reviewer.approve(large.handoff_id, expires_in_seconds=600)
    assert on_one.wait(large, timeout=20).approved
    retried = on_two.decide("process_refund", {"order_id": "#W1", "amount": 800}, call_id="large-retry")
    assert retried.allowed and retried.approved_by == "large"
    twice = on_one.decide("process_refund", {"order_id": "#W1", "amount": 800}, call_id="large-again")
    assert twice.escalated, "an approval covers one call"

    verified = subprocess.run([tollgate_bin, "audit", "verify", "--db", schema_url], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_concurrent_refunds_through_both_replicas_stay_within_the_limit(replicas: Replicas) -> None:
    """Twelve refunds of $40 on a $120 order, sent at once through both
    replicas (six each, one client per thread): at most $120 is allowed.
    Every other one is refused by the limit's rule, or by a failure to
    decide (a block too, never a pass)."""
    setup = remote.Client(replicas.urls[0], replicas.agent).session("rep-2", workflow="support-refunds")
    verify = setup.decide(*VERIFY, call_id="verify")
    setup.record(verify, ALICE)
    lookup = setup.decide("lookup_order", {"order_id": "#W1"}, call_id="lookup")
    setup.record(lookup, order("#W1", 120.0))

    count = 12
    start = threading.Barrier(count)
    decisions: list[tollgate.Decision | BaseException] = [RuntimeError("not run")] * count

    def refund(i: int) -> None:
        try:
            session = remote.Client(replicas.urls[i % 2], replicas.agent).session("rep-2")
            start.wait(timeout=60)
            decisions[i] = session.decide("process_refund", {"order_id": "#W1", "amount": 40}, call_id=f"refund-{i}")
        except BaseException as error:  # noqa: BLE001 - reported below
            decisions[i] = error

    threads = [threading.Thread(target=refund, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    made = [d for d in decisions if isinstance(d, tollgate.Decision)]
    assert len(made) == count, decisions
    verdicts = [(d.call_id, d.verdict, d.rule_ids) for d in made]
    allowed = [d for d in made if d.allowed]
    failed = [d for d in made if d.blocked and d.rule_ids and d.rule_ids[0].startswith("tollgate.error.")]
    assert len(allowed) <= 3, verdicts
    for d in made:
        if not d.allowed and d not in failed:
            assert d.blocked and d.rule_ids == ["refund-within-remaining"], verdicts
    if not failed:
        assert len(allowed) == 3, verdicts  # the limit, not less
    # The store agrees: what is allowed is in doubt (no results yet).
    assert {d.call_id for d in allowed} == {c.call_id for c in setup.in_doubt()}
