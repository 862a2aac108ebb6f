"""An agent's τ²-retail conversation through `tollgate gateway`, with the
official MCP Python SDK as the client. Prints one JSON object: what each step
answered (the Rust test asserts on it).

    python tau2_client.py stdio MODE -- COMMAND ARGS...   (the gateway as a child)
    python tau2_client.py http MODE URL SESSION            (a gateway already listening)

MODE is the client's protocol mode: `legacy` (the initialize handshake,
2025-11-25) or `auto` (server/discover, 2026-07-28 when the server has it).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from mcp import Client, StdioServerParameters

USER_EMAIL = "ivan.santos3158@example.com"
PENDING_ORDER = "#W8770097"  # ivan_santos_6635's, pending
OTHER_ORDER = "#W2611340"  # james_li_5688's


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def conversation(client: Client, meta: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"protocol": client.protocol_version}
    tools = await client.list_tools()
    out["tools"] = {tool.name: tool.description or "" for tool in tools.tools}

    async def call(step: str, name: str, args: dict[str, Any]) -> None:
        result = await client.call_tool(name, args, meta=meta)
        out[step] = {
            "is_error": bool(result.is_error),
            "text": text_of(result),
            "structured": result.structured_content,
            "meta": result.meta,
        }

    await call("cancel_before_auth", "cancel_pending_order", {"order_id": PENDING_ORDER, "reason": "no longer needed"})
    await call("find_user", "find_user_id_by_email", {"email": USER_EMAIL})
    await call("other_users_order", "get_order_details", {"order_id": OTHER_ORDER})
    await call("own_order", "get_order_details", {"order_id": PENDING_ORDER})
    await call("cancel_after_read", "cancel_pending_order", {"order_id": PENDING_ORDER, "reason": "no longer needed"})
    return out


async def main() -> None:
    transport, mode = sys.argv[1], sys.argv[2]
    if transport == "stdio":
        command = sys.argv[sys.argv.index("--") + 1 :]
        server: Any = StdioServerParameters(command=command[0], args=command[1:])
        meta = None
    else:
        server = sys.argv[3]
        meta = {"tollgate.dev/session": sys.argv[4]}
    async with Client(server, mode=mode, read_timeout_seconds=60) as client:
        unnamed = None
        if meta is not None:
            # Over HTTP a call must name its session (the newest protocol
            # has none of its own; a legacy client's MCP session serves).
            result = await client.call_tool("find_user_id_by_email", {"email": USER_EMAIL})
            unnamed = {"is_error": bool(result.is_error), "text": text_of(result)}
        out = await conversation(client, meta)
        out["unnamed_session"] = unnamed
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
