"""The case lifecycle: a pure state machine that enforces rules R1-R4, R9 and the order
of events (docs/domain.md). No I/O: the router feeds it clear envelope data and the policy.

Every node keeps its own view of a case (the events it sent or received) and derives the
case's state from those events and the authority of their senders (`evolve`): a
restriction that relaxes a protection (a guardian appointed, a best-interests
determination made) or a risk assessment counts only from a sender that may establish
it; a restriction that adds one (child safeguards, no contact with the country of
origin, no return) counts from anyone. The facts behind restrictions (asylum, refugee
status, a serious risk, a best-interests finding) travel sealed: the sending node, which
holds the payload, sets the restrictions (`contracts.restrictions.set_by`), and no rule
here reads a fact that only some recipients may open.
The sending node checks a new event against its view with `check_send`; a receiving
node checks with `rules.admission.check_receive`. Both apply `check_common`, so the
authority table (`contracts.authority`) and R4's addressing rules hold at both ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from contracts.authority import authority, may_emit, origin_contact, vouchers
from contracts.events import DeclineReason
from contracts.need_to_know import origin_side
from contracts.policy import CountryPolicy
from contracts.restrictions import PROTECTIVE, RELAXING, Restrictions, presumed_child
from contracts.vocabulary import Role

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
    restrictions: Restrictions = field(default_factory=Restrictions)
    referrals: Mapping[str, Referral] = field(default_factory=dict)
    consents: Mapping[str, Consent] = field(default_factory=dict)
    #: Every agency this node knows takes part: senders and recipients of the events it
    #: holds, and agencies those events name (a referral's, a return's counterpart).
    parties: frozenset[str] = frozenset()
    #: R9: recipients a referral shared with on an override with a recorded legal basis.
    overrides: frozenset[str] = frozenset()
    #: R10: agencies this node passed the case on to (an erasure order follows them).
    forwarded_to: frozenset[str] = frozenset()
    identification: str | None = None  # None | reasonable-grounds | conclusive
    reflection: Reflection | None = None
    #: R4: an agency that may assess the risk of return did (a serious risk found sets
    #: `no_origin_contact`, so an assessment without it found none).
    risk_assessed: bool = False
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
    #: The envelope's routing restrictions, as its sender claims them.
    restrictions: Restrictions = field(default_factory=Restrictions)


def event_restrictions(p: Proposal) -> Restrictions:
    """The restrictions an event's clear part itself establishes, whatever its sender
    wrote: protective ones always, relaxing ones if its sender may establish them."""
    match p.event_type:
        case "case.screened":
            return Restrictions(child_safeguards=presumed_child(p.operational.get("age_status")))
        case "asylum.lodged":
            return Restrictions(no_origin_contact=True)
    established = authority(p.event_type).establishes
    if established and may_emit(p.sender_roles, p.event_type):
        return Restrictions(**dict.fromkeys(established, True))
    return Restrictions()


def counted(claimed: Restrictions, sender_roles: Iterable[Role]) -> Restrictions:
    """Of an envelope's restrictions, those this node believes: protective ones from
    anyone (fail safe), relaxing ones only from a sender that may establish them."""
    roles = frozenset(sender_roles)
    kept = {f: True for f in PROTECTIVE if getattr(claimed, f)}
    kept |= {f: True for f in RELAXING if getattr(claimed, f) and vouchers(f) & roles}
    return Restrictions(**kept)


def derive_restrictions(state: CaseState, p: Proposal) -> Restrictions:
    """The case's restrictions after `p`, as its sender writes them into the envelope:
    they only ever turn on, as the sender's view (derived by provenance) holds them, with
    those the event sets from its own facts (`p.restrictions` at the sender)."""
    return state.restrictions.merged(p.restrictions).merged(event_restrictions(p))


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
        case "case.closed":
            return {"retention-ends": policy.retention_ends(p.time, str(op["reason_code"]))}
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
    country of origin, and nothing of a case under `no_origin_contact` goes there."""
    origin = sorted(a for a, roles in p.recipients.items() if origin_side(roles))
    if not origin:
        return
    _require(
        not barred_from_origin(state, p),
        "R4",
        "no contact with the country of origin applies to this case: no event of it may go "
        f"to a consulate or to a counterpart or gateway of the country of origin "
        f"({', '.join(origin)})",
    )
    _require(
        origin_contact(p.sender_roles) or origin_side(p.sender_roles),
        "R4",
        "only the competent authority may address the country of origin "
        f"({', '.join(origin)}): it is told of every asylum claim, {p.sender} may not be",
    )


def barred_from_origin(state: CaseState, p: Proposal) -> bool:
    """R4 whoever sends: the case may not contact the country of origin, as this node's
    view, the event's own restrictions or the event itself (an asylum claim) say."""
    return (
        state.restrictions.no_origin_contact
        or p.restrictions.no_origin_contact
        or p.event_type == "asylum.lodged"
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
    check_consent_for(state, to, op.get("consent_id"), op.get("consent_override"), "referral")


def check_consent_for(
    state: CaseState, to: str, consent_id: object, override: object, what: str
) -> None:
    """R9: sharing personal data with `to` (a referral, or passing the case on) needs the
    person's recorded, active consent naming it, or an override with a legal basis."""
    if override:
        return
    _require(
        consent_id is not None,
        "R9",
        f"{what} to {to} needs the person's recorded consent (consent_id) or a "
        "consent_override with a legal basis",
    )
    consent = state.consents.get(str(consent_id))
    _require(consent is not None, "R9", f"no consent {consent_id} is recorded for this case")
    assert consent is not None
    _require(consent.active, "R9", f"consent {consent_id} was withdrawn")
    _require(
        to in consent.recipients, "R9", f"consent {consent_id} does not cover sharing with {to}"
    )


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
    r = state.restrictions
    if r.child_safeguards:
        _require(
            r.guardian_appointed and r.best_interests_determined,
            "R2",
            "no return is planned for a presumed child before a guardian is appointed and a "
            "best-interests determination is made",
        )
    _require(
        not r.no_return,
        "R2",
        "the best-interests determination found return not in the child's interests",
    )
    _require(
        not r.no_origin_contact,
        "R4",
        "no contact with the country of origin applies to this case (an asylum claim, "
        "refugee status or a serious risk of harm on return): no return is planned",
    )
    _require(
        state.risk_assessed,
        "R4",
        "return needs a risk assessment that found no serious risk (none recorded)",
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
    state: CaseState, p: Proposal, restrictions: Restrictions, deadlines: Mapping[str, datetime]
) -> CaseState:
    """The state after a recorded event. Never raises: recorded events are facts.

    `restrictions` are the envelope's: counted by provenance (`counted`). An event whose
    sender may not emit its type (recorded before the authority table, or by a node that
    skipped it) adds only protections: never a relaxing restriction, a risk assessment,
    a party, a closure or an erasure.
    """
    op = p.operational
    believed = counted(restrictions, p.sender_roles).merged(event_restrictions(p))
    s = replace(
        state,
        restrictions=state.restrictions.merged(believed),
        event_ids=state.event_ids | {p.event_id},
        last_event_at=p.time,
    )
    if not may_emit(p.sender_roles, p.event_type):
        return s
    named = (op.get(name) for name in authority(p.event_type).names)
    s = replace(
        s,
        originator=state.originator or p.sender,
        parties=s.parties | {p.sender, *p.recipients, *(a for a in named if isinstance(a, str))},
    )
    match p.event_type:
        case "case.screened":
            s = replace(s, screened=True, originator=p.sender)
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
            s = replace(s, referrals={**s.referrals, ref.referral_id: ref})
            if op.get("consent_override"):
                s = replace(s, overrides=s.overrides | {ref.to_agency})
        case "referral.accepted" | "referral.declined":
            rid = str(op["referral_id"])
            if rid in s.referrals:
                status = "accepted" if p.event_type == "referral.accepted" else "declined"
                s = replace(
                    s, referrals={**s.referrals, rid: replace(s.referrals[rid], status=status)}
                )
        case "consent.recorded":
            c = Consent(
                consent_id=str(op["consent_id"]),
                recipients=frozenset(op["recipients"]),
                voluntary_return=bool(op.get("voluntary_return")),
                categories=frozenset(op.get("categories", ())),
            )
            s = replace(s, consents={**s.consents, c.consent_id: c})
        case "consent.withdrawn":
            cid = str(op["consent_id"])
            if cid in s.consents:
                s = replace(s, consents={**s.consents, cid: replace(s.consents[cid], active=False)})
        case "identification.decided":
            s = replace(s, identification=str(op["stage"]))
        case "reflection.started":
            ends = deadlines.get("reflection-ends", p.time)
            s = replace(s, reflection=Reflection(started=p.time, ends=ends))
        case "reflection.extended" if s.reflection is not None:
            ends = deadlines.get("reflection-ends", s.reflection.ends)
            extra = s.reflection.extra_days + int(op["extra_days"])
            s = replace(s, reflection=replace(s.reflection, ends=ends, extra_days=extra))
        case "reflection.ended" if s.reflection is not None:
            s = replace(s, reflection=replace(s.reflection, ended=True))
        case "risk.assessed":
            s = replace(s, risk_assessed=True)
        case "return.planning-started":
            s = replace(s, return_stage="planning")
        case "return.plan-agreed":
            s = replace(s, return_stage="agreed")
        case "return.completed":
            s = replace(s, return_stage="completed")
        case "reintegration.monitored":
            s = replace(s, monitoring_visits=s.monitoring_visits + 1)
        case "case.closed":
            s = replace(s, closed=True)
        case "case.erasure-ordered":
            s = replace(s, erased=True)
    return s
