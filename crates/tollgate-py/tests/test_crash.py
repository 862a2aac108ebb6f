"""A crash between decision and result: a real Python process is killed
(SIGKILL) after the tool ran and before its result was recorded. Run again,
the agent gets the recorded decisions back with the same idempotency key,
so the tool's backend does not run the refund a second time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import tollgate
from conftest import EXAMPLES, Ledger

AGENT = Path(__file__).resolve().parent / "crash_agent.py"


def test_a_killed_agent_resumes_without_a_second_side_effect(tmp_path: Path, ledger: Ledger) -> None:
    db = str(tmp_path / "crash.db")
    command = [sys.executable, str(AGENT), "--db", db, "--ledger", str(ledger.path)]
    first = subprocess.Popen([*command, "--die-after-tool"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    line = first.stdout.readline()
    assert line.startswith("ran crash/process_refund:refund"), line
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    assert len(ledger.entries()) == 1

    # Another process sees the refund in doubt, with its key.
    engine = tollgate.Engine(db)
    engine.workflow(EXAMPLES / "support-refunds.toml")
    in_doubt = engine.session("crash").in_doubt()
    assert [(c.call_id, c.idempotency_key) for c in in_doubt] == [("refund", "crash/process_refund:refund")]
    engine.close()

    second = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout.splitlines()[-1])
    assert [(s["call"], s["replayed"], s["recorded"]) for s in report["steps"]] == [
        ("verify", True, False),
        ("lookup", True, False),
        ("refund", True, True),
    ]
    assert report["in_doubt"] == []
    assert len(ledger.entries()) == 1, ledger.entries()
