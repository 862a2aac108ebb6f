"""The OpenAI Agents SDK adapter with the real openai-agents package and its
own scripted model (agents.testing.ScriptedModel; no network): a gated call
is rejected with its reason reaching the model, the careful path runs, an
escalation is the SDK's approval interruption and the reviewer's approval
resumes the run."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import tollgate
from conftest import ALICE, Desk, Ledger, order

agents = pytest.importorskip("agents")
from agents.testing.model import ScriptedModel, assistant_message, function_call  # noqa: E402

from tollgate.adapters.openai_agents import gate, gate_mcp, resolve_interruptions  # noqa: E402

agents.set_tracing_disabled(True)  # no trace export: the tests reach no network


def shop_tools(ledger: Ledger) -> list[Any]:
    @agents.function_tool
    def get_customer(email: str, zip: str) -> str:
        """Verify a customer by email and zip code."""
        return json.dumps(ALICE)

    @agents.function_tool
    def lookup_order(order_id: str) -> str:
        """Read an order."""
        return json.dumps(order(order_id, 2000.0))

    @agents.function_tool
    def process_refund(order_id: str, amount: float) -> str:
        """Refund part of an order."""
        return json.dumps(ledger.run(None, "process_refund", {"order_id": order_id, "amount": amount}))

    return [get_customer, lookup_order, process_refund]


def outputs_seen(model: ScriptedModel) -> dict[str, str]:
    """call id -> the tool output the model was given for it."""
    seen: dict[str, str] = {}
    for call in model.calls:
        items = call.input if isinstance(call.input, list) else []
        for item in items:
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                seen[item["call_id"]] = str(item.get("output"))
    return seen


def test_guardrails_and_approval_interruption(engine: tollgate.Engine, refunds: tollgate.Workflow, ledger: Ledger) -> None:
    session = engine.session("oai-1", refunds)
    model = ScriptedModel(
        [
            [function_call("process_refund", {"order_id": "#W1", "amount": 30.0}, call_id="call_early")],
            [function_call("get_customer", {"email": "alice@example.com", "zip": "94107"}, call_id="call_verify")],
            [function_call("lookup_order", {"order_id": "#W1"}, call_id="call_lookup")],
            [function_call("process_refund", {"order_id": "#W1", "amount": 30.0}, call_id="call_small")],
            [function_call("process_refund", {"order_id": "#W1", "amount": 800.0}, call_id="call_large")],
            [assistant_message("Both refunds are done.")],
        ]
    )
    agent = agents.Agent(name="support", model=model, tools=gate(session, shop_tools(ledger)))

    async def run() -> Any:
        result = await agents.Runner.run(agent, "Refund $30 and $800 on order #W1.")
        # The escalation paused the run with the SDK's own approval item.
        assert [i.raw_item.call_id for i in result.interruptions] == ["call_large"]
        assert [e["result"]["args"]["amount"] for e in ledger.entries()] == [30]
        pending = engine.handoffs()
        assert [h.call_id for h in pending] == ["call_large"]
        # The reviewer approves on the desk; the run resumes with that decision.
        engine.claim(pending[0].id, "Ann")
        engine.approve(pending[0].id, "Ann", expires_in_seconds=600)
        state = await resolve_interruptions(session, result, timeout=30)
        return await agents.Runner.run(agent, state)

    result = asyncio.run(run())
    assert result.final_output == "Both refunds are done."
    seen = outputs_seen(model)
    assert "Tollgate blocked process_refund" in seen["call_early"] and "verify the customer" in seen["call_early"]
    assert [e["result"]["args"]["amount"] for e in ledger.entries()] == [30, 800]
    assert engine.handoff(pending_id(engine)).consumed_by == "call_large.approved"
    assert session.in_doubt() == []


def pending_id(engine: tollgate.Engine) -> str:
    return engine.handoffs(statuses=["approved"])[0].id


def test_a_denial_reaches_the_model(engine: tollgate.Engine, refunds: tollgate.Workflow, ledger: Ledger) -> None:
    session = engine.session("oai-2", refunds)
    steps: list[Any] = [
        [function_call("get_customer", {"email": "alice@example.com", "zip": "94107"}, call_id="v")],
        [function_call("lookup_order", {"order_id": "#W1"}, call_id="o")],
        [function_call("process_refund", {"order_id": "#W1", "amount": 900.0}, call_id="big")],
        [assistant_message("I could not refund it.")],
    ]
    model = ScriptedModel(steps)
    agent = agents.Agent(name="support", model=model, tools=gate(session, shop_tools(ledger)))

    async def run() -> Any:
        result = await agents.Runner.run(agent, "Refund $900 on #W1.")
        handoff = engine.handoffs()[0]
        engine.claim(handoff.id, "Ann")
        engine.deny(handoff.id, "Ann", "refunds of this size go through finance")
        return await agents.Runner.run(agent, await resolve_interruptions(session, result, timeout=30))

    result = asyncio.run(run())
    assert result.final_output == "I could not refund it."
    assert ledger.entries() == []


def test_an_sdk_approval_without_a_reviewer_does_not_run_the_call(
    engine: tollgate.Engine, refunds: tollgate.Workflow, ledger: Ledger
) -> None:
    session = engine.session("oai-3", refunds)
    model = ScriptedModel(
        [
            [function_call("get_customer", {"email": "alice@example.com", "zip": "94107"}, call_id="v")],
            [function_call("lookup_order", {"order_id": "#W1"}, call_id="o")],
            [function_call("process_refund", {"order_id": "#W1", "amount": 800.0}, call_id="big")],
            [assistant_message("Waiting for a person.")],
        ]
    )
    agent = agents.Agent(name="support", model=model, tools=gate(session, shop_tools(ledger)))

    async def run() -> Any:
        result = await agents.Runner.run(agent, "Refund $800 on #W1.")
        state = result.to_state()
        for item in result.interruptions:
            state.approve(item)  # the application approves; no reviewer did
        return await agents.Runner.run(agent, state)

    result = asyncio.run(run())
    assert result.final_output == "Waiting for a person."
    assert ledger.entries() == []
    assert "tollgate.handoff.waiting" in outputs_seen(model)["big"]


def test_an_mcp_server_gated(engine: tollgate.Engine, tmp_path: Any) -> None:
    """The τ²-retail MCP server fixture (the official MCP SDK over stdio, the
    benchmark's database) behind gate_mcp: the careless cancellations are
    rejected with their rules, the careful one goes through to the server."""
    from pathlib import Path

    from agents.mcp import MCPServerStdio
    from conftest import ROOT, TAU, need

    need((TAU / "tau2-bench" / "retail" / "db.json").is_file(), f"the τ² data is not at {TAU}")
    import sys

    saved = Path(tmp_path) / "db.json"
    session = engine.session("oai-mcp", engine.workflow(ROOT / "examples" / "tau2-retail.toml"))
    order_id, email = "#W8770097", "ivan.santos3158@example.com"
    model = ScriptedModel(
        [
            [function_call("cancel_pending_order", {"order_id": order_id, "reason": "no longer needed"}, call_id="c1")],
            [function_call("find_user_id_by_email", {"email": email}, call_id="c2")],
            [function_call("get_order_details", {"order_id": order_id}, call_id="c3")],
            [function_call("cancel_pending_order", {"order_id": order_id, "reason": "changed my mind"}, call_id="c4")],
            [function_call("cancel_pending_order", {"order_id": order_id, "reason": "no longer needed"}, call_id="c5")],
            [assistant_message("Cancelled.")],
        ]
    )
    fixture = ROOT / "fixtures" / "tau2-retail-mcp" / "server.py"

    async def run() -> Any:
        params = {"command": sys.executable, "args": [str(fixture), "--save", str(saved)]}
        async with MCPServerStdio(params=params, cache_tools_list=True) as server:
            agent = agents.Agent(name="retail", model=model, mcp_servers=[gate_mcp(session, server)])
            return await agents.Runner.run(agent, "Cancel my order")

    result = asyncio.run(run())
    assert result.final_output == "Cancelled."
    seen = outputs_seen(model)
    assert "R-AUTH" in seen["c1"] and "R-CANCEL-REASON" in seen["c4"]
    assert json.loads(saved.read_text())["orders"][order_id]["status"] == "cancelled"
    assert session.in_doubt() == []
    assert [h for h in session.engine.handoffs()] == []


def test_the_desks_approval_resumes_the_run(engine: tollgate.Engine, refunds: tollgate.Workflow, ledger: Ledger, desk: Desk) -> None:
    """The reviewer approves on the desk of a running `tollgate serve` (its
    sign-in, its page, its forms), not through the engine: the paused run
    resumes and the refund runs once."""
    session = engine.session("oai-desk", refunds)
    model = ScriptedModel(
        [
            [function_call("get_customer", {"email": "alice@example.com", "zip": "94107"}, call_id="v")],
            [function_call("lookup_order", {"order_id": "#W1"}, call_id="o")],
            [function_call("process_refund", {"order_id": "#W1", "amount": 800.0}, call_id="big")],
            [assistant_message("Refunded.")],
        ]
    )
    agent = agents.Agent(name="support", model=model, tools=gate(session, shop_tools(ledger)))

    async def run() -> tuple[Any, str]:
        result = await agents.Runner.run(agent, "Refund $800 on #W1.")
        assert [i.raw_item.call_id for i in result.interruptions] == ["big"]
        assert ledger.entries() == []
        handoff = engine.handoffs()[0].id
        await asyncio.to_thread(desk.approve, handoff)
        state = await resolve_interruptions(session, result, timeout=30)
        return await agents.Runner.run(agent, state), handoff

    result, handoff = asyncio.run(run())
    assert result.final_output == "Refunded."
    assert [e["result"]["args"]["amount"] for e in ledger.entries()] == [800]
    settled = engine.handoff(handoff)
    assert settled.status == "approved" and settled.claimed_by == "Ann" and settled.consumed_by == "big.approved"
    assert session.in_doubt() == []
