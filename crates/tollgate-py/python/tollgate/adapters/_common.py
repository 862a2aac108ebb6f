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
