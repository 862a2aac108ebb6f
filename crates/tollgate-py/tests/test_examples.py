"""The documentation's τ²-retail examples, run as a user runs them (with
their scripted models): each cancels exactly the one order the careful call
names, after Tollgate refused the careless ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TAU, need

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script", ["openai_agents_tau2.py", "langgraph_tau2.py", "claude_agent_sdk_tau2.py"])
def test_example_runs(script: str, tmp_path: Path) -> None:
    need((TAU / "tau2-bench" / "retail" / "db.json").is_file(), f"the τ² data is not at {TAU}")
    ran = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--scripted", "--db", str(tmp_path / "example.db")],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=EXAMPLES,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    assert any("cancel_pending_order" in line and "R-AUTH" in line for line in lines), ran.stdout
    assert any("R-CANCEL-REASON" in line for line in lines), ran.stdout
    assert lines[-1] == "cancelled: ['#W8770097']"
