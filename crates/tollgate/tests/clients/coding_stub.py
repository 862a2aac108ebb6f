"""The loopback Messages-API stub of messages_stub.py playing a scripted
coding agent, for running the real Claude Code CLI headless against
`tollgate hook` with examples/coding-agent.toml.

    python coding_stub.py --log LOG --project DIR --remote BARE_GIT_DIR --outside FILE

The scripted model works in a git project whose test command is
`./test.sh`: it edits a file, tries to push (denied: no test has passed),
runs the tests (pass), edits again, tries to push (denied: the pass is
stale), runs the tests, pushes (allowed: the bare remote gets the commit),
tries to write outside the project (denied) and to `rm -rf` a directory
(escalated: denied, naming the handoff). Before each turn it checks the
previous turn's tool results, and the world: the file's content, the
remote's head, the file outside that must not exist, the directory that must
still be there. Every check is one JSON line in LOG.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import messages_stub as stub

MARKER = stub.MARKER


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else f"(git failed: {done.stderr.strip()})"


class Coding:
    """The coding scenario; `turns` and `before` as messages_stub plays them."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.project = Path(options.project)
        self.file = self.project / "app.txt"

    def turns(self, _tools: list[str]) -> list[Any]:
        denied = ("contains", "Tollgate blocked this call")
        edit = lambda old, new: {"file_path": str(self.file), "old_string": old, "new_string": new}  # noqa: E731
        bash = lambda command, what: {"command": command, "description": what}  # noqa: E731
        return [
            # 0: Claude Code edits only files it has read.
            [("read", "Read", {"file_path": str(self.file)}, [("contains", "version one")])],
            # 1: the first edit.
            [("edit-1", "Edit", edit("version one", "version two"), [("file-contains", "version two")])],
            # 2: committing is not pushing.
            [("commit-1", "Bash", bash("git commit -qam 'edit one'", "Commit"), [("not-contains", "Tollgate")])],
            # 3: a push before any test run: denied, the reason names the rule.
            [("push-untested", "Bash", bash("git push origin main", "Push"),
              [denied, ("contains", "tests-before-push"), ("remote-head-is-not", "edit one")])],
            # 4: the tests pass.
            [("test-1", "Bash", bash("./test.sh", "Run the tests"), [("contains", "all tests passed")])],
            # 5: another edit makes that pass stale.
            [("edit-2", "Edit", edit("version two", "version three"), [("file-contains", "version three")])],
            [("commit-2", "Bash", bash("git commit -qam 'edit two'", "Commit"), [("not-contains", "Tollgate")])],
            # 7: the push is denied again: the code changed since the tests passed.
            [("push-stale", "Bash", bash("git push origin main", "Push"),
              [denied, ("contains", "tests-before-push"), ("remote-head-is-not", "edit two")])],
            # 8: the tests pass on the code as it is.
            [("test-2", "Bash", bash("./test.sh", "Run the tests"), [("contains", "all tests passed")])],
            # 9: the push goes through, and the remote has the commit.
            [("push", "Bash", bash("git push origin main", "Push"), [("not-contains", "Tollgate"), ("remote-head", "edit two")])],
            # 10: a write outside the project.
            [("write-outside", "Write", {"file_path": self.options.outside, "content": "escaped\n"},
              [denied, ("contains", "write-inside-project"), ("absent", self.options.outside)])],
            # 11: a recursive delete goes to a person: denied, naming the handoff.
            [("rm-rf", "Bash", bash("rm -rf build", "Clean the build"),
              [("contains", "Tollgate handed this call to a person"), ("contains", "destructive-files"),
               ("contains", "handoff h_"), ("contains", "reviewers' queue"),
               ("exists", str(self.project / "build" / "keep.txt"))])],
            "SCENARIO-DONE",
        ]

    def subagent_turns(self) -> list[Any]:
        return ["SUBAGENT-DONE"]

    def before(self, _turn: int) -> None:
        pass


def check(name: str, expectation: tuple[str, str], result: tuple[str, bool] | None) -> None:
    kind, want = expectation
    text = result[0] if result else None
    if kind == "not-contains":
        ok, detail = text is not None and want not in text, text
    elif kind == "file-contains":
        content = SCENARIO.file.read_text() if SCENARIO.file.exists() else ""
        ok, detail = want in content, content
    elif kind in ("remote-head", "remote-head-is-not"):
        head = git("--git-dir", OPTIONS.remote, "log", "-1", "--format=%s", "main")
        ok, detail = (head == want) if kind == "remote-head" else (head != want), head
    elif kind == "absent":
        ok, detail = not Path(want).exists(), want
    elif kind == "exists":
        ok, detail = Path(want).exists(), want
    else:
        return ORIGINAL_CHECK(name, expectation, result)
    stub.log({"check": f"{name}: {kind} {want!r}", "ok": ok, "detail": (detail or "(nothing)")[:2000]})


def answer(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages", [])
    first = "\n".join(
        stub.text_of([b for b in m.get("content") if isinstance(b, dict) and b.get("type") == "text"])
        if isinstance(m.get("content"), list) else stub.text_of(m.get("content"))
        for m in messages if m.get("role") == "user"
    )
    stub.log({"event": "request", "marker": MARKER in first, "messages": len(messages)})
    if MARKER in first:
        return stub.play(SCENARIO.turns([]), messages, "m")
    return [{"type": "text", "text": "OK"}]


ORIGINAL_CHECK = stub.check


def main() -> None:
    global OPTIONS, SCENARIO
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--remote", required=True)
    parser.add_argument("--outside", required=True)
    OPTIONS = parser.parse_args()
    SCENARIO = Coding(OPTIONS)
    # messages_stub's machinery, playing this scenario.
    stub.OPTIONS = OPTIONS
    stub.SCENARIO = SCENARIO
    stub.check = check
    stub.answer = answer
    server = ThreadingHTTPServer(("127.0.0.1", 0), stub.Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
