"""A Claude Agent SDK agent in a process of its own, for test_crash.py: the
Claude Code CLI bundled in claude-agent-sdk, driven by a loopback Messages
API stub, with Tollgate's hooks over an in-process MCP server whose refund
tool writes its side effect to a ledger that does not deduplicate (a second
run of the tool would show). With `--die-in-refund` the refund's side
effect is written and the process then waits to be killed before the tool
returns (before PostToolUse records its result). Run again, the
conversation is the same, with the same tool_use ids."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import claude_agent_sdk as sdk  # noqa: E402

import tollgate  # noqa: E402
from conftest import ALICE, EXAMPLES, Ledger, order  # noqa: E402
from messages_stub import MessagesStub, text, tool_use  # noqa: E402
from tollgate.adapters.claude_agent_sdk import TollgateHooks  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--die-in-refund", action="store_true")
    options = parser.parse_args()
    engine = tollgate.Engine(options.db)
    session = engine.session("claude-crash", engine.workflow(EXAMPLES / "support-refunds.toml"))
    ledger = Ledger(Path(options.ledger))

    def reply(value: Any) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": json.dumps(value)}]}

    @sdk.tool("get_customer", "Verify a customer", {"email": str, "zip": str})
    async def get_customer(args: dict[str, Any]) -> dict[str, Any]:
        return reply(ALICE)

    @sdk.tool("lookup_order", "Read an order", {"order_id": str})
    async def lookup_order(args: dict[str, Any]) -> dict[str, Any]:
        return reply(order(args["order_id"], 120.0))

    @sdk.tool("process_refund", "Refund an order", {"order_id": str, "amount": float})
    async def process_refund(args: dict[str, Any]) -> dict[str, Any]:
        result = ledger.run(None, "process_refund", args)
        if options.die_in_refund:
            print("ran toolu_refund", flush=True)
            sys.stdin.read()  # the parent kills us here
        return reply(result)

    shop = sdk.create_sdk_mcp_server("shop", tools=[get_customer, lookup_order, process_refund])
    turns = [
        tool_use("mcp__shop__get_customer", {"email": "alice@example.com", "zip": "94107"}, "toolu_verify"),
        tool_use("mcp__shop__lookup_order", {"order_id": "#W1"}, "toolu_lookup"),
        tool_use("mcp__shop__process_refund", {"order_id": "#W1", "amount": 40}, "toolu_refund"),
        text("Done."),
    ]
    home = Path(options.home)
    home.mkdir(exist_ok=True)
    with MessagesStub(turns, tool_marker="mcp__shop__") as stub:
        hooks = TollgateHooks(session)
        sdk_options = sdk.ClaudeAgentOptions(
            mcp_servers={"shop": shop},
            allowed_tools=["mcp__shop__get_customer", "mcp__shop__lookup_order", "mcp__shop__process_refund"],
            hooks=hooks.hooks(matcher="mcp__shop__.*"),
            max_turns=8,
            env={
                "ANTHROPIC_BASE_URL": stub.url,
                "ANTHROPIC_API_KEY": "sk-ant-test",
                "HOME": str(home),
                "CLAUDE_CONFIG_DIR": str(home / ".claude"),
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
                "ENABLE_TOOL_SEARCH": "false",
            },
            cwd=str(home),
        )

        async def run() -> list[Any]:
            return [m async for m in sdk.query(prompt="Refund $40 on order #W1.", options=sdk_options)]

        asyncio.run(asyncio.wait_for(run(), timeout=120))
        results = stub.tool_results()
    in_doubt = [[c.call_id, c.idempotency_key] for c in session.in_doubt()]
    print(json.dumps({"results": results, "in_doubt": in_doubt}), flush=True)


if __name__ == "__main__":
    main()
