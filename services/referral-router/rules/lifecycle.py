"""The case lifecycle: a pure state machine that enforces rules R1-R4, R9 and the order
of events (docs/domain.md). No I/O: the router feeds it clear envelope data and the policy.

Every node keeps its own view of a case (the events it sent or received) and derives the
case's state from those events and the authority of their senders (`evolve`): a fact
that relaxes a protection (a guardian appointed, a best-interests determination, a risk
assessment that found no serious risk) counts only from a sender that may establish it;
a fact that adds one (presumed child, asylum lodged, serious risk) counts from anyone.
The sending node checks a new event against its view with `check_send`; a receiving
node checks with `rules.admission.check_receive`. Both apply `check_common`, so the
authority table (`contracts.authority`) and R4's addressing rules hold at both ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from contracts.authority import (
    PROTECTIVE_FLAGS,
    RELAXING_FLAGS,
    authority,
    may_emit,
    origin_contact,
    vouchers,
)
from contracts.envelope import CaseFlags
from contracts.events import AgeStatus, DeclineReason
from contracts.need_to_know import origin_side
from contracts.policy import CountryPolicy
from contracts.vocabulary import Role

PRESUMED_CHILD_AGES = frozenset({AgeStatus.CHILD, AgeStatus.UNKNOWN, AgeStatus.DISPUTED})

#: The roles of one agency, as the directory lists them.
Roles = frozenset[Role]


class RuleViolation(Exception):
    """An event the rules forbid. `rule` is R1..R10, or ROLE / LIFECYCLE / POLICY."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message


class UnknownCase(LookupError):
    """The case has no events at this node."""


@dataclass(frozen=True)
class Referral:
    referral_id: str
    from_agency: str
    to_agency: str
    service: str
    status: str  # requested | accepted | declined
    requested_at: datetime
    answer_due: datetime | None


@dataclass(frozen=True)
class Consent:
    consent_id: str
    recipients: frozenset[str]
    voluntary_return: bool
    categories: frozenset[str] = frozenset()  # what the person agreed may be shared
    active: bool = True


@dataclass(frozen=True)
class Reflection:
    started: datetime
    ends: datetime
    extra_days: int = 0
    ended: bool = False

    def running_at(self, when: datetime) -> bool:
        return not self.ended and self.started <= when < self.ends


@dataclass(frozen=True)
class CaseState:
    """What a node knows of a case, built only from clear envelope data."""

    pseudonym: str = ""
    originator: str = ""
    screened: bool = False
    flags: CaseFlags = field(default_factory=CaseFlags)
    referrals: Mapping[str, Referral] = field(default_factory=dict)
    consents: Mapping[str, Consent] = field(default_factory=dict)
    #: Every agency this node knows takes part: senders and recipients of the events it
    #: holds, and agencies those events name (a referral's, a return's counterpart).
    parties: frozenset[str] = frozenset()
    #: R9: recipients a referral shared with on an override with a recorded legal basis.
    overrides: frozenset[str] = frozenset()
    identification: str | None = None  # None | reasonable-grounds | conclusive
    reflection: Reflection | None = None
    serious_risk: bool | None = None  # None until a risk assessment
    return_in_best_interests: bool | None = None
    return_stage: str | None = None  # planning | agreed | completed
    monitoring_visits: int = 0
    closed: bool = False
    erased: bool = False
    event_ids: frozenset[str] = frozenset()
    last_event_at: datetime | None = None

    @property
    def exists(self) -> bool:
        return bool(self.event_ids)

    @property
    def service_providers(self) -> frozenset[str]:
        """Agencies asked for or delivering a service: 'own service' in the agreement."""
        return frozenset(r.to_agency for r in self.referrals.values() if r.status != "declined")

    def consented(self, agency_id: str) -> frozenset[str]:
        """R9: the categories active consents let the person's data go to `agency_id`."""
        out: frozenset[str] = frozenset()
        for c in self.consents.values():
            if c.active and agency_id in c.recipients:
                out |= c.categories
        return out


@dataclass(frozen=True)
class Proposal:
    """A new event as the rules see it: only clear data, and the roles of the agencies
    involved as the directory lists them (an agency may hold several)."""

    event_id: str
    event_type: str
    sender: str
    sender_roles: Roles
    recipients: Mapping[str, Roles]
    time: datetime
    operational: Mapping[str, Any]
    #: The envelope's clear case flags, as its sender claims them.
    flags: CaseFlags = field(default_factory=CaseFlags)


def event_flags(p: Proposal) -> CaseFlags:
    """The flags an event itself establishes, if its sender may (protective ones always)."""
    op = p.operational
    match p.event_type:
        case "case.screened":
            return CaseFlags(presumed_child=presumed_child(op.get("age_status")))
        case "asylum.lodged":
            return CaseFlags(asylum_lodged=True)
    established = authority(p.event_type).establishes
    if established and may_emit(p.sender_roles, p.event_type):
        return CaseFlags(**dict.fromkeys(established, True))
    return CaseFlags()


def presumed_child(age_status: object) -> bool:
    """R2: an age that is child, unknown or disputed, or not stated at all (fail safe)."""
    try:
        return AgeStatus(age_status) in PRESUMED_CHILD_AGES
    except ValueError:
        return True


def counted_flags(claimed: CaseFlags, sender_roles: Iterable[Role]) -> CaseFlags:
    """Of an envelope's clear flags, those this node believes: protective ones from
    anyone (fail safe), relaxing ones only from a sender that may establish them."""
    roles = frozenset(sender_roles)
    kept = {f: True for f in PROTECTIVE_FLAGS if getattr(claimed, f)}
    kept |= {f: True for f in RELAXING_FLAGS if getattr(claimed, f) and vouchers(f) & roles}
    return CaseFlags(**kept)


def derive_flags(state: CaseState, p: Proposal) -> CaseFlags:
    """The case flags after `p`, as its sender writes them into the envelope: flags only
    ever turn on, and only as the sender's view (derived by provenance) holds them."""
    return state.flags.merged(event_flags(p))


def derive_deadlines(state: CaseState, p: Proposal, policy: CountryPolicy) -> dict[str, datetime]:
    """Due dates set by `p`, from the sender's country policy (never constants)."""
    op = p.operational
    match p.event_type:
        case "case.screened":
            return {"reasonable-grounds": policy.reasonable_grounds_due(p.time)}
        case "referral.requested":
            due = policy.referral_answer_due(p.time, urgent=bool(op.get("urgent")))
            return {"referral-answer": due}
        case "reflection.started":
            ends = policy.reflection_ends(p.time)
            return {
                "reflection-ends": ends,
                "reflection-reminder": policy.reflection_reminder_at(ends),
            }
        case "reflection.extended" if state.reflection is not None:
            extra = state.reflection.extra_days + int(op["extra_days"])
            ends = policy.reflection_ends(state.reflection.started, extra)
            return {
                "reflection-ends": ends,
                "reflection-reminder": policy.reflection_reminder_at(ends),
            }
        case "return.completed" | "reintegration.monitored":
            return {"post-return-monitoring": policy.monitoring_due(p.time)}
    return {}


# --- the rules -------------------------------------------------------------------------


def _require(cond: bool, rule: str, message: str) -> None:
    if not cond:
        raise RuleViolation(rule, message)


def check_common(state: CaseState, p: Proposal) -> None:
    """The rules both ends apply: order, authority (ROLE) and R4's addressing."""
    _require(p.event_id not in state.event_ids, "LIFECYCLE", f"event {p.event_id} already recorded")
    _require(not state.erased, "ERASED", "the case's data was erased; no further events")
    if p.event_type == "case.screened":
        _require(not state.screened, "LIFECYCLE", "the case is already screened")
    if state.closed:
        _require(
            p.event_type == "case.erasure-ordered",
            "LIFECYCLE",
            "the case is closed; only an erasure order may follow",
        )
    emitters = authority(p.event_type).emitters
    _require(
        may_emit(p.sender_roles, p.event_type),
        "ROLE",
        f"{p.event_type} may only come from {', '.join(sorted(emitters))}; "
        f"{p.sender} is {', '.join(sorted(p.sender_roles)) or 'of no known role'}",
    )
    check_origin_addressing(state, p)


def check_origin_addressing(state: CaseState, p: Proposal) -> None:
    """R4: only the competent authority (or the origin's side among itself) addresses the
    country of origin, and nothing of a case with a lodged asylum claim goes there."""
    origin = sorted(a for a, roles in p.recipients.items() if origin_side(roles))
    if not origin:
        return
    asylum = state.flags.asylum_lodged or p.flags.asylum_lodged or p.event_type == "asylum.lodged"
    _require(
        not asylum,
        "R4",
        "asylum is lodged: no event of this case may go to a consulate or to a counterpart "
        f"or gateway of the country of origin ({', '.join(origin)})",
    )
    _require(
        origin_contact(p.sender_roles) or origin_side(p.sender_roles),
        "R4",
        "only the competent authority may address the country of origin "
        f"({', '.join(origin)}): it is told of every asylum claim, {p.sender} may not be",
    )


def check_send(
    state: CaseState,
    p: Proposal,
    policy: CountryPolicy,
    origin_contacts: Iterable[str] = (),
) -> None:
    """All rules, against the sending node's view. Raises RuleViolation or UnknownCase.

    `origin_contacts`: the active agencies that may address the country of origin; an
    asylum claim must be addressed to each of them (R4), so none of them can contact the
    country of origin unaware of it."""
    if p.event_type != "case.screened" and not state.exists:
        raise UnknownCase(state.pseudonym)
    check_common(state, p)
    if p.event_type == "asylum.lodged":
        untold = sorted(set(origin_contacts) - set(p.recipients) - {p.sender})
        _require(
            not untold,
            "R4",
            "an asylum claim must be addressed to every agency that may contact the country "
            f"of origin, so none does unaware of it: add {', '.join(untold)}",
        )
    op = p.operational
    rule = _SEND_RULES.get(p.event_type)
    if rule is not None:
        rule(state, p, op, policy)


def _screened(state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy) -> None:
    # R1 needs no condition here: screening is accepted whatever the person's migration
    # status or willingness to co-operate, and makes them a presumed victim.
    if presumed_child(op["age_status"]):
        _require(
            any(Role.CHILD_PROTECTION in roles for roles in p.recipients.values()),
            "R2",
            "a presumed child (age child, unknown or disputed) must be referred at once to "
            "child protection: add a child-protection agency to the recipients",
        )


def _referral_requested(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    rid, to = str(op["referral_id"]), str(op["to_agency"])
    _require(rid not in state.referrals, "LIFECYCLE", f"referral {rid} already exists")
    _require(to in p.recipients, "LIFECYCLE", f"the referred agency {to} must be a recipient")
    _require(to != p.sender, "LIFECYCLE", "an agency cannot refer a case to itself")
    # R9: sharing personal data needs recorded consent for that recipient, or an override.
    if op.get("consent_override"):
        return
    cid = op.get("consent_id")
    _require(
        cid is not None,
        "R9",
        f"referral to {to} needs the person's recorded consent (consent_id) or a "
        "consent_override with a legal basis",
    )
    consent = state.consents.get(str(cid))
    _require(consent is not None, "R9", f"no consent {cid} is recorded for this case")
    assert consent is not None
    _require(consent.active, "R9", f"consent {cid} was withdrawn")
    _require(to in consent.recipients, "R9", f"consent {cid} does not cover sharing with {to}")


def _referral_answered(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    rid = str(op["referral_id"])
    ref = state.referrals.get(rid)
    _require(ref is not None, "LIFECYCLE", f"no referral {rid} in this case")
    assert ref is not None
    _require(ref.to_agency == p.sender, "LIFECYCLE", f"only {ref.to_agency} can answer {rid}")
    _require(ref.status == "requested", "LIFECYCLE", f"referral {rid} was already {ref.status}")
    if p.event_type == "referral.declined":
        check_decline_reason(op)


def check_decline_reason(op: Mapping[str, Any]) -> None:
    """R1: assistance is never refused for migration status or for not co-operating."""
    reason = DeclineReason(op.get("reason_code", DeclineReason.OTHER))
    _require(
        reason not in (DeclineReason.MIGRATION_STATUS, DeclineReason.NO_COOPERATION),
        "R1",
        "assistance may not be refused for migration status or unwillingness to co-operate",
    )


def _consent_withdrawn(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    cid = str(op["consent_id"])
    consent = state.consents.get(cid)
    _require(consent is not None and consent.active, "LIFECYCLE", f"no active consent {cid}")


def _identification(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    if op["stage"] == "conclusive":
        _require(
            state.identification == "reasonable-grounds",
            "LIFECYCLE",
            "a conclusive decision needs a reasonable-grounds decision first",
        )
    else:
        _require(state.identification is None, "LIFECYCLE", "reasonable grounds already decided")


def _reflection(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    running = state.reflection is not None and state.reflection.running_at(p.time)
    if p.event_type == "reflection.started":
        _require(not running, "LIFECYCLE", "a reflection period is already running")
        return
    _require(running, "LIFECYCLE", "no reflection period is running")
    if p.event_type == "reflection.extended":
        assert state.reflection is not None
        total = policy.reflection_days + state.reflection.extra_days + int(op["extra_days"])
        _require(
            total <= policy.reflection_max_total_days,
            "POLICY",
            f"reflection would last {total} days; {policy.country}'s maximum is "
            f"{policy.reflection_max_total_days}",
        )


def _return_planning(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    _require(state.return_stage is None, "LIFECYCLE", "return planning already started")
    if state.flags.presumed_child:
        _require(
            state.flags.guardian_appointed and state.flags.best_interests_determined,
            "R2",
            "no return is planned for a presumed child before a guardian is appointed and a "
            "best-interests determination is made",
        )
        _require(
            state.return_in_best_interests is not False,
            "R2",
            "the best-interests determination found return not in the child's interests",
        )
    _require(
        state.serious_risk is False,
        "R4",
        "return needs a risk assessment that found no serious risk"
        + (" (none recorded)" if state.serious_risk is None else " (serious risk found)"),
    )


def _return_agreed(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    _require(state.return_stage == "planning", "LIFECYCLE", "no return planning to agree to")


def _return_completed(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    _require(state.return_stage == "agreed", "LIFECYCLE", "the return plan is not agreed")
    if state.reflection is not None and state.reflection.running_at(p.time):
        consent = state.consents.get(str(op.get("consent_id")))
        asked = (
            bool(op.get("voluntary"))
            and consent is not None
            and consent.active
            and consent.voluntary_return
        )
        _require(
            asked,
            "R3",
            "no return while the reflection period runs (until "
            f"{state.reflection.ends.isoformat()}) unless the person asked for it with "
            "recorded consent (voluntary + consent_id of a voluntary-return consent)",
        )


def _monitored(state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy) -> None:
    _require(state.return_stage == "completed", "LIFECYCLE", "no completed return to monitor")


_SEND_RULES = {
    "case.screened": _screened,
    "referral.requested": _referral_requested,
    "referral.accepted": _referral_answered,
    "referral.declined": _referral_answered,
    "consent.withdrawn": _consent_withdrawn,
    "identification.decided": _identification,
    "reflection.started": _reflection,
    "reflection.extended": _reflection,
    "reflection.ended": _reflection,
    "return.planning-started": _return_planning,
    "return.plan-agreed": _return_agreed,
    "return.completed": _return_completed,
    "reintegration.monitored": _monitored,
}


# --- evolution -------------------------------------------------------------------------


def evolve(
    state: CaseState, p: Proposal, flags: CaseFlags, deadlines: Mapping[str, datetime]
) -> CaseState:
    """The state after a recorded event. Never raises: recorded events are facts.

    `flags` are the envelope's clear flags: counted by provenance (`counted_flags`). An
    event whose sender may not emit its type (recorded before the authority table, or by
    a node that skipped it) adds only protections: never a relaxing fact, a party, a
    closure or an erasure.
    """
    op = p.operational
    s = _changed(
        state,
        flags=state.flags.merged(counted_flags(flags, p.sender_roles)).merged(event_flags(p)),
        event_ids=state.event_ids | {p.event_id},
        last_event_at=p.time,
    )
    if not may_emit(p.sender_roles, p.event_type):
        match p.event_type:
            case "risk.assessed" if op.get("serious_risk") is True:
                s = _changed(s, serious_risk=True)
            case "best-interests.determined" if op.get("return_in_best_interests") is False:
                s = _changed(s, return_in_best_interests=False)
        return s
    named = (op.get(name) for name in authority(p.event_type).names)
    s = _changed(
        s,
        originator=state.originator or p.sender,
        parties=s.parties | {p.sender, *p.recipients, *(a for a in named if isinstance(a, str))},
    )
    match p.event_type:
        case "case.screened":
            s = _changed(s, screened=True, originator=p.sender)
        case "referral.requested":
            ref = Referral(
                referral_id=str(op["referral_id"]),
                from_agency=p.sender,
                to_agency=str(op["to_agency"]),
                service=str(op["service"]),
                status="requested",
                requested_at=p.time,
                answer_due=deadlines.get("referral-answer"),
            )
            s = _changed(s, referrals={**s.referrals, ref.referral_id: ref})
            if op.get("consent_override"):
                s = _changed(s, overrides=s.overrides | {ref.to_agency})
        case "referral.accepted" | "referral.declined":
            rid = str(op["referral_id"])
            if rid in s.referrals:
                status = "accepted" if p.event_type == "referral.accepted" else "declined"
                answered = replace(s.referrals[rid], status=status)
                s = _changed(s, referrals={**s.referrals, rid: answered})
        case "consent.recorded":
            c = Consent(
                consent_id=str(op["consent_id"]),
                recipients=frozenset(op["recipients"]),
                voluntary_return=bool(op.get("voluntary_return")),
                categories=frozenset(op.get("categories", ())),
            )
            s = _changed(s, consents={**s.consents, c.consent_id: c})
        case "consent.withdrawn":
            cid = str(op["consent_id"])
            if cid in s.consents:
                withdrawn = replace(s.consents[cid], active=False)
                s = _changed(s, consents={**s.consents, cid: withdrawn})
        case "identification.decided":
            s = _changed(s, identification=str(op["stage"]))
        case "reflection.started":
            ends = deadlines.get("reflection-ends", p.time)
            s = _changed(s, reflection=Reflection(started=p.time, ends=ends))
        case "reflection.extended" if s.reflection is not None:
            ends = deadlines.get("reflection-ends", s.reflection.ends)
            extra = s.reflection.extra_days + int(op["extra_days"])
            s = _changed(s, reflection=replace(s.reflection, ends=ends, extra_days=extra))
        case "reflection.ended" if s.reflection is not None:
            s = _changed(s, reflection=replace(s.reflection, ended=True))
        case "risk.assessed":
            s = _changed(s, serious_risk=bool(op["serious_risk"]))
        case "best-interests.determined":
            s = _changed(s, return_in_best_interests=bool(op["return_in_best_interests"]))
        case "return.planning-started":
            s = _changed(s, return_stage="planning")
        case "return.plan-agreed":
            s = _changed(s, return_stage="agreed")
        case "return.completed":
            s = _changed(s, return_stage="completed")
        case "reintegration.monitored":
            s = _changed(s, monitoring_visits=s.monitoring_visits + 1)
        case "case.closed":
            s = _changed(s, closed=True)
        case "case.erasure-ordered":
            s = _changed(s, erased=True)
    return s


def _changed(state: CaseState, **changes: Any) -> CaseState:
    """`dataclasses.replace` for the state evolved on every event: a copy of its fields
    with `changes`, without re-running `__init__` (the fields were checked when the state
    was first made, and `changes` are values of the same fields)."""
    new = object.__new__(CaseState)
    fields = new.__dict__
    fields.update(state.__dict__)
    fields.update(changes)
    return new
