"""The LangGraph adapter with the real langgraph package and langchain-core's
own fake chat model (no network): a gated call is answered with its reason,
the careful path runs, an escalation is an interrupt() resumed with the
reviewer's decision, and a node re-run on resume does not run a side effect
again."""

from __future__ import annotations

import json
from typing import Any

import pytest

import tollgate
from conftest import ALICE, Desk, order

pytest.importorskip("langgraph")
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel  # noqa: E402
from langchain_core.messages import AIMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import tools_condition  # noqa: E402

from tollgate.adapters.langgraph import gated_tool_node, idempotency_key, resume_with_outcome  # noqa: E402


def calls(*items: tuple[str, dict[str, Any], str]) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": n, "args": a, "id": i, "type": "tool_call"} for n, a, i in items])


class Shop:
    """The tools, counting every time a refund really runs (no
    deduplication here: a re-run would show)."""

    def __init__(self) -> None:
        self.refunds: list[tuple[float, str | None]] = []
        shop = self

        @tool
        def get_customer(email: str, zip: str) -> str:
            """Verify a customer."""
            return json.dumps(ALICE)

        @tool
        def lookup_order(order_id: str) -> str:
            """Read an order."""
            return json.dumps(order(order_id, 2000.0))

        @tool
        def process_refund(order_id: str, amount: float) -> str:
            """Refund part of an order."""
            shop.refunds.append((amount, idempotency_key()))
            return json.dumps({"refund_id": f"rf_{len(shop.refunds)}"})

        self.tools = [get_customer, lookup_order, process_refund]


def graph(session: Any, shop: Shop, script: list[AIMessage]) -> Any:
    model = FakeMessagesListChatModel(responses=script)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", gated_tool_node(shop.tools, session))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=InMemorySaver())


def tool_messages(state: dict[str, Any]) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in state["messages"] if isinstance(m, ToolMessage)}


def test_gated_tool_node_blocks_runs_and_interrupts(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    session = engine.session("lg-1", refunds)
    shop = Shop()
    script = [
        calls(("process_refund", {"order_id": "#W1", "amount": 30}, "early")),
        calls(("get_customer", {"email": "alice@example.com", "zip": "94107"}, "verify")),
        calls(("lookup_order", {"order_id": "#W1"}, "lookup")),
        # Two calls in one step: the small refund runs, the large one escalates.
        calls(
            ("process_refund", {"order_id": "#W1", "amount": 30}, "small"),
            ("process_refund", {"order_id": "#W1", "amount": 800}, "large"),
        ),
        AIMessage(content="Both refunds are done."),
    ]
    app = graph(session, shop, script)
    config = {"configurable": {"thread_id": "t1"}}
    state = app.invoke({"messages": [("user", "Refund $30 and $800 on #W1")]}, config)

    pending = state["__interrupt__"]
    assert [p.value["call_id"] for p in pending] == ["large"]
    assert pending[0].value["handoff_id"].startswith("h_")
    seen = tool_messages(state)
    assert seen["early"].status == "error" and "Tollgate blocked process_refund" in seen["early"].content
    assert [amount for amount, _ in shop.refunds] == [30]

    engine.claim(pending[0].value["handoff_id"], "Ann")
    engine.approve(pending[0].value["handoff_id"], "Ann", expires_in_seconds=600)
    state = app.invoke(resume_with_outcome(session, pending, timeout=30), config)

    # The node ran again on resume; the $30 refund was not run a second time.
    assert [amount for amount, _ in shop.refunds] == [30, 800]
    assert [key for _, key in shop.refunds] == ["lg-1/process_refund:small", "lg-1/process_refund:large.approved"]
    assert state["messages"][-1].content == "Both refunds are done."
    assert tool_messages(state)["small"].content == json.dumps({"refund_id": "rf_1"})
    assert session.in_doubt() == []


def test_a_denied_escalation_resumes_as_a_refusal(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    session = engine.session("lg-2", refunds)
    shop = Shop()
    script = [
        calls(("get_customer", {"email": "alice@example.com", "zip": "94107"}, "verify")),
        calls(("lookup_order", {"order_id": "#W1"}, "lookup")),
        calls(("process_refund", {"order_id": "#W1", "amount": 900}, "big")),
        AIMessage(content="I could not refund it."),
    ]
    app = graph(session, shop, script)
    config = {"configurable": {"thread_id": "t2"}}
    state = app.invoke({"messages": [("user", "Refund $900 on #W1")]}, config)
    handoff = state["__interrupt__"][0].value["handoff_id"]
    engine.claim(handoff, "Ann")
    engine.deny(handoff, "Ann", "refunds of this size go through finance")
    # Even a resume value claiming approval cannot make the call run.
    from langgraph.types import Command

    state = app.invoke(Command(resume={"status": "approved"}), config)
    refused = tool_messages(state)["big"]
    assert refused.status == "error" and "finance" in refused.content
    assert shop.refunds == []


def test_a_session_per_thread(engine: tollgate.Engine, refunds: tollgate.Workflow) -> None:
    shop = Shop()
    script = [calls(("process_refund", {"order_id": "#W1", "amount": 30}, "c1")), AIMessage(content="no")]
    app = graph(lambda thread: engine.session(f"thread-{thread}", refunds), shop, script)
    state = app.invoke({"messages": [("user", "refund")]}, {"configurable": {"thread_id": "42"}})
    assert tool_messages(state)["c1"].status == "error"
    assert engine.session("thread-42").in_doubt() == []


def test_the_desks_approval_resumes_the_graph(engine: tollgate.Engine, refunds: tollgate.Workflow, desk: Desk) -> None:
    """The reviewer approves on the desk of a running `tollgate serve` (its
    sign-in, its page, its forms), not through the engine: the interrupted
    graph resumes with that decision and the refund runs once."""
    session = engine.session("lg-desk", refunds)
    shop = Shop()
    script = [
        calls(("get_customer", {"email": "alice@example.com", "zip": "94107"}, "verify")),
        calls(("lookup_order", {"order_id": "#W1"}, "lookup")),
        calls(("process_refund", {"order_id": "#W1", "amount": 800}, "large")),
        AIMessage(content="Refunded."),
    ]
    app = graph(session, shop, script)
    config = {"configurable": {"thread_id": "t-desk"}}
    state = app.invoke({"messages": [("user", "Refund $800 on #W1")]}, config)
    pending = state["__interrupt__"]
    assert [p.value["call_id"] for p in pending] == ["large"] and shop.refunds == []

    handoff = pending[0].value["handoff_id"]
    desk.approve(handoff)
    resume = resume_with_outcome(session, pending, timeout=30)
    assert list(resume.resume.values()) == [{"status": "approved", "reviewer": "Ann", "reason": None}]
    state = app.invoke(resume, config)

    assert shop.refunds == [(800, "lg-desk/process_refund:large.approved")]
    assert state["messages"][-1].content == "Refunded."
    assert engine.handoff(handoff).consumed_by == "large.approved"
    assert session.in_doubt() == []
