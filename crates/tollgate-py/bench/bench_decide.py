"""What the Python binding costs: in-process `decide` from Python beside
the same decisions made from Rust in the same process, on the same engine
(`Engine.bench_decide` runs the very path `decide` runs, minus the binding),
with durability off (the in-memory engine: the core's decision and fold)
and on (an SQLite file, every decision committed with its journal entry and
audit record before it returns).

    cd crates/tollgate-py
    maturin build --release --out /tmp/wheels && pip install --force-reinstall /tmp/wheels/tollgate-*.whl
    python bench/bench_decide.py [--calls 20000] [--durable-calls 200] [--db-dir DIR]

Each case runs in rounds, Python and Rust alternating, on sessions prepared
alike (a verified customer, order #W1 of $120 looked up); the figures are
the mean time per call of a round, the fastest round (least disturbed by
other work on the machine) and the median round, and the binding's cost is
Python's minus Rust's. The decisions are blocks (a gate, a check): they
leave the session's size unchanged, so every call does the same work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import tollgate

ROOT = Path(__file__).resolve().parents[3]
CASES = [
    ("block: an order never looked up (gates)", "process_refund", {"order_id": "#W2", "amount": 25.0}),
    ("block: over the remaining amount (CEL check)", "process_refund", {"order_id": "#W1", "amount": 500.5}),
]
ROUNDS = 15


def prepared(engine: tollgate.Engine, workflow: tollgate.Workflow, id: str) -> tollgate.Session:
    session = engine.session(id, workflow)
    d = session.decide("get_customer", {"email": "alice@example.com", "zip": "94107"}, call_id="v")
    session.record(d, {"verified": True, "customer_id": "c_42", "email": "alice@example.com", "tier": "gold"})
    d = session.decide("lookup_order", {"order_id": "#W1"}, call_id="o")
    session.record(d, {"order_id": "#W1", "customer_id": "c_42", "total": 120.0, "status": "delivered"})
    return session


def mean_ns(run: Callable[[], int], calls: int) -> float:
    return run() / calls


def measure(engine: tollgate.Engine, workflow: tollgate.Workflow, label: str, calls: int) -> list[dict[str, Any]]:
    native = engine._native
    rows = []
    for case, tool, args in CASES:
        py, wrapped, rust = [], [], []
        for round in range(ROUNDS):
            ids = [f"c{round}-{i}" for i in range(calls)]
            s_py = prepared(engine, workflow, f"{label}-py-{len(rows)}-{round}")
            s_wrap = prepared(engine, workflow, f"{label}-wrap-{len(rows)}-{round}")
            s_rs = prepared(engine, workflow, f"{label}-rs-{len(rows)}-{round}")

            def binding() -> int:
                decide, sid = native.decide, s_py.id
                started = time.perf_counter_ns()
                for call_id in ids:
                    decide(sid, call_id, tool, args)
                return time.perf_counter_ns() - started

            def session_api() -> int:
                decide = s_wrap.decide
                started = time.perf_counter_ns()
                for call_id in ids:
                    decide(tool, args, call_id=call_id)
                return time.perf_counter_ns() - started

            py.append(mean_ns(binding, calls))
            wrapped.append(mean_ns(session_api, calls))
            rust.append(sum(native.bench_decide(s_rs.id, tool, args, calls, f"c{round}-")) / calls)
        for estimate, pick in (("fastest", min), ("median", statistics.median)):
            row = {
                "backend": label,
                "case": case,
                "round": estimate,
                "calls_per_round": calls,
                "rust_ns": pick(rust),
                "python_binding_ns": pick(py),
                "python_session_ns": pick(wrapped),
            }
            row["binding_cost_ns"] = row["python_binding_ns"] - row["rust_ns"]
            row["session_api_cost_ns"] = row["python_session_ns"] - row["rust_ns"]
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round, in memory")
    parser.add_argument("--durable-calls", type=int, default=200, help="calls per round, on SQLite")
    parser.add_argument("--db-dir", default=None, help="where the SQLite file goes (default: a temporary directory)")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    text = (ROOT / "examples" / "support-refunds.toml").read_text()

    memory = tollgate.Engine.in_memory()
    rows = measure(memory, memory.workflow_text(text, "support-refunds.toml"), "memory", options.calls)
    with tempfile.TemporaryDirectory(dir=options.db_dir) as directory:
        durable = tollgate.Engine(Path(directory) / "bench.db")
        rows += measure(durable, durable.workflow_text(text, "support-refunds.toml"), "sqlite", options.durable_calls)
        durable.close()
    if options.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'backend':8} {'case':46} {'round':8} {'rust':>10} {'python':>10} {'binding':>9} {'Session':>10} {'+Session':>9}")
    for r in rows:
        print(
            f"{r['backend']:8} {r['case']:46} {r['round']:8} {r['rust_ns'] / 1000:9.2f}µ {r['python_binding_ns'] / 1000:9.2f}µ "
            f"{r['binding_cost_ns'] / 1000:+8.2f}µ {r['python_session_ns'] / 1000:9.2f}µ {r['session_api_cost_ns'] / 1000:+8.2f}µ"
        )


if __name__ == "__main__":
    main()
