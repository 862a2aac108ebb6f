"""A loopback stand-in for the Anthropic Messages API, for driving the
Claude Code CLI (bundled in claude-agent-sdk) without a network: each
request of the scripted conversation (one that offers the test's tools) is
answered with the next scripted assistant turn; any other request (titles,
summaries) gets a short text. Every request body is kept, so a test can
check what reached the model (a tool_result carrying a block's reason)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def tool_use(name: str, args: dict[str, Any], id: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": id, "name": name, "input": args}


def text(words: str) -> dict[str, Any]:
    return {"type": "text", "text": words}


class MessagesStub:
    def __init__(self, turns: list[dict[str, Any]], tool_marker: str) -> None:
        self.turns = list(turns)
        self.tool_marker = tool_marker
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:
                self._json({"data": [], "has_more": False})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.startswith("/v1/messages") or "count_tokens" in self.path:
                    self._json({"input_tokens": 1})
                    return
                block = stub.answer(body)
                if body.get("stream"):
                    self._stream(block, body.get("model", "stub"))
                else:
                    self._json(message(block, body.get("model", "stub")))

            def _json(self, value: Any) -> None:
                data = json.dumps(value).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, block: dict[str, Any], model: str) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.end_headers()
                start = message(block, model)
                start["content"] = []
                start["stop_reason"] = None
                events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
                if block["type"] == "tool_use":
                    opened = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                    delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
                else:
                    opened = {"type": "text", "text": ""}
                    delta = {"type": "text_delta", "text": block["text"]}
                events += [
                    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": opened}),
                    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
                    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason(block), "stop_sequence": None}, "usage": {"output_tokens": 5}}),
                    ("message_stop", {"type": "message_stop"}),
                ]
                for name, data in events:
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        offered = json.dumps(body.get("tools", []))
        with self.lock:
            if self.tool_marker not in offered:
                return text("ok")
            self.requests.append(body)
            return self.turns.pop(0) if self.turns else text("All done.")

    def tool_results(self) -> list[str]:
        """The text of every tool_result the model was sent, in order."""
        seen: list[str] = []
        last = self.requests[-1] if self.requests else {}
        for msg in last.get("messages", []):
            content = msg.get("content")
            if not isinstance(content, list):
                continue
            for part in content:
                if isinstance(part, dict) and part.get("type") == "tool_result":
                    inner = part.get("content")
                    seen.append(inner if isinstance(inner, str) else json.dumps(inner))
        return seen

    def __enter__(self) -> "MessagesStub":
        self.thread.start()
        return self

    def __exit__(self, *args: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def stop_reason(block: dict[str, Any]) -> str:
    return "tool_use" if block["type"] == "tool_use" else "end_turn"


def message(block: dict[str, Any], model: str) -> dict[str, Any]:
    return {
        "id": "msg_stub",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": stop_reason(block),
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }
