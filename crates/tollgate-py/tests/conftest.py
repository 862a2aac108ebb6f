"""Shared fixtures: the repository's workflows, a fresh store per test, the
`tollgate` binary, and a tool backend that keeps a ledger of side effects."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

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


class Desk:
    """A `tollgate serve` on a test's store (the SQLite file the in-process
    engine writes), and a reviewer who uses its desk as a person does in a
    browser: signs in with a reviewer's token, opens the handoff's page,
    and sends its own forms (claim, then approve) with the page's CSRF
    token, the sign-in cookie and the desk's origin."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def approve(self, handoff_id: str, minutes: int = 60) -> None:
        import httpx

        page_path = f"/desk/handoffs/{handoff_id}"
        origin = {"Origin": self.url}
        with httpx.Client(base_url=self.url, follow_redirects=False, timeout=30) as browser:
            signed = browser.post("/desk/sign-in", data={"token": self.token, "next": page_path}, headers=origin)
            assert signed.status_code == 303 and signed.headers["location"] == page_path, signed.text
            for action, fields, goes_to in [
                ("claim", {}, page_path),
                ("approve", {"minutes": str(minutes)}, f"/desk?done={handoff_id}"),
            ]:
                page = browser.get(page_path)
                assert page.status_code == 200, page.text
                form = re.search(
                    rf'action="{re.escape(page_path)}/{action}"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)"',
                    page.text,
                )
                assert form, f"the handoff page offers no {action} form"
                sent = browser.post(f"{page_path}/{action}", data={"csrf": form.group(1), **fields}, headers=origin)
                assert sent.status_code == 303 and sent.headers["location"] == goes_to, sent.text


def cli_token(tollgate_bin: str, db: str, role: str, name: str) -> str:
    made = subprocess.run(
        [tollgate_bin, "tokens", "create", "--role", role, "--name", name, "--db", db], capture_output=True, text=True, check=True
    )
    return made.stdout.strip()


@pytest.fixture
def desk(tollgate_bin: str, db: str) -> Iterator[Desk]:
    """The desk of a `tollgate serve` on the test's store (`db`), with a
    reviewer's token (Ann)."""
    pytest.importorskip("httpx")
    reviewer = cli_token(tollgate_bin, db, "reviewer", "Ann")
    process = subprocess.Popen(
        [tollgate_bin, "serve", "--workflow", str(EXAMPLES / "support-refunds.toml"), "--db", db, "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    try:
        line = process.stderr.readline()
        found = re.search(r"serving on (http://[0-9.:]+)", line)
        assert found, line
        # Keep reading its log, so the server never blocks on a full pipe.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield Desk(found.group(1), reviewer)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
