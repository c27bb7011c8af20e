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
from datetime import date, datetime
from typing import Any

from contracts.authority import (
    PROTECTIVE_FLAGS,
    RELAXING_FLAGS,
    authority,
    justice,
    may_emit,
    origin_contact,
    vouchers,
)
from contracts.envelope import CaseFlags
from contracts.events import (
    AgeAssessmentOutcome,
    AgeStatus,
    ClosureReason,
    ComplicityCheck,
    DeclineReason,
    FeedbackKind,
    IdentificationStage,
    InformationTopic,
    officer_required,
)
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
    replaces: str | None = None  # the declined referral this one re-routes (R8)


@dataclass(frozen=True)
class Decision:
    """An identification decision, as the clear envelope shows it (the outcome is sealed)."""

    event_id: str
    stage: str
    sender: str


@dataclass(frozen=True)
class Review:
    review_id: str
    decision_event_id: str
    stage: str  # the stage of the decision reviewed, which the answer decides again
    requested_by: str
    answered: bool = False


@dataclass(frozen=True)
class Complaint:
    complaint_id: str
    kind: str
    recorded_by: str
    about: str | None
    answered: bool = False


@dataclass(frozen=True)
class Proceedings:
    proceedings_id: str
    opened_by: str
    concluded_by: str | None = None


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
    #: Identification decisions in order; reviews of them by id.
    decisions: tuple[Decision, ...] = ()
    reviews: Mapping[str, Review] = field(default_factory=dict)
    reflection: Reflection | None = None
    serious_risk: bool | None = None  # None until a risk assessment
    return_in_best_interests: bool | None = None
    best_interests_at: datetime | None = None
    age_assessment: str | None = None  # the latest outcome, from child protection
    family_check: str | None = None  # the latest complicity finding (ComplicityCheck)
    family_checked_at: datetime | None = None
    return_counterpart: str | None = None  # who receives the return and agrees its plan
    return_stage: str | None = None  # planning | agreed | completed
    monitoring_visits: int = 0
    residence: str | None = None  # None | active | ended
    proceedings: Mapping[str, Proceedings] = field(default_factory=dict)
    complaints: Mapping[str, Complaint] = field(default_factory=dict)
    compensation: Mapping[str, str] = field(default_factory=dict)  # forum -> claimed | decided
    linked_to: frozenset[str] = frozenset()  # earlier closed cases of the same person
    closed: bool = False
    erased: bool = False
    event_ids: frozenset[str] = frozenset()
    last_event_at: datetime | None = None

    @property
    def exists(self) -> bool:
        return bool(self.event_ids)

    @property
    def open_reviews(self) -> list[Review]:
        return [r for r in self.reviews.values() if not r.answered]

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
        case "age.assessed":
            outcome = op.get("outcome")
            if outcome == AgeAssessmentOutcome.CHILD:
                return CaseFlags(age_assessed_child=True)  # protective: from anyone
            adult = outcome == AgeAssessmentOutcome.ADULT
            return CaseFlags(age_assessed_adult=adult and may_emit(p.sender_roles, p.event_type))
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
            due = {"reasonable-grounds": policy.reasonable_grounds_due(p.time)}
            if presumed_child(op.get("age_status")):
                due["guardian-appointment"] = policy.guardian_due(p.time)
            return due
        case "referral.requested":
            due = policy.referral_answer_due(p.time, urgent=bool(op.get("urgent")))
            return {"referral-answer": due}
        case "referral.declined":
            return {"re-referral": policy.re_referral_due(p.time)}
        case "identification.review-requested":
            return {"decision-review": policy.review_due(p.time)}
        case "complaint.lodged" if op.get("kind") == FeedbackKind.COMPLAINT:
            return {"complaint-answer": policy.complaint_answer_due(p.time)}
        case "residence.granted" | "residence.renewed":
            valid_until = date.fromisoformat(str(op["valid_until"]))
            return {"residence-renewal": policy.residence_renewal_due(p.time, valid_until)}
        case "proceedings.concluded":
            return {"outcome-information": policy.outcome_information_due(p.time)}
        case "reintegration.monitored" if op.get("retaliation_risk") is True:
            return {
                "post-return-monitoring": policy.monitoring_due(p.time),
                "retaliation-found": p.time,  # at once
            }
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
    check_officer(p)
    check_origin_addressing(state, p)


def check_officer(p: Proposal) -> None:
    """R7: a decision names the officer who made it, whichever version it was sent in."""
    name = officer_required(p.event_type)
    _require(
        name is None or bool(p.operational.get(name)),
        "R7",
        f"{p.event_type} is a decision and must name the officer who made it ({name})",
    )


def check_origin_addressing(state: CaseState, p: Proposal) -> None:
    """R4: only the competent authority (or the origin's side among itself) addresses the
    country of origin, and nothing of a case with a lodged asylum claim goes there."""
    origin = sorted(a for a, roles in p.recipients.items() if origin_side(roles))
    if not origin:
        return
    _require(
        not justice(p.event_type),
        "R4",
        f"{p.event_type} is a justice event: it never goes to a consulate or to a "
        f"counterpart or gateway of the country of origin ({', '.join(origin)})",
    )
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
    earlier_case: CaseState | None = None,
) -> None:
    """All rules, against the sending node's view. Raises RuleViolation or UnknownCase.

    `origin_contacts`: the active agencies that may address the country of origin; an
    asylum claim must be addressed to each of them (R4), so none of them can contact the
    country of origin unaware of it. `earlier_case`: for a link to an earlier case, that
    case as this node holds it (None: it holds nothing of it)."""
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
    if p.event_type == "case.linked":
        check_link(state, p, earlier_case)
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
    if op.get("replaces_referral_id") is not None:
        _re_referral(state, p, str(op["replaces_referral_id"]), str(op["service"]))
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


def _re_referral(state: CaseState, p: Proposal, replaced: str, service: str) -> None:
    """R8, no dead ends (OSCE/ODIHR handbook, seed 001: a system "to refer trafficked
    persons to specialized agencies"; Liu, seed 000, 3.4: referral left to the discretion
    of whoever holds the file): a declined referral is re-routed by a new referral for
    the same need that names it, which reaches the agency that made the declined one, so
    that agency's re-referral clock stops; else the decline escalates."""
    old = state.referrals.get(replaced)
    _require(old is not None, "LIFECYCLE", f"no referral {replaced} in this case to re-route")
    assert old is not None
    _require(
        old.status == "declined",
        "LIFECYCLE",
        f"referral {replaced} is {old.status}: only a declined referral is re-routed",
    )
    _require(
        old.service == service,
        "LIFECYCLE",
        f"referral {replaced} asked for {old.service}: a re-referral is for the same need",
    )
    _require(
        old.from_agency in (p.sender, *p.recipients),
        "LIFECYCLE",
        f"address {old.from_agency}, which made the declined referral, so its re-referral "
        "clock stops",
    )


def _answer_reaches(owner: str, p: Proposal, what: str) -> None:
    """An answer reaches the agency whose clock it stops (R8), or that agency sent it."""
    _require(
        owner in (p.sender, *p.recipients),
        "LIFECYCLE",
        f"address {owner}, which is waiting for {what}, so its clock stops",
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
    stage, review_id = str(op["stage"]), op.get("review_id")
    if review_id is not None:
        _review_answer(state, p, str(review_id), stage)
        return
    decided = {d.stage for d in state.decisions} | {state.identification} - {None}
    _require(
        stage not in decided,
        "LIFECYCLE",
        f"{stage} is already decided: a second decision answers a review request (review_id)",
    )
    if stage == IdentificationStage.CONCLUSIVE:
        _require(
            state.identification == IdentificationStage.REASONABLE_GROUNDS,
            "LIFECYCLE",
            "a conclusive decision needs a reasonable-grounds decision first",
        )


def _review_answer(state: CaseState, p: Proposal, review_id: str, stage: str) -> None:
    review = state.reviews.get(review_id)
    _require(review is not None, "LIFECYCLE", f"no review request {review_id} in this case")
    assert review is not None
    _require(not review.answered, "LIFECYCLE", f"review {review_id} was already decided")
    _require(
        review.stage == stage,
        "LIFECYCLE",
        f"review {review_id} is of a {review.stage} decision: its answer decides that stage",
    )
    _answer_reaches(review.requested_by, p, f"the decision on review {review_id}")


def _review_requested(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    """A review of the latest identification decision: Liu (seed 000), 3.4, on who is
    accountable for conclusive decisions; the OSCE/ODIHR handbook (seed 001): the
    person's "power over decisions that affect their lives". One review of a decision at
    a time; its answer is the next decision, and that one may be reviewed in turn."""
    rid, about = str(op["review_id"]), str(op["decision_event_id"])
    _require(rid not in state.reviews, "LIFECYCLE", f"review {rid} already exists")
    latest = state.decisions[-1] if state.decisions else None
    _require(
        latest is not None and latest.event_id == about,
        "LIFECYCLE",
        f"{about} is not this case's latest identification decision: only that one is reviewed",
    )
    assert latest is not None
    _require(
        all(r.decision_event_id != about for r in state.open_reviews),
        "LIFECYCLE",
        f"a review of {about} is already open",
    )
    _answer_reaches(latest.sender, p, "the request (it decided)")


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
    if state.flags.child_safeguards:
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
    _require(
        state.return_counterpart in (None, p.sender),
        "LIFECYCLE",
        f"the return is planned with {state.return_counterpart}: only it agrees the plan",
    )
    check_family(state)


def check_family(state: CaseState) -> None:
    """R2 and the Bali Process guide (seed 003, "Family tracing and reunification"): no
    return of a child is agreed or carried out before family tracing checked that the
    family was not complicit; if it found them complicit, or could not tell, or found
    no family, only a best-interests determination made after that finding, in favour
    of return, lets the return go on (to care other than that family)."""
    if not state.flags.child_safeguards:
        return
    _require(
        state.family_check is not None,
        "R2",
        "no return for a child before family tracing has checked the family was not "
        "complicit (family.traced)",
    )
    if state.family_check == ComplicityCheck.FAMILY_CLEARED:
        return
    after = (
        state.best_interests_at is not None
        and state.family_checked_at is not None
        and state.best_interests_at >= state.family_checked_at
    )
    _require(
        after and state.return_in_best_interests is True,
        "R2",
        f"the family check found {state.family_check}: return needs a best-interests "
        "determination made after it that finds return in the child's interests",
    )


def _return_completed(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    _require(state.return_stage == "agreed", "LIFECYCLE", "the return plan is not agreed")
    check_family(state)
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


def _residence(state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy) -> None:
    if p.event_type == "residence.granted":
        _require(
            state.residence != "active",
            "LIFECYCLE",
            "a residence permit is in force: renew it (residence.renewed) or end it first",
        )
        return
    _require(state.residence == "active", "LIFECYCLE", "no residence permit is in force")


def _proceedings(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    pid = str(op["proceedings_id"])
    known = state.proceedings.get(pid)
    if p.event_type == "proceedings.opened":
        _require(known is None, "LIFECYCLE", f"proceedings {pid} already recorded")
        return
    _require(known is not None, "LIFECYCLE", f"no proceedings {pid} in this case")
    assert known is not None
    _require(known.concluded_by is None, "LIFECYCLE", f"proceedings {pid} already concluded")


def _rights_explained(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    """Telling the person of a trial's outcome names the proceedings and reaches the
    agency that recorded the outcome, whose information clock it stops (R8)."""
    pid = op.get("proceedings_id")
    outcome = op.get("topic") == InformationTopic.PROCEEDINGS_OUTCOME
    _require(
        pid is not None or not outcome,
        "LIFECYCLE",
        "the outcome of proceedings names them (proceedings_id)",
    )
    if pid is None:
        return
    known = state.proceedings.get(str(pid))
    _require(known is not None, "LIFECYCLE", f"no proceedings {pid} in this case")
    assert known is not None
    if outcome:
        _require(
            known.concluded_by is not None, "LIFECYCLE", f"proceedings {pid} are not concluded"
        )
        assert known.concluded_by is not None
        _answer_reaches(known.concluded_by, p, f"the person to be told of {pid}'s outcome")


def _complaint_lodged(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    cid, about = str(op["complaint_id"]), op.get("about_agency")
    _require(cid not in state.complaints, "LIFECYCLE", f"complaint {cid} already recorded")
    if about is not None:
        _require(
            about in (p.sender, *p.recipients),
            "LIFECYCLE",
            f"the complaint is about {about}: it must receive it to answer it",
        )
    else:
        _require(
            any(Role.COMPETENT_AUTHORITY in r for r in (p.sender_roles, *p.recipients.values())),
            "LIFECYCLE",
            "a complaint about the mechanism as a whole goes to the competent authority",
        )


def _complaint_answered(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    cid = str(op["complaint_id"])
    c = state.complaints.get(cid)
    _require(c is not None, "LIFECYCLE", f"no complaint {cid} in this case")
    assert c is not None
    _require(not c.answered, "LIFECYCLE", f"complaint {cid} was already answered")
    _require(
        p.sender == c.about or Role.COMPETENT_AUTHORITY in p.sender_roles,
        "LIFECYCLE",
        f"complaint {cid} is answered by {c.about or 'the competent authority'} "
        "(or the competent authority)",
    )
    _answer_reaches(c.recorded_by, p, f"the answer to complaint {cid}")


def _compensation(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    forum, status = str(op["forum"]), state.compensation.get(str(op["forum"]))
    match p.event_type:
        case "compensation.claimed":
            _require(
                status != "claimed",
                "LIFECYCLE",
                f"a claim in the {forum} forum is still undecided",
            )
        case "compensation.decided":
            _require(status == "claimed", "LIFECYCLE", f"no undecided claim in the {forum} forum")
        case "compensation.paid":
            _require(
                status == "decided", "LIFECYCLE", f"no decided claim in the {forum} forum to pay"
            )


def _closed(state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy) -> None:
    """ "Not a victim" closes a case only on a conclusive decision, and not while a review
    of it is open: a review must never be overtaken by the file being shut (R8)."""
    if op.get("reason_code") != ClosureReason.NOT_A_VICTIM:
        return
    _require(
        any(d.stage == IdentificationStage.CONCLUSIVE for d in state.decisions),
        "LIFECYCLE",
        "a case closes as not-a-victim only after a conclusive decision",
    )
    _require(
        not state.open_reviews,
        "LIFECYCLE",
        "a review of the decision is open: the case cannot close as not-a-victim before it",
    )


def check_link(state: CaseState, p: Proposal, earlier: CaseState | None) -> None:
    """Re-trafficking: the new case names an earlier closed case of the same person that
    this node holds; the earlier case stays closed (and erased, if it was)."""
    name = str(p.operational["earlier_case"])
    _require(name != state.pseudonym, "LIFECYCLE", "a case is not linked to itself")
    _require(name not in state.linked_to, "LIFECYCLE", f"already linked to {name}")
    _require(
        earlier is not None and earlier.exists,
        "LIFECYCLE",
        f"this node holds nothing of {name}: only a case it holds can be linked",
    )
    assert earlier is not None
    _require(
        earlier.closed or earlier.erased,
        "LIFECYCLE",
        f"{name} is not closed: an open case is worked on, not linked",
    )


_SEND_RULES = {
    "case.screened": _screened,
    "referral.requested": _referral_requested,
    "referral.accepted": _referral_answered,
    "referral.declined": _referral_answered,
    "consent.withdrawn": _consent_withdrawn,
    "identification.decided": _identification,
    "identification.review-requested": _review_requested,
    "reflection.started": _reflection,
    "reflection.extended": _reflection,
    "reflection.ended": _reflection,
    "residence.granted": _residence,
    "residence.renewed": _residence,
    "residence.ended": _residence,
    "return.planning-started": _return_planning,
    "return.plan-agreed": _return_agreed,
    "return.completed": _return_completed,
    "reintegration.monitored": _monitored,
    "proceedings.opened": _proceedings,
    "proceedings.concluded": _proceedings,
    "rights.explained": _rights_explained,
    "complaint.lodged": _complaint_lodged,
    "complaint.answered": _complaint_answered,
    "compensation.claimed": _compensation,
    "compensation.decided": _compensation,
    "compensation.paid": _compensation,
    "case.closed": _closed,
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
    s = replace(
        state,
        flags=state.flags.merged(counted_flags(flags, p.sender_roles)).merged(event_flags(p)),
        event_ids=state.event_ids | {p.event_id},
        last_event_at=p.time,
    )
    if not may_emit(p.sender_roles, p.event_type):
        match p.event_type:
            case "risk.assessed" if op.get("serious_risk") is True:
                s = replace(s, serious_risk=True)
            case "best-interests.determined" if op.get("return_in_best_interests") is False:
                s = replace(s, return_in_best_interests=False)
            case "family.traced" if op.get("complicity") == ComplicityCheck.FAMILY_COMPLICIT:
                s = replace(
                    s, family_check=ComplicityCheck.FAMILY_COMPLICIT, family_checked_at=p.time
                )
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
            replaces = op.get("replaces_referral_id")
            ref = Referral(
                referral_id=str(op["referral_id"]),
                from_agency=p.sender,
                to_agency=str(op["to_agency"]),
                service=str(op["service"]),
                status="requested",
                requested_at=p.time,
                answer_due=deadlines.get("referral-answer"),
                replaces=str(replaces) if replaces is not None else None,
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
            stage, rid = str(op["stage"]), op.get("review_id")
            decisions = (*s.decisions, Decision(p.event_id, stage, p.sender))
            s = replace(s, identification=stage, decisions=decisions)
            if rid is not None and str(rid) in s.reviews:
                answered = replace(s.reviews[str(rid)], answered=True)
                s = replace(s, reviews={**s.reviews, str(rid): answered})
        case "identification.review-requested":
            about = str(op["decision_event_id"])
            stage = next((d.stage for d in s.decisions if d.event_id == about), "")
            review = Review(str(op["review_id"]), about, stage, p.sender)
            s = replace(s, reviews={**s.reviews, review.review_id: review})
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
            s = replace(
                s,
                return_in_best_interests=bool(op["return_in_best_interests"]),
                best_interests_at=p.time,
            )
        case "age.assessed":
            s = replace(s, age_assessment=str(op["outcome"]))
        case "family.traced":
            s = replace(s, family_check=str(op["complicity"]), family_checked_at=p.time)
        case "return.planning-started":
            counterpart = str(op["counterpart_agency"])
            s = replace(s, return_stage="planning", return_counterpart=counterpart)
        case "return.plan-agreed":
            s = replace(s, return_stage="agreed")
        case "return.completed":
            s = replace(s, return_stage="completed")
        case "reintegration.monitored":
            s = replace(s, monitoring_visits=s.monitoring_visits + 1)
        case "residence.granted" | "residence.renewed":
            s = replace(s, residence="active")
        case "residence.ended":
            s = replace(s, residence="ended")
        case "proceedings.opened":
            pid = str(op["proceedings_id"])
            s = replace(s, proceedings={**s.proceedings, pid: Proceedings(pid, p.sender)})
        case "proceedings.concluded" if str(op["proceedings_id"]) in s.proceedings:
            pid = str(op["proceedings_id"])
            done = replace(s.proceedings[pid], concluded_by=p.sender)
            s = replace(s, proceedings={**s.proceedings, pid: done})
        case "complaint.lodged":
            about = op.get("about_agency")
            c = Complaint(
                str(op["complaint_id"]),
                str(op["kind"]),
                p.sender,
                str(about) if about is not None else None,
            )
            s = replace(s, complaints={**s.complaints, c.complaint_id: c})
        case "complaint.answered" if str(op["complaint_id"]) in s.complaints:
            cid = str(op["complaint_id"])
            s = replace(
                s, complaints={**s.complaints, cid: replace(s.complaints[cid], answered=True)}
            )
        case "compensation.claimed":
            s = replace(s, compensation={**s.compensation, str(op["forum"]): "claimed"})
        case "compensation.decided":
            s = replace(s, compensation={**s.compensation, str(op["forum"]): "decided"})
        case "case.linked":
            s = replace(s, linked_to=s.linked_to | {str(op["earlier_case"])})
        case "case.closed":
            s = replace(s, closed=True)
        case "case.erasure-ordered":
            s = replace(s, erased=True)
    return s
