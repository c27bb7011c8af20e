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
authority table (`contracts.authority`), R7's officers and R4's addressing rules hold at
both ends. The case's data is in `rules.case_state`; the rules of the person's remedies
and the later stages (reviews, residence, proceedings, complaints, compensation, closure,
links) in `rules.remedies`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from contracts.authority import authority, justice, may_emit, origin_contact, vouchers
from contracts.events import (
    ComplicityCheck,
    DeclineReason,
    FeedbackKind,
    IdentificationStage,
    officer_required,
)
from contracts.need_to_know import origin_side
from contracts.policy import CountryPolicy
from contracts.restrictions import (
    PROTECTIVE,
    RELAXING,
    Restrictions,
    age_assessed,
    presumed_child,
)
from contracts.vocabulary import Role
from referral_router.rules.case_state import (
    CaseState,
    Complaint,
    Consent,
    Decision,
    Proceedings,
    Proposal,
    Referral,
    Reflection,
    Review,
    Roles,
    RuleViolation,
    UnknownCase,
    known,
    require,
)
from referral_router.rules.remedies import (
    check_link,
    closed,
    compensation,
    complaint_answered,
    complaint_lodged,
    proceedings,
    residence,
    review_answer,
    review_requested,
    rights_explained,
)


def event_restrictions(p: Proposal) -> Restrictions:
    """The restrictions an event's clear part itself establishes, whatever its sender
    wrote: protective ones always, relaxing ones if its sender may establish them."""
    match p.event_type:
        case "case.screened":
            return Restrictions(presumed_child=presumed_child(p.operational.get("age_status")))
        case "asylum.lodged":
            return Restrictions(no_origin_contact=True)
        case "age.assessed":
            found = age_assessed(p.operational.get("outcome"))
            if found.child_safeguards_lifted and not may_emit(p.sender_roles, p.event_type):
                return Restrictions()  # relaxing: only from child protection
            return found  # a child found is protective: from anyone
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
        case "case.closed":
            return {"retention-ends": policy.retention_ends(p.time, str(op["reason_code"]))}
    return {}


# --- the rules -------------------------------------------------------------------------


def check_common(state: CaseState, p: Proposal) -> None:
    """The rules both ends apply: order, authority (ROLE) and R4's addressing."""
    require(p.event_id not in state.event_ids, "LIFECYCLE", f"event {p.event_id} already recorded")
    require(not state.erased, "ERASED", "the case's data was erased; no further events")
    if p.event_type == "case.screened":
        require(not state.screened, "LIFECYCLE", "the case is already screened")
    if state.closed:
        require(
            p.event_type == "case.erasure-ordered",
            "LIFECYCLE",
            "the case is closed; only an erasure order may follow",
        )
    emitters = authority(p.event_type).emitters
    require(
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
    require(
        name is None or bool(p.operational.get(name)),
        "R7",
        f"{p.event_type} is a decision and must name the officer who made it ({name})",
    )


def check_origin_addressing(state: CaseState, p: Proposal) -> None:
    """R4: only the competent authority (or the origin's side among itself) addresses the
    country of origin, and nothing of a case under `no_origin_contact` goes there."""
    origin = sorted(a for a, roles in p.recipients.items() if origin_side(roles))
    if not origin:
        return
    require(
        not (p.event_type and justice(p.event_type)),
        "R4",
        f"{p.event_type} is a justice event: it never goes to a consulate or to a "
        f"counterpart or gateway of the country of origin ({', '.join(origin)})",
    )
    require(
        not barred_from_origin(state, p),
        "R4",
        "no contact with the country of origin applies to this case: no event of it may go "
        f"to a consulate or to a counterpart or gateway of the country of origin "
        f"({', '.join(origin)})",
    )
    require(
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
        require(
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
        require(
            any(Role.CHILD_PROTECTION in roles for roles in p.recipients.values()),
            "R2",
            "a presumed child (age child, unknown or disputed) must be referred at once to "
            "child protection: add a child-protection agency to the recipients",
        )


def _referral_requested(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    rid, to = str(op["referral_id"]), str(op["to_agency"])
    require(rid not in state.referrals, "LIFECYCLE", f"referral {rid} already exists")
    require(to in p.recipients, "LIFECYCLE", f"the referred agency {to} must be a recipient")
    require(to != p.sender, "LIFECYCLE", "an agency cannot refer a case to itself")
    if op.get("replaces_referral_id") is not None:
        _re_referral(state, p, str(op["replaces_referral_id"]), str(op["service"]))
    check_consent_for(state, to, op.get("consent_id"), op.get("consent_override"), "referral")


def check_consent_for(
    state: CaseState, to: str, consent_id: object, override: object, what: str
) -> None:
    """R9: sharing personal data with `to` (a referral, or passing the case on) needs the
    person's recorded, active consent naming it, or an override with a legal basis."""
    if override:
        return
    require(
        consent_id is not None,
        "R9",
        f"{what} to {to} needs the person's recorded consent (consent_id) or a "
        "consent_override with a legal basis",
    )
    consent = state.consents.get(str(consent_id))
    require(consent is not None, "R9", f"no consent {consent_id} is recorded for this case")
    assert consent is not None
    require(consent.active, "R9", f"consent {consent_id} was withdrawn")
    require(
        to in consent.recipients, "R9", f"consent {consent_id} does not cover sharing with {to}"
    )


def _re_referral(state: CaseState, p: Proposal, replaced: str, service: str) -> None:
    """R8, no dead ends (OSCE/ODIHR handbook, seed 001: a system "to refer trafficked
    persons to specialized agencies"; Liu, seed 000, 3.4: referral left to the discretion
    of whoever holds the file): a declined referral is re-routed by a new referral for
    the same need that names it, which reaches the agency that made the declined one, so
    that agency's re-referral clock stops; else the decline escalates."""
    old = known(state.referrals, replaced, "referral")
    require(
        old.status == "declined",
        "LIFECYCLE",
        f"referral {replaced} is {old.status}: only a declined referral is re-routed",
    )
    require(
        old.service == service,
        "LIFECYCLE",
        f"referral {replaced} asked for {old.service}: a re-referral is for the same need",
    )
    require(
        old.from_agency in (p.sender, *p.recipients),
        "LIFECYCLE",
        f"address {old.from_agency}, which made the declined referral, so its re-referral "
        "clock stops",
    )


def _referral_answered(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    rid = str(op["referral_id"])
    ref = known(state.referrals, rid, "referral")
    require(ref.to_agency == p.sender, "LIFECYCLE", f"only {ref.to_agency} can answer {rid}")
    require(ref.status == "requested", "LIFECYCLE", f"referral {rid} was already {ref.status}")
    if p.event_type == "referral.declined":
        check_decline_reason(op)


def check_decline_reason(op: Mapping[str, Any]) -> None:
    """R1: assistance is never refused for migration status or for not co-operating."""
    reason = DeclineReason(op.get("reason_code", DeclineReason.OTHER))
    require(
        reason not in (DeclineReason.MIGRATION_STATUS, DeclineReason.NO_COOPERATION),
        "R1",
        "assistance may not be refused for migration status or unwillingness to co-operate",
    )


def _consent_withdrawn(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    cid = str(op["consent_id"])
    consent = state.consents.get(cid)
    require(consent is not None and consent.active, "LIFECYCLE", f"no active consent {cid}")


def _identification(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    stage, review_id = str(op["stage"]), op.get("review_id")
    if review_id is not None:
        review_answer(state, p, str(review_id), stage)
        return
    decided = {d.stage for d in state.decisions} | {state.identification} - {None}
    require(
        stage not in decided,
        "LIFECYCLE",
        f"{stage} is already decided: a second decision answers a review request (review_id)",
    )
    if stage == IdentificationStage.CONCLUSIVE:
        require(
            state.identification == IdentificationStage.REASONABLE_GROUNDS,
            "LIFECYCLE",
            "a conclusive decision needs a reasonable-grounds decision first",
        )


def _reflection(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    running = state.reflection is not None and state.reflection.running_at(p.time)
    if p.event_type == "reflection.started":
        require(not running, "LIFECYCLE", "a reflection period is already running")
        return
    require(running, "LIFECYCLE", "no reflection period is running")
    if p.event_type == "reflection.extended":
        assert state.reflection is not None
        total = policy.reflection_days + state.reflection.extra_days + int(op["extra_days"])
        require(
            total <= policy.reflection_max_total_days,
            "POLICY",
            f"reflection would last {total} days; {policy.country}'s maximum is "
            f"{policy.reflection_max_total_days}",
        )


def _return_planning(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    require(state.return_stage is None, "LIFECYCLE", "return planning already started")
    r = state.restrictions
    if r.child_safeguards:
        require(
            r.guardian_appointed and r.best_interests_determined,
            "R2",
            "no return is planned for a presumed child before a guardian is appointed and a "
            "best-interests determination is made",
        )
    require(
        not r.no_return,
        "R2",
        "the best-interests determination found return not in the child's interests",
    )
    require(
        not r.no_origin_contact,
        "R4",
        "no contact with the country of origin applies to this case (an asylum claim, "
        "refugee status or a serious risk of harm on return): no return is planned",
    )
    require(
        state.risk_assessed,
        "R4",
        "return needs a risk assessment that found no serious risk (none recorded)",
    )


def _return_agreed(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    require(state.return_stage == "planning", "LIFECYCLE", "no return planning to agree to")
    require(
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
    if not state.restrictions.child_safeguards:
        return
    require(
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
    require(
        after and not state.restrictions.no_return,
        "R2",
        f"the family check found {state.family_check}: return needs a best-interests "
        "determination made after it that finds return in the child's interests",
    )


def _return_completed(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    require(state.return_stage == "agreed", "LIFECYCLE", "the return plan is not agreed")
    check_family(state)
    if state.reflection is not None and state.reflection.running_at(p.time):
        consent = state.consents.get(str(op.get("consent_id")))
        asked = (
            bool(op.get("voluntary"))
            and consent is not None
            and consent.active
            and consent.voluntary_return
        )
        require(
            asked,
            "R3",
            "no return while the reflection period runs (until "
            f"{state.reflection.ends.isoformat()}) unless the person asked for it with "
            "recorded consent (voluntary + consent_id of a voluntary-return consent)",
        )


def _monitored(state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy) -> None:
    require(state.return_stage == "completed", "LIFECYCLE", "no completed return to monitor")


_SEND_RULES = {
    "case.screened": _screened,
    "referral.requested": _referral_requested,
    "referral.accepted": _referral_answered,
    "referral.declined": _referral_answered,
    "consent.withdrawn": _consent_withdrawn,
    "identification.decided": _identification,
    "identification.review-requested": review_requested,
    "reflection.started": _reflection,
    "reflection.extended": _reflection,
    "reflection.ended": _reflection,
    "residence.granted": residence,
    "residence.renewed": residence,
    "residence.ended": residence,
    "return.planning-started": _return_planning,
    "return.plan-agreed": _return_agreed,
    "return.completed": _return_completed,
    "reintegration.monitored": _monitored,
    "proceedings.opened": proceedings,
    "proceedings.concluded": proceedings,
    "rights.explained": rights_explained,
    "complaint.lodged": complaint_lodged,
    "complaint.answered": complaint_answered,
    "compensation.claimed": compensation,
    "compensation.decided": compensation,
    "compensation.paid": compensation,
    "case.closed": closed,
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
    s = _changed(
        state,
        restrictions=state.restrictions.merged(believed),
        event_ids=state.event_ids | {p.event_id},
        last_event_at=p.time,
    )
    if not may_emit(p.sender_roles, p.event_type):
        match p.event_type:
            case "family.traced" if op.get("complicity") == ComplicityCheck.FAMILY_COMPLICIT:
                s = _changed(
                    s, family_check=ComplicityCheck.FAMILY_COMPLICIT, family_checked_at=p.time
                )
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
            stage, rid = str(op["stage"]), op.get("review_id")
            decisions = (*s.decisions, Decision(p.event_id, stage, p.sender))
            s = _changed(s, identification=stage, decisions=decisions)
            if rid is not None and str(rid) in s.reviews:
                answered = replace(s.reviews[str(rid)], answered=True)
                s = _changed(s, reviews={**s.reviews, str(rid): answered})
        case "identification.review-requested":
            about = str(op["decision_event_id"])
            stage = next((d.stage for d in s.decisions if d.event_id == about), "")
            review = Review(str(op["review_id"]), about, stage, p.sender)
            s = _changed(s, reviews={**s.reviews, review.review_id: review})
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
            s = _changed(s, risk_assessed=True)
        case "best-interests.determined":
            s = _changed(s, best_interests_at=p.time)
        case "age.assessed":
            s = _changed(s, age_assessment=str(op["outcome"]))
        case "family.traced":
            s = _changed(s, family_check=str(op["complicity"]), family_checked_at=p.time)
        case "return.planning-started":
            counterpart = str(op["counterpart_agency"])
            s = _changed(s, return_stage="planning", return_counterpart=counterpart)
        case "return.plan-agreed":
            s = _changed(s, return_stage="agreed")
        case "return.completed":
            s = _changed(s, return_stage="completed")
        case "reintegration.monitored":
            s = _changed(s, monitoring_visits=s.monitoring_visits + 1)
        case "residence.granted" | "residence.renewed":
            s = _changed(s, residence="active")
        case "residence.ended":
            s = _changed(s, residence="ended")
        case "proceedings.opened":
            pid = str(op["proceedings_id"])
            s = _changed(s, proceedings={**s.proceedings, pid: Proceedings(pid, p.sender)})
        case "proceedings.concluded" if str(op["proceedings_id"]) in s.proceedings:
            pid = str(op["proceedings_id"])
            done = replace(s.proceedings[pid], concluded_by=p.sender)
            s = _changed(s, proceedings={**s.proceedings, pid: done})
        case "complaint.lodged":
            about = op.get("about_agency")
            c = Complaint(
                str(op["complaint_id"]),
                str(op["kind"]),
                p.sender,
                str(about) if about is not None else None,
            )
            s = _changed(s, complaints={**s.complaints, c.complaint_id: c})
        case "complaint.answered" if str(op["complaint_id"]) in s.complaints:
            cid = str(op["complaint_id"])
            s = _changed(
                s, complaints={**s.complaints, cid: replace(s.complaints[cid], answered=True)}
            )
        case "compensation.claimed":
            s = _changed(s, compensation={**s.compensation, str(op["forum"]): "claimed"})
        case "compensation.decided":
            s = _changed(s, compensation={**s.compensation, str(op["forum"]): "decided"})
        case "case.linked":
            s = _changed(s, linked_to=s.linked_to | {str(op["earlier_case"])})
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


#: What other modules take from here (the case's data lives in `rules.case_state`).
__all__ = [
    "CaseState",
    "Consent",
    "Proposal",
    "Referral",
    "Reflection",
    "Roles",
    "RuleViolation",
    "UnknownCase",
    "barred_from_origin",
    "check_common",
    "check_consent_for",
    "check_decline_reason",
    "check_family",
    "check_link",
    "check_send",
    "counted",
    "derive_deadlines",
    "derive_restrictions",
    "event_restrictions",
    "evolve",
    "presumed_child",
]
