"""The remote backend: a client of `tollgate serve` (docs/server.md), for
teams running several replicas on PostgreSQL. Same session methods as the
in-process backend, sync (`Client`) and asyncio (`AsyncClient`); needs
`httpx` (`pip install tollgate[remote]`).

    client = tollgate.remote.Client("http://127.0.0.1:8080", token="tg_...")
    session = client.session("s1", workflow="tau2-retail")
    decision = session.decide("get_order_details", {"order_id": "#W2378156"})

Decisions are the server's answers, as the same `Decision` objects. A
failure to decide (no answer, a refusal, a 5xx) is a block at stage `error`
naming the failure's kind; every other failure raises the exception of its
kind (`NotFound` for 404, `Conflict` for 409, `Unavailable` for 429, 503 and
no connection, `BadRequest` for other 4xx, `Damaged` for a damaged store).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Mapping, Sequence, Union

from . import _native
from ._core import JSON, Handoff, InDoubt, Recorded, _handoff_id, call_id_of, new_call_id
from ._native import Decision

JOURNAL_PAGE = 1000
WAIT_SECONDS_MAX = 25  # the server's default wait_seconds_max


def _error(status: int, body: Any) -> _native.TollgateError:
    problem = body if isinstance(body, dict) else {}
    detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
    kind = str(problem.get("type", ""))
    if status == 404:
        return _native.NotFound(detail)
    if status == 409:
        return _native.Conflict(detail)
    if status in (429, 503):
        return _native.Unavailable(detail)
    if status >= 500:
        return _native.Damaged(detail) if kind.endswith("/damaged") else _native.Unavailable(detail)
    return _native.BadRequest(detail)


def _check(response: Any) -> Any:
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise _error(response.status_code, body)
    return body


def _transport_error(error: Exception) -> _native.TollgateError:
    return _native.Unavailable(f"tollgate serve could not be reached: {type(error).__name__}: {error}")


def _call_body(tool: str, args: Mapping[str, JSON] | None, call_id: str, summary: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": call_id, "tool": tool, "args": {} if args is None else dict(args)}
    if summary is not None:
        body["summary"] = summary
    return body


def _result_body(call: Union[Decision, str], result: JSON, error: str | None) -> dict[str, Any]:
    if error is not None:
        return {"call_id": call_id_of(call), "error": error}
    return {"call_id": call_id_of(call), "result": result}


def _decision(status: int, body: Any, call_id: str, tool: str) -> Decision:
    if status >= 400:
        error = _error(status, body)
        return Decision.failure(call_id, tool, getattr(error, "kind", "unavailable"), str(error))
    try:
        return Decision.from_json(body, tool)
    except _native.TollgateError as error:
        return Decision.failure(call_id, tool, "bad_request", str(error))


def _recorded(body: Mapping[str, Any]) -> Recorded:
    return Recorded(bool(body["recorded"]), list(body.get("effects", [])), body.get("note"))


def _result_in(entries: Sequence[Mapping[str, Any]], call_id: str) -> dict[str, Any] | None:
    for entry in entries:
        body = entry.get("body") or {}
        if entry.get("kind") == "result" and body.get("call") == call_id:
            # The API does not say whether a result check withheld it:
            # "unknown", which the adapters treat as withheld.
            outcome = "failed" if body.get("outcome") == "failed" else "unknown"
            return {"outcome": outcome, "result": body.get("result")}
    return None


class Client:
    """A client of `tollgate serve`, with an agent's (or a reviewer's) token."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        import httpx

        self.http = httpx.Client(base_url=url.rstrip("/"), headers={"authorization": f"Bearer {token}"}, timeout=timeout)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise _transport_error(error) from error
        return _check(response)

    def session(self, id: str, workflow: str | None = None) -> "Session":
        """Session `id`: opened if it exists, else created under the workflow
        `workflow` (its name or the SHA-256 of its text)."""
        try:
            info = self._request("GET", f"/v1/sessions/{id}")
        except _native.NotFound:
            if workflow is None:
                raise
            info = self._request("POST", "/v1/sessions", json={"id": id, "workflow": workflow})
        return Session(self, id, info)

    def handoff(self, id: str) -> Handoff:
        return Handoff.from_json(self._request("GET", f"/v1/handoffs/{id}"))

    def handoffs(self, statuses: Sequence[str] = ("open", "claimed"), limit: int = 100) -> list[Handoff]:
        found = self._request("GET", "/v1/handoffs", params={"status": ",".join(statuses), "limit": limit})
        return [Handoff.from_json(h) for h in found]

    def wait_for_handoff(self, id: str, timeout: float = 60.0) -> Handoff:
        """Long-polls until handoff `id` is settled or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0, int(deadline - time.monotonic()))
            handoff = Handoff.from_json(
                self._request("GET", f"/v1/handoffs/{id}/outcome", params={"wait": min(left, WAIT_SECONDS_MAX)})
            )
            if handoff.settled or time.monotonic() >= deadline:
                return handoff

    def claim(self, id: str) -> Handoff:
        return Handoff.from_json(self._request("POST", f"/v1/handoffs/{id}/claim", json={}))

    def approve(self, id: str, expires_in_seconds: int = 3600) -> Handoff:
        body = {"expires_in_seconds": expires_in_seconds}
        return Handoff.from_json(self._request("POST", f"/v1/handoffs/{id}/approve", json=body))

    def deny(self, id: str, reason: str) -> Handoff:
        return Handoff.from_json(self._request("POST", f"/v1/handoffs/{id}/deny", json={"reason": reason}))

    def resolve(self, id: str, note: str) -> Handoff:
        return Handoff.from_json(self._request("POST", f"/v1/handoffs/{id}/resolve", json={"note": note}))

    def close(self) -> None:
        self.http.close()


class Session:
    """A session on the server; the methods of `tollgate.Session`."""

    def __init__(self, client: Client, id: str, info: Mapping[str, Any]) -> None:
        self.client = client
        self.id = id
        self.info = dict(info)

    def decide(
        self, tool: str, args: Mapping[str, JSON] | None = None, *, call_id: str | None = None, summary: str | None = None
    ) -> Decision:
        import httpx

        call_id = call_id or new_call_id()
        if args is not None and not isinstance(args, Mapping):
            return Decision.failure(call_id, tool, "bad_request", "a call's args must be an object")
        try:
            response = self.client.http.post(f"/v1/sessions/{self.id}/calls", json=_call_body(tool, args, call_id, summary))
            body = response.json() if response.content else None
        except (httpx.HTTPError, ValueError, TypeError) as error:
            return Decision.failure(call_id, tool, "unavailable", str(_transport_error(error)))
        return _decision(response.status_code, body, call_id, tool)

    def record(self, call: Union[Decision, str], result: JSON = None, *, error: str | None = None) -> Recorded:
        return _recorded(self.client._request("POST", f"/v1/sessions/{self.id}/results", json=_result_body(call, result, error)))

    def in_doubt(self) -> list[InDoubt]:
        summary = self.client._request("GET", f"/v1/sessions/{self.id}")
        return [InDoubt(**c) for c in summary.get("in_doubt", [])]

    def recorded_result(self, call: Union[Decision, str]) -> dict[str, Any] | None:
        after = 0
        while True:
            page = self.client._request("GET", f"/v1/sessions/{self.id}/journal", params={"after": after, "limit": JOURNAL_PAGE})
            found = _result_in(page, call_id_of(call))
            if found is not None or len(page) < JOURNAL_PAGE:
                return found
            after = page[-1]["seq"]

    def wait(self, handoff: Union[Decision, str], timeout: float = 60.0) -> Handoff:
        return self.client.wait_for_handoff(_handoff_id(handoff), timeout)

    def open_investigations(self, concerns: Sequence[Mapping[str, Any]]) -> list["Session"]:
        opened = self.client._request("POST", f"/v1/sessions/{self.id}/investigations", json={"concerns": [dict(c) for c in concerns]})
        return [self.client.session(o["session"]) for o in opened]

    def conclude(self, outcome: str) -> None:
        self.client._request("POST", f"/v1/sessions/{self.id}/conclusion", json={"outcome": outcome})

    def join(self) -> dict[str, Any]:
        return self.client._request("POST", f"/v1/sessions/{self.id}/join", json={})


class AsyncClient:
    """`Client` for asyncio."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        import httpx

        self.http = httpx.AsyncClient(base_url=url.rstrip("/"), headers={"authorization": f"Bearer {token}"}, timeout=timeout)

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise _transport_error(error) from error
        return _check(response)

    async def session(self, id: str, workflow: str | None = None) -> "AsyncSession":
        try:
            info = await self._request("GET", f"/v1/sessions/{id}")
        except _native.NotFound:
            if workflow is None:
                raise
            info = await self._request("POST", "/v1/sessions", json={"id": id, "workflow": workflow})
        return AsyncSession(self, id, info)

    async def handoff(self, id: str) -> Handoff:
        return Handoff.from_json(await self._request("GET", f"/v1/handoffs/{id}"))

    async def wait_for_handoff(self, id: str, timeout: float = 60.0) -> Handoff:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = max(0, int(deadline - loop.time()))
            params = {"wait": min(left, WAIT_SECONDS_MAX)}
            handoff = Handoff.from_json(await self._request("GET", f"/v1/handoffs/{id}/outcome", params=params))
            if handoff.settled or loop.time() >= deadline:
                return handoff

    async def aclose(self) -> None:
        await self.http.aclose()


class AsyncSession:
    """`Session` for asyncio."""

    def __init__(self, client: AsyncClient, id: str, info: Mapping[str, Any]) -> None:
        self.client = client
        self.id = id
        self.info = dict(info)

    async def decide(
        self, tool: str, args: Mapping[str, JSON] | None = None, *, call_id: str | None = None, summary: str | None = None
    ) -> Decision:
        import httpx

        call_id = call_id or new_call_id()
        if args is not None and not isinstance(args, Mapping):
            return Decision.failure(call_id, tool, "bad_request", "a call's args must be an object")
        try:
            response = await self.client.http.post(f"/v1/sessions/{self.id}/calls", json=_call_body(tool, args, call_id, summary))
            body = response.json() if response.content else None
        except (httpx.HTTPError, ValueError, TypeError) as error:
            return Decision.failure(call_id, tool, "unavailable", str(_transport_error(error)))
        return _decision(response.status_code, body, call_id, tool)

    async def record(self, call: Union[Decision, str], result: JSON = None, *, error: str | None = None) -> Recorded:
        body = _result_body(call, result, error)
        return _recorded(await self.client._request("POST", f"/v1/sessions/{self.id}/results", json=body))

    async def in_doubt(self) -> list[InDoubt]:
        summary = await self.client._request("GET", f"/v1/sessions/{self.id}")
        return [InDoubt(**c) for c in summary.get("in_doubt", [])]

    async def wait(self, handoff: Union[Decision, str], timeout: float = 60.0) -> Handoff:
        return await self.client.wait_for_handoff(_handoff_id(handoff), timeout)
