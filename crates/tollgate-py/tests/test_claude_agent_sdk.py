"""The Claude Agent SDK adapter with the real claude-agent-sdk and the Claude
Code CLI it bundles, driven by a loopback Messages API stub: a gated call is
denied with its reason reaching the model, the careful path runs, and an
escalation pauses the run until a reviewer's approval resumes it."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

import tollgate
from conftest import ALICE, Desk, Ledger, order
from messages_stub import MessagesStub, text, tool_use

sdk = pytest.importorskip("claude_agent_sdk")
from tollgate.adapters.claude_agent_sdk import TollgateHooks, mcp_tool_name  # noqa: E402


class Watched:
    """A session that tells the test when a decision escalated."""

    def __init__(self, session: tollgate.Session) -> None:
        self.inner = session
        self.id = session.id
        self.escalated = threading.Event()
        self.handoff_id: str | None = None

    def decide(self, *args: Any, **kwargs: Any) -> tollgate.Decision:
        decision = self.inner.decide(*args, **kwargs)
        if decision.escalated:
            self.handoff_id = decision.handoff_id
            self.escalated.set()
        return decision

    def record(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.record(*args, **kwargs)

    def wait(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.wait(*args, **kwargs)

    def recorded_result(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.recorded_result(*args, **kwargs)


def shop(ledger: Ledger) -> Any:
    def reply(value: Any) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": json.dumps(value)}]}

    @sdk.tool("get_customer", "Verify a customer", {"email": str, "zip": str})
    async def get_customer(args: dict[str, Any]) -> dict[str, Any]:
        return reply(ALICE)

    @sdk.tool("lookup_order", "Read an order", {"order_id": str})
    async def lookup_order(args: dict[str, Any]) -> dict[str, Any]:
        return reply(order(args["order_id"], 2000.0))

    @sdk.tool("process_refund", "Refund an order", {"order_id": str, "amount": float})
    async def process_refund(args: dict[str, Any]) -> dict[str, Any]:
        return reply(ledger.run(None, "process_refund", args))

    return sdk.create_sdk_mcp_server("shop", tools=[get_customer, lookup_order, process_refund])


def test_mcp_tool_names() -> None:
    assert mcp_tool_name("mcp__shop__process_refund") == "process_refund"
    assert mcp_tool_name("Bash") == "Bash"


@pytest.mark.parametrize("approved_on", ["engine", "desk"])
def test_hooks_with_the_claude_code_cli(
    engine: tollgate.Engine, refunds: tollgate.Workflow, ledger: Ledger, tmp_path: Path, approved_on: str, request: pytest.FixtureRequest
) -> None:
    """`approved_on`: the reviewer approves through the engine's API, or on
    the desk of a running `tollgate serve` on the same store (its sign-in,
    its page, its forms) while the hook waits."""
    if approved_on == "desk":
        desk: Desk = request.getfixturevalue("desk")
        approve = desk.approve
    else:

        def approve(handoff: str) -> None:
            engine.claim(handoff, "Ann")
            engine.approve(handoff, "Ann", expires_in_seconds=600)

    bundled = Path(sdk.__file__).parent / "_bundled" / "claude"
    assert bundled.is_file(), "claude-agent-sdk ships its CLI"
    session = Watched(engine.session("claude-1", refunds))
    refund = "mcp__shop__process_refund"
    turns = [
        tool_use(refund, {"order_id": "#W1", "amount": 30}, "toolu_early"),
        tool_use("mcp__shop__get_customer", {"email": "alice@example.com", "zip": "94107"}, "toolu_verify"),
        tool_use("mcp__shop__lookup_order", {"order_id": "#W1"}, "toolu_lookup"),
        tool_use(refund, {"order_id": "#W1", "amount": 30}, "toolu_small"),
        tool_use(refund, {"order_id": "#W1", "amount": 800}, "toolu_large"),
        text("Both refunds are done."),
    ]

    failed: list[BaseException] = []

    def reviewer() -> None:
        try:
            if session.escalated.wait(timeout=180) and session.handoff_id:
                approve(session.handoff_id)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            failed.append(error)

    home = tmp_path / "home"
    home.mkdir()
    with MessagesStub(turns, tool_marker="mcp__shop__") as stub:
        hooks = TollgateHooks(session, wait_seconds=60)
        options = sdk.ClaudeAgentOptions(
            mcp_servers={"shop": shop(ledger)},
            allowed_tools=["mcp__shop__get_customer", "mcp__shop__lookup_order", refund],
            hooks=hooks.hooks(matcher="mcp__shop__.*"),
            max_turns=12,
            env={
                "ANTHROPIC_BASE_URL": stub.url,
                "ANTHROPIC_API_KEY": "sk-ant-test",
                "HOME": str(home),
                "CLAUDE_CONFIG_DIR": str(home / ".claude"),
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
                # MCP tools offered outright, not behind ToolSearch.
                "ENABLE_TOOL_SEARCH": "false",
            },
            cwd=str(tmp_path),
        )

        async def run() -> list[Any]:
            return [message async for message in sdk.query(prompt="Refund $30 and $800 on order #W1.", options=options)]

        thread = threading.Thread(target=reviewer)
        thread.start()
        try:
            messages = asyncio.run(asyncio.wait_for(run(), timeout=120))
        finally:
            session.escalated.set()  # the run ended: the reviewer stops waiting
            thread.join()
        results = stub.tool_results()

    assert not failed, failed
    assert messages, "the CLI answered"
    # The early refund was denied, and its reason reached the model.
    assert any("Tollgate blocked process_refund" in r and "verify the customer" in r for r in results), results
    # Only the two allowed refunds ran: $30, then $800 once the reviewer approved.
    assert [e["result"]["args"]["amount"] for e in ledger.entries()] == [30, 800]
    handoff = engine.handoff(session.handoff_id or "")
    assert handoff.status == "approved" and handoff.claimed_by == "Ann" and handoff.consumed_by == "toolu_large.approved"
    assert session.inner.in_doubt() == []
