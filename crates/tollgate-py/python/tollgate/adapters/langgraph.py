"""LangGraph: a `ToolNode` whose every tool call goes through Tollgate.

    from tollgate.adapters.langgraph import gated_tool_node, resume_with_outcome

    tools = gated_tool_node([get_order_details, cancel_pending_order], session)
    graph = builder.add_node("tools", tools)...compile(checkpointer=saver)
    state = graph.invoke({"messages": [...]}, config)
    while state.get("__interrupt__"):                     # escalations waiting for a person
        state = graph.invoke(resume_with_outcome(session, state["__interrupt__"]), config)

- A blocked call does not run: the node answers it with a `ToolMessage`
  (status `error`) carrying the rule's message, which the model reads.
- An escalated call is an `interrupt()` carrying the handoff. The resume
  value is the reviewer's decision as the graph hears it
  (`resume_with_outcome` waits for it on the desk); Tollgate itself decides
  the call again, so only an approval recorded by a reviewer lets it run,
  once, whatever the resume value says.
- An allowed call runs with its idempotency key in `idempotency_key()` (for
  the tool to pass to its backend); its result is recorded (a withheld one
  is replaced by a message saying so).
- Checkpoint-safe: a node re-run after a resume (or a crash) decides each
  call again under the same id and gets the recorded decision back; a call
  whose result was recorded is answered from the journal and not run again;
  one allowed but never answered (in doubt) is re-driven with the same key.

`session` is a session of either backend, or a function of the graph's
`thread_id` returning one. Any failure inside is a block.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any, Callable, Sequence, Union

from .._native import Decision
from ._common import GatedSession, decide_safely, result_of

APPROVED_SUFFIX = ".approved"
_KEY: ContextVar[str | None] = ContextVar("tollgate_idempotency_key", default=None)


def idempotency_key() -> str | None:
    """The idempotency key of the allowed side effect being run, inside a
    gated tool: give it to the backend so a re-driven call is done once."""
    return _KEY.get()


SessionSource = Union[GatedSession, Callable[[str], GatedSession]]


def _session_of(source: SessionSource, request: Any) -> GatedSession:
    if hasattr(source, "decide"):
        return source  # type: ignore[return-value]
    config = getattr(getattr(request, "runtime", None), "config", None) or {}
    thread = (config.get("configurable") or {}).get("thread_id")
    if not thread:
        raise ValueError("a session per thread needs the graph's config to carry a thread_id")
    return source(str(thread))  # type: ignore[operator]


def _refusal(decision: Decision, call: dict[str, Any]) -> Any:
    from langchain_core.messages import ToolMessage

    return ToolMessage(content=decision.message, name=call["name"], tool_call_id=call["id"], status="error")


def _from_journal(prior: dict[str, Any], call: dict[str, Any]) -> Any:
    from langchain_core.messages import ToolMessage

    outcome = prior.get("outcome")
    if outcome == "succeeded":
        result = prior.get("result")
        content = result if isinstance(result, str) else json.dumps(result)
        return ToolMessage(content=content, name=call["name"], tool_call_id=call["id"])
    if outcome == "failed":
        return ToolMessage(content=f"the tool failed: {prior.get('result')}", name=call["name"], tool_call_id=call["id"], status="error")
    return ToolMessage(
        content="Tollgate withheld this result: a result check failed; its content must not be used.",
        name=call["name"],
        tool_call_id=call["id"],
        status="error",
    )


def _interrupted(session: GatedSession, decision: Decision, call: dict[str, Any]) -> Decision:
    from langgraph.types import interrupt

    interrupt(
        {
            "tollgate": "escalated",
            "session": session.id,
            "call_id": call["id"],
            "tool": call["name"],
            "args": call.get("args") or {},
            "handoff_id": decision.handoff_id,
            "urgency": decision.urgency,
            "message": decision.message,
        }
    )
    # Resumed: whatever the resume value says, the engine decides whether a
    # reviewer's approval covers this call (once).
    return decide_safely(session, call["name"], call.get("args") or {}, call["id"] + APPROVED_SUFFIX)


def tool_call_wrapper(source: SessionSource) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """The `wrap_tool_call` of a gated `ToolNode`."""
    from langchain_core.messages import ToolMessage

    def wrap(request: Any, execute: Callable[[Any], Any]) -> Any:
        call = request.tool_call
        try:
            session = _session_of(source, request)
        except Exception as error:  # noqa: BLE001 - every failure is a block
            return _refusal(Decision.failure(call["id"], call["name"], "bad_request", str(error)), call)
        decision = decide_safely(session, call["name"], call.get("args") or {}, call["id"])
        if decision.escalated:
            decision = _interrupted(session, decision, call)
        if not decision.allowed:
            return _refusal(decision, call)
        if decision.replayed:
            prior = session.recorded_result(decision.call_id)  # type: ignore[attr-defined]
            if prior is not None:
                return _from_journal(prior, call)
        token = _KEY.set(decision.idempotency_key)
        try:
            output = execute(request)
        except Exception as error:
            session.record(decision.call_id, None, error=f"{type(error).__name__}: {error}")
            raise
        finally:
            _KEY.reset(token)
        if isinstance(output, ToolMessage):
            if output.status == "error":
                session.record(decision.call_id, None, error=str(output.content))
            else:
                recorded = session.record(decision.call_id, result_of(output.content))
                if getattr(recorded, "withheld", False):
                    return _from_journal({"outcome": "withheld"}, call)
        return output

    return wrap


def gated_tool_node(tools: Sequence[Any], session: SessionSource, **options: Any) -> Any:
    """A `ToolNode` over `tools` whose every call goes through Tollgate
    (`options` are the ToolNode's own)."""
    from langgraph.prebuilt import ToolNode

    return ToolNode(tools, wrap_tool_call=tool_call_wrapper(session), **options)


def resume_with_outcome(session: GatedSession, interrupts: Sequence[Any], timeout: float = 600.0) -> Any:
    """Waits for the reviewer's decision on each Tollgate escalation among
    `interrupts` and returns the `Command(resume=...)` that resumes the
    graph with them (`{interrupt id: {status, reviewer, reason}}`)."""
    from langgraph.types import Command

    answers: dict[str, Any] = {}
    for pending in interrupts:
        value = getattr(pending, "value", None)
        if not isinstance(value, dict) or value.get("tollgate") != "escalated":
            continue
        handoff = session.wait(value["handoff_id"], timeout)
        answers[pending.id] = {"status": handoff.status, "reviewer": handoff.claimed_by, "reason": handoff.reason}
    return Command(resume=answers)
