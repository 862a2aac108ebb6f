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


def test_a_killed_langgraph_agent_re_drives_the_refund_once(tmp_path: Path, ledger: Ledger) -> None:
    """The LangGraph adapter: killed inside the refund (its side effect done,
    its result not recorded), the graph run again from the start answers the
    calls already recorded from the journal without running them, and
    re-drives the refund with the same idempotency key, which the backend
    has seen: one refund."""
    db = str(tmp_path / "crash.db")
    agent = Path(__file__).resolve().parent / "crash_langgraph.py"
    command = [sys.executable, str(agent), "--db", db, "--ledger", str(ledger.path)]
    first = subprocess.Popen([*command, "--die-in-refund"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    line = first.stdout.readline()
    assert line.strip() == "ran lg-crash/process_refund:refund", line
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL

    second = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout.splitlines()[-1])
    # Verification and lookup were recorded before the crash: not run again.
    assert report["runs"] == ["process_refund"]
    assert report["last"] == "Refunded." and report["in_doubt"] == []
    assert [(e["key"], e["result"]["args"]["amount"]) for e in ledger.entries()] == [("lg-crash/process_refund:refund", 40)]
