"""What an agency's officers work from: the referrals addressed to it, each case as this
agency may see it, and the deadlines and escalations on it (R8).

Read-only views over the node's own store and `AgencyNode.case_view` (the same view the
API serves, so a field this agency may not open is withheld here too). The inbox index
follows the store's log from a cursor, so a page load reads only what arrived since.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from referral_router.sending.node import AgencyNode
from referral_router.store.case_store import RECEIVED

#: The deadline an escalation names, by the envelope's deadline key.
ESCALATED_AS = {"reflection-ends": "reflection-ending"}


@dataclass(frozen=True)
class ReferralRow:
    """A referral addressed to this agency, with its answer as this node knows it."""

    case: str
    referral_id: str
    from_agency: str
    service: str
    urgent: bool
    requested_at: datetime
    answer_due: datetime | None
    event_id: str
    status: str = "requested"

    def overdue(self, now: datetime) -> bool:
        return self.status == "requested" and self.answer_due is not None and self.answer_due < now


@dataclass(frozen=True)
class ReceivedRow:
    case: str
    event_type: str
    sender: str
    time: datetime


class Inbox:
    """The referrals addressed to this agency and the events it received, indexed from
    the store's log (thread-safe: pages are served from a thread pool)."""

    def __init__(self, node: AgencyNode, page: int = 500, keep_received: int = 200) -> None:
        self.node = node
        self._page = page
        self._keep = keep_received
        self._after = 0
        self._lock = threading.Lock()
        self._referrals: dict[tuple[str, str], ReferralRow] = {}
        self._received: list[ReceivedRow] = []

    def _catch_up(self) -> None:
        me = self.node.agency_id
        while True:
            batch = self.node.store.log(after=self._after, limit=self._page)
            for logged in batch:
                env = logged.envelope
                if logged.direction != RECEIVED:
                    continue
                self._received.append(ReceivedRow(env.subject, env.type, env.sender, env.time))
                op = env.operational
                if env.type == "referral.requested" and op.get("to_agency") == me:
                    row = ReferralRow(
                        case=env.subject,
                        referral_id=str(op.get("referral_id")),
                        from_agency=env.sender,
                        service=str(op.get("service")),
                        urgent=bool(op.get("urgent")),
                        requested_at=env.time,
                        answer_due=env.deadlines.get("referral-answer"),
                        event_id=str(env.id),
                    )
                    self._referrals[(row.case, row.referral_id)] = row
            if batch:
                self._after = batch[-1].position
            del self._received[: max(0, len(self._received) - self._keep)]
            if len(batch) < self._page:
                return

    def referrals(self) -> list[ReferralRow]:
        """Open referrals first (soonest due first), then answered ones (latest first)."""
        with self._lock:
            self._catch_up()
            rows = list(self._referrals.values())
        statuses: dict[str, Mapping[str, Any]] = {}
        out = []
        for row in rows:
            if row.case not in statuses:
                case = self.node.store.case_file(row.case)
                statuses[row.case] = case.state.referrals if case is not None else {}
            known = statuses[row.case].get(row.referral_id)
            out.append(replace(row, status=known.status) if known is not None else row)
        open_ = sorted(
            (r for r in out if r.status == "requested"),
            key=lambda r: (r.answer_due is None, r.answer_due or r.requested_at),
        )
        done = sorted((r for r in out if r.status != "requested"), key=lambda r: r.requested_at)
        return open_ + done[::-1]

    def received(self, limit: int = 50) -> list[ReceivedRow]:
        with self._lock:
            self._catch_up()
            return self._received[-limit:][::-1]


# --- one case ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadlineRow:
    kind: str
    due: datetime
    set_by: str  # event type
    sender: str
    event_id: str
    status: str  # open | overdue | met | escalated | ends

    @property
    def late(self) -> bool:
        return self.status in ("overdue", "escalated")


def deadlines(view: Mapping[str, Any], now: datetime) -> list[DeadlineRow]:
    """Every deadline an event of the case set, and where it stands now."""
    referrals = {r["referral_id"]: r for r in view.get("referrals", [])}
    escalated = {
        (str(e["operational"].get("about_event_id")), str(e["operational"].get("deadline")))
        for e in view.get("events", [])
        if e["type"] == "case.escalated"
    }
    rows = []
    for ev in view.get("events", []):
        for kind, due in ev.get("deadlines", {}).items():
            status = "open"
            if kind == "referral-answer":
                ref = referrals.get(str(ev["operational"].get("referral_id")))
                if ref is not None and ref["status"] != "requested":
                    status = "met"
            elif kind == "reasonable-grounds" and view.get("identification"):
                status = "met"
            elif kind.startswith("reflection-"):
                status = "ends"
            if status == "open" and due < now:
                status = "overdue"
            if (ev["event_id"], ESCALATED_AS.get(kind, kind)) in escalated:
                status = "escalated" if status != "met" else status
            rows.append(DeadlineRow(kind, due, ev["type"], ev["sender"], ev["event_id"], status))
    return sorted(rows, key=lambda r: r.due)


@dataclass(frozen=True)
class ShownField:
    """One field of an event as this agency holds it: opened, or withheld by category."""

    name: str
    label: str
    category: str | None
    value: str | None  # None: withheld
    withheld_category: str | None = None
    withheld_reason: str | None = None  # not-entitled, or key-unavailable (erased)


def shown_fields(
    event: Mapping[str, Any], labels: Mapping[str, tuple[str, str | None]]
) -> list[ShownField]:
    out = []
    for name, value in event.get("fields", {}).items():
        label, category = labels.get(name, (name.replace("_", " ").capitalize(), None))
        if isinstance(value, Mapping) and "withheld" in value:
            reason = str(value.get("reason", "not-entitled")).replace("-", " ")
            out.append(ShownField(name, label, category, None, str(value["withheld"]), reason))
        else:
            out.append(ShownField(name, label, category, _text(value)))
    return out


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, indent=1, ensure_ascii=False, default=str)


def parties(view: Mapping[str, Any], me: str) -> list[str]:
    """The other agencies that took part in the case, as this node saw it."""
    seen: dict[str, None] = {}
    for ev in view.get("events", []):
        seen.update(dict.fromkeys((ev["sender"], *ev["recipients"])))
    seen.pop(me, None)
    return list(seen)
