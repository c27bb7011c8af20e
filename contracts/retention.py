"""Erasures an oversight body can list: upcoming (a closed case whose retention period
runs) and executed (an erasure order in the log), from the clear parts of a log alone.

A case's closing event carries, in clear, why it closed and the end of its retention
period (`retention-ends`, computed from the country's policy and recomputed by every
node); an erasure order carries its legal-basis code and the officer (or, when the
period ran out, the node's own system) that ordered it. Nothing personal is read, so the
list is the same before and after the erasure. Pure: the caller supplies the envelopes
(as JSON objects, as a node's audit log serves them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

RETENTION_DEADLINE = "retention-ends"


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def erasures(envelopes: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, Any]:
    """{"upcoming": [...], "overdue": [...], "executed": [...]}, each sorted by time.

    upcoming: closed cases not erased, their retention end still ahead of `now`;
    overdue: the same, their end passed (the order should have followed: a notifier
    down, or an order refused); executed: every erasure order, with its legal basis."""
    closed: dict[str, dict[str, Any]] = {}
    executed: dict[str, dict[str, Any]] = {}
    for env in envelopes:
        case, kind = str(env.get("subject", "")), env.get("type")
        op = env.get("operational") or {}
        if kind == "case.closed" and case not in closed:
            due = (env.get("deadlines") or {}).get(RETENTION_DEADLINE)
            closed[case] = {
                "case": case,
                "closed_at": env.get("time"),
                "closed_by": env.get("sender"),
                "reason_code": op.get("reason_code"),
                "erase_by": due,
                "closing_event_id": env.get("id"),
            }
        elif kind == "case.erasure-ordered" and case not in executed:
            executed[case] = {
                "case": case,
                "ordered_at": env.get("time"),
                "ordered_by": env.get("sender"),
                "officer": op.get("ordered_by_officer"),
                "legal_basis": op.get("legal_basis"),
                "event_id": env.get("id"),
                "closed_at": closed.get(case, {}).get("closed_at"),
            }
    pending = [c for case, c in closed.items() if case not in executed]
    due_at = {c["case"]: _when(c["erase_by"]) for c in pending}
    upcoming = [c for c in pending if (d := due_at[c["case"]]) is None or d > now]
    overdue = [c for c in pending if (d := due_at[c["case"]]) is not None and d <= now]
    return {
        "upcoming": sorted(upcoming, key=lambda c: str(c["erase_by"])),
        "overdue": sorted(overdue, key=lambda c: str(c["erase_by"])),
        "executed": sorted(executed.values(), key=lambda c: str(c["ordered_at"])),
    }
