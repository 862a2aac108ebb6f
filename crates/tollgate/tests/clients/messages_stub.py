"""A loopback stub of the Anthropic Messages API that plays a scripted model,
for running the real Claude Code CLI headless against `tollgate hook`.

    python messages_stub.py --scenario retail --log LOG --state STATE [--tollgate-db DB]

It listens on 127.0.0.1 (a port of the system's choosing, printed on stdout
as `listening PORT`), answers POST /v1/messages as the real API does (SSE
when `stream` is true: message_start, content blocks with their deltas,
message_delta, message_stop; a JSON message otherwise) and
/v1/messages/count_tokens. Nothing reaches the internet.

The scripted model: a conversation is the scenario's when its first user
message holds the scenario's marker; the turn is the number of assistant
messages the request carries. Before it answers a turn it checks the tool
results of the previous one (a denial's reason arrived in the tool_result,
an allowed call's output did) and writes every check to LOG as one JSON line
({"check": name, "ok": bool, "detail": ...}); requests it is not scripted for
(titles, summaries) get a short text answer. A subagent (Task tool) is
recognised by its own marker and plays its own script.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MARKER = "TOLLGATE-SCENARIO"
SUBAGENT_MARKER = "TOLLGATE-SUBAGENT"

USER = "ivan_santos_6635"
EMAIL = "ivan.santos3158@example.com"

LOCK = threading.RLock()


def text_of(content: Any) -> str:
    """All text in a message's content (strings, text blocks, tool results)."""
    if isinstance(content, str):
        return content
    out = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            out.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            out.append(text_of(block.get("content")))
    return "\n".join(out)


def tool_results(message: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """tool_use_id -> (text, is_error) of a user message's tool results."""
    results = {}
    content = message.get("content")
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                results[block.get("tool_use_id")] = (text_of(block.get("content")), bool(block.get("is_error")))
    return results


class Scenario:
    """The retail scenario: each turn is a list of tool calls (name, input,
    expectation on its result) or a final text; `before` runs before the
    turn is answered (the store crash)."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        orders = json.loads(Path(options.retail_db).read_text())["orders"]
        mine = [o for o in orders.values() if o["user_id"] == USER]
        pending = [o["order_id"] for o in mine if o["status"] == "pending"]
        others = [o["order_id"] for o in orders.values() if o["user_id"] != USER and o["status"] == "pending"]
        if len(pending) < 1 or not others:
            raise SystemExit(f"the retail database has no pending order of {USER}")
        self.order = pending[0]
        self.other = others[0]
        self.cancel = {"order_id": self.order, "reason": "no longer needed"}

    def turns(self, tools: list[str]) -> list[Any]:
        retail = lambda name: f"mcp__retail__{name}"  # noqa: E731
        task = "Task" if "Task" in tools else "Agent"
        denied = ("contains", "Tollgate blocked this call")
        return [
            # 0: cancelling before authenticating: denied, the reason names the gate.
            [("cancel-before-auth", retail("cancel_pending_order"), self.cancel, [denied, ("contains", "R-AUTH")])],
            # 1: authenticating.
            [("authenticate", retail("find_user_id_by_email"), {"email": EMAIL}, [("contains", USER)])],
            # 2: reading the order.
            [("read-order", retail("get_order_details"), {"order_id": self.order}, [("contains", self.order)])],
            # 3: cancelling it: allowed, the MCP server's data changed.
            [("cancel", retail("cancel_pending_order"), self.cancel, [("contains", "cancelled"), ("saved-status", "cancelled")])],
            # 4: a batch: another user's order is read and cancelled in one turn.
            [
                ("batch-read", retail("get_order_details"), {"order_id": self.other}, [("contains", "withheld")]),
                ("batch-cancel", retail("cancel_pending_order"), {"order_id": self.other, "reason": "no longer needed"}, [denied]),
            ],
            # 5: a subagent tries the cancel that is gated.
            [("subagent", task, {"description": "cancel an order", "subagent_type": "general-purpose", "run_in_background": False,
                                 "prompt": f"{SUBAGENT_MARKER} cancel order {self.other}"}, [("contains", "SUBAGENT-DONE")])],
            # 6: the store is wrecked before this turn; the read is refused, not let through.
            [("store-crash", retail("get_order_details"), {"order_id": self.order}, [denied, ("contains", "could not be checked")])],
            "SCENARIO-DONE",
        ]

    def subagent_turns(self) -> list[Any]:
        cancel = {"order_id": self.other, "reason": "no longer needed"}
        return [
            [("subagent-cancel", "mcp__retail__cancel_pending_order", cancel, [("contains", "Tollgate blocked this call")])],
            "SUBAGENT-DONE",
        ]

    def before(self, turn: int) -> None:
        if turn == 6 and self.options.tollgate_db:
            db = Path(self.options.tollgate_db)
            for suffix in ("-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
            db.write_bytes(b"\x5a" * 8192)
            log({"event": "store-crashed", "db": str(db)})


def log(entry: dict[str, Any]) -> None:
    with LOCK, open(OPTIONS.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def check(name: str, expectation: tuple[str, str], result: tuple[str, bool] | None) -> None:
    kind, want = expectation
    if kind == "saved-status":
        saved = json.loads(Path(OPTIONS.save).read_text()) if Path(OPTIONS.save).exists() else {}
        status = saved.get("orders", {}).get(SCENARIO.order, {}).get("status")
        log({"check": f"{name}: saved status {want}", "ok": status == want, "detail": status})
        return
    text = result[0] if result else None
    ok = text is not None and want in text
    log({"check": f"{name}: {kind} {want!r}", "ok": ok, "detail": (text or "(no tool_result)")[:2000]})


def play(turns: list[Any], messages: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The content blocks of the next assistant turn, after checking the last one's results.

    The turn is found from the ids of the script's own tool calls in the
    conversation (`toolu_<who><turn>_<index>`): Claude Code merges
    consecutive assistant messages and adds system messages, so counting
    messages would not do."""
    played = set()
    results: dict[str, tuple[str, bool]] = {}
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use" and block.get("id", "").startswith(f"toolu_{prefix}"):
                played.add(int(block["id"][len(f"toolu_{prefix}"):].split("_")[0]))
        if message.get("role") == "user":
            results.update(tool_results(message))
    turn = max(played) + 1 if played else 0
    if turn > 0:
        previous = turns[turn - 1] if turn - 1 < len(turns) else None
        if isinstance(previous, list):
            for index, (name, _tool, _input, expectations) in enumerate(previous):
                for expectation in expectations:
                    check(name, expectation, results.get(f"toolu_{prefix}{turn - 1}_{index}"))
    if turn >= len(turns):
        return [{"type": "text", "text": "nothing more to do"}]
    step = turns[turn]
    if prefix == "m":
        SCENARIO.before(turn)
    if isinstance(step, str):
        log({"event": "final", "who": prefix, "text": step})
        return [{"type": "text", "text": step}]
    log({"event": "turn", "who": prefix, "turn": turn, "calls": [s[0] for s in step]})
    return [
        {"type": "tool_use", "id": f"toolu_{prefix}{turn}_{index}", "name": tool, "input": tool_input}
        for index, (_name, tool, tool_input, _expect) in enumerate(step)
    ]


def answer(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages", [])
    # What the user said (the prompt; Claude Code adds reminders beside it), not tool results.
    first = "\n".join(
        text_of([b for b in m.get("content") if isinstance(b, dict) and b.get("type") == "text"])
        if isinstance(m.get("content"), list) else text_of(m.get("content"))
        for m in messages if m.get("role") == "user"
    )
    tools = [t.get("name", "") for t in body.get("tools", []) or []]
    if os.environ.get("STUB_DUMP"):
        Path(os.environ["STUB_DUMP"]).write_text(json.dumps(messages, indent=1)[-6000:])
    log({"event": "request", "marker": MARKER in first, "subagent": SUBAGENT_MARKER in first, "messages": len(messages),
         "retail_tools": sum(1 for t in tools if t.startswith("mcp__retail__")), "tools": len(tools)})
    if SUBAGENT_MARKER in first:
        return play(SCENARIO.subagent_turns(), messages, "s")
    if MARKER in first and any(t.startswith("mcp__retail__") for t in tools):
        return play(SCENARIO.turns(tools), messages, "m")
    if MARKER in first and "WaitForMcpServers" in tools:
        # The retail server is still starting (a slow machine): the model
        # waits for it, as a real one would, before its first turn.
        waits = sum(1 for m in messages for b in (m.get("content") if isinstance(m.get("content"), list) else [])
                    if isinstance(b, dict) and b.get("type") == "tool_use")
        if waits < 10:
            log({"event": "wait-for-mcp", "attempt": waits})
            return [{"type": "tool_use", "id": f"wait_{waits}", "name": "WaitForMcpServers", "input": {}}]
    return [{"type": "text", "text": "OK"}]


def sse(blocks: list[dict[str, Any]], model: str) -> bytes:
    events = []

    def event(name: str, data: dict[str, Any]) -> None:
        events.append(f"event: {name}\ndata: {json.dumps(data)}\n\n")

    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    event("message_start", {"type": "message_start", "message": {
        "id": "msg_stub", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}})
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            event("content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {"type": "text", "text": ""}})
            event("content_block_delta", {"type": "content_block_delta", "index": index,
                                          "delta": {"type": "text_delta", "text": block["text"]}})
        else:
            event("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})
            event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(block["input"])}})
        event("content_block_stop", {"type": "content_block_stop", "index": index})
    event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                            "usage": {"output_tokens": 5}})
    event("message_stop", {"type": "message_stop"})
    return "".join(events).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:
        pass

    def reply(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.send_header("request-id", "req_stub")
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        path = self.path.split("?")[0]
        if path.endswith("/count_tokens"):
            self.reply(200, "application/json", b'{"input_tokens": 10}')
            return
        if not path.endswith("/v1/messages"):
            self.reply(404, "application/json", b'{"type":"error","error":{"type":"not_found_error","message":"stub"}}')
            return
        with LOCK:
            blocks = answer(body)
        model = body.get("model", "claude-stub")
        if body.get("stream"):
            self.reply(200, "text/event-stream", sse(blocks, model))
        else:
            stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
            message = {"id": "msg_stub", "type": "message", "role": "assistant", "model": model, "content": blocks,
                       "stop_reason": stop, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 5}}
            self.reply(200, "application/json", json.dumps(message).encode())

    def do_GET(self) -> None:  # noqa: N802
        self.reply(404, "application/json", b'{"type":"error","error":{"type":"not_found_error","message":"stub"}}')

    do_HEAD = do_GET


def main() -> None:
    global OPTIONS, SCENARIO
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--save", required=True, help="the retail MCP server's --save file")
    parser.add_argument("--retail-db", required=True)
    parser.add_argument("--tollgate-db")
    OPTIONS = parser.parse_args()
    SCENARIO = Scenario(OPTIONS)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
