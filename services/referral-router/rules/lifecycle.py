"""The case lifecycle: a pure state machine that enforces rules R1-R4, R9 and the order
of events (docs/domain.md). No I/O: the router feeds it clear envelope data and the policy.

Every node keeps its own view of a case (the events it sent or received). The sending
node checks a new event against its view with `check_send`; a receiving node checks with
`check_receive`, which only applies the rules its partial view can decide. Rule-relevant
facts travel as clear `CaseFlags` so that R2-R4 hold across nodes without personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from contracts.envelope import CaseFlags
from contracts.events import AgeStatus, DeclineReason
from contracts.policy import CountryPolicy
from contracts.vocabulary import Role

PRESUMED_CHILD_AGES = frozenset({AgeStatus.CHILD, AgeStatus.UNKNOWN, AgeStatus.DISPUTED})

#: Which roles may emit an event type; absent types may come from any registered role.
EMITTERS: Mapping[str, frozenset[Role]] = {
    "case.screened": frozenset(
        {
            Role.FIRST_RESPONDER,
            Role.COMPETENT_AUTHORITY,
            Role.SERVICE_PROVIDER,
            Role.CHILD_PROTECTION,
            Role.LAW_ENFORCEMENT,
        }
    ),
    "identification.decided": frozenset({Role.COMPETENT_AUTHORITY}),
    "reflection.started": frozenset({Role.IMMIGRATION, Role.COMPETENT_AUTHORITY}),
    "reflection.extended": frozenset({Role.IMMIGRATION, Role.COMPETENT_AUTHORITY}),
    "reflection.ended": frozenset({Role.IMMIGRATION, Role.COMPETENT_AUTHORITY}),
    "residence.granted": frozenset({Role.IMMIGRATION}),
    "asylum.lodged": frozenset({Role.ASYLUM, Role.IMMIGRATION}),
    "guardian.appointed": frozenset({Role.CHILD_PROTECTION}),
    "best-interests.determined": frozenset({Role.CHILD_PROTECTION}),
    "return.plan-agreed": frozenset({Role.COUNTERPART}),
    "reintegration.monitored": frozenset({Role.COUNTERPART}),
    "case.erasure-ordered": frozenset({Role.COMPETENT_AUTHORITY, Role.NATIONAL_COORDINATOR}),
}


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


@dataclass(frozen=True)
class Proposal:
    """A new event as the rules see it: only clear data."""

    event_id: str
    event_type: str
    sender: str
    sender_role: Role
    recipients: Mapping[str, Role]
    time: datetime
    operational: Mapping[str, Any]


def derive_flags(state: CaseState, p: Proposal) -> CaseFlags:
    """The case flags after `p`: flags only ever turn on."""
    flags = state.flags
    op = p.operational
    match p.event_type:
        case "case.screened":
            flags = flags.merged(
                CaseFlags(presumed_child=AgeStatus(op["age_status"]) in PRESUMED_CHILD_AGES)
            )
        case "asylum.lodged":
            flags = flags.merged(CaseFlags(asylum_lodged=True))
        case "guardian.appointed":
            flags = flags.merged(CaseFlags(guardian_appointed=True))
        case "best-interests.determined":
            flags = flags.merged(CaseFlags(best_interests_determined=True))
    return flags


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


def _check_common(state: CaseState, p: Proposal) -> None:
    _require(p.event_id not in state.event_ids, "LIFECYCLE", f"event {p.event_id} already recorded")
    _require(not state.erased, "LIFECYCLE", "the case's data was erased; no further events")
    if p.event_type == "case.screened":
        _require(not state.screened, "LIFECYCLE", "the case is already screened")
    if state.closed:
        _require(
            p.event_type == "case.erasure-ordered",
            "LIFECYCLE",
            "the case is closed; only an erasure order may follow",
        )
    emitters = EMITTERS.get(p.event_type)
    if emitters is not None:
        _require(
            p.sender_role in emitters,
            "ROLE",
            f"{p.event_type} may only come from {', '.join(sorted(emitters))}",
        )
    # R4: nothing of a case with a lodged asylum claim reaches a consulate.
    asylum = state.flags.asylum_lodged or p.event_type == "asylum.lodged"
    if asylum:
        barred = sorted(a for a, role in p.recipients.items() if role is Role.CONSULATE)
        _require(
            not barred,
            "R4",
            f"asylum is lodged: no event of this case may go to a consulate ({', '.join(barred)})",
        )


def check_send(state: CaseState, p: Proposal, policy: CountryPolicy) -> None:
    """All rules, against the sending node's view. Raises RuleViolation or UnknownCase."""
    if p.event_type != "case.screened" and not state.exists:
        raise UnknownCase(state.pseudonym)
    _check_common(state, p)
    op = p.operational
    rule = _SEND_RULES.get(p.event_type)
    if rule is not None:
        rule(state, p, op, policy)


def check_receive(state: CaseState, p: Proposal, received_by: str) -> None:
    """The rules a receiving node can decide from its partial view of the case.

    `received_by` is whom the event reached on this side: the node itself, or, for an
    event forwarded across a border, the gateway that received it and passed it on."""
    _require(received_by in p.recipients, "R6", f"{received_by} is not a recipient of the event")
    _check_common(state, p)
    if p.event_type in ("referral.accepted", "referral.declined"):
        ref = state.referrals.get(str(p.operational["referral_id"]))
        if ref is not None:  # the requester knows the referral; others may not
            _require(
                ref.to_agency == p.sender,
                "LIFECYCLE",
                f"referral {ref.referral_id} was addressed to {ref.to_agency}, not {p.sender}",
            )


def _screened(state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy) -> None:
    # R1 needs no condition here: screening is accepted whatever the person's migration
    # status or willingness to co-operate, and makes them a presumed victim.
    if AgeStatus(op["age_status"]) in PRESUMED_CHILD_AGES:
        _require(
            Role.CHILD_PROTECTION in p.recipients.values(),
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
        reason = DeclineReason(op["reason_code"])
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
    """The state after a recorded event. Never raises: recorded events are facts."""
    op = p.operational
    s = replace(
        state,
        flags=state.flags.merged(flags),
        event_ids=state.event_ids | {p.event_id},
        last_event_at=p.time,
        originator=state.originator or p.sender,
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
            s = replace(s, serious_risk=bool(op["serious_risk"]))
        case "best-interests.determined":
            s = replace(s, return_in_best_interests=bool(op["return_in_best_interests"]))
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
