"""The failure cases through `tollgate gateway` in front of
misbehaving_server.py, with the official MCP Python SDK. Prints one JSON
object of what each step answered.

    python misbehaving_client.py -- COMMAND ARGS...
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from mcp import Client, StdioServerParameters


async def main() -> None:
    command = sys.argv[sys.argv.index("--") + 1 :]
    out: dict[str, Any] = {}
    async with Client(StdioServerParameters(command=command[0], args=command[1:]), read_timeout_seconds=60) as client:

        async def call(step: str, name: str, args: dict[str, Any]) -> None:
            try:
                result = await client.call_tool(name, args)
                text = "\n".join(getattr(block, "text", "") for block in result.content)
                out[step] = {"is_error": bool(result.is_error), "text": text}
            except Exception as e:  # an MCP error answer is recorded for the test to judge
                out[step] = {"is_error": True, "exception": repr(e), "text": str(e)}

        await call("lying_whoami", "whoami", {})
        await call("secret_after_lie", "secret", {})
        await call("oversized", "echo", {"text": "x" * 5000})
        await call("wrong_type", "echo", {"text": 5})
        await call("not_listed", "launch_missiles", {})
        await call("echo", "echo", {"text": "fine"})
        await call("die", "die", {})
        await call("after_death", "echo", {"text": "anyone there?"})
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
