"""An escalation through `tollgate gateway`, with the official MCP Python SDK
as the client. Talks to the test over its standard streams: after the first
call (which the workflow escalates) it prints that step as a JSON line and
waits for a line on standard input (the test approves the handoff meanwhile);
then it retries the identical call twice and prints one JSON object of what
every step answered.

    python escalation_client.py ORDER_ID -- COMMAND ARGS...
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from mcp import Client, StdioServerParameters


async def main() -> None:
    order = sys.argv[1]
    command = sys.argv[sys.argv.index("--") + 1 :]
    out: dict[str, Any] = {}
    server = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(server, read_timeout_seconds=60) as client:
        args = {"order_id": order, "reason": "no longer needed"}

        async def call(step: str) -> None:
            result = await client.call_tool("cancel_pending_order", args)
            text = "\n".join(getattr(block, "text", "") for block in result.content)
            out[step] = {"is_error": bool(result.is_error), "text": text, "meta": result.meta}

        await call("escalated")
        print(json.dumps(out["escalated"]), flush=True)
        # The test approves the handoff, then says so.
        line = await asyncio.to_thread(sys.stdin.readline)
        if line.strip() != "approved":
            raise SystemExit(f"expected 'approved' on standard input, got {line!r}")
        await call("approved_retry")
        await call("second_retry")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
