"""LangGraph on the τ²-retail workflow, gated by Tollgate.

    python examples/langgraph_tau2.py --scripted     # langchain-core's fake chat model, no network

Without --scripted, put your chat model (bound to the tools) in `model`.
The graph is the usual agent ⇄ tools loop; the tools node is
`gated_tool_node`: a refused call is answered with the rule's message, an
escalation is an `interrupt()` resumed with the reviewer's decision, and a
node re-run on resume does not run a side effect twice.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

import tollgate
from tau2_retail import EMAIL, ORDER, PROMPT, Retail, Timeline, session
from tollgate.adapters.langgraph import gated_tool_node, resume_with_outcome


def call(name: str, args: dict[str, Any], id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": id, "type": "tool_call"}])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scripted", action="store_true", help="a scripted chat model")
    parser.add_argument("--db", default=str(Path(tempfile.mkdtemp()) / "tollgate-example.db"))
    options = parser.parse_args()
    if not options.scripted:
        raise SystemExit("put your chat model in `model` (bound to the tools), or run with --scripted")

    engine = tollgate.Engine(options.db)
    tg = Timeline(session(engine, "lg-tau2"))
    retail = Retail()

    @tool
    def find_user_id_by_email(email: str) -> str:
        """Find a user id by email."""
        return json.dumps(retail.find_user_id_by_email(email))

    @tool
    def get_order_details(order_id: str) -> str:
        """Read an order: its user, status, items and payment history."""
        return json.dumps(retail.get_order_details(order_id))

    @tool
    def cancel_pending_order(order_id: str, reason: str) -> str:
        """Cancel a pending order ('no longer needed' or 'ordered by mistake')."""
        return json.dumps(retail.cancel_pending_order(order_id, reason))

    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel

    model = FakeMessagesListChatModel(
        responses=[
            call("cancel_pending_order", {"order_id": ORDER, "reason": "no longer needed"}, "c1"),
            call("find_user_id_by_email", {"email": EMAIL}, "c2"),
            call("get_order_details", {"order_id": ORDER}, "c3"),
            call("cancel_pending_order", {"order_id": ORDER, "reason": "I changed my mind"}, "c4"),
            call("cancel_pending_order", {"order_id": ORDER, "reason": "no longer needed"}, "c5"),
            AIMessage(content=f"Order {ORDER} is cancelled."),
        ]
    )

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", gated_tool_node([find_user_id_by_email, get_order_details, cancel_pending_order], tg))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    graph = builder.compile(checkpointer=InMemorySaver())

    config = {"configurable": {"thread_id": "lg-tau2"}}
    state = graph.invoke({"messages": [("user", PROMPT)]}, config)
    while state.get("__interrupt__"):  # escalations (none in this workflow): the desk's decision resumes
        state = graph.invoke(resume_with_outcome(tg, state["__interrupt__"]), config)
    print(state["messages"][-1].content)
    print("cancelled:", retail.cancelled)
    assert retail.cancelled == [ORDER], "exactly the careful cancellation ran"
    assert engine.verify_audit()["intact"]


if __name__ == "__main__":
    main()
