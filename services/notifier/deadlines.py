"""Deadlines derived from the node's log: pure planning, stored by `NotifierStore`.

The sender's router put the due dates in each envelope (`deadlines`, from its country
policy), so the notifier never recomputes policy; it only tracks which deadlines are
still open. Every change comes from one log item, and the store applies it in the same
transaction that advances the cursor, so deadlines survive restarts and a replayed page
changes nothing twice.

Who acts: the node whose agency *set* a deadline (sent the event) escalates it, so one
deadline gives one escalation on the whole bus, not one per node that saw it; a few are
owed by a recipient instead (`OWED_BY_ROLE`, `OWED_BY_REQUESTER`). Reminders (the
reflection period ends in N days) go to every agency that has the event, as
notifications to its own systems, never as bus events. Each escalation kind is named
(`contracts.events.EscalationKind`) and goes to its audience (`AUDIENCE`). The end of a
closed case's retention period is acted on the same way: the competent authority, which
closed the case, orders its erasure (`retention-expired`) through its own node.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.events import EscalationKind, InformationTopic
from contracts.vocabulary import Role

K = EscalationKind

#: envelope deadline key -> escalation kind (the `deadline` of `case.escalated`).
ESCALATIONS: dict[str, str] = {
    "referral-answer": K.REFERRAL_ANSWER,
    "re-referral": K.RE_REFERRAL,
    "reasonable-grounds": K.REASONABLE_GROUNDS,
    "reflection-ends": K.REFLECTION_ENDING,
    "post-return-monitoring": K.POST_RETURN_MONITORING,
    "guardian-appointment": K.GUARDIAN_APPOINTMENT,
    "decision-review": K.DECISION_REVIEW,
    "complaint-answer": K.COMPLAINT_ANSWER,
    "residence-renewal": K.RESIDENCE_RENEWAL,
    "outcome-information": K.OUTCOME_INFORMATION,
    "retaliation-found": K.RETALIATION_FOUND,
}
#: envelope deadline key -> reminder kind.
REMINDERS: dict[str, str] = {"reflection-reminder": "reflection-reminder"}
#: reminder kind -> the deadline it warns of.
REMINDS_OF: dict[str, str] = {"reflection-reminder": K.REFLECTION_ENDING}
#: envelope deadline key -> kind whose passing orders the case's erasure (retention).
ERASURES: dict[str, str] = {"retention-ends": "retention-ends"}
#: What a closing answers: everything but its retention period, which starts there.
ALL_KINDS = (*ESCALATIONS.values(), *REMINDERS.values())

#: Kinds a case may hold several of at once, and the operational field naming each one
#: (its key); every other kind is one per case, and a newer due date supersedes it.
KEYED: dict[str, str] = {
    K.REFERRAL_ANSWER: "referral_id",
    K.RE_REFERRAL: "referral_id",
    K.DECISION_REVIEW: "review_id",
    K.COMPLAINT_ANSWER: "complaint_id",
    K.OUTCOME_INFORMATION: "proceedings_id",
}

#: Who escalates. By default the agency that set the deadline (sent the event), so one
#: deadline gives one escalation on the whole bus. Some are owed by an agency that
#: received it: the guardian by child protection (R2), whoever screened the child; a
#: re-referral by the agency whose referral was declined (R8), whoever declined it.
OWED_BY_ROLE: dict[str, Role] = {K.GUARDIAN_APPOINTMENT: Role.CHILD_PROTECTION}
OWED_BY_REQUESTER: dict[str, str] = {K.RE_REFERRAL: K.REFERRAL_ANSWER}

#: Who an escalation goes to: the competent authority (R8), and for a complaint or a
#: review left unanswered, the oversight body too, since the competent authority (or the
#: agency complained about) is the one that is late. Without any of them, the national
#: coordinator.
AUDIENCE: dict[str, tuple[Role, ...]] = {
    K.COMPLAINT_ANSWER: (Role.OVERSIGHT, Role.COMPETENT_AUTHORITY),
    K.DECISION_REVIEW: (Role.OVERSIGHT, Role.COMPETENT_AUTHORITY),
}
DEFAULT_AUDIENCE: tuple[Role, ...] = (Role.COMPETENT_AUTHORITY,)


def audience(kind: str) -> tuple[Role, ...]:
    return AUDIENCE.get(kind, DEFAULT_AUDIENCE)


@dataclass(frozen=True)
class Answer:
    """Open deadlines of `kinds` that an event meets: with `key`, only the one its
    operational field of that name names; with `when`, only if the event says so."""

    kinds: tuple[str, ...]
    key: str | None = None
    when: Callable[[Mapping[str, Any]], bool] | None = None


def _adult(op: Mapping[str, Any]) -> bool:
    return op.get("outcome") == "adult"


def _told_outcome(op: Mapping[str, Any]) -> bool:
    return op.get("topic") == InformationTopic.PROCEEDINGS_OUTCOME


#: event type -> what it answers (no escalation after it).
ANSWERS: Mapping[str, tuple[Answer, ...]] = {
    "referral.accepted": (Answer((K.REFERRAL_ANSWER,), "referral_id"),),
    "referral.declined": (Answer((K.REFERRAL_ANSWER,), "referral_id"),),
    "referral.requested": (Answer((K.RE_REFERRAL,), "replaces_referral_id"),),
    "identification.decided": (
        Answer((K.REASONABLE_GROUNDS,)),
        Answer((K.DECISION_REVIEW,), "review_id"),
    ),
    "reflection.ended": (Answer((K.REFLECTION_ENDING, "reflection-reminder")),),
    "guardian.appointed": (Answer((K.GUARDIAN_APPOINTMENT,)),),
    "age.assessed": (Answer((K.GUARDIAN_APPOINTMENT,), when=_adult),),
    "complaint.answered": (Answer((K.COMPLAINT_ANSWER,), "complaint_id"),),
    "rights.explained": (Answer((K.OUTCOME_INFORMATION,), "proceedings_id", _told_outcome),),
    "residence.ended": (Answer((K.RESIDENCE_RENEWAL,)),),
    "case.closed": (Answer(ALL_KINDS),),
    "case.erasure-ordered": (Answer((*ALL_KINDS, *ERASURES.values())),),
}


@dataclass(frozen=True)
class Open:
    """A deadline to watch. `action` is 'escalate', 'remind' or 'erase'. `key` tells
    deadlines of one kind in a case apart (a referral answer's referral id...); for the
    end of retention, the agencies the closing event went to (the erasure order's first
    recipients: the node adds every other party it knows). `requires`: open it only if
    this agency set a deadline of that kind with the same key in the case (it made the
    referral a decline answered)."""

    kind: str
    case: str
    key: str
    about_event_id: str
    due: datetime
    action: str
    target: datetime | None = None  # for a reminder: the deadline it reminds of
    requires: str | None = None


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


def _answers(event_type: str, case: str, event_id: str, op: Mapping[str, Any]) -> list[Close]:
    out = []
    for a in ANSWERS.get(event_type, ()):
        if a.when is not None and not a.when(op):
            continue
        key = None
        if a.key is not None:
            if not op.get(a.key):
                continue
            key = str(op[a.key])
        out.append(Close(case, a.kinds, "met", event_id, key=key))
    return out


def plan(item: dict[str, Any], roles: Collection[Role] = ()) -> list[Change]:
    """The deadline changes one log item causes, in order. `roles`: the roles of the
    agency whose log it is (which deadlines it owes as a recipient)."""
    event_type, case, event_id = str(item["type"]), str(item["case"]), str(item["event_id"])
    op: dict[str, Any] = item.get("operational") or {}
    sent = item.get("direction") == "sent"
    changes: list[Change] = list(_answers(event_type, case, event_id, op))
    if event_type == "case.escalated" and sent:
        changes.append(Escalated(str(op.get("deadline")), str(op.get("about_event_id"))))
    deadlines = item.get("deadlines") or {}
    for name, due in deadlines.items():
        kind = ESCALATIONS.get(name) or REMINDERS.get(name) or ERASURES.get(name)
        if kind is None:
            continue
        key = str(op.get(KEYED[kind], "")) if kind in KEYED else ""
        if name in ERASURES:
            key = ",".join(item.get("recipients") or ())
        if kind not in KEYED:
            # a newer due date for the same period replaces the older one
            changes.append(Close(case, (kind,), "superseded", event_id))
        if name in REMINDERS:
            ends = deadlines.get("reflection-ends")
            target = _aware(ends) if ends is not None else None
            changes.append(Open(kind, case, key, event_id, _aware(due), "remind", target))
            continue
        owner_role = OWED_BY_ROLE.get(kind)
        if owner_role is not None:
            if owner_role in roles:
                changes.append(Open(kind, case, key, event_id, _aware(due), "escalate"))
        elif kind in OWED_BY_REQUESTER:
            if not sent:
                requires = OWED_BY_REQUESTER[kind]
                changes.append(
                    Open(kind, case, key, event_id, _aware(due), "escalate", requires=requires)
                )
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
