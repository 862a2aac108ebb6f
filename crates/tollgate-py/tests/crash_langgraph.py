"""A LangGraph agent in a process of its own, for test_crash.py: the gated
tool node runs a refund against a ledger keyed by `idempotency_key()`. With
`--die-in-refund` the refund's side effect is written and the process then
waits to be killed before the tool returns (before its result is recorded).
Run again, the graph starts over with the same tool-call ids."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel  # noqa: E402
from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import tools_condition  # noqa: E402

import tollgate  # noqa: E402
from conftest import ALICE, EXAMPLES, Ledger, order  # noqa: E402
from tollgate.adapters.langgraph import gated_tool_node, idempotency_key  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--die-in-refund", action="store_true")
    options = parser.parse_args()
    engine = tollgate.Engine(options.db)
    session = engine.session("lg-crash", engine.workflow(EXAMPLES / "support-refunds.toml"))
    ledger = Ledger(Path(options.ledger))
    runs: list[str] = []

    @tool
    def get_customer(email: str, zip: str) -> str:
        """Verify a customer."""
        runs.append("get_customer")
        return json.dumps(ALICE)

    @tool
    def lookup_order(order_id: str) -> str:
        """Read an order."""
        runs.append("lookup_order")
        return json.dumps(order(order_id, 120.0))

    @tool
    def process_refund(order_id: str, amount: float) -> str:
        """Refund part of an order."""
        runs.append("process_refund")
        result = ledger.run(idempotency_key(), "process_refund", {"order_id": order_id, "amount": amount})
        if options.die_in_refund:
            print(f"ran {idempotency_key()}", flush=True)
            sys.stdin.read()  # the parent kills us here
        return json.dumps(result)

    def step(name: str, args: dict[str, Any], id: str) -> AIMessage:
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": id, "type": "tool_call"}])

    model = FakeMessagesListChatModel(
        responses=[
            step("get_customer", {"email": "alice@example.com", "zip": "94107"}, "verify"),
            step("lookup_order", {"order_id": "#W1"}, "lookup"),
            step("process_refund", {"order_id": "#W1", "amount": 40}, "refund"),
            AIMessage(content="Refunded."),
        ]
    )

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", gated_tool_node([get_customer, lookup_order, process_refund], session))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    state = builder.compile().invoke({"messages": [("user", "Refund $40 on #W1")]})
    print(json.dumps({"runs": runs, "last": state["messages"][-1].content, "in_doubt": [c.call_id for c in session.in_doubt()]}))


if __name__ == "__main__":
    main()
