"""Adapters: a few lines put a framework's tool calls through Tollgate.

- `tollgate.adapters.claude_agent_sdk`: `PreToolUse` / `PostToolUse` hook callbacks;
- `tollgate.adapters.openai_agents`: tool input and output guardrails;
- `tollgate.adapters.langgraph`: a gated `ToolNode`.

Each takes a session of either backend (`tollgate.Session` in-process or
`tollgate.remote.Session`) and imports its framework only when used.
"""

from ._common import GatedSession, result_of

__all__ = ["GatedSession", "result_of"]
