"""OpenAI Agents SDK: every call of a function tool decided by Tollgate.

    from tollgate.adapters.openai_agents import gate, resolve_interruptions

    agent = Agent(name="support", tools=gate(session, [get_order_details, cancel_pending_order]))
    result = await Runner.run(agent, "cancel #W1")
    while result.interruptions:                      # escalations waiting for a person
        state = await resolve_interruptions(session, result, timeout=600)
        result = await Runner.run(agent, state)

`gate` sets three of the SDK's own hooks on each tool:

- `needs_approval` decides the call (under the SDK's call id). An escalation
  is the SDK's approval interruption: the run pauses with a
  `ToolApprovalItem`, and `resolve_interruptions` waits for the reviewer's
  decision on the handoff desk and approves or rejects the item with it.
- a tool input guardrail: a blocked call is rejected with the rule's
  message, which reaches the model as the tool's output; an approved
  escalation is decided again (the approval covers the identical call once)
  and runs only if that is an allow. The guardrail runs on every call, so a
  call is never run on the strength of the approval step alone.
- a tool output guardrail: the result is recorded; a result that a result
  check withholds is replaced by a message saying so.

Resumed runs (the process stopped and the run started again with the same
call ids): a call allowed before is not run a second time. One whose result
was recorded is answered with that result; one in doubt (allowed, never
answered: the crash came between the decision and the result) is refused
with a message saying it may have taken effect, with its idempotency key,
and stays in `session.in_doubt()` for a person to settle.

MCP servers: `gate_mcp(session, server)` sets the server's tool input and
output guardrails (the SDK's `require_approval` for MCP tools does not see a
call's arguments, so it cannot ask Tollgate): a block is rejected with its
reason; an escalation is rejected too, saying a person decides, and the
identical call retried after the reviewer's approval is allowed (once).

Any failure inside is a block. Tool names are the function tools' (and MCP
tools') names.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Iterable

from .._native import Decision
from ._common import WITHHELD, GatedSession, answer_from_journal, decide_safely, result_of

APPROVED_SUFFIX = ".approved"


def _args(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw or "{}")
        except ValueError:
            return raw
    return raw


class Gate:
    """The guardrails and approval check of one session."""

    def __init__(self, session: GatedSession) -> None:
        self.session = session
        # SDK call id -> the decision Tollgate made for it (the escalation's
        # handoff, for resolve_interruptions).
        self.decisions: dict[str, Decision] = {}
        # SDK call id -> the call id its result is recorded under.
        self.recorded_as: dict[str, str] = {}
        # Call ids this gate decided first (not replayed from the journal).
        self.fresh: set[str] = set()

    async def _decide(self, tool: str, args: Any, call_id: str) -> Decision:
        decision = await asyncio.to_thread(decide_safely, self.session, tool, args, call_id)
        if not decision.replayed:
            self.fresh.add(call_id)
        return decision

    async def decide(self, tool: str, args: Any, call_id: str) -> Decision:
        decision = await self._decide(tool, args, call_id)
        self.decisions[call_id] = decision
        return decision

    async def resumed(self, decision: Decision) -> str | None:
        """The answer to an allowed call a resumed run decides again (the
        journal's, see `answer_from_journal`), or `None` to run it."""
        if decision.call_id in self.fresh:
            return None
        return await asyncio.to_thread(answer_from_journal, self.session, decision)

    async def needs_approval(self, tool: str, args: Any, call_id: str) -> bool:
        return (await self.decide(tool, args, call_id)).escalated

    async def check_input(self, tool: str, raw_args: Any, call_id: str) -> Any:
        from agents import ToolGuardrailFunctionOutput

        args = _args(raw_args)
        decision = await self.decide(tool, args, call_id)
        if decision.escalated:
            # Reached only once the SDK's approval step let it through: the
            # reviewer's approval, if there is one, covers this very call once.
            decision = await self._decide(tool, args, call_id + APPROVED_SUFFIX)
        if decision.allowed and (answer := await self.resumed(decision)) is not None:
            return ToolGuardrailFunctionOutput.reject_content(answer, output_info={"tollgate": decision.to_json()})
        if decision.allowed:
            self.recorded_as[call_id] = decision.call_id
            return ToolGuardrailFunctionOutput.allow(output_info={"tollgate": decision.to_json()})
        return ToolGuardrailFunctionOutput.reject_content(decision.message, output_info={"tollgate": decision.to_json()})

    async def check_output(self, call_id: str, output: Any) -> Any:
        from agents import ToolGuardrailFunctionOutput

        recorded_call = self.recorded_as.pop(call_id, call_id)
        recorded = await asyncio.to_thread(self.session.record, recorded_call, result_of(output))
        if getattr(recorded, "withheld", False):
            return ToolGuardrailFunctionOutput.reject_content(WITHHELD)
        return ToolGuardrailFunctionOutput.allow()


def gate(session: GatedSession, tools: Iterable[Any]) -> list[Any]:
    """The function tools, each put through `session` (changed in place and
    returned): decided before it runs, its result recorded after."""
    from agents import FunctionTool, tool_input_guardrail, tool_output_guardrail

    checks = Gate(session)
    gated = []
    for tool in tools:
        if not isinstance(tool, FunctionTool):
            raise TypeError(f"tollgate can gate function tools; {tool!r} is not one")
        name = tool.name

        async def needs_approval(context: Any, params: dict[str, Any], call_id: str, name: str = name) -> bool:
            return await checks.needs_approval(name, params, call_id)

        @tool_input_guardrail(name=f"tollgate-decide-{name}")
        async def decide(data: Any, name: str = name) -> Any:
            return await checks.check_input(name, data.context.tool_arguments, data.context.tool_call_id)

        @tool_output_guardrail(name=f"tollgate-record-{name}")
        async def record(data: Any) -> Any:
            return await checks.check_output(data.context.tool_call_id, data.output)

        tool.needs_approval = needs_approval
        tool.tool_input_guardrails = [*(tool.tool_input_guardrails or []), decide]
        tool.tool_output_guardrails = [*(tool.tool_output_guardrails or []), record]
        tool._tollgate = checks
        gated.append(tool)
    return gated


def gate_mcp(session: GatedSession, server: Any) -> Any:
    """An MCP server of the SDK (`MCPServerStdio`, `MCPServerStreamableHttp`,
    ...) whose every tool call goes through `session` (changed in place and
    returned)."""
    from agents import ToolGuardrailFunctionOutput, tool_input_guardrail, tool_output_guardrail

    checks = Gate(session)

    @tool_input_guardrail(name="tollgate-decide-mcp")
    async def decide(data: Any) -> Any:
        context = data.context
        decision = await checks.decide(context.tool_name, _args(context.tool_arguments), context.tool_call_id)
        if decision.allowed and (answer := await checks.resumed(decision)) is not None:
            return ToolGuardrailFunctionOutput.reject_content(answer, output_info={"tollgate": decision.to_json()})
        if decision.allowed:
            checks.recorded_as[context.tool_call_id] = decision.call_id
            return ToolGuardrailFunctionOutput.allow(output_info={"tollgate": decision.to_json()})
        message = decision.message
        if decision.escalated:
            message += " Tell the user a person will review it; retry the same call once the reviewer has approved it."
        return ToolGuardrailFunctionOutput.reject_content(message, output_info={"tollgate": decision.to_json()})

    @tool_output_guardrail(name="tollgate-record-mcp")
    async def record(data: Any) -> Any:
        return await checks.check_output(data.context.tool_call_id, data.output)

    server.tool_input_guardrails = [*(server.tool_input_guardrails or []), decide]
    server.tool_output_guardrails = [*(server.tool_output_guardrails or []), record]
    server._tollgate = checks
    return server


def gate_of(tools: Iterable[Any]) -> Gate:
    for tool in tools:
        found = getattr(tool, "_tollgate", None)
        if found is not None:
            return found
    raise ValueError("none of these tools is gated by tollgate")


async def resolve_interruptions(session: GatedSession, result: Any, timeout: float = 600.0) -> Any:
    """Waits for the reviewers' decisions on the escalations that paused a
    run, and returns its state with each approval item approved (the desk
    approved) or rejected (denied, resolved, expired, or still waiting at
    `timeout`), for `Runner.run(agent, state)` to resume."""
    state = result.to_state()
    gates = [getattr(t, "_tollgate", None) for t in getattr(result.last_agent, "tools", [])]
    known: dict[str, Decision] = {}
    for found in gates:
        if found is not None:
            known.update(found.decisions)
    for item in result.interruptions:
        call_id = getattr(item.raw_item, "call_id", None)
        decision = known.get(call_id or "")
        if decision is None or decision.handoff_id is None:
            continue  # an approval someone else asked for
        handoff = await asyncio.to_thread(session.wait, decision.handoff_id, timeout)
        if handoff.approved:
            state.approve(item)
        else:
            state.reject(item)
    return state
