"""Tollgate: workflow rules enforced on an agent's tool calls.

In-process (the engine in this process, on an SQLite file by default)::

    import tollgate
    engine = tollgate.Engine("tollgate.db")
    session = engine.session("s1", engine.workflow("examples/tau2-retail.toml"))
    decision = session.decide("get_order_details", {"order_id": "#W2378156"})
    if decision.allowed:
        session.record(decision, run_the_tool())
    else:
        tell_the_agent(decision.message)

Remote (a client of `tollgate serve`): `tollgate.remote.Client` and
`tollgate.remote.AsyncClient`, with the same session methods. Adapters for
the OpenAI Agents SDK, LangGraph and the Claude Agent SDK are in
`tollgate.adapters`.
"""

from ._core import Engine, Handoff, InDoubt, Recorded, Session, Workflow, new_call_id
from ._native import BadRequest, Conflict, Damaged, Decision, NotFound, Reason, TollgateError, Unavailable

__all__ = [
    "BadRequest",
    "Conflict",
    "Damaged",
    "Decision",
    "Engine",
    "Handoff",
    "InDoubt",
    "NotFound",
    "Reason",
    "Recorded",
    "Session",
    "TollgateError",
    "Unavailable",
    "Workflow",
    "new_call_id",
]
__version__ = "0.1.0"
