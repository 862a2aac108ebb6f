"""Claude Agent SDK (Python): `PreToolUse` and `PostToolUse` hook callbacks
that put every tool call through a Tollgate session.

    from claude_agent_sdk import ClaudeAgentOptions
    from tollgate.adapters.claude_agent_sdk import TollgateHooks

    hooks = TollgateHooks(session)
    options = ClaudeAgentOptions(hooks=hooks.hooks(matcher="mcp__retail__.*"), ...)

- PreToolUse decides the call under its `tool_use_id`. A block is a `deny`
  whose reason (the rule's message) reaches the model. An escalation waits
  up to `wait_seconds` for a reviewer: approved, the call is decided again
  (the approval covers it once) and runs; denied or still waiting, it is a
  `deny` saying so. An allowed call gets no opinion (`{}`), so the SDK's own
  permission settings still apply: Tollgate gates, it does not grant.
- PostToolUse records the result (an MCP result's structured content or JSON
  text); a result a result check withholds is replaced for MCP tools and
  flagged to the model. PostToolUseFailure records the failure.
- A resumed run (the process stopped and the conversation was run again
  with the same `tool_use_id`s) does not run a call allowed before a
  second time: one whose result was recorded is denied with that result
  ("already done"); one in doubt (allowed, never answered: the crash came
  between the decision and the result) is denied saying it may have taken
  effect, with its idempotency key, and stays in `session.in_doubt()`.
- Hooks are registered with `on_failure="block"`: a callback that raises
  blocks the call, never lets it through.

Tool names: `mcp__<server>__<tool>` is decided as `<tool>`; pass `tool_name`
to map names otherwise.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from ._common import WITHHELD, GatedSession, answer_from_journal, decide_safely, result_of


def mcp_tool_name(name: str) -> str:
    """`mcp__server__tool` → `tool`; other names as they are."""
    if name.startswith("mcp__"):
        parts = name.split("__", 2)
        if len(parts) == 3:
            return parts[2]
    return name


def _pre(decision: str, reason: str | None = None) -> dict[str, Any]:
    output: dict[str, Any] = {"hookEventName": "PreToolUse", "permissionDecision": decision}
    if reason is not None:
        output["permissionDecisionReason"] = reason
    return {"hookSpecificOutput": output}


class TollgateHooks:
    """Hook callbacks bound to one session."""

    def __init__(
        self,
        session: GatedSession,
        *,
        wait_seconds: float = 0.0,
        tool_name: Callable[[str], str] = mcp_tool_name,
        summary: Callable[[], str | None] | None = None,
    ) -> None:
        self.session = session
        self.wait_seconds = wait_seconds
        self.tool_name = tool_name
        self.summary = summary
        # tool_use_id -> the call id its decision was made under (an approved
        # retry runs under a call id of its own).
        self._calls: dict[str, str] = {}
        # Call ids these hooks decided first (not replayed from the journal).
        self._fresh: set[str] = set()

    async def _decide(self, tool: str, args: Any, call_id: str, summary: str | None) -> Any:
        decision = await asyncio.to_thread(decide_safely, self.session, tool, args, call_id, summary)
        if not decision.replayed:
            self._fresh.add(call_id)
        return decision

    async def _allow(self, decision: Any) -> dict[str, Any]:
        """An allowed call: no opinion, unless a resumed run decided it
        again (then the journal answers, and it is not run twice)."""
        if decision.call_id not in self._fresh:
            answer = await asyncio.to_thread(answer_from_journal, self.session, decision)
            if answer is not None:
                return _pre("deny", answer)
        return {}

    def hooks(self, matcher: str | None = None, timeout: float | None = None) -> dict[str, list[Any]]:
        """The `hooks` option of `ClaudeAgentOptions`."""
        from claude_agent_sdk import HookMatcher

        wait = timeout if timeout is not None else max(60.0, self.wait_seconds + 30.0)

        def matched(callback: Any) -> list[Any]:
            return [HookMatcher(matcher=matcher, hooks=[callback], timeout=wait, on_failure="block")]

        return {
            "PreToolUse": matched(self.pre_tool_use),
            "PostToolUse": matched(self.post_tool_use),
            "PostToolUseFailure": matched(self.post_tool_use_failure),
        }

    async def pre_tool_use(self, input: dict[str, Any], tool_use_id: str | None, context: Any) -> dict[str, Any]:
        call_id = str(input.get("tool_use_id") or tool_use_id or "")
        tool = self.tool_name(str(input.get("tool_name", "")))
        args = input.get("tool_input")
        summary = self.summary() if self.summary else None
        decision = await self._decide(tool, args, call_id, summary)
        self._calls[call_id] = decision.call_id
        if decision.allowed:
            return await self._allow(decision)
        if decision.blocked:
            return _pre("deny", decision.message)
        if self.wait_seconds > 0:
            handoff = await asyncio.to_thread(self.session.wait, decision, self.wait_seconds)
            if handoff.approved:
                retry = await self._decide(tool, args, f"{call_id}.approved", summary)
                if retry.allowed:
                    self._calls[call_id] = retry.call_id
                    return await self._allow(retry)
                return _pre("deny", retry.message)
            if handoff.settled:
                why = handoff.reason or handoff.status
                return _pre("deny", f"A reviewer did not approve {tool} ({handoff.status}): {why}. Do not retry it.")
        return _pre("deny", decision.message + " Tell the user a person will review it; do not retry until then.")

    async def post_tool_use(self, input: dict[str, Any], tool_use_id: str | None, context: Any) -> dict[str, Any]:
        use_id = str(input.get("tool_use_id") or tool_use_id or "")
        call_id = self._calls.pop(use_id, use_id)
        result = result_of(input.get("tool_response"))
        recorded = await asyncio.to_thread(self.session.record, call_id, result)
        if getattr(recorded, "withheld", False):
            text = WITHHELD
            output: dict[str, Any] = {"hookEventName": "PostToolUse", "additionalContext": text}
            if str(input.get("tool_name", "")).startswith("mcp__"):
                output["updatedMCPToolOutput"] = [{"type": "text", "text": text}]
            return {"decision": "block", "reason": text, "hookSpecificOutput": output}
        return {}

    async def post_tool_use_failure(self, input: dict[str, Any], tool_use_id: str | None, context: Any) -> dict[str, Any]:
        use_id = str(input.get("tool_use_id") or tool_use_id or "")
        call_id = self._calls.pop(use_id, use_id)
        await asyncio.to_thread(self.session.record, call_id, None, error=str(input.get("error", "the tool failed")))
        return {}
