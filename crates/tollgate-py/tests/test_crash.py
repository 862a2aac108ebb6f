"""A crash between decision and result: a real Python process is killed
(SIGKILL) after the tool ran and before its result was recorded. Run again,
the agent gets the recorded decisions back with the same idempotency key,
so the refund is not done a second time: the backend deduplicates by key
(the engine alone, LangGraph, which re-drives the call with it), or the
adapter does not run the call again and tells the model it is in doubt
(the OpenAI Agents SDK and the Claude Agent SDK, whose ledgers here do not
deduplicate at all). The child announces the side effect on a line of its
stdout and blocks; the test kills its whole process group (the Claude Code
CLI with it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import tollgate
from conftest import EXAMPLES, Ledger, need

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


def killed_in_refund(command: list[str], announced: str) -> None:
    """Runs `command` until it announces the refund's side effect, then
    kills it and its children with SIGKILL."""
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert child.stdout is not None
    try:
        line = child.stdout.readline()
        assert line.strip() == announced, line
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def in_doubt(db: str, session: str) -> list[tuple[str, str | None]]:
    engine = tollgate.Engine(db)
    engine.workflow(EXAMPLES / "support-refunds.toml")
    found = [(c.call_id, c.idempotency_key) for c in engine.session(session).in_doubt()]
    engine.close()
    return found


def test_a_killed_openai_agents_run_does_not_refund_twice(tmp_path: Path, ledger: Ledger) -> None:
    """The OpenAI Agents SDK adapter: killed inside the refund, the run
    started again with the same call ids gets the recorded calls answered
    from the journal and the refund refused as in doubt, with its key: the
    tool does not run again, and the call stays in doubt for a person."""
    pytest.importorskip("agents")
    db = str(tmp_path / "crash.db")
    agent = Path(__file__).resolve().parent / "crash_openai_agents.py"
    command = [sys.executable, str(agent), "--db", db, "--ledger", str(ledger.path)]
    killed_in_refund([*command, "--die-in-refund"], "ran call_refund")
    assert len(ledger.entries()) == 1
    key = "oai-crash/process_refund:call_refund"
    assert in_doubt(db, "oai-crash") == [("call_refund", key)]

    second = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout.splitlines()[-1])
    assert report["final"] == "Done."
    assert report["seen"]["call_verify"].startswith("Already done: get_customer"), report["seen"]
    assert "c_42" in report["seen"]["call_verify"]
    refund = report["seen"]["call_refund"]
    assert "in doubt" in refund and key in refund, refund
    assert report["in_doubt"] == [["call_refund", key]]
    assert len(ledger.entries()) == 1, ledger.entries()


def test_a_killed_claude_agent_sdk_run_does_not_refund_twice(tmp_path: Path, ledger: Ledger) -> None:
    """The Claude Agent SDK adapter (the real Claude Code CLI, killed with
    the Python process that drives it): run again with the same tool_use
    ids, PreToolUse denies the recorded calls with their results and the
    refund as in doubt, with its key; the tool does not run again."""
    sdk = pytest.importorskip("claude_agent_sdk")
    need((Path(sdk.__file__).parent / "_bundled" / "claude").is_file(), "claude-agent-sdk ships no CLI")
    db = str(tmp_path / "crash.db")
    agent = Path(__file__).resolve().parent / "crash_claude_agent_sdk.py"
    command = [sys.executable, str(agent), "--db", db, "--ledger", str(ledger.path), "--home", str(tmp_path / "home")]
    killed_in_refund([*command, "--die-in-refund"], "ran toolu_refund")
    assert len(ledger.entries()) == 1
    key = "claude-crash/process_refund:toolu_refund"
    assert in_doubt(db, "claude-crash") == [("toolu_refund", key)]

    second = subprocess.run(command, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout.splitlines()[-1])
    results = report["results"]
    assert len(results) == 3, results
    assert "Already done: get_customer" in results[0] and "c_42" in results[0], results
    assert "in doubt" in results[2] and key in results[2], results
    assert report["in_doubt"] == [["toolu_refund", key]]
    assert len(ledger.entries()) == 1, ledger.entries()
