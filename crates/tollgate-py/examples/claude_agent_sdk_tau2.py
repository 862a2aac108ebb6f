"""The Claude Agent SDK on the τ²-retail workflow, gated by Tollgate hooks.

    python examples/claude_agent_sdk_tau2.py --scripted    # a loopback Messages API stub, no network
    ANTHROPIC_API_KEY=... python examples/claude_agent_sdk_tau2.py

The tools are an in-process MCP server (`mcp__retail__*`); Tollgate's
PreToolUse hook decides each call (a refusal is a deny whose reason Claude
reads), PostToolUse records each result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import claude_agent_sdk as sdk

import tollgate
from tau2_retail import EMAIL, ORDER, PROMPT, Retail, Timeline, session
from tollgate.adapters.claude_agent_sdk import TollgateHooks


def retail_server(retail: Retail) -> Any:
    def reply(value: Any) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": json.dumps(value)}]}

    @sdk.tool("find_user_id_by_email", "Find a user id by email.", {"email": str})
    async def find_user_id_by_email(args: dict[str, Any]) -> dict[str, Any]:
        return reply(retail.find_user_id_by_email(args["email"]))

    @sdk.tool("get_order_details", "Read an order.", {"order_id": str})
    async def get_order_details(args: dict[str, Any]) -> dict[str, Any]:
        return reply(retail.get_order_details(args["order_id"]))

    @sdk.tool("cancel_pending_order", "Cancel a pending order.", {"order_id": str, "reason": str})
    async def cancel_pending_order(args: dict[str, Any]) -> dict[str, Any]:
        return reply(retail.cancel_pending_order(args["order_id"], args["reason"]))

    return sdk.create_sdk_mcp_server("retail", tools=[find_user_id_by_email, get_order_details, cancel_pending_order])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scripted", action="store_true", help="a loopback Messages API stub instead of Claude")
    parser.add_argument("--db", default=str(Path(tempfile.mkdtemp()) / "tollgate-example.db"))
    options = parser.parse_args()

    engine = tollgate.Engine(options.db)
    tg = Timeline(session(engine, "claude-tau2"))
    retail = Retail()
    hooks = TollgateHooks(tg, wait_seconds=300)  # an escalation waits up to 5 minutes for the desk
    env = {"ENABLE_TOOL_SEARCH": "false"}  # offer the MCP tools outright
    stub = None
    if options.scripted:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from messages_stub import MessagesStub, text, tool_use

        name = "mcp__retail__"
        stub = MessagesStub(
            [
                tool_use(name + "cancel_pending_order", {"order_id": ORDER, "reason": "no longer needed"}, "toolu_1"),
                tool_use(name + "find_user_id_by_email", {"email": EMAIL}, "toolu_2"),
                tool_use(name + "get_order_details", {"order_id": ORDER}, "toolu_3"),
                tool_use(name + "cancel_pending_order", {"order_id": ORDER, "reason": "I changed my mind"}, "toolu_4"),
                tool_use(name + "cancel_pending_order", {"order_id": ORDER, "reason": "no longer needed"}, "toolu_5"),
                text(f"Order {ORDER} is cancelled."),
            ],
            tool_marker=name,
        ).__enter__()
        home = tempfile.mkdtemp()
        env |= {
            "ANTHROPIC_BASE_URL": stub.url,
            "ANTHROPIC_API_KEY": "sk-ant-scripted",
            "HOME": home,
            "CLAUDE_CONFIG_DIR": os.path.join(home, ".claude"),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
    options_sdk = sdk.ClaudeAgentOptions(
        system_prompt="You are a τ²-bench retail agent.",
        mcp_servers={"retail": retail_server(retail)},
        allowed_tools=["mcp__retail__find_user_id_by_email", "mcp__retail__get_order_details", "mcp__retail__cancel_pending_order"],
        hooks=hooks.hooks(matcher="mcp__retail__.*"),
        max_turns=12,
        env=env,
    )

    async def run() -> None:
        async for message in sdk.query(prompt=PROMPT, options=options_sdk):
            if isinstance(message, sdk.ResultMessage):
                print(message.result)

    try:
        asyncio.run(run())
    finally:
        if stub is not None:
            stub.__exit__(None, None, None)
    print("cancelled:", retail.cancelled)
    assert retail.cancelled == [ORDER], "exactly the careful cancellation ran"
    assert engine.verify_audit()["intact"]


if __name__ == "__main__":
    main()
