#!/usr/bin/env python3
"""Checkpoint cost per step: Tollgate's engine against LangGraph's SQLite
checkpointer, running the same three-step workflow (verify the customer,
look up the order, refund) in the same run, each against the same baseline:
one raw durable SQLite commit on this disk.

Both sides commit durably: SQLite in WAL mode with synchronous=FULL (what
Tollgate's store uses; LangGraph's SqliteSaver is given a connection with the
same settings).

    python3 -m venv .venv && .venv/bin/pip install -r bench/requirements.txt
    cargo build --release -p tollgate
    .venv/bin/python bench/checkpoint_vs_langgraph.py [--tollgate target/release/tollgate] [--runs 100]
"""

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time
from typing import TypedDict


def connect(path):
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def raw_commit_us(path, rounds=300):
    conn = connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS raw (n INTEGER, body TEXT)")
    samples = []
    for n in range(rounds):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO raw VALUES (?, 'x')", (n,))
        conn.execute("COMMIT")
        samples.append(time.perf_counter() - start)
    conn.close()
    return statistics.median(samples) * 1e6


class Case(TypedDict, total=False):
    email: str
    customer_id: str
    order_id: str
    total: float
    refund_id: str


def verify(state: Case) -> Case:
    return {"customer_id": "c_42"}


def lookup(state: Case) -> Case:
    return {"order_id": "#W1", "total": 300.0}


def refund(state: Case) -> Case:
    return {"refund_id": "rf_1"}


def langgraph_per_step_us(path, runs):
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(Case)
    graph.add_node("verify", verify)
    graph.add_node("lookup", lookup)
    graph.add_node("refund", refund)
    graph.add_edge(START, "verify")
    graph.add_edge("verify", "lookup")
    graph.add_edge("lookup", "refund")
    graph.add_edge("refund", END)
    saver = SqliteSaver(connect(path))
    app = graph.compile(checkpointer=saver)
    for n in range(10):  # warm-up
        app.invoke({"email": "a@example.com"}, {"configurable": {"thread_id": f"warm{n}"}})
    samples = []
    for n in range(runs):
        start = time.perf_counter()
        app.invoke({"email": "a@example.com"}, {"configurable": {"thread_id": f"t{n}"}})
        samples.append((time.perf_counter() - start) / 3)
    checkpoints = saver.conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = 't0'").fetchone()[0]
    return statistics.median(samples) * 1e6, checkpoints


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tollgate", default="target/release/tollgate")
    parser.add_argument("--runs", type=int, default=100)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = raw_commit_us(os.path.join(tmp, "raw.db"))
        graph, checkpoints = langgraph_per_step_us(os.path.join(tmp, "langgraph.db"), options.runs)
        out = subprocess.run([options.tollgate, "bench", "durable", "--json"], check=True, capture_output=True, text=True)
        tollgate = json.loads(out.stdout)
    ours = tollgate["three_step_workflow_per_step_us"]
    print(f"raw durable SQLite commit (Python sqlite3), median: {raw:9.1f} µs")
    print(f"raw durable SQLite commit (Rust, rusqlite), median:   {tollgate['raw_commit_us']:9.1f} µs")
    print(f"LangGraph SqliteSaver, three-step workflow, per step: {graph:9.1f} µs "
          f"({checkpoints} checkpoints per run) = {graph / raw:.2f}x a raw commit")
    print(f"Tollgate engine, three-step workflow, per step (decision + result, both durable): {ours:9.1f} µs "
          f"= {tollgate['three_step_per_step_over_raw_commit']:.2f}x a raw commit")
    print(f"Tollgate engine step (one durable decision): {tollgate['engine_step_us']:9.1f} µs "
          f"= {tollgate['engine_step_over_raw_commit']:.2f}x a raw commit")
    looped = tollgate["three_step_looped_per_step_us"]
    print(f"Tollgate engine, the same with each result sent with the next call (record_and_decide): {looped:9.1f} µs "
          f"= {tollgate['three_step_looped_per_step_over_raw_commit']:.2f}x a raw commit")
    print(f"LangGraph / Tollgate per step: {graph / ours:.2f}x (decide and result committed apart), "
          f"{graph / looped:.2f}x (an agent loop: result and next call in one commit)")


if __name__ == "__main__":
    main()
