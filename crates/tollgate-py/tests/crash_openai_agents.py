"""An OpenAI Agents SDK agent in a process of its own, for test_crash.py:
gated function tools and the SDK's own scripted model (no network); the
refund tool writes its side effect to a ledger that does not deduplicate
(a second run of the tool would show). With `--die-in-refund` the refund's
side effect is written and the process then waits to be killed before the
tool returns (before its result is recorded). Run again, the agent starts
over with the same call ids."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agents  # noqa: E402
from agents.testing.model import ScriptedModel, assistant_message, function_call  # noqa: E402

import tollgate  # noqa: E402
from conftest import ALICE, EXAMPLES, Ledger, order  # noqa: E402
from tollgate.adapters.openai_agents import gate  # noqa: E402

agents.set_tracing_disabled(True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--die-in-refund", action="store_true")
    options = parser.parse_args()
    engine = tollgate.Engine(options.db)
    session = engine.session("oai-crash", engine.workflow(EXAMPLES / "support-refunds.toml"))
    ledger = Ledger(Path(options.ledger))

    @agents.function_tool
    def get_customer(email: str, zip: str) -> str:
        """Verify a customer by email and zip code."""
        return json.dumps(ALICE)

    @agents.function_tool
    def lookup_order(order_id: str) -> str:
        """Read an order."""
        return json.dumps(order(order_id, 120.0))

    @agents.function_tool
    def process_refund(order_id: str, amount: float) -> str:
        """Refund part of an order."""
        result = ledger.run(None, "process_refund", {"order_id": order_id, "amount": amount})
        if options.die_in_refund:
            print("ran call_refund", flush=True)
            sys.stdin.read()  # the parent kills us here
        return json.dumps(result)

    model = ScriptedModel(
        [
            [function_call("get_customer", {"email": "alice@example.com", "zip": "94107"}, call_id="call_verify")],
            [function_call("lookup_order", {"order_id": "#W1"}, call_id="call_lookup")],
            [function_call("process_refund", {"order_id": "#W1", "amount": 40.0}, call_id="call_refund")],
            [assistant_message("Done.")],
        ]
    )
    agent = agents.Agent(name="support", model=model, tools=gate(session, [get_customer, lookup_order, process_refund]))
    result = asyncio.run(agents.Runner.run(agent, "Refund $40 on #W1."))
    seen: dict[str, str] = {}
    for call in model.calls:
        for item in call.input if isinstance(call.input, list) else []:
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                seen[item["call_id"]] = str(item.get("output"))
    in_doubt = [[c.call_id, c.idempotency_key] for c in session.in_doubt()]
    print(json.dumps({"final": result.final_output, "seen": seen, "in_doubt": in_doubt}), flush=True)


if __name__ == "__main__":
    main()
