"""The whole NRM process, with no dead ends: each new rule accepted and refused, every
refusal naming its rule (pure rules; both ends where a receiver decides too)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from contracts.restrictions import Restrictions
from contracts.vocabulary import Role
from referral_router.rules.lifecycle import (
    CaseState,
    Proposal,
    RuleViolation,
    check_send,
    counted,
    derive_deadlines,
    evolve,
)
from tests.router.test_admission import refused
from tests.router.test_lifecycle import (
    ROLES,
    T0,
    XA,
    apply,
    prop,
    screened,
    violation,
    with_events,
)

ROLES.update(
    {
        "le": Role.LAW_ENFORCEMENT,
        "legal": Role.SERVICE_PROVIDER,
        "shelter2": Role.SERVICE_PROVIDER,
        "rapp": Role.OVERSIGHT,
    }
)


def referred(**extra: Any) -> CaseState:
    """Screened by police, referred to the shelter on an override."""
    return with_events(
        screened(),
        prop(
            "referral.requested",
            "police",
            ["shelter", "ca"],
            referral_id="r1",
            to_agency="shelter",
            service="shelter",
            consent_override={"legal_basis": "public-task"},
        ),
    )


def declined() -> CaseState:
    return apply(
        referred(),
        prop(
            "referral.declined",
            "shelter",
            ["police"],
            referral_id="r1",
            reason_code="capacity",
            answered_by_officer="sh-1",
        ),
    )


def re_referral(sender: str, to: list[str], **op: Any) -> Proposal:
    fields = {
        "referral_id": "r2",
        "to_agency": "shelter2",
        "service": "shelter",
        "consent_override": {"legal_basis": "public-task"},
        "replaces_referral_id": "r1",
        **op,
    }
    return prop("referral.requested", sender, to, **fields)


# --- R8: no dead ends --------------------------------------------------------------------


def test_a_decline_opens_the_re_referral_deadline_from_policy() -> None:
    p = prop(
        "referral.declined",
        "shelter",
        ["police"],
        referral_id="r1",
        reason_code="capacity",
        answered_by_officer="sh-1",
    )
    assert derive_deadlines(referred(), p, XA) == {
        "re-referral": T0 + timedelta(hours=XA.re_referral_hours)
    }


def test_a_re_referral_names_the_declined_referral_for_the_same_need() -> None:
    s = apply(declined(), re_referral("police", ["shelter2"]))
    assert s.referrals["r2"].replaces == "r1"


@pytest.mark.parametrize(
    ("state", "op", "words"),
    [
        (referred, {}, "only a declined referral"),
        (declined, {"service": "medical"}, "same need"),
        (declined, {"replaces_referral_id": "r9"}, "no referral r9"),
    ],
)
def test_a_re_referral_of_no_declined_referral_for_that_need_is_refused(
    state: Any, op: dict[str, Any], words: str
) -> None:
    v = violation(state(), re_referral("police", ["shelter2"], **op))
    assert v.rule == "LIFECYCLE" and words in v.message


def test_a_re_referral_by_another_agency_must_reach_the_one_whose_clock_runs() -> None:
    s = declined()
    v = violation(s, re_referral("ca", ["shelter2"]))
    assert v.rule == "LIFECYCLE" and "police" in v.message
    assert apply(s, re_referral("ca", ["shelter2", "police"])).referrals["r2"].replaces == "r1"


# --- R7: every decision signed by a person --------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "sender", "op"),
    [
        ("referral.declined", "shelter", {"referral_id": "r1", "reason_code": "capacity"}),
        ("reflection.ended", "imm", {"reason_code": "expired"}),
        ("case.closed", "ca", {"reason_code": "not-a-victim"}),
    ],
)
def test_a_receiver_refuses_a_decision_that_names_no_officer(
    event_type: str, sender: str, op: dict[str, Any]
) -> None:
    """An older version (the officer was optional, or absent) sent by a node that skips
    its checks: R7 at the receiver, whatever else the event says."""
    s = replace(referred(), parties=referred().parties | {"imm", "shelter", "ca"})
    assert refused(s, prop(event_type, sender, ["police"], **op), "police").rule == "R7"


# --- reviews ------------------------------------------------------------------------------


def decided(outcome_stage: str = "conclusive") -> CaseState:
    s = with_events(
        referred(),
        prop(
            "identification.decided",
            "ca",
            ["police", "legal"],
            stage="reasonable-grounds",
            decided_by_officer="ca-1",
        ),
    )
    if outcome_stage == "conclusive":
        s = apply(
            s,
            prop(
                "identification.decided",
                "ca",
                ["police", "legal"],
                stage="conclusive",
                decided_by_officer="ca-1",
            ),
        )
    return s


def review(state: CaseState, **op: Any) -> Proposal:
    fields = {
        "review_id": "rev-1",
        "decision_event_id": state.decisions[-1].event_id,
        "requested_by_officer": "la-1",
        **op,
    }
    return prop("identification.review-requested", "legal", ["ca"], **fields)


def test_a_second_conclusive_decision_needs_a_review() -> None:
    s = decided()
    again = prop(
        "identification.decided", "ca", ["legal"], stage="conclusive", decided_by_officer="ca-2"
    )
    v = violation(s, again)
    assert v.rule == "LIFECYCLE" and "review" in v.message
    asked = apply(s, review(s))
    assert asked.open_reviews and asked.open_reviews[0].stage == "conclusive"
    on_review = prop(
        "identification.decided",
        "ca",
        ["legal", "police"],
        stage="conclusive",
        review_id="rev-1",
        decided_by_officer="ca-2",
    )
    after = apply(asked, on_review)
    assert not after.open_reviews and len(after.decisions) == 3  # both decisions stay (R7)
    v = violation(after, on_review)
    assert v.rule == "LIFECYCLE"  # a review is answered once


def test_a_review_has_its_deadline_and_may_be_reviewed_in_turn() -> None:
    s = decided()
    assert derive_deadlines(s, review(s), XA) == {
        "decision-review": T0 + timedelta(days=XA.decision_review_days)
    }
    s = with_events(
        s,
        review(s),
        prop(
            "identification.decided",
            "ca",
            ["legal"],
            stage="conclusive",
            review_id="rev-1",
            decided_by_officer="ca-2",
        ),
    )
    assert apply(s, review(s, review_id="rev-2")).reviews["rev-2"].decision_event_id == (
        s.decisions[-1].event_id
    )


@pytest.mark.parametrize(
    ("change", "rule", "words"),
    [
        ({"decision_event_id": "e-unknown"}, "LIFECYCLE", "latest identification decision"),
        ({"sender": "police"}, "ROLE", "may only come from"),
        ({"to": ["police"]}, "LIFECYCLE", "address ca"),
    ],
)
def test_a_review_of_the_latest_decision_by_a_representative_to_its_decider(
    change: dict[str, Any], rule: str, words: str
) -> None:
    s = decided()
    fields = {
        "review_id": "rev-1",
        "decision_event_id": change.get("decision_event_id", s.decisions[-1].event_id),
        "requested_by_officer": "la-1",
    }
    p = prop(
        "identification.review-requested",
        change.get("sender", "legal"),
        change.get("to", ["ca"]),
        **fields,
    )
    v = violation(s, p)
    assert v.rule == rule and words in v.message


def test_a_review_decision_decides_the_stage_reviewed_and_reaches_the_requester() -> None:
    s = decided()
    s = apply(s, review(s))
    wrong_stage = prop(
        "identification.decided",
        "ca",
        ["legal"],
        stage="reasonable-grounds",
        review_id="rev-1",
        decided_by_officer="ca-2",
    )
    assert "decides that stage" in violation(s, wrong_stage).message
    unheard = prop(
        "identification.decided",
        "ca",
        ["police"],
        stage="conclusive",
        review_id="rev-1",
        decided_by_officer="ca-2",
    )
    v = violation(s, unheard)
    assert v.rule == "LIFECYCLE" and "address legal" in v.message


def test_not_a_victim_closes_only_after_a_conclusive_decision_with_no_review_open() -> None:
    closing = prop(
        "case.closed", "ca", ["police"], reason_code="not-a-victim", decided_by_officer="ca-1"
    )
    assert "after a conclusive decision" in violation(decided("rg"), closing).message
    s = decided()
    asked = apply(s, review(s))
    assert "review of the decision is open" in violation(asked, closing).message
    assert apply(s, closing).closed


# --- children (R2) --------------------------------------------------------------------------


def child() -> CaseState:
    return screened("disputed", ["ca", "cp"])


def assessed(outcome: str, by: str = "cp") -> Proposal:
    return prop("age.assessed", by, ["ca", "police"], outcome=outcome, assessed_by_officer="cp-1")


def test_a_presumed_child_s_screening_opens_the_guardian_deadline() -> None:
    p = prop(
        "case.screened",
        "police",
        ["ca", "cp"],
        age_status="unknown",
        forms_of_exploitation=["forced-labour"],
    )
    due = derive_deadlines(CaseState(pseudonym="case-test0001"), p, XA)
    assert due["guardian-appointment"] == T0 + timedelta(hours=XA.guardian_appointment_hours)
    adult = prop(
        "case.screened", "police", ["ca"], age_status="adult", forms_of_exploitation=["other"]
    )
    assert "guardian-appointment" not in derive_deadlines(CaseState(), adult, XA)


def test_an_age_assessment_finding_an_adult_ends_the_presumption() -> None:
    s = child()
    assert s.restrictions.child_safeguards
    for outcome in ("inconclusive",):
        assert apply(s, assessed(outcome)).restrictions.child_safeguards  # the presumption holds
    adult = apply(s, assessed("adult"))
    assert not adult.restrictions.child_safeguards and adult.age_assessment == "adult"
    # a child found later (a challenge) brings the safeguards back, for good
    again = apply(adult, assessed("child"))
    assert again.restrictions.child_safeguards
    assert apply(again, assessed("adult")).restrictions.child_safeguards


def test_only_child_protection_lifts_the_presumption_a_child_found_counts_from_anyone() -> None:
    s = child()
    assert violation(s, assessed("adult", by="police")).rule == "ROLE"
    claimed = Restrictions(presumed_child=True, child_safeguards_lifted=True)
    assert not counted(claimed, {Role.FIRST_RESPONDER}).child_safeguards_lifted
    assert counted(claimed, {Role.CHILD_PROTECTION}).child_safeguards_lifted
    rogue = assessed("adult", by="police")
    kept = evolve(s, rogue, claimed, {})  # recorded from a sender that may not emit it
    assert kept.restrictions.child_safeguards
    found = Restrictions(child_safeguards_confirmed=True)
    assert counted(found, {Role.FIRST_RESPONDER}).child_safeguards_confirmed


def returning_child(*events: Proposal) -> CaseState:
    """A child with a guardian, a determination for return, no serious risk, and a
    return planned with the counterpart."""
    s = with_events(
        child(),
        prop("guardian.appointed", "cp", ["ca"], guardian_agency="cp", decided_by_officer="c"),
        prop(
            "best-interests.determined",
            "cp",
            ["ca"],
            return_in_best_interests=True,
            decided_by_officer="c",
        ),
        prop("risk.assessed", "ca", ["cp"], serious_risk=False, assessed_by_officer="o"),
        *events,
    )
    plan = prop(
        "return.planning-started",
        "ca",
        ["cpart"],
        destination_country="XB",
        counterpart_agency="cpart",
    )
    return apply(s, plan)


def traced(finding: str, by: str = "cp", at: Any = T0) -> Proposal:
    """Child protection tells the authority (only the authority addresses the country of
    origin's side, R4: the counterpart learns of a check made here through it)."""
    return prop("family.traced", by, ["ca"], at=at, complicity=finding, traced_by_officer="c")


AGREE = {"agreed_by_officer": "xb-1"}


def test_no_return_plan_for_a_child_before_the_family_check() -> None:
    s = returning_child()
    v = violation(s, prop("return.plan-agreed", "cpart", ["ca"], **AGREE))
    assert v.rule == "R2" and "family" in v.message
    cleared = returning_child(traced("family-cleared"))
    assert apply(cleared, prop("return.plan-agreed", "cpart", ["ca"], **AGREE)).return_stage


def test_a_complicit_family_needs_a_later_determination_for_return() -> None:
    later = T0 + timedelta(days=2)
    s = returning_child(traced("family-complicit", at=T0 + timedelta(days=1)))
    v = violation(s, prop("return.plan-agreed", "cpart", ["ca"], **AGREE))
    assert v.rule == "R2" and "family-complicit" in v.message
    s = apply(
        s,
        prop(
            "best-interests.determined",
            "cp",
            ["ca"],
            at=later,
            return_in_best_interests=True,
            decided_by_officer="c",
        ),
    )
    agreed = prop("return.plan-agreed", "cpart", ["ca"], at=later, **AGREE)
    assert apply(s, agreed).return_stage == "agreed"


def test_a_complicity_finding_counts_from_anyone_a_clearance_only_from_tracers() -> None:
    s = child()
    rogue_clear = traced("family-cleared", by="police")
    assert violation(s, rogue_clear).rule == "ROLE"
    assert evolve(s, rogue_clear, Restrictions(), {}).family_check is None
    rogue_alarm = traced("family-complicit", by="police")
    assert evolve(s, rogue_alarm, Restrictions(), {}).family_check == "family-complicit"


def test_only_the_agency_receiving_the_return_agrees_its_plan() -> None:
    s = returning_child(traced("family-cleared"))
    v = violation(s, prop("return.plan-agreed", "shelter", ["ca"], **AGREE))
    assert v.rule == "LIFECYCLE" and "cpart" in v.message


def test_an_adult_s_family_check_is_recorded_not_required() -> None:
    s = with_events(
        screened(),
        prop("risk.assessed", "ca", ["imm"], serious_risk=False, assessed_by_officer="o"),
        prop(
            "return.planning-started",
            "ca",
            ["cpart"],
            destination_country="XB",
            counterpart_agency="cpart",
        ),
    )
    assert apply(s, prop("return.plan-agreed", "cpart", ["ca"], **AGREE)).return_stage


def test_a_retaliation_finding_escalates_at_once_and_domestic_returns_are_monitored() -> None:
    s = with_events(
        screened(),
        prop("risk.assessed", "ca", ["imm"], serious_risk=False, assessed_by_officer="o"),
        prop(
            "return.planning-started",
            "ca",
            ["shelter"],
            destination_country="XA",
            counterpart_agency="shelter",
        ),
        prop("return.plan-agreed", "shelter", ["ca"], **AGREE),
        prop("return.completed", "ca", ["shelter"], voluntary=True, confirmed_by_officer="o"),
    )
    visit = prop(
        "reintegration.monitored", "shelter", ["ca"], visit_number=1, retaliation_risk=True
    )
    assert derive_deadlines(s, visit, XA)["retaliation-found"] == visit.time
    assert apply(s, visit).monitoring_visits == 1
    calm = replace(
        visit, event_id="e-calm", operational={**visit.operational, "retaliation_risk": False}
    )
    assert "retaliation-found" not in derive_deadlines(s, calm, XA)


# --- justice (R4) -----------------------------------------------------------------------------


JUSTICE = [
    ("cooperation.decided", {"recorded_by_officer": "le-1"}),
    ("witness-protection.decided", {"decided_by_officer": "le-1"}),
    ("proceedings.opened", {"proceedings_id": "p1", "recorded_by_officer": "le-1"}),
    ("non-punishment.decided", {"decided_by_officer": "le-1"}),
]


@pytest.mark.parametrize(("event_type", "op"), JUSTICE)
def test_justice_events_never_reach_the_origin_side_not_even_from_the_authority(
    event_type: str, op: dict[str, Any]
) -> None:
    s = screened()
    assert violation(s, prop(event_type, "le", ["consul"], **op)).rule == "R4"
    if event_type == "cooperation.decided":
        v = violation(s, prop(event_type, "ca", ["consul"], **op))
        assert v.rule == "R4" and "justice" in v.message
    at_consulate = replace(CaseState(pseudonym="case-test0001"), parties=frozenset({"le"}))
    assert refused(at_consulate, prop(event_type, "le", ["consul"], **op), "consul").rule == "R4"


def concluded() -> CaseState:
    return with_events(
        screened(),
        prop("proceedings.opened", "le", ["ca"], proceedings_id="p1", recorded_by_officer="l"),
        prop("proceedings.concluded", "le", ["ca"], proceedings_id="p1", recorded_by_officer="l"),
    )


def test_the_outcome_of_proceedings_opens_a_deadline_to_tell_the_person() -> None:
    s = with_events(
        screened(),
        prop("proceedings.opened", "le", ["ca"], proceedings_id="p1", recorded_by_officer="l"),
    )
    p = prop("proceedings.concluded", "le", ["ca"], proceedings_id="p1", recorded_by_officer="l")
    assert derive_deadlines(s, p, XA) == {
        "outcome-information": T0 + timedelta(days=XA.outcome_information_days)
    }
    assert violation(concluded(), p).rule == "LIFECYCLE"  # concluded once
    unknown = replace(p, event_id="e-x", operational={**p.operational, "proceedings_id": "p9"})
    assert violation(s, unknown).rule == "LIFECYCLE"


def told(sender: str, to: list[str], **op: Any) -> Proposal:
    fields = {"topic": "proceedings-outcome", "explained_by_officer": "x-1", **op}
    return prop("rights.explained", sender, to, **fields)


def test_telling_the_person_of_an_outcome_names_it_and_reaches_its_recorder() -> None:
    s = concluded()
    assert "names them" in violation(s, told("shelter", ["le"])).message
    v = violation(s, told("shelter", ["ca"], proceedings_id="p1"))
    assert v.rule == "LIFECYCLE" and "address le" in v.message
    assert apply(s, told("shelter", ["le"], proceedings_id="p1")).exists
    opened_only = with_events(
        screened(),
        prop("proceedings.opened", "le", ["ca"], proceedings_id="p1", recorded_by_officer="l"),
    )
    assert (
        "not concluded" in violation(opened_only, told("le", ["ca"], proceedings_id="p1")).message
    )
    rights = prop(
        "rights.explained",
        "police",
        ["ca"],
        topic="rights-and-assistance",
        explained_by_officer="p-1",
    )
    assert apply(screened(), rights).exists


# --- the person's voice -----------------------------------------------------------------------


def complaint(**op: Any) -> Proposal:
    fields = {
        "complaint_id": "c1",
        "kind": "complaint",
        "about_agency": "shelter",
        "recorded_by_officer": "p-1",
        **op,
    }
    return prop("complaint.lodged", "police", op.pop("to", ["shelter", "ca"]), **fields)


def answer(sender: str, to: list[str]) -> Proposal:
    return prop("complaint.answered", sender, to, complaint_id="c1", answered_by_officer="a-1")


def test_a_complaint_has_an_answer_deadline_feedback_none() -> None:
    s = referred()
    assert derive_deadlines(s, complaint(), XA) == {
        "complaint-answer": T0 + timedelta(days=XA.complaint_answer_days)
    }
    assert derive_deadlines(s, complaint(kind="feedback"), XA) == {}


def test_a_complaint_reaches_whom_it_is_about_and_its_answer_reaches_its_recorder() -> None:
    s = referred()
    v = violation(
        s,
        prop(
            "complaint.lodged",
            "police",
            ["ca"],
            complaint_id="c1",
            kind="complaint",
            about_agency="shelter",
            recorded_by_officer="p",
        ),
    )
    assert v.rule == "LIFECYCLE" and "must receive it" in v.message
    general = prop(
        "complaint.lodged",
        "police",
        ["shelter"],
        complaint_id="c1",
        kind="complaint",
        recorded_by_officer="p",
    )
    assert "competent authority" in violation(s, general).message
    s = apply(s, complaint())
    assert violation(s, answer("imm", ["police"])).rule == "LIFECYCLE"  # not its complaint
    v = violation(s, answer("shelter", ["ca"]))
    assert v.rule == "LIFECYCLE" and "address police" in v.message
    done = apply(s, answer("shelter", ["police"]))
    assert done.complaints["c1"].answered
    assert violation(done, answer("ca", ["police"])).rule == "LIFECYCLE"  # answered once
    assert apply(s, answer("ca", ["police"])).complaints["c1"].answered  # the authority may


# --- compensation and residence ----------------------------------------------------------------


def test_compensation_is_claimed_decided_then_paid_per_forum() -> None:
    s = screened()
    decided_ = prop(
        "compensation.decided", "ca", ["police"], forum="civil", recorded_by_officer="o"
    )
    paid = prop("compensation.paid", "ca", ["police"], forum="civil", recorded_by_officer="o")
    assert violation(s, decided_).rule == "LIFECYCLE"
    claimed = apply(s, prop("compensation.claimed", "ca", ["police"], forum="civil"))
    assert violation(claimed, paid).rule == "LIFECYCLE"
    again = prop("compensation.claimed", "ca", ["police"], forum="civil")
    assert "still undecided" in violation(claimed, again).message
    s = with_events(claimed, decided_, paid, replace(paid, event_id="e-second-instalment"))
    assert s.compensation == {"civil": "decided"}


def test_a_permit_has_a_renewal_deadline_and_ends() -> None:
    s = screened()
    grant = prop(
        "residence.granted", "imm", ["ca"], decided_by_officer="i", valid_until="2026-12-31"
    )
    due = derive_deadlines(s, grant, XA)["residence-renewal"]
    assert due.date() == date(2026, 12, 31) - timedelta(days=XA.residence_renewal_notice_days)
    inside = replace(grant, operational={**grant.operational, "valid_until": "2026-03-10"})
    assert derive_deadlines(s, inside, XA)["residence-renewal"] == T0  # due at once
    renew = prop(
        "residence.renewed", "imm", ["ca"], decided_by_officer="i", valid_until="2027-12-31"
    )
    end = prop(
        "residence.ended", "imm", ["ca"], reason_code="renewal-refused", decided_by_officer="i"
    )
    assert violation(s, renew).rule == "LIFECYCLE"
    active = apply(s, grant)
    assert violation(active, replace(grant, event_id="e-g2")).rule == "LIFECYCLE"
    assert with_events(active, renew, end).residence == "ended"


# --- re-trafficking -----------------------------------------------------------------------------


def link(earlier: str = "case-earlier01") -> Proposal:
    return prop(
        "case.linked",
        "ca",
        ["police"],
        earlier_case=earlier,
        linked_by_officer="c",
        legal_basis="same person",
    )


def test_a_new_case_links_to_an_earlier_closed_one_without_reopening_it() -> None:
    s = screened()
    earlier = replace(screened(), pseudonym="case-earlier01")
    v = violation_with(s, link(), None)
    assert v.rule == "LIFECYCLE" and "holds nothing" in v.message
    assert "not closed" in violation_with(s, link(), earlier).message
    closed = replace(earlier, closed=True)
    check_send(s, link(), XA, earlier_case=closed)
    linked = evolve(s, link(), Restrictions(), {})
    assert linked.linked_to == {"case-earlier01"}
    assert closed.closed and not closed.erased  # nothing of the earlier case changed
    erased = replace(earlier, erased=True)
    check_send(s, link(), XA, earlier_case=erased)  # linked, not un-erased
    assert "already linked" in violation_with(linked, link(), closed).message
    assert "itself" in violation_with(s, link(s.pseudonym), closed).message
    assert (
        violation_with(
            s,
            replace(link(), sender="police", sender_roles=frozenset({Role.FIRST_RESPONDER})),
            closed,
        ).rule
        == "ROLE"
    )


def violation_with(state: CaseState, p: Proposal, earlier: CaseState | None) -> RuleViolation:
    with pytest.raises(RuleViolation) as info:
        check_send(state, p, XA, earlier_case=earlier)
    return info.value


# --- receivers recompute the new deadlines --------------------------------------------------


def test_a_receiver_refuses_a_decline_whose_re_referral_deadline_is_not_its_policy_s() -> None:
    s = referred()
    p = prop(
        "referral.declined",
        "shelter",
        ["police"],
        referral_id="r1",
        reason_code="capacity",
        answered_by_officer="sh-1",
    )
    late = {"re-referral": T0 + timedelta(days=30)}
    v = refused(s, p, "police", deadlines=late)
    assert v.rule == "R8" and "re-referral" in v.message
    assert refused(s, p, "police", deadlines={}).rule == "R8"
