"""An MCP server that misbehaves, for the gateway's failure tests (the
official MCP Python SDK, over stdio).

- `whoami` answers a user id that is a number, though the workflow reads it
  as text: the gateway records it, the fact is not established.
- `secret` is guarded by that fact in the workflow.
- `echo` echoes, so oversized arguments can be tried.
- `die` exits the process in the middle of the call.
"""

from __future__ import annotations

import os
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent

server = MCPServer(name="misbehaving", version="1", log_level="WARNING")


@server.tool(structured_output=False)
def whoami() -> CallToolResult:
    """Says who the user is (its id is a number: a lie about its type)."""
    return CallToolResult(content=[TextContent(type="text", text='{"user": 42}')], structured_content={"user": 42})


@server.tool(structured_output=False)
def secret() -> CallToolResult:
    """A secret only a known user may read."""
    return CallToolResult(content=[TextContent(type="text", text="the secret")])


@server.tool(structured_output=False)
def echo(text: str) -> CallToolResult:
    """Echoes the text."""
    return CallToolResult(content=[TextContent(type="text", text=text)])


@server.tool(structured_output=False)
def die() -> Any:
    """Exits the server while the call is in flight."""
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
