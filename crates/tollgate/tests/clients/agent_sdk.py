"""Runs the scripted scenario through the Python Claude Agent SDK (`query`),
with the project's settings (its hooks, its .mcp.json), against the
Messages-API stub named by ANTHROPIC_BASE_URL in the environment.

    python agent_sdk.py PROJECT_DIR PROMPT
"""

import asyncio
import os
import sys

from claude_agent_sdk import ClaudeAgentOptions, query


async def main() -> None:
    project, prompt = sys.argv[1], sys.argv[2]
    options = ClaudeAgentOptions(cwd=project, setting_sources=["project"], env=dict(os.environ))
    async for message in query(prompt=prompt, options=options):
        print(type(message).__name__, flush=True)


asyncio.run(main())
