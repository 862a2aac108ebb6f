"""Three of the τ²-bench retail tools over the benchmark's own database, and
the session set-up the framework examples share. The database is read from
../shared/tau beside the repository (or $TAU_DIR) and changed in memory
only."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import tollgate

ROOT = Path(__file__).resolve().parents[3]
TAU = Path(os.environ.get("TAU_DIR", ROOT.parent / "shared" / "tau"))
WORKFLOW = ROOT / "examples" / "tau2-retail.toml"

# The τ² retail task these examples play: Ivan Santos cancels his pending order.
EMAIL = "ivan.santos3158@example.com"
ORDER = "#W8770097"
PROMPT = f"I'm {EMAIL}. Please cancel my order {ORDER}, I no longer need it."


class Retail:
    """The tools the examples call, as the benchmark implements them."""

    def __init__(self) -> None:
        self.db = copy.deepcopy(json.loads((TAU / "tau2-bench" / "retail" / "db.json").read_text()))
        self.cancelled: list[str] = []

    def find_user_id_by_email(self, email: str) -> str:
        for user_id, user in self.db["users"].items():
            if user["email"].lower() == email.lower():
                return user_id
        raise ValueError("user not found")

    def get_order_details(self, order_id: str) -> dict[str, Any]:
        if order_id not in self.db["orders"]:
            raise ValueError("order not found")
        return self.db["orders"][order_id]

    def cancel_pending_order(self, order_id: str, reason: str) -> dict[str, Any]:
        order = self.get_order_details(order_id)
        if order["status"] != "pending":
            raise ValueError("non-pending order cannot be cancelled")
        order["status"] = "cancelled"
        order["cancel_reason"] = reason
        self.cancelled.append(order_id)
        return order


def session(engine: tollgate.Engine, id: str) -> tollgate.Session:
    """A session of the τ²-retail workflow (created, or opened if it exists)."""
    return engine.session(id, engine.workflow(WORKFLOW))


class Timeline:
    """A session that prints each decision as it is made."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.id = inner.id

    def decide(self, tool: str, args: Any = None, **kwargs: Any) -> Any:
        decision = self.inner.decide(tool, args, **kwargs)
        if decision.replayed:  # the same call asked again (a guardrail after the approval check)
            return decision
        rules = ", ".join(decision.rule_ids)
        print(f"{decision.call_id:>12} {tool:24} {decision.verdict:8} {rules}")
        return decision

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
