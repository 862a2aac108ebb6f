"""A loopback stub of the OpenAI Responses API that plays a scripted model,
for running the real Codex CLI (`codex exec`) against `tollgate hook`.

    python responses_stub.py --scenario gated|ungated|subagent --log LOG --save SAVED
        --retail-db DB --proj DIR [--tollgate-db DB]

It listens on 127.0.0.1 (a port of the system's choosing, printed on stdout
as `listening PORT`) and answers POST /v1/responses as the real API does
when streaming: server-sent events `response.created`, one
`response.output_item.done` per output item (function calls, or an
assistant message), `response.completed`. Nothing reaches the internet.

The scripted model: a conversation is the scenario's when a user message
holds the marker; its turn is found from the ids of the script's own calls
in the input (`call_m<turn>_<index>`). Before it answers a turn it checks
the `function_call_output` items Codex sent back for the previous one (a
denial's reason arrived, an allowed call's output did, a withheld one did
not) and writes every check to LOG as one JSON line ({"check": name, "ok":
bool, "detail": ...}). Requests it is not scripted for get a short text. A
subagent (started with Codex's `spawn_agent`) is recognised by its own marker
and plays its own script (`call_s<turn>_<index>`).
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MARKER = "TOLLGATE-SCENARIO"
SUBAGENT_MARKER = "TOLLGATE-SUBAGENT"
USER = "ivan_santos_6635"
EMAIL = "ivan.santos3158@example.com"
RETAIL = "mcp__retail"
LOCK = threading.RLock()


def output_text(output: Any) -> str:
    """A function_call_output's text (a string, or a list of content items)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "\n".join(str(item.get("text", "")) for item in output if isinstance(item, dict))
    return json.dumps(output)


class Scenario:
    """Each turn is a list of calls (name, tool, namespace, arguments,
    expectations on its output) or a final text; `before` runs before a
    turn is answered (the store crash)."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        orders = json.loads(Path(options.retail_db).read_text())["orders"]
        mine = [o["order_id"] for o in orders.values() if o["user_id"] == USER and o["status"] == "pending"]
        others = [o["order_id"] for o in orders.values() if o["user_id"] != USER and o["status"] == "pending"]
        if not mine or not others:
            raise SystemExit(f"the retail database has no pending order of {USER}")
        self.order, self.other = mine[0], others[0]

    def turns(self) -> list[Any]:
        denied = ("contains", "Tollgate blocked this call")
        cancel = {"order_id": self.order, "reason": "no longer needed"}
        if self.options.scenario == "subagent":
            # A subagent's calls are gated in its parent's session: the parent
            # authenticated, so the subagent's cancel of another user's order is
            # refused for that user, not for a missing authentication.
            spawn = {"message": f"{SUBAGENT_MARKER} cancel order {self.other}"}
            wait = lambda outputs: {"targets": [agent_id(outputs.get("call_m2_0"))], "timeout_ms": 120000}  # noqa: E731
            return [
                [("authenticate", "find_user_id_by_email", RETAIL, {"email": EMAIL}, [("contains", USER)])],
                [("read-order", "get_order_details", RETAIL, {"order_id": self.order}, [("contains", self.order)])],
                [("spawn", "spawn_agent", "multi_agent_v1", spawn, [("contains", "agent_id")])],
                [("wait", "wait_agent", "multi_agent_v1", wait, [("contains", "SUBAGENT-DONE")])],
                "SCENARIO-DONE",
            ]
        if self.options.scenario == "ungated":
            # The hooks do not gate (not trusted, or failing): Codex runs the cancel.
            return [
                [("ungated-cancel", "cancel_pending_order", RETAIL, cancel,
                  [("contains", "cancelled"), ("lacks", "Tollgate"), ("saved-status", "cancelled")])],
                "SCENARIO-DONE",
            ]
        return [
            # 0: cancelling before authenticating: denied, the reason names the gate.
            [("cancel-before-auth", "cancel_pending_order", RETAIL, cancel, [denied, ("contains", "R-AUTH")])],
            # 1: authenticating.
            [("authenticate", "find_user_id_by_email", RETAIL, {"email": EMAIL}, [("contains", USER)])],
            # 2: reading the order.
            [("read-order", "get_order_details", RETAIL, {"order_id": self.order}, [("contains", self.order)])],
            # 3: cancelling it: allowed, the MCP server's data changed.
            [("cancel", "cancel_pending_order", RETAIL, cancel, [("contains", "cancelled"), ("saved-status", "cancelled")])],
            # 4: a batch: another user's order is read and cancelled in one turn.
            [
                ("batch-read", "get_order_details", RETAIL, {"order_id": self.other},
                 [("contains", "withheld"), ("lacks", "payment_history")]),
                ("batch-cancel", "cancel_pending_order", RETAIL, {"order_id": self.other, "reason": "no longer needed"},
                 [denied]),
            ],
            # 5: Codex's own shell: a tool the workflow does not declare, denied; nothing ran.
            [("shell", "exec_command", None, {"cmd": "touch shell-ran"}, [denied, ("absent", "shell-ran")])],
            # 6: the store is wrecked before this turn; the read is refused, not let through.
            [("store-crash", "get_order_details", RETAIL, {"order_id": self.order}, [denied, ("contains", "could not be checked")])],
            "SCENARIO-DONE",
        ]

    def subagent_turns(self) -> list[Any]:
        cancel = {"order_id": self.other, "reason": "no longer needed"}
        return [
            [("subagent-cancel", "cancel_pending_order", RETAIL, cancel,
              [("contains", "Tollgate blocked this call"), ("contains", "R-ONE-USER"), ("lacks", "R-AUTH"),
               ("other-status", "pending")])],
            "SUBAGENT-DONE",
        ]

    def before(self, turn: int) -> None:
        if self.options.scenario == "gated" and turn == 6 and self.options.tollgate_db:
            db = Path(self.options.tollgate_db)
            for suffix in ("-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
            db.write_bytes(b"\x5a" * 8192)
            log({"event": "store-crashed", "db": str(db)})


def agent_id(output: str | None) -> str:
    """The agent id in `spawn_agent`'s output."""
    try:
        return str(json.loads(output or "{}").get("agent_id", ""))
    except json.JSONDecodeError:
        return ""


def log(entry: dict[str, Any]) -> None:
    with LOCK, open(OPTIONS.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def check(name: str, expectation: tuple[str, str], text: str | None) -> None:
    kind, want = expectation
    if kind == "saved-status":
        saved = json.loads(Path(OPTIONS.save).read_text()) if Path(OPTIONS.save).exists() else {}
        status = saved.get("orders", {}).get(SCENARIO.order, {}).get("status")
        log({"check": f"{name}: saved status {want}", "ok": status == want, "detail": status})
        return
    if kind == "other-status":
        saved = json.loads(Path(OPTIONS.save).read_text()) if Path(OPTIONS.save).exists() else {}
        orders = saved.get("orders") or json.loads(Path(OPTIONS.retail_db).read_text())["orders"]
        status = orders.get(SCENARIO.other, {}).get("status")
        log({"check": f"{name}: other order {want}", "ok": status == want, "detail": status})
        return
    if kind == "absent":
        exists = (Path(OPTIONS.proj) / want).exists()
        log({"check": f"{name}: {want} absent", "ok": not exists, "detail": exists})
        return
    ok = text is not None and ((want in text) if kind == "contains" else (want not in text))
    log({"check": f"{name}: {kind} {want!r}", "ok": ok, "detail": (text or "(no function_call_output)")[:2000]})


def answer(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The output items of the next response."""
    items = [i for i in body.get("input", []) if isinstance(i, dict)]
    said = "\n".join(
        output_text([c for c in i.get("content", []) if isinstance(c, dict)])
        for i in items if i.get("type") == "message" and i.get("role") == "user"
    )
    namespaces = [t.get("name") for t in body.get("tools", []) if t.get("type") == "namespace"]
    log({"event": "request", "marker": MARKER in said, "retail": RETAIL in namespaces, "items": len(items)})
    if MARKER in said:
        return play(SCENARIO.turns(), items, "m")
    if SUBAGENT_MARKER in said:
        return play(SCENARIO.subagent_turns(), items, "s")
    return [message("OK")]


def play(turns: list[Any], items: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The next turn's output items, after checking the last one's outputs."""
    played, outputs = set(), {}
    for item in items:
        call_id = str(item.get("call_id", ""))
        if item.get("type") == "function_call" and call_id.startswith(f"call_{prefix}"):
            played.add(int(call_id[len(f"call_{prefix}"):].split("_")[0]))
        if item.get("type") == "function_call_output":
            outputs[call_id] = output_text(item.get("output"))
    turn = max(played) + 1 if played else 0
    if turn > 0 and isinstance(turns[turn - 1], list):
        for index, (name, _tool, _ns, _args, expectations) in enumerate(turns[turn - 1]):
            for expectation in expectations:
                check(name, expectation, outputs.get(f"call_{prefix}{turn - 1}_{index}"))
    if turn >= len(turns):
        return [message("nothing more to do")]
    if prefix == "m":
        SCENARIO.before(turn)
    step = turns[turn]
    if isinstance(step, str):
        log({"event": "final", "who": prefix, "text": step})
        return [message(step)]
    log({"event": "turn", "who": prefix, "turn": turn, "calls": [s[0] for s in step]})
    calls = []
    for index, (_name, tool, namespace, arguments, _expect) in enumerate(step):
        if callable(arguments):
            arguments = arguments(outputs)
        call = {"type": "function_call", "call_id": f"call_{prefix}{turn}_{index}", "name": tool,
                "arguments": json.dumps(arguments)}
        if namespace:
            call["namespace"] = namespace
        calls.append(call)
    return calls


def message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "id": "msg_stub",
            "content": [{"type": "output_text", "text": text}]}


def sse(items: list[dict[str, Any]]) -> bytes:
    usage = {"input_tokens": 10, "input_tokens_details": None, "output_tokens": 5,
             "output_tokens_details": None, "total_tokens": 15}
    events = [{"type": "response.created", "response": {"id": "resp_stub"}}]
    events += [{"type": "response.output_item.done", "item": item} for item in items]
    events.append({"type": "response.completed", "response": {"id": "resp_stub", "usage": usage}})
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:
        pass

    def reply(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.split("?")[0] != "/v1/responses":
            self.reply(404, "application/json", b'{"error":{"message":"stub: not found"}}')
            return
        with LOCK:
            items = answer(body)
        self.reply(200, "text/event-stream", sse(items))

    def do_GET(self) -> None:  # noqa: N802
        self.reply(404, "application/json", b'{"error":{"message":"stub: not found"}}')


def main() -> None:
    global OPTIONS, SCENARIO
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", choices=["gated", "ungated", "subagent"], required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--save", required=True, help="the retail MCP server's --save file")
    parser.add_argument("--retail-db", required=True)
    parser.add_argument("--proj", required=True, help="Codex's working directory")
    parser.add_argument("--tollgate-db")
    OPTIONS = parser.parse_args()
    SCENARIO = Scenario(OPTIONS)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
