"""Shared fixtures: the repository's workflows, a fresh store per test, the
`tollgate` binary, and a tool backend that keeps a ledger of side effects."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import tollgate

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
TAU = ROOT.parent / "shared" / "tau"
IN_CI = os.environ.get("CI") == "true"


def need(condition: bool, why: str) -> None:
    """Skips a test whose requirement is missing, and fails it under CI=true."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {why}")
    pytest.skip(why)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "tollgate.db")


@pytest.fixture
def engine(db: str) -> tollgate.Engine:
    return tollgate.Engine(db)


@pytest.fixture
def refunds(engine: tollgate.Engine) -> tollgate.Workflow:
    return engine.workflow(EXAMPLES / "support-refunds.toml")


@pytest.fixture
def tollgate_bin() -> str:
    """The CLI built by `cargo build` / `cargo test` (or $TOLLGATE_BIN)."""
    given = os.environ.get("TOLLGATE_BIN")
    for candidate in [given, ROOT / "target" / "debug" / "tollgate", ROOT / "target" / "release" / "tollgate"]:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    found = shutil.which("tollgate")
    need(found is not None, "the tollgate binary is not built (cargo build -p tollgate)")
    return str(found)


VERIFY = ("get_customer", {"email": "alice@example.com", "zip": "94107"})
ALICE = {"verified": True, "customer_id": "c_42", "email": "alice@example.com", "tier": "gold"}


def order(order_id: str, total: float, customer: str = "c_42", status: str = "delivered") -> dict[str, Any]:
    return {"order_id": order_id, "customer_id": customer, "total": total, "status": status}


def verified_with_order(session: tollgate.Session, order_id: str = "#W1", total: float = 1200.0) -> None:
    """Drives a session to a verified customer with one order looked up."""
    d = session.decide(*VERIFY, call_id="verify")
    assert d.allowed, d.message
    session.record(d, ALICE)
    d = session.decide("lookup_order", {"order_id": order_id}, call_id=f"lookup-{order_id}")
    assert d.allowed, d.message
    session.record(d, order(order_id, total))


class Ledger:
    """A tool backend's record of the side effects it ran, one JSON line per
    effect, keyed by idempotency key: what the real backend would do to not
    pay a refund twice. Kept in a file so another process sees it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def run(self, key: str | None, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        for entry in self.entries():
            if key is not None and entry["key"] == key:
                return entry["result"]
        result = {"refund_id": f"rf_{len(self.entries()) + 1}", "tool": tool, "args": args}
        with self.path.open("a") as out:
            out.write(json.dumps({"key": key, "tool": tool, "result": result}) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return result


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "side-effects.jsonl")
