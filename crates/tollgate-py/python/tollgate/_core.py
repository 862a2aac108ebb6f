"""The in-process backend: the engine in this process, on an SQLite file, a
PostgreSQL URL, or in memory. Everything goes through the Rust engine, so
the CLI (`tollgate sessions`, `tollgate audit verify`) and the desk read
what Python wrote."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

from . import _native
from ._native import Decision, NotFound

JSON = Any
"""A JSON value as Python holds it: dict, list, str, int, float, bool, None."""

KEY_FILE_ENV = "TOLLGATE_AUDIT_KEY_FILE"

# Each exception names its kind, as the engine's ErrorKind does (and as a
# failure to decide names its rule: `tollgate.error.<kind>`).
for _kind, _class in [
    ("bad_request", _native.BadRequest),
    ("not_found", _native.NotFound),
    ("conflict", _native.Conflict),
    ("damaged", _native.Damaged),
    ("unavailable", _native.Unavailable),
]:
    _class.kind = _kind


def new_call_id() -> str:
    """A fresh call id, for callers whose framework gives none."""
    return "py-" + uuid.uuid4().hex[:20]


def call_id_of(call: Union[Decision, str]) -> str:
    """The call id of a decision, or the id itself."""
    return call if isinstance(call, str) else call.call_id


@dataclass(frozen=True)
class Workflow:
    """A compiled, stored workflow: what sessions run under."""

    hash: str
    name: str
    version: int


@dataclass(frozen=True)
class Handoff:
    """A handoff as the queue holds it (open, claimed, approved, denied,
    resolved or expired), with everything a person sees in `body`."""

    id: str
    session: str
    call_id: str
    tool: str
    status: str
    urgency: str
    customer_id: str | None = None
    claimed_by: str | None = None
    consumed_by: str | None = None
    created_ms: int = 0
    updated_ms: int = 0
    expires_ms: int = 0
    body: JSON = field(default=None, repr=False)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "Handoff":
        names = cls.__dataclass_fields__.keys()
        return cls(**{name: value[name] for name in names if name in value})

    @property
    def settled(self) -> bool:
        """Decided, resolved or expired: the agent waiting on it can go on."""
        return self.status not in ("open", "claimed")

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def reason(self) -> str | None:
        """A denial's reason or a resolution's note, as the reviewer wrote it."""
        actions = (self.body or {}).get("actions") if isinstance(self.body, dict) else None
        for action in reversed(actions or []):
            for key in ("reason", "note"):
                if isinstance(action, dict) and action.get(key):
                    return str(action[key])
        return None


@dataclass(frozen=True)
class Recorded:
    """What recording a result did: whether anything changed, the effects
    (facts established, a result withheld, ...), and why not, if not."""

    recorded: bool
    effects: list[JSON]
    note: str | None = None

    @property
    def withheld(self) -> bool:
        """A result check failed: the agent must not see this result."""
        return any(isinstance(e, dict) and "withheld" in e for e in self.effects)


@dataclass(frozen=True)
class InDoubt:
    """A call that was allowed but whose result was never recorded: re-drive
    it with its idempotency key rather than run it anew."""

    call_id: str
    tool: str
    idempotency_key: str | None


def _read_key(audit_key_file: str | os.PathLike[str] | None) -> str | None:
    path = audit_key_file if audit_key_file is not None else os.environ.get(KEY_FILE_ENV)
    return None if path is None else Path(path).read_text().strip()


class Engine:
    """Tollgate in this process.

    `Engine("tollgate.db")` (the default file), `Engine("postgres://...")`,
    or `Engine.in_memory()` (nothing journaled or audited: tests and
    benchmarks). The audit head is signed with the key in `audit_key_file`,
    else `$TOLLGATE_AUDIT_KEY_FILE`, as the CLI does.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | None = None,
        *,
        tenant: str = "default",
        audit_key_file: str | os.PathLike[str] | None = None,
    ) -> None:
        url = str(db) if db is not None else os.environ.get("TOLLGATE_DB", "tollgate.db")
        self._native = _native.Engine(url, tenant, _read_key(audit_key_file))

    @classmethod
    def in_memory(cls, *, tenant: str = "default") -> "Engine":
        engine = cls.__new__(cls)
        engine._native = _native.Engine(None, tenant, None)
        return engine

    @property
    def backend(self) -> str:
        """`sqlite`, `postgres` or `memory`."""
        return self._native.backend

    def workflow(self, path: str | os.PathLike[str]) -> Workflow:
        """Compiles and stores the workflow file at `path`."""
        return self.workflow_text(Path(path).read_text(), str(path))

    def workflow_text(self, text: str, file: str = "<workflow>") -> Workflow:
        """Compiles and stores a workflow given as text."""
        return Workflow(*self._native.register_workflow(text, file))

    def session(self, id: str, workflow: Workflow | None = None) -> "Session":
        """Session `id`: opened if it exists, else created under `workflow`."""
        info = self._native.session(id)
        if info is None:
            if workflow is None:
                raise NotFound(f"no session '{id}' (give a workflow to create it)")
            info = self._native.create_session(workflow.hash, id)
        elif workflow is not None and info.get("workflow_hash") != workflow.hash:
            raise _native.Conflict(f"session '{id}' runs under another workflow than {workflow.name} v{workflow.version}")
        return Session(self, id, info)

    def handoff(self, id: str) -> Handoff:
        found = self._native.handoff(id)
        if found is None:
            raise NotFound(f"no handoff '{id}'")
        return Handoff.from_json(found)

    def handoffs(self, statuses: Sequence[str] = ("open", "claimed"), limit: int = 100) -> list[Handoff]:
        """The queue, most urgent first."""
        return [Handoff.from_json(h) for h in self._native.handoffs(list(statuses), limit)]

    def wait_for_handoff(self, id: str, timeout: float = 60.0, poll: float = 0.25) -> Handoff:
        """Waits until handoff `id` is settled or `timeout` seconds pass;
        returns it as it is then (check `settled`)."""
        return Handoff.from_json(self._native.wait_for_handoff(id, timeout, poll))

    # A reviewer's actions, as the desk takes them (journaled and audited
    # under `reviewer`).
    def claim(self, id: str, reviewer: str) -> Handoff:
        return Handoff.from_json(self._native.act(id, "claim", reviewer))

    def release(self, id: str, reviewer: str) -> Handoff:
        return Handoff.from_json(self._native.act(id, "release", reviewer))

    def approve(self, id: str, reviewer: str, expires_in_seconds: int = 3600) -> Handoff:
        return Handoff.from_json(self._native.act(id, "approve", reviewer, None, expires_in_seconds))

    def deny(self, id: str, reviewer: str, reason: str) -> Handoff:
        return Handoff.from_json(self._native.act(id, "deny", reviewer, reason))

    def resolve(self, id: str, reviewer: str, note: str) -> Handoff:
        return Handoff.from_json(self._native.act(id, "resolve", reviewer, note))

    def verify_audit(self) -> dict[str, Any]:
        """Both hash chains and the head checked: `{intact, records, head_seq, problem}`."""
        return self._native.verify_audit()

    def close(self) -> None:
        self._native.close()


class Session:
    """One conversation under one workflow: decide each call before it runs,
    record its result after."""

    def __init__(self, engine: Engine, id: str, info: Mapping[str, Any]) -> None:
        self.engine = engine
        self.id = id
        self.info = dict(info)

    def decide(
        self,
        tool: str,
        args: Mapping[str, JSON] | None = None,
        *,
        call_id: str | None = None,
        summary: str | None = None,
    ) -> Decision:
        """Decides a call. A call id decided before gets its decision back
        (`replayed`). A failure to decide is a block (`error` says why)."""
        return self.engine._native.decide(self.id, call_id or new_call_id(), tool, {} if args is None else args, summary)

    def record(self, call: Union[Decision, str], result: JSON = None, *, error: str | None = None) -> Recorded:
        """Records an allowed call's result, or its failure (`error`)."""
        done = self.engine._native.record(self.id, call_id_of(call), result, error)
        return Recorded(done["recorded"], list(done["effects"]), done.get("note"))

    def recorded_result(self, call: Union[Decision, str]) -> dict[str, Any] | None:
        """The result recorded for a call, if any: `{outcome, result}` with
        outcome `succeeded`, `failed`, `withheld` or `unknown` (treat as
        withheld). A call whose result is recorded is not run again."""
        return self.engine._native.recorded_result(self.id, call_id_of(call))

    def in_doubt(self) -> list[InDoubt]:
        """Calls allowed whose results were never recorded, oldest first."""
        return [InDoubt(**c) for c in self.engine._native.in_doubt(self.id)]

    def wait(self, handoff: Union[Decision, str], timeout: float = 60.0) -> Handoff:
        """Waits for the outcome of the handoff a decision opened."""
        return self.engine.wait_for_handoff(_handoff_id(handoff), timeout)

    def open_investigations(self, concerns: Sequence[Mapping[str, Any]]) -> list["Session"]:
        """One child session per concern (`{id, concern, tools?}`)."""
        opened = self.engine._native.open_investigations(self.id, [dict(c) for c in concerns])
        return [self.engine.session(o["session"]) for o in opened]

    def conclude(self, outcome: str) -> None:
        """Ends this investigation with its outcome."""
        self.engine._native.conclude(self.id, outcome)

    def join(self) -> dict[str, Any]:
        """The findings of this session's ended investigations."""
        return self.engine._native.join(self.id)


def _handoff_id(handoff: Union[Decision, str]) -> str:
    if isinstance(handoff, str):
        return handoff
    if handoff.handoff_id is None:
        raise _native.BadRequest(f"the decision of call {handoff.call_id} opened no handoff")
    return handoff.handoff_id
