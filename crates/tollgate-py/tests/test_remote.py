"""The remote backend against a real `tollgate serve` process: the same
decisions as in process, the reviewer's approval through the API (what the
desk does) resuming the agent's wait, asyncio, failures as blocks and
errors by kind."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest

import tollgate
import tollgate.remote as remote
from conftest import ALICE, EXAMPLES, VERIFY, order

pytest.importorskip("httpx")


class Server:
    def __init__(self, url: str, agent: str, reviewer: str, db: str) -> None:
        self.url, self.agent, self.reviewer, self.db = url, agent, reviewer, db


def token(tollgate_bin: str, db: str, role: str, name: str) -> str:
    made = subprocess.run(
        [tollgate_bin, "tokens", "create", "--role", role, "--name", name, "--db", db], capture_output=True, text=True, check=True
    )
    return made.stdout.strip()


@pytest.fixture
def server(tollgate_bin: str, tmp_path: Path) -> Iterator[Server]:
    db = str(tmp_path / "served.db")
    agent = token(tollgate_bin, db, "agent", "support bot")
    reviewer = token(tollgate_bin, db, "reviewer", "Ann")
    process = subprocess.Popen(
        [tollgate_bin, "serve", "--workflow", str(EXAMPLES / "support-refunds.toml"), "--db", db, "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    try:
        line = process.stderr.readline()
        found = re.search(r"serving on (http://[0-9.:]+)", line)
        assert found, line
        yield Server(found.group(1), agent, reviewer, db)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def drive(session: remote.Session) -> None:
    d = session.decide(*VERIFY, call_id="verify")
    assert d.allowed, d.message
    session.record(d, ALICE)
    d = session.decide("lookup_order", {"order_id": "#W1"}, call_id="lookup")
    session.record(d, order("#W1", 2000.0))


def test_decisions_and_an_approval_through_the_server(server: Server, tollgate_bin: str) -> None:
    agent = remote.Client(server.url, server.agent)
    reviewer = remote.Client(server.url, server.reviewer)
    session = agent.session("r1", workflow="support-refunds")
    early = session.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="early")
    assert early.blocked and "refund-order-owned" in early.rule_ids and early.stage == "gates"
    drive(session)
    small = session.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="small")
    assert small.allowed and small.idempotency_key == "r1/process_refund:small"
    assert [c.call_id for c in session.in_doubt()] == ["small"]
    assert session.record(small, {"refund_id": "rf_1"}).recorded
    assert session.recorded_result("small") == {"outcome": "unknown", "result": {"refund_id": "rf_1"}}
    assert session.recorded_result("never") is None
    again = session.decide("process_refund", {"order_id": "#W1", "amount": 30}, call_id="small")
    assert again.replayed and again.allowed

    large = session.decide("process_refund", {"order_id": "#W1", "amount": 800}, call_id="large")
    assert large.escalated and large.handoff_id and large.urgency == "high"
    assert not session.wait(large, timeout=0).settled

    started = threading.Event()

    def review() -> None:
        started.wait()
        reviewer.claim(large.handoff_id or "")
        reviewer.approve(large.handoff_id or "", expires_in_seconds=600)

    thread = threading.Thread(target=review)
    thread.start()
    started.set()
    outcome = session.wait(large, timeout=20)
    thread.join()
    assert outcome.approved and outcome.claimed_by == "Ann"
    retried = session.decide("process_refund", {"order_id": "#W1", "amount": 800}, call_id="large-retry")
    assert retried.allowed and retried.approved_by == "large"
    # The same store, read by the CLI.
    verified = subprocess.run([tollgate_bin, "audit", "verify", "--db", server.db], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_asyncio(server: Server) -> None:
    async def run() -> tuple[tollgate.Decision, tollgate.Handoff]:
        client = remote.AsyncClient(server.url, server.agent)
        session = await client.session("a1", workflow="support-refunds")
        d = await session.decide(*VERIFY, call_id="verify")
        await session.record(d, ALICE)
        d = await session.decide("lookup_order", {"order_id": "#W1"}, call_id="lookup")
        await session.record(d, order("#W1", 2000.0))
        large = await session.decide("process_refund", {"order_id": "#W1", "amount": 800}, call_id="large")
        reviewer = remote.Client(server.url, server.reviewer)

        def review() -> None:
            reviewer.claim(large.handoff_id or "")
            reviewer.deny(large.handoff_id or "", "refunds of this size go through finance")

        outcome, _ = await asyncio.gather(session.wait(large, timeout=20), asyncio.to_thread(review))
        retried = await session.decide("process_refund", {"order_id": "#W1", "amount": 800}, call_id="retry")
        await client.aclose()
        return retried, outcome

    retried, outcome = asyncio.run(run())
    assert outcome.status == "denied" and outcome.reason == "refunds of this size go through finance"
    assert retried.blocked and retried.rule_ids == ["tollgate.handoff.denied"]


def test_errors_by_kind_and_failures_as_blocks(server: Server) -> None:
    agent = remote.Client(server.url, server.agent)
    with pytest.raises(tollgate.NotFound):
        agent.session("nobody")
    with pytest.raises(tollgate.BadRequest):
        remote.Client(server.url, "tg_not_a_token").session("nobody")
    session = agent.session("e1", workflow="support-refunds")
    with pytest.raises(tollgate.Conflict):
        agent._request("POST", "/v1/sessions", json={"id": "e1", "workflow": "support-refunds"})
    # A refusal of the call itself is a block, never an exception that could be read as a pass.
    refused = session.decide("get_customer", ["not", "an", "object"], call_id="c1")  # type: ignore[arg-type]
    assert refused.blocked and refused.rule_ids == ["tollgate.error.bad_request"]

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    nowhere = remote.Session(remote.Client(f"http://127.0.0.1:{port}", server.agent, timeout=2), "e1", {})
    down = nowhere.decide(*VERIFY)
    assert down.blocked and down.rule_ids == ["tollgate.error.unavailable"] and isinstance(down.error, tollgate.Unavailable)
    with pytest.raises(tollgate.Unavailable):
        nowhere.record("c1", {})
