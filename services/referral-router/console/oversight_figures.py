"""What the oversight view tabulates from verified logs: exchanges between nodes, decisions
by agency and officer (R7), and each agency's referrals, answered or not (R8).

Pure, over the clear parts of envelopes that verified logs served (the oversight body
never sees a personal field). The verdict itself (signatures, consistency, leaf hashes,
cross-node completeness) is `contracts.audit_verification`'s; these are the counts an
officer reads beside it. Published statistics, with small cells suppressed, are
`contracts.statistics`'.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contracts.audit_verification import DECISION_TYPES, Decision, LogReport, decision_of
from contracts.statistics import distinct, envelope_time


def _recipients(envelope: Mapping[str, Any]) -> list[str]:
    r = envelope.get("recipients")
    return [x for x in r if isinstance(x, str)] if isinstance(r, list | tuple) else []


def _op(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    op = envelope.get("operational")
    return op if isinstance(op, Mapping) else {}


# --- exchanges ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeRow:
    """What `sender`'s log says it sent to `recipient`, and how much of it `recipient`'s
    log holds. `young` are missing events still inside the transit grace."""

    sender: str
    recipient: str
    sent: int
    held: int
    young: int

    @property
    def missing(self) -> int:
        return self.sent - self.held - self.young


def exchange_rows(
    reports: Mapping[str, LogReport], now: datetime, grace: timedelta
) -> list[ExchangeRow]:
    ids = {a: {e.event_id for e in r.leaves} for a, r in reports.items()}
    out = []
    for a, report in sorted(reports.items()):
        for b in sorted(reports):
            if a == b:
                continue
            sent = held = young = 0
            for e in report.leaves:
                env = e.envelope
                if env is None or env.get("sender") != a or b not in _recipients(env):
                    continue
                sent += 1
                if e.event_id in ids[b]:
                    held += 1
                elif (t := envelope_time(env)) is not None and now - t < grace:
                    young += 1
            if sent:
                out.append(ExchangeRow(a, b, sent, held, young))
    return out


# --- decisions (R7) -------------------------------------------------------------------


@dataclass(frozen=True)
class OfficerDecisions:
    agency: str
    officer: str | None  # None: the decision names no officer (an R7 gap)
    by_type: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_type.values())


def decisions(envelopes: Iterable[Mapping[str, Any]]) -> list[Decision]:
    """Each decision once (an event is in its sender's and its recipients' logs), latest
    first."""
    seen: dict[str, Decision] = {}
    for env in envelopes:
        d = decision_of(env)
        if d is not None:
            seen.setdefault(d.event_id, d)
    return sorted(seen.values(), key=lambda d: d.time, reverse=True)


def decisions_by_officer(found: Iterable[Decision]) -> list[OfficerDecisions]:
    groups: dict[tuple[str, str | None], Counter[str]] = {}
    for d in found:
        officer = d.officer if DECISION_TYPES.get(d.event_type) else "(no officer field)"
        groups.setdefault((d.agency, officer), Counter())[d.event_type] += 1
    return [
        OfficerDecisions(agency, officer, dict(sorted(c.items())))
        for (agency, officer), c in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
    ]


# --- referrals per agency (R8) -------------------------------------------------------


@dataclass
class AgencyReferrals:
    """Referrals addressed to one agency: answered, or not, and escalated (R8)."""

    agency: str
    requested: int = 0
    accepted: int = 0
    declined: int = 0
    unanswered: int = 0
    overdue: int = 0
    escalated: int = 0


def referrals_by_agency(
    envelopes: Iterable[Mapping[str, Any]], now: datetime
) -> list[AgencyReferrals]:
    requests: dict[tuple[str, str], Mapping[str, Any]] = {}
    answers: dict[tuple[str, str], str] = {}
    escalated_about: set[str] = set()
    for env in distinct(envelopes):
        op, event_type, case = _op(env), str(env.get("type")), str(env.get("subject"))
        key = (case, str(op.get("referral_id")))
        if event_type == "referral.requested":
            requests.setdefault(key, env)
        elif event_type in ("referral.accepted", "referral.declined"):
            answers.setdefault(key, event_type.rpartition(".")[2])
        elif event_type == "case.escalated" and op.get("deadline") == "referral-answer":
            escalated_about.add(str(op.get("about_event_id")))
    rows: dict[str, AgencyReferrals] = {}
    for key, env in requests.items():
        to = str(_op(env).get("to_agency"))
        row = rows.setdefault(to, AgencyReferrals(to))
        row.requested += 1
        answer = answers.get(key)
        if answer == "accepted":
            row.accepted += 1
        elif answer == "declined":
            row.declined += 1
        else:
            row.unanswered += 1
            due = _due(env)
            if due is not None and due < now:
                row.overdue += 1
        if str(env.get("id")) in escalated_about:
            row.escalated += 1
    return sorted(rows.values(), key=lambda r: r.agency)


def _due(envelope: Mapping[str, Any]) -> datetime | None:
    deadlines = envelope.get("deadlines")
    if not isinstance(deadlines, Mapping) or "referral-answer" not in deadlines:
        return None
    return envelope_time({"time": deadlines["referral-answer"]})
