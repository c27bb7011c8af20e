"""A receiving node on its own: authority, parties, provenance, deadlines, R4, time.

Pure rules, against a receiver's partial view of a case; each refusal names its rule.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from contracts.restrictions import Restrictions
from contracts.vocabulary import Role
from referral_router.rules.admission import (
    Receiver,
    check_arrival,
    check_deadlines,
    check_receive,
)
from referral_router.rules.lifecycle import (
    CaseState,
    Proposal,
    RuleViolation,
    check_send,
    derive_deadlines,
    evolve,
)
from tests.router.test_lifecycle import ROLES, T0, XA, XB, apply, prop, screened

ROLES.update(
    {
        "rapp": Role.OVERSIGHT,
        "gw": Role.COUNTERPART,
        "stranger": Role.FIRST_RESPONDER,
        "imm2": Role.IMMIGRATION,
    }
)


def node(agency: str, policy: Any = XA) -> Receiver:
    return Receiver(agency, frozenset({ROLES[agency]}), policy)


def receive(state: CaseState, p: Proposal, me: str, **kw: Any) -> CaseState:
    """What a receiver does: check, then record with the deadlines it computed."""
    claimed = kw.pop("deadlines", None)
    if claimed is None:
        claimed = derive_deadlines(state, p, XA)
    deadlines = check_receive(state, p, node(me), claimed, **kw)
    return evolve(state, p, p.restrictions, deadlines)


def refused(state: CaseState, p: Proposal, me: str, **kw: Any) -> RuleViolation:
    with pytest.raises(RuleViolation) as info:
        receive(state, p, me, **kw)
    return info.value


def at_authority() -> CaseState:
    """The competent authority's view: screened by police, copied to immigration."""
    s = CaseState(pseudonym="case-test0001")
    p = prop(
        "case.screened",
        "police",
        ["ca", "imm"],
        age_status="adult",
        forms_of_exploitation=["forced-labour"],
    )
    return receive(s, p, "ca")


# --- authority (ROLE) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "sender", "op"),
    [
        ("case.closed", "police", {"reason_code": "other"}),
        ("risk.assessed", "police", {"serious_risk": False, "assessed_by_officer": "o"}),
        ("identification.decided", "imm", {"stage": "reasonable-grounds"}),
        ("guardian.appointed", "shelter", {"guardian_agency": "shelter"}),
        ("asylum.lodged", "police", {}),
    ],
)
def test_receiver_refuses_an_event_its_sender_may_not_emit(
    event_type: str, sender: str, op: dict[str, Any]
) -> None:
    s = at_authority()
    s = replace(s, parties=s.parties | {"shelter"})
    p = prop(event_type, sender, ["ca"], decided_by_officer="o", **op)
    assert refused(s, p, "ca").rule == "ROLE"


def test_rapporteur_risk_assessment_is_refused_and_satisfies_nothing() -> None:
    s = at_authority()
    s = replace(s, parties=s.parties | {"rapp"})
    p = prop("risk.assessed", "rapp", ["ca"], serious_risk=False, assessed_by_officer="o")
    assert refused(s, p, "ca").rule == "ROLE"
    planning = prop(
        "return.planning-started", "ca", ["gw"], destination_country="XB", counterpart_agency="gw"
    )
    with pytest.raises(RuleViolation) as info:
        check_send(s, planning, XA)
    assert info.value.rule == "R4"


# --- provenance of flags ------------------------------------------------------------------


def test_relaxing_flags_count_only_from_those_who_may_establish_them() -> None:
    s = at_authority()
    claim = Restrictions(guardian_appointed=True, best_interests_determined=True)
    p = replace(
        prop("reflection.started", "imm", ["ca"], decided_by_officer="o"),
        restrictions=claim,
    )
    s2 = receive(s, p, "ca", deadlines=derive_deadlines(s, p, XA))
    assert not s2.restrictions.guardian_appointed and not s2.restrictions.best_interests_determined
    s3 = evolve(
        s,
        replace(prop("consent.withdrawn", "cp", ["ca"], consent_id="x"), restrictions=claim),
        claim,
        {},
    )
    assert s3.restrictions.guardian_appointed and s3.restrictions.best_interests_determined


def test_protective_flags_count_from_anyone() -> None:
    s = at_authority()
    claim = Restrictions(presumed_child=True, no_origin_contact=True)
    p = replace(
        prop("services.delivered", "police", ["ca"], referral_id="r", service="shelter"),
        restrictions=claim,
    )
    s2 = receive(s, p, "ca")
    assert s2.restrictions.child_safeguards and s2.restrictions.no_origin_contact


def test_an_unauthorised_event_already_stored_relaxes_nothing() -> None:
    """A view rebuilt from events recorded before the table (or by a careless node):
    only the protections of an unauthorised event count."""
    s = at_authority()
    no_risk = prop("risk.assessed", "police", ["ca"], serious_risk=False, assessed_by_officer="o")
    assert not evolve(s, no_risk, no_risk.restrictions, {}).risk_assessed
    risk = prop("risk.assessed", "police", ["ca"], serious_risk=True, assessed_by_officer="o")
    after_risk = evolve(s, risk, risk.restrictions, {})
    assert after_risk.restrictions.no_origin_contact and not after_risk.risk_assessed
    guardian = prop("guardian.appointed", "shelter", ["ca"], guardian_agency="shelter")
    after = evolve(s, guardian, Restrictions(guardian_appointed=True), {})
    assert not after.restrictions.guardian_appointed and "shelter" not in after.parties
    closing = evolve(
        s,
        prop("case.closed", "police", ["ca"], reason_code="other", decided_by_officer="ca-1"),
        Restrictions(),
        {},
    )
    assert not closing.closed


# --- parties (R6) -----------------------------------------------------------------------


def test_an_agency_never_party_to_the_case_cannot_add_to_it() -> None:
    s = at_authority()
    p = prop("reflection.started", "imm2", ["ca"], decided_by_officer="o")
    v = refused(s, p, "ca")
    assert v.rule == "R6" and "takes no part" in v.message
    # the reception path names this node as the one the envelope reached: still refused
    assert refused(s, p, "ca", received_by="ca").rule == "R6"
    order = prop("case.erasure-ordered", "ca", ["imm"], legal_basis="court-order")
    assert refused(s, order, "police", received_by="police").rule == "R6"  # not addressed


def test_parties_are_senders_co_recipients_and_named_agencies() -> None:
    s = at_authority()
    assert s.parties == {"police", "ca", "imm"}
    reflection = prop("reflection.started", "imm", ["ca"], decided_by_officer="o")
    s = receive(s, reflection, "ca")  # a co-recipient of the screening
    ref = prop(
        "referral.requested",
        "police",
        ["ca"],
        referral_id="r1",
        to_agency="shelter",
        service="shelter",
        consent_override={"legal_basis": "x"},
    )
    s = receive(s, ref, "ca")
    assert "shelter" in s.parties  # named by the referral it knows
    answer = prop("referral.accepted", "shelter", ["ca"], referral_id="r1")
    assert receive(s, answer, "ca").referrals["r1"].status == "accepted"


def test_a_referral_to_this_node_brings_its_sender_in() -> None:
    s = at_authority()
    to_me = prop(
        "referral.requested",
        "cp",
        ["ca"],
        referral_id="r2",
        to_agency="ca",
        service="identification",
    )
    assert "cp" in receive(s, to_me, "ca").parties
    to_other = prop(
        "referral.requested",
        "cp",
        ["ca", "shelter"],
        referral_id="r3",
        to_agency="shelter",
        service="shelter",
    )
    assert refused(s, to_other, "ca").rule == "R6"


def test_escalations_and_erasure_orders_reach_the_authority_from_anywhere() -> None:
    s = receive(
        CaseState(pseudonym="case-test0001"),
        prop(
            "case.screened",
            "police",
            ["shelter"],
            age_status="adult",
            forms_of_exploitation=["forced-labour"],
        ),
        "shelter",
    )
    escalation = prop(
        "case.escalated",
        "cp",
        ["shelter"],
        deadline="referral-answer",
        about_event_id="e1",
        due=T0.isoformat(),
    )
    assert receive(s, escalation, "shelter").exists
    erasure = prop(
        "case.erasure-ordered",
        "ca",
        ["shelter"],
        legal_basis="erasure-request",
        ordered_by_officer="o",
    )
    assert receive(s, erasure, "shelter").erased


def test_the_first_event_opens_a_case_but_a_closing_order_cannot() -> None:
    empty = CaseState(pseudonym="case-test0002")
    opened = receive(empty, prop("reflection.started", "imm", ["ca"], decided_by_officer="o"), "ca")
    assert opened.parties == {"imm", "ca"}
    for p in (
        prop("case.closed", "ca", ["imm"], reason_code="other", decided_by_officer="ca-1"),
        prop(
            "case.erasure-ordered",
            "ca",
            ["imm"],
            legal_basis="erasure-request",
            ordered_by_officer="o",
        ),
    ):
        v = refused(empty, p, "imm")
        assert v.rule == "R6" and "cannot open" in v.message


def test_an_erased_case_refuses_everything_with_erased() -> None:
    s = at_authority()
    order = prop(
        "case.erasure-ordered",
        "police",
        ["ca"],
        legal_basis="erasure-request",
        ordered_by_officer="o",
    )
    assert refused(s, order, "ca").rule == "ROLE"
    s = receive(s, replace(order, sender="ca2", sender_roles=frozenset({ROLES["ca"]})), "ca")
    assert s.erased
    p = prop("reflection.started", "imm", ["ca"], decided_by_officer="o")
    assert refused(s, p, "ca").rule == "ERASED"


# --- R4 whoever sends, in whatever order ------------------------------------------------


def test_only_the_competent_authority_addresses_the_country_of_origin() -> None:
    s = at_authority()
    for sender in ("police", "imm"):
        p = prop(
            "reflection.started" if sender == "imm" else "services.delivered",
            sender,
            ["consul"],
            decided_by_officer="o",
            referral_id="r",
            service="shelter",
        )
        with pytest.raises(RuleViolation) as info:
            check_send(s, p, XA)
        assert info.value.rule == "R4"
        assert "only the competent authority" in info.value.message
    ok = prop("risk.assessed", "ca", ["consul"], serious_risk=False, assessed_by_officer="o")
    check_send(s, ok, XA)


def test_the_origin_side_may_talk_among_itself() -> None:
    s = replace(at_authority(), parties=frozenset({"cpart", "gw"}))
    agreed = prop("return.plan-agreed", "cpart", ["gw"], agreed_by_officer="o")
    gateway = Receiver("gw", frozenset({Role.COUNTERPART}), XB)
    check_receive(s, agreed, gateway, {})


def test_an_asylum_claim_must_reach_every_origin_contact() -> None:
    s = at_authority()
    p = prop("asylum.lodged", "asy", ["imm"])
    with pytest.raises(RuleViolation) as info:
        check_send(s, p, XA, origin_contacts={"ca"})
    assert info.value.rule == "R4" and "add ca" in info.value.message
    check_send(s, prop("asylum.lodged", "asy", ["imm", "ca"]), XA, origin_contacts={"ca"})


def test_a_party_never_told_of_the_asylum_claim_cannot_reach_the_consulate() -> None:
    """Police never heard of the claim; its own view says nothing of asylum. Still,
    neither its node (honest) nor the consulate's (if police's node skips its checks)
    lets return planning through: only the authority, which was told, may address the
    country of origin."""
    police_view = apply(
        screened(),
        prop("risk.assessed", "ca", ["police"], serious_risk=False, assessed_by_officer="o"),
    )
    assert not police_view.restrictions.no_origin_contact
    plan = prop(
        "return.planning-started",
        "police",
        ["consul"],
        destination_country="XB",
        counterpart_agency="consul",
    )
    with pytest.raises(RuleViolation) as sent:
        check_send(police_view, plan, XA)
    assert sent.value.rule in {"ROLE", "R4"}
    consulate_view = CaseState(pseudonym="case-test0001")
    assert refused(consulate_view, plan, "consul", deadlines={}).rule in {"ROLE", "R4"}
    info = prop("services.delivered", "police", ["consul"], referral_id="r", service="shelter")
    assert refused(consulate_view, info, "consul", deadlines={}).rule == "R4"


def test_the_consulate_refuses_an_envelope_flagged_asylum() -> None:
    p = replace(
        prop("risk.assessed", "ca", ["consul"], serious_risk=False, assessed_by_officer="o"),
        restrictions=Restrictions(no_origin_contact=True),
    )
    v = refused(CaseState(pseudonym="case-test0001"), p, "consul", deadlines={})
    assert v.rule == "R4" and "no contact with the country of origin" in v.message


def test_the_origin_side_refuses_a_justice_event_passed_on_to_it() -> None:
    """R4: proceedings never reach the country of origin's side, even passed on by their
    own sender (who may pass on other events of the case to the consulate)."""
    known = CaseState(
        pseudonym="case-test0001", event_ids=frozenset({"e0"}), parties=frozenset({"police"})
    )
    opened = replace(
        prop("proceedings.opened", "police", ["ca"], proceedings_id="p-1"),
        sender_roles=frozenset({Role.LAW_ENFORCEMENT}),
    )
    v = refused(known, opened, "consul", deadlines={}, received_by="police")
    assert v.rule == "R4" and "justice event" in v.message
    receive(known, opened, "ca", deadlines={})  # this side takes it


def test_out_of_order_the_origin_side_remembers_what_it_refused() -> None:
    """The flagged envelope arrives first and is refused; a later, unflagged one of the
    same case (sent before its sender knew) is refused too."""
    empty = CaseState(pseudonym="case-test0001")
    late = prop("risk.assessed", "ca", ["gw"], serious_risk=False, assessed_by_officer="o")
    v = refused(empty, late, "gw", deadlines={}, origin_barred=True)
    assert v.rule == "R4" and "takes nothing more" in v.message
    accepted = receive(empty, late, "gw", deadlines={})  # unknown asylum: nothing to refuse
    later = prop(
        "return.planning-started",
        "ca",
        ["gw"],
        destination_country="XB",
        counterpart_agency="cpart",
    )
    assert refused(accepted, later, "gw", deadlines={}, origin_barred=True).rule == "R4"


def test_domestic_nodes_still_take_the_asylum_flag() -> None:
    s = at_authority()
    p = prop("asylum.lodged", "asy", ["ca", "imm"])
    s = replace(s, parties=s.parties | {"asy"})
    assert receive(s, p, "ca").restrictions.no_origin_contact


# --- deadlines --------------------------------------------------------------------------


def _referral_to_ca(**op: Any) -> Proposal:
    return prop(
        "referral.requested",
        "police",
        ["ca"],
        referral_id="r9",
        to_agency="ca",
        service="identification",
        **op,
    )


def test_a_pushed_deadline_is_refused_with_the_rule_it_serves() -> None:
    s = at_authority()
    p = _referral_to_ca(urgent=True)
    honest = derive_deadlines(s, p, XA)
    pushed = {"referral-answer": honest["referral-answer"] + timedelta(days=30)}
    v = refused(s, p, "ca", deadlines=pushed)
    assert v.rule == "R8" and "referral-answer" in v.message
    assert check_deadlines(s, p, XA, honest) == honest


def test_a_shortened_reflection_is_refused_under_r3() -> None:
    s = at_authority()
    p = prop("reflection.started", "imm", ["ca"], decided_by_officer="o")
    honest = derive_deadlines(s, p, XA)
    short = {**honest, "reflection-ends": honest["reflection-ends"] - timedelta(days=20)}
    assert refused(s, p, "ca", deadlines=short).rule == "R3"


def test_missing_extra_and_uncheckable_deadlines_are_refused() -> None:
    s = at_authority()
    p = _referral_to_ca()
    assert refused(s, p, "ca", deadlines={}).rule == "R8"
    extra = {**derive_deadlines(s, p, XA), "made-up": T0}
    assert refused(s, p, "ca", deadlines=extra).rule == "POLICY"
    extension = prop("reflection.extended", "imm", ["ca"], extra_days=10, decided_by_officer="o")
    made_up = {"reflection-ends": T0 + timedelta(days=200)}
    v = refused(s, extension, "ca", deadlines=made_up)
    assert v.rule == "R3" and "cannot be checked" in v.message


def test_deadlines_of_another_country_are_not_recomputed() -> None:
    s = CaseState(pseudonym="case-test0001")
    p = prop("return.completed", "ca", ["gw"], confirmed_by_officer="ca-1", voluntary=True)
    theirs = derive_deadlines(s, p, XA)
    foreign = Receiver("gw", frozenset({Role.COUNTERPART}), None)
    assert check_receive(s, p, foreign, theirs, received_by="gw") == theirs


# --- time -------------------------------------------------------------------------------


def test_an_envelope_may_not_claim_a_time_after_its_arrival() -> None:
    check_arrival(T0, T0)
    check_arrival(T0 + timedelta(seconds=90), T0)  # within the clock skew
    check_arrival(T0 - timedelta(days=3), T0)  # sent long ago, delivered now
    with pytest.raises(RuleViolation) as info:
        check_arrival(T0 + timedelta(hours=1), T0)
    assert info.value.rule == "TIME"


def test_a_decline_for_migration_status_is_refused_by_the_receiver_too() -> None:
    screening = prop(
        "case.screened",
        "ca",
        ["police"],
        age_status="adult",
        forms_of_exploitation=["forced-labour"],
    )
    police = receive(CaseState(pseudonym="case-test0001"), screening, "police")
    p = prop(
        "referral.declined",
        "ca",
        ["police"],
        referral_id="r9",
        reason_code="migration-status",
        answered_by_officer="ia-1",
    )
    assert refused(police, p, "police").rule == "R1"
