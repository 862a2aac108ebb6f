"""An agent loop in a process of its own, for test_crash.py: it drives a
refund through the engine and runs the tool against a ledger keyed by
idempotency key. With `--die-after-tool` it announces the side effect and
then waits to be killed before recording the result (the crash between
decision and result); run again, it goes through the same steps with the
same call ids."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tollgate  # noqa: E402
from conftest import ALICE, EXAMPLES, VERIFY, Ledger, order  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--die-after-tool", action="store_true")
    options = parser.parse_args()
    engine = tollgate.Engine(options.db)
    session = engine.session("crash", engine.workflow(EXAMPLES / "support-refunds.toml"))
    ledger = Ledger(Path(options.ledger))
    steps = [
        ("verify", *VERIFY),
        ("lookup", "lookup_order", {"order_id": "#W1"}),
        ("refund", "process_refund", {"order_id": "#W1", "amount": 40}),
    ]
    results = {"verify": ALICE, "lookup": order("#W1", 120.0)}
    report = []
    for call_id, tool, args in steps:
        decision = session.decide(tool, args, call_id=call_id)
        assert decision.allowed, decision.message
        result = results.get(call_id) or ledger.run(decision.idempotency_key, tool, args)
        if call_id == "refund" and options.die_after_tool:
            print(f"ran {decision.idempotency_key}", flush=True)
            sys.stdin.read()  # the parent kills us here
        recorded = session.record(decision, result)
        report.append({"call": call_id, "replayed": decision.replayed, "recorded": recorded.recorded, "key": decision.idempotency_key})
    print(json.dumps({"steps": report, "in_doubt": [c.call_id for c in session.in_doubt()]}), flush=True)


if __name__ == "__main__":
    main()
