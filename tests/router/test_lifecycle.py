"""Rules R1-R4 and R9, lifecycle order and policy deadlines: each accepted and rejected."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.policy import load_policy
from contracts.restrictions import Restrictions
from contracts.vocabulary import Role
from referral_router.rules.admission import Receiver, check_receive
from referral_router.rules.lifecycle import (
    CaseState,
    Proposal,
    RuleViolation,
    UnknownCase,
    check_send,
    derive_deadlines,
    derive_restrictions,
    evolve,
)

XA = load_policy("XA")
XB = load_policy("XB")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ROLES: dict[str, Role] = {
    "police": Role.FIRST_RESPONDER,
    "ca": Role.COMPETENT_AUTHORITY,
    "shelter": Role.SERVICE_PROVIDER,
    "cp": Role.CHILD_PROTECTION,
    "imm": Role.IMMIGRATION,
    "asy": Role.ASYLUM,
    "consul": Role.CONSULATE,
    "cpart": Role.COUNTERPART,
}
_ids = count(1)


def prop(
    event_type: str,
    sender: str,
    to: list[str],
    /,
    *,
    at: datetime = T0,
    **operational: Any,
) -> Proposal:
    """An event as the rules see it. Facts that travel sealed (a serious risk, a
    best-interests finding) are not in the clear part: like the sender's node
    (`contracts.restrictions.set_by`), they become the restrictions they set."""
    restrictions = Restrictions()
    if operational.pop("serious_risk", False):
        restrictions = Restrictions(no_origin_contact=True)
    if operational.pop("return_in_best_interests", True) is False:
        restrictions = Restrictions(no_return=True)
    return Proposal(
        event_id=f"e{next(_ids)}",
        event_type=event_type,
        sender=sender,
        sender_roles=frozenset({ROLES[sender]}),
        recipients={r: frozenset({ROLES[r]}) for r in to},
        time=at,
        operational=operational,
        restrictions=restrictions,
    )


def apply(state: CaseState, p: Proposal, policy: Any = XA) -> CaseState:
    check_send(state, p, policy)
    return evolve(state, p, derive_restrictions(state, p), derive_deadlines(state, p, policy))


def screened(age: str = "adult", recipients: list[str] | None = None) -> CaseState:
    rec = recipients or (["ca", "cp"] if age != "adult" else ["ca"])
    p = prop(
        "case.screened", "police", rec, age_status=age, forms_of_exploitation=["forced-labour"]
    )
    return apply(CaseState(pseudonym="case-test0001"), p)


def with_events(state: CaseState, *ps: Proposal) -> CaseState:
    for p in ps:
        state = apply(state, p)
    return state


def violation(state: CaseState, p: Proposal, policy: Any = XA) -> RuleViolation:
    with pytest.raises(RuleViolation) as info:
        check_send(state, p, policy)
    return info.value


# --- R1 presumption ---------------------------------------------------------------------


def test_r1_screening_accepted_whatever_status_and_presumed_victim() -> None:
    s = screened("adult")
    assert s.screened and s.originator == "police"


@pytest.mark.parametrize("reason", ["migration-status", "no-cooperation"])
def test_r1_assistance_cannot_be_declined_for_status_or_cooperation(reason: str) -> None:
    s = with_events(
        screened(),
        prop(
            "referral.requested",
            "police",
            ["shelter"],
            referral_id="r1",
            to_agency="shelter",
            service="shelter",
            consent_override={"legal_basis": "public-task"},
        ),
    )
    v = violation(
        s,
        prop(
            "referral.declined",
            "shelter",
            ["police"],
            referral_id="r1",
            reason_code=reason,
            answered_by_officer="sh-1",
        ),
    )
    assert v.rule == "R1"


def test_r1_decline_for_capacity_is_allowed() -> None:
    s = with_events(
        screened(),
        prop(
            "referral.requested",
            "police",
            ["shelter"],
            referral_id="r1",
            to_agency="shelter",
            service="shelter",
            consent_override={"legal_basis": "public-task"},
        ),
        prop(
            "referral.declined",
            "shelter",
            ["police"],
            referral_id="r1",
            reason_code="capacity",
            answered_by_officer="sh-1",
        ),
    )
    assert s.referrals["r1"].status == "declined"


# --- R2 children ------------------------------------------------------------------------


@pytest.mark.parametrize("age", ["child", "unknown", "disputed"])
def test_r2_presumed_child_must_go_to_child_protection(age: str) -> None:
    p = prop(
        "case.screened", "police", ["ca"], age_status=age, forms_of_exploitation=["forced-labour"]
    )
    assert violation(CaseState(pseudonym="case-x0000001"), p).rule == "R2"
    ok = screened(age, ["ca", "cp"])
    assert ok.restrictions.child_safeguards


def _child_ready_for_return(guardian: bool, bid: bool) -> CaseState:
    s = screened("unknown")
    if guardian:
        s = apply(
            s,
            prop("guardian.appointed", "cp", ["ca"], guardian_agency="cp", decided_by_officer="o"),
        )
    if bid:
        s = apply(
            s,
            prop(
                "best-interests.determined",
                "cp",
                ["ca"],
                decided_by_officer="o",
                return_in_best_interests=True,
            ),
        )
    return apply(
        s, prop("risk.assessed", "ca", ["cp"], serious_risk=False, assessed_by_officer="o")
    )


@pytest.mark.parametrize(("guardian", "bid"), [(False, False), (True, False), (False, True)])
def test_r2_no_return_for_child_without_guardian_and_bid(guardian: bool, bid: bool) -> None:
    s = _child_ready_for_return(guardian, bid)
    p = prop(
        "return.planning-started",
        "ca",
        ["cpart"],
        destination_country="XB",
        counterpart_agency="cpart",
    )
    assert violation(s, p).rule == "R2"


def test_r2_return_planned_for_child_with_guardian_and_bid() -> None:
    s = _child_ready_for_return(True, True)
    s = apply(
        s,
        prop(
            "return.planning-started",
            "ca",
            ["cpart"],
            destination_country="XB",
            counterpart_agency="cpart",
        ),
    )
    assert s.return_stage == "planning"


def test_r2_bid_against_return_blocks_it() -> None:
    s = screened("child")
    s = with_events(
        s,
        prop("guardian.appointed", "cp", ["ca"], guardian_agency="cp", decided_by_officer="o"),
        prop(
            "best-interests.determined",
            "cp",
            ["ca"],
            decided_by_officer="o",
            return_in_best_interests=False,
        ),
        prop("risk.assessed", "ca", ["cp"], serious_risk=False, assessed_by_officer="o"),
    )
    p = prop(
        "return.planning-started",
        "ca",
        ["cpart"],
        destination_country="XB",
        counterpart_agency="cpart",
    )
    assert violation(s, p).rule == "R2"


# --- R3 reflection ----------------------------------------------------------------------


def _returning_in_reflection(voluntary_consent: bool) -> CaseState:
    s = with_events(
        screened(),
        prop("reflection.started", "imm", ["ca"], decided_by_officer="o"),
        prop(
            "consent.recorded",
            "ca",
            ["imm"],
            consent_id="c1",
            recipients=["cpart"],
            categories=["identity"],
            voluntary_return=voluntary_consent,
            recorded_by_officer="o",
        ),
        prop("risk.assessed", "ca", ["imm"], serious_risk=False, assessed_by_officer="o"),
        prop(
            "return.planning-started",
            "ca",
            ["cpart"],
            destination_country="XB",
            counterpart_agency="cpart",
        ),
        prop("return.plan-agreed", "cpart", ["ca"], agreed_by_officer="o"),
    )
    return s


def test_r3_no_return_during_reflection() -> None:
    s = _returning_in_reflection(voluntary_consent=False)
    p = prop(
        "return.completed",
        "ca",
        ["cpart"],
        at=T0 + timedelta(days=3),
        voluntary=False,
        confirmed_by_officer="ca-1",
    )
    assert violation(s, p).rule == "R3"
    p2 = prop(
        "return.completed",
        "ca",
        ["cpart"],
        at=T0 + timedelta(days=3),
        voluntary=True,
        consent_id="c1",
        confirmed_by_officer="ca-1",
    )
    assert violation(s, p2).rule == "R3"  # consent exists but is not a voluntary-return consent


def test_r3_voluntary_return_with_recorded_consent_is_allowed() -> None:
    s = _returning_in_reflection(voluntary_consent=True)
    s = apply(
        s,
        prop(
            "return.completed",
            "ca",
            ["cpart"],
            at=T0 + timedelta(days=3),
            voluntary=True,
            consent_id="c1",
            confirmed_by_officer="ca-1",
        ),
    )
    assert s.return_stage == "completed"


def test_r3_return_after_reflection_ends_is_allowed() -> None:
    s = _returning_in_reflection(voluntary_consent=False)
    after = T0 + timedelta(days=XA.reflection_days + 1)
    s = apply(
        s,
        prop(
            "return.completed",
            "ca",
            ["cpart"],
            at=after,
            confirmed_by_officer="ca-1",
            voluntary=False,
        ),
    )
    assert s.return_stage == "completed"


# --- R4 asylum and non-refoulement ------------------------------------------------------


def test_r4_nothing_to_consulate_after_asylum() -> None:
    s = apply(screened(), prop("asylum.lodged", "asy", ["imm"]))
    v = violation(
        s,
        prop("risk.assessed", "ca", ["imm", "consul"], serious_risk=False, assessed_by_officer="o"),
    )
    assert v.rule == "R4" and "consul" in v.message
    with pytest.raises(RuleViolation, match="R4"):
        check_send(screened(), prop("asylum.lodged", "asy", ["consul"]), XA)


def test_r4_consulate_allowed_before_asylum() -> None:
    s = apply(
        screened(),
        prop("risk.assessed", "ca", ["consul"], serious_risk=False, assessed_by_officer="o"),
    )
    assert s.risk_assessed and not s.restrictions.no_origin_contact


@pytest.mark.parametrize("risk", [None, True])
def test_r4_return_needs_no_serious_risk(risk: bool | None) -> None:
    s = screened()
    if risk is not None:
        s = apply(
            s, prop("risk.assessed", "ca", ["imm"], serious_risk=risk, assessed_by_officer="o")
        )
    p = prop(
        "return.planning-started",
        "ca",
        ["cpart"],
        destination_country="XB",
        counterpart_agency="cpart",
    )
    assert violation(s, p).rule == "R4"


def test_r4_receiver_refuses_consulate_delivery_of_asylum_case() -> None:
    s = apply(screened(), prop("asylum.lodged", "asy", ["imm", "ca"]))
    consulate = Receiver("consul", frozenset({Role.CONSULATE}))
    with pytest.raises(RuleViolation, match="R4"):
        check_receive(
            s,
            prop("case.closed", "ca", ["consul"], reason_code="other", decided_by_officer="ca-1"),
            consulate,
            {},
        )


# --- R9 consent -------------------------------------------------------------------------


def _referral(**extra: Any) -> Proposal:
    return prop(
        "referral.requested",
        "police",
        ["shelter"],
        referral_id="r1",
        to_agency="shelter",
        service="shelter",
        **extra,
    )


def test_r9_referral_without_consent_or_override_is_refused() -> None:
    assert violation(screened(), _referral()).rule == "R9"


def test_r9_consent_must_cover_the_recipient_and_be_active() -> None:
    s = apply(
        screened(),
        prop(
            "consent.recorded",
            "police",
            ["ca"],
            consent_id="c1",
            recipients=["cp"],
            categories=["identity"],
            recorded_by_officer="o",
        ),
    )
    assert violation(s, _referral(consent_id="c1")).rule == "R9"
    assert violation(s, _referral(consent_id="nope")).rule == "R9"
    s2 = apply(
        screened(),
        prop(
            "consent.recorded",
            "police",
            ["ca"],
            consent_id="c1",
            recipients=["shelter"],
            categories=["identity"],
            recorded_by_officer="o",
        ),
    )
    ok = apply(s2, _referral(consent_id="c1"))
    assert ok.referrals["r1"].to_agency == "shelter"
    withdrawn = apply(s2, prop("consent.withdrawn", "police", ["ca"], consent_id="c1"))
    assert "withdrawn" in violation(withdrawn, _referral(consent_id="c1")).message


def test_r9_override_with_legal_basis_is_accepted() -> None:
    s = apply(
        screened(),
        _referral(
            consent_override={
                "legal_basis": "child-protection",
                "authorised_by_officer": "o",
            }
        ),
    )
    assert "r1" in s.referrals


# --- lifecycle order, roles and policy --------------------------------------------------


def test_unknown_case_and_double_screening() -> None:
    with pytest.raises(UnknownCase):
        check_send(CaseState(pseudonym="case-none0001"), _referral(), XA)
    s = screened()
    p = prop(
        "case.screened",
        "police",
        ["ca"],
        age_status="adult",
        forms_of_exploitation=["forced-labour"],
    )
    assert violation(s, p).rule == "LIFECYCLE"


def test_only_the_asked_agency_answers_once() -> None:
    s = apply(screened(), _referral(consent_override={"legal_basis": "public-task"}))
    assert (
        violation(s, prop("referral.accepted", "cp", ["police"], referral_id="r1")).rule
        == "LIFECYCLE"
    )
    s = apply(s, prop("referral.accepted", "shelter", ["police"], referral_id="r1"))
    assert (
        violation(s, prop("referral.accepted", "shelter", ["police"], referral_id="r1")).rule
        == "LIFECYCLE"
    )


def test_role_rule_names_the_allowed_roles() -> None:
    v = violation(
        screened(),
        prop(
            "identification.decided",
            "police",
            ["ca"],
            stage="reasonable-grounds",
            decided_by_officer="o",
        ),
    )
    assert v.rule == "ROLE" and "competent-authority" in v.message


def test_conclusive_needs_reasonable_grounds_first() -> None:
    p = prop("identification.decided", "ca", ["police"], stage="conclusive", decided_by_officer="o")
    assert violation(screened(), p).rule == "LIFECYCLE"


def test_closed_case_accepts_only_erasure_and_erased_case_nothing() -> None:
    s = apply(
        screened(),
        prop("case.closed", "ca", ["police"], reason_code="integrated", decided_by_officer="ca-1"),
    )
    assert violation(s, prop("asylum.lodged", "asy", ["imm"])).rule == "LIFECYCLE"
    s = apply(
        s,
        prop(
            "case.erasure-ordered",
            "ca",
            ["police"],
            legal_basis="erasure-request",
            ordered_by_officer="o",
        ),
    )
    assert s.erased
    assert (
        violation(
            s, prop("case.closed", "ca", ["police"], reason_code="other", decided_by_officer="ca-1")
        ).rule
        == "ERASED"
    )


@pytest.mark.parametrize(("policy", "days"), [(XA, 30), (XB, 45)])
def test_reflection_length_comes_from_the_country_policy(policy: Any, days: int) -> None:
    s = apply(screened(), prop("reflection.started", "imm", ["ca"], decided_by_officer="o"), policy)
    assert s.reflection is not None and s.reflection.ends == T0 + timedelta(days=days)


def test_reflection_extension_bounded_by_policy_maximum() -> None:
    s = apply(screened(), prop("reflection.started", "imm", ["ca"], decided_by_officer="o"))
    s = apply(s, prop("reflection.extended", "imm", ["ca"], extra_days=30, decided_by_officer="o"))
    assert s.reflection is not None and s.reflection.ends == T0 + timedelta(days=60)
    p = prop("reflection.extended", "imm", ["ca"], extra_days=31, decided_by_officer="o")
    assert violation(s, p).rule == "POLICY"


def test_referral_answer_deadline_from_policy() -> None:
    s = screened()
    p = _referral(consent_override={"legal_basis": "x"}, urgent=True)
    due = derive_deadlines(s, p, XA)["referral-answer"]
    assert due == T0 + timedelta(hours=XA.urgent_referral_answer_hours)
    assert derive_deadlines(s, _referral(), XB)["referral-answer"] == T0 + timedelta(hours=72)


def test_receiver_must_be_a_recipient() -> None:
    with pytest.raises(RuleViolation, match="R6"):
        check_receive(
            CaseState(), _referral(), Receiver("cp", frozenset({Role.CHILD_PROTECTION})), {}
        )


# --- properties -------------------------------------------------------------------------

EVENTS: list[tuple[str, str, Mapping[str, Any]]] = [
    ("asylum.lodged", "asy", {}),
    ("guardian.appointed", "cp", {"guardian_agency": "cp", "decided_by_officer": "o"}),
    (
        "best-interests.determined",
        "cp",
        {"decided_by_officer": "o", "return_in_best_interests": True},
    ),
    ("risk.assessed", "ca", {"serious_risk": False, "assessed_by_officer": "o"}),
    ("risk.assessed", "ca", {"serious_risk": True, "assessed_by_officer": "o"}),
    ("reflection.started", "imm", {"decided_by_officer": "o"}),
    ("reflection.ended", "imm", {"reason_code": "other", "decided_by_officer": "im-1"}),
    ("return.planning-started", "ca", {"destination_country": "XB", "counterpart_agency": "cpart"}),
    ("return.plan-agreed", "cpart", {"agreed_by_officer": "o"}),
    ("return.completed", "ca", {"voluntary": False, "confirmed_by_officer": "ca-1"}),
    ("case.closed", "ca", {"reason_code": "other", "decided_by_officer": "ca-1"}),
]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["adult", "child"]), st.lists(st.sampled_from(range(len(EVENTS))), max_size=12)
)
def test_any_sequence_either_applies_or_names_a_rule(age: str, picks: list[int]) -> None:
    """Random command sequences: every refusal names a rule, flags never turn off."""
    s = screened(age)
    for i in picks:
        etype, sender, op = EVENTS[i]
        p = prop(etype, sender, ["ca", "cp"] if sender != "ca" else ["cp"], **op)
        before = s.restrictions
        try:
            s = apply(s, p)
        except RuleViolation as v:
            assert v.rule in {"R2", "R3", "R4", "LIFECYCLE", "ROLE", "POLICY"}
            continue
        assert all(
            getattr(s.restrictions, f) >= getattr(before, f) for f in type(before).model_fields
        )
        if etype == "return.planning-started" and s.restrictions.child_safeguards:
            assert s.restrictions.guardian_appointed and s.restrictions.best_interests_determined
