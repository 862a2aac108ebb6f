"""The OpenAI Agents SDK on the τ²-retail workflow, gated by Tollgate.

    python examples/openai_agents_tau2.py --scripted     # the SDK's ScriptedModel, no network
    OPENAI_API_KEY=... python examples/openai_agents_tau2.py

The agent cancels a pending order. Tollgate refuses the cancellation until
the user is authenticated and the order read (R-AUTH, R-CHECK-STATUS-FIRST),
refuses an unaccepted reason (R-CANCEL-REASON), and lets the careful call
through; every decision and result is journaled and audited in
tollgate-example.db (`tollgate sessions show oai-tau2 --db tollgate-example.db`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import agents

import tollgate
from tau2_retail import EMAIL, ORDER, PROMPT, Retail, Timeline, session
from tollgate.adapters.openai_agents import gate, resolve_interruptions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scripted", action="store_true", help="a scripted model instead of OpenAI's")
    parser.add_argument("--db", default=str(Path(tempfile.mkdtemp()) / "tollgate-example.db"))
    options = parser.parse_args()

    engine = tollgate.Engine(options.db)
    tg = Timeline(session(engine, "oai-tau2"))
    retail = Retail()

    @agents.function_tool
    def find_user_id_by_email(email: str) -> str:
        """Find a user id by email."""
        return json.dumps(retail.find_user_id_by_email(email))

    @agents.function_tool
    def get_order_details(order_id: str) -> str:
        """Read an order: its user, status, items and payment history."""
        return json.dumps(retail.get_order_details(order_id))

    @agents.function_tool
    def cancel_pending_order(order_id: str, reason: str) -> str:
        """Cancel a pending order ('no longer needed' or 'ordered by mistake')."""
        return json.dumps(retail.cancel_pending_order(order_id, reason))

    tools = gate(tg, [find_user_id_by_email, get_order_details, cancel_pending_order])
    model: object = "gpt-4.1"
    if options.scripted:
        from agents.testing.model import ScriptedModel, assistant_message, function_call

        agents.set_tracing_disabled(True)
        model = ScriptedModel(
            [
                [function_call("cancel_pending_order", {"order_id": ORDER, "reason": "no longer needed"}, call_id="c1")],
                [function_call("find_user_id_by_email", {"email": EMAIL}, call_id="c2")],
                [function_call("get_order_details", {"order_id": ORDER}, call_id="c3")],
                [function_call("cancel_pending_order", {"order_id": ORDER, "reason": "I changed my mind"}, call_id="c4")],
                [function_call("cancel_pending_order", {"order_id": ORDER, "reason": "no longer needed"}, call_id="c5")],
                [assistant_message(f"Order {ORDER} is cancelled.")],
            ]
        )
    agent = agents.Agent(
        name="retail", instructions="You are a τ²-bench retail agent.", model=model, tools=tools  # type: ignore[arg-type]
    )

    async def run() -> str:
        result = await agents.Runner.run(agent, PROMPT)
        while result.interruptions:  # escalations (none in this workflow): wait for the desk's decision
            result = await agents.Runner.run(agent, await resolve_interruptions(tg, result))
        return str(result.final_output)

    print(asyncio.run(run()))
    for entry in engine._native.handoffs([], 10):
        print("handoff:", entry["id"], entry["status"])
    print("cancelled:", retail.cancelled)
    assert retail.cancelled == [ORDER], "exactly the careful cancellation ran"
    assert engine.verify_audit()["intact"]


if __name__ == "__main__":
    main()
