"""What every adapter shares: the session interface both backends offer,
and how a tool's output becomes the JSON result the workflow's facts read."""

from __future__ import annotations

import json
from typing import Any, Mapping, Protocol, Union

from .._native import Decision


class GatedSession(Protocol):
    """The session methods the adapters use; `tollgate.Session` and
    `tollgate.remote.Session` both have them."""

    id: str

    def decide(
        self, tool: str, args: Mapping[str, Any] | None = None, *, call_id: str | None = None, summary: str | None = None
    ) -> Decision: ...

    def record(self, call: Union[Decision, str], result: Any = None, *, error: str | None = None) -> Any: ...

    def wait(self, handoff: Union[Decision, str], timeout: float = 60.0) -> Any: ...

    def recorded_result(self, call: Union[Decision, str]) -> Any: ...


def result_of(output: Any) -> Any:
    """A tool's output as the JSON result Tollgate records: an MCP result's
    structured content, else its one text block (alone or in a list) parsed
    as JSON (or kept as text), else JSON text parsed, else the value itself."""
    if isinstance(output, Mapping):
        if "structuredContent" in output and output["structuredContent"] is not None:
            return output["structuredContent"]
        if isinstance(output.get("content"), list):
            return result_of(output["content"])
        if output.get("type") == "text" and isinstance(output.get("text"), str):
            return result_of(output["text"])
        return dict(output)
    if isinstance(output, list) and len(output) == 1 and isinstance(output[0], Mapping) and output[0].get("type") == "text":
        return result_of(output[0].get("text", ""))
    if isinstance(output, str):
        try:
            return json.loads(output)
        except ValueError:
            return output
    return output


def decide_safely(session: GatedSession, tool: str, args: Any, call_id: str, summary: str | None = None) -> Decision:
    """`session.decide`, with anything raised turned into a block: an
    adapter never lets a call through because deciding failed."""
    try:
        if not isinstance(args, Mapping):
            raise TypeError(f"the arguments of {tool} are not an object")
        return session.decide(tool, args, call_id=call_id, summary=summary)
    except Exception as error:  # noqa: BLE001 - every failure is a block
        kind = getattr(error, "kind", None) or "unavailable"
        return Decision.failure(call_id, tool, kind, f"{type(error).__name__}: {error}")


WITHHELD = "Tollgate withheld this result: a result check failed; its content must not be used."


def answer_from_journal(session: GatedSession, decision: Decision) -> str | None:
    """For an allowed call whose decision came back from the journal
    (`replayed`) in a run that did not decide it itself, a resumed run: what
    the model is told instead of running the call again, or `None` for a
    call to run. A call whose result was recorded is answered with it; one
    allowed but never answered (in doubt: the run stopped between the
    decision and the result) is not run again, since its side effect may
    have happened, and the model is told so with its idempotency key. A
    journal that cannot be read is the same refusal: never a second run."""
    if not (decision.allowed and decision.replayed):
        return None
    try:
        prior = session.recorded_result(decision.call_id)
    except Exception as error:  # noqa: BLE001 - fail closed: not run again
        prior, unreadable = None, f" (the journal could not be read: {type(error).__name__}: {error})"
    else:
        unreadable = ""
    if prior is None:
        return (
            f"Tollgate: {decision.tool} (call {decision.call_id}) was allowed before and its result was never "
            f"recorded{unreadable}: it is in doubt, it may have taken effect, so it is not run again. Check its "
            f"effect under idempotency key {decision.idempotency_key} before doing anything more."
        )
    outcome = prior.get("outcome")
    if outcome == "succeeded":
        result = prior.get("result")
        text = result if isinstance(result, str) else json.dumps(result)
        return f"Already done: {decision.tool} (call {decision.call_id}) ran before and its result was recorded: {text}"
    if outcome == "failed":
        return f"the tool failed: {prior.get('result')}"
    return WITHHELD
