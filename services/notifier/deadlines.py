"""Deadlines derived from the node's log: pure planning, stored by `NotifierStore`.

The sender's router put the due dates in each envelope (`deadlines`, from its country
policy), so the notifier never recomputes policy; it only tracks which deadlines are
still open. Every change comes from one log item, and the store applies it in the same
transaction that advances the cursor, so deadlines survive restarts and a replayed page
changes nothing twice.

Who acts: the node whose agency *set* a deadline (sent the event) escalates it, so one
deadline gives one escalation on the whole bus, not one per node that saw it. Reminders
(the reflection period ends in N days) go to every agency that has the event, as
notifications to its own systems, never as bus events. The end of a closed case's
retention period is acted on the same way: the competent authority, which closed the
case, orders its erasure (`retention-expired`) through its own node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: envelope deadline key -> escalation kind (the `deadline` of `case.escalated`).
ESCALATIONS: dict[str, str] = {
    "referral-answer": "referral-answer",
    "reasonable-grounds": "reasonable-grounds",
    "reflection-ends": "reflection-ending",
    "post-return-monitoring": "post-return-monitoring",
}
#: envelope deadline key -> reminder kind.
REMINDERS: dict[str, str] = {"reflection-reminder": "reflection-reminder"}
#: reminder kind -> the deadline it warns of.
REMINDS_OF: dict[str, str] = {"reflection-reminder": "reflection-ending"}
#: envelope deadline key -> kind whose passing orders the case's erasure (retention).
ERASURES: dict[str, str] = {"retention-ends": "retention-ends"}
ALL_KINDS = (*ESCALATIONS.values(), *REMINDERS.values(), *ERASURES.values())

#: event type -> kinds of the case that it answers (no escalation after it).
ANSWERED_BY: dict[str, tuple[str, ...]] = {
    "identification.decided": ("reasonable-grounds",),
    "reflection.ended": ("reflection-ending", "reflection-reminder"),
    "case.closed": (*ESCALATIONS.values(), *REMINDERS.values()),  # retention starts here
    "case.erasure-ordered": ALL_KINDS,
}
_REFERRAL_ANSWERS = ("referral.accepted", "referral.declined")


@dataclass(frozen=True)
class Open:
    """A deadline to watch. `action` is 'escalate', 'remind' or 'erase'. `key` tells
    deadlines of one kind in a case apart: a referral answer's referral id; for the
    end of retention, the agencies the closing event went to (the erasure order's first
    recipients: the node adds every other party it knows)."""

    kind: str
    case: str
    key: str
    about_event_id: str
    due: datetime
    action: str
    target: datetime | None = None  # for a reminder: the deadline it reminds of


@dataclass(frozen=True)
class Close:
    """Open deadlines of `kinds` in `case` (with `key`, when given) are done: 'met' by an
    answer, or 'superseded' by a newer due date for the same thing."""

    case: str
    kinds: tuple[str, ...]
    status: str
    by_event_id: str
    key: str | None = None


@dataclass(frozen=True)
class Escalated:
    """Our own `case.escalated` is in the log: that deadline is escalated, whatever our
    store says (covers a crash between the router's answer and our commit)."""

    kind: str
    about_event_id: str


Change = Open | Close | Escalated


def _aware(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        raise ValueError("deadline without a time zone")
    return when


def plan(item: dict[str, Any]) -> list[Change]:
    """The deadline changes one log item causes, in order."""
    event_type, case, event_id = str(item["type"]), str(item["case"]), str(item["event_id"])
    op: dict[str, Any] = item.get("operational") or {}
    sent = item.get("direction") == "sent"
    changes: list[Change] = []
    if event_type in _REFERRAL_ANSWERS and op.get("referral_id"):
        changes.append(
            Close(case, ("referral-answer",), "met", event_id, key=str(op["referral_id"]))
        )
    if event_type in ANSWERED_BY:
        changes.append(Close(case, ANSWERED_BY[event_type], "met", event_id))
    if event_type == "case.escalated" and sent:
        changes.append(Escalated(str(op.get("deadline")), str(op.get("about_event_id"))))
    for name, due in (item.get("deadlines") or {}).items():
        kind = ESCALATIONS.get(name) or REMINDERS.get(name) or ERASURES.get(name)
        if kind is None:
            continue
        key = str(op.get("referral_id", "")) if kind == "referral-answer" else ""
        if name in ERASURES:
            key = ",".join(item.get("recipients") or ())
        if kind != "referral-answer":
            # a newer due date for the same period replaces the older one
            changes.append(Close(case, (kind,), "superseded", event_id))
        if name in REMINDERS:
            ends = (item.get("deadlines") or {}).get("reflection-ends")
            target = _aware(ends) if ends is not None else None
            changes.append(Open(kind, case, key, event_id, _aware(due), "remind", target))
        elif sent:
            action = "erase" if name in ERASURES else "escalate"
            changes.append(Open(kind, case, key, event_id, _aware(due), action))
    return changes


def retention_key(about_event_id: str) -> str:
    """The Idempotency-Key of the erasure order a retention period's end causes."""
    return f"nrm-retention:{about_event_id}"


def escalation_key(kind: str, about_event_id: str) -> str:
    """The Idempotency-Key of an escalation: a restart, or two notifier processes, can
    never put two escalations of one deadline on the bus."""
    return f"nrm-escalation:{kind}:{about_event_id}"
