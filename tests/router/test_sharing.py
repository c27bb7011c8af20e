"""R9 for every event: consent persists per recipient, the strictest role's bar wins."""

from __future__ import annotations

from contracts.vocabulary import DataCategory, Role
from referral_router.rules.sharing import capped, consent_caps
from tests.router.test_lifecycle import ROLES, _referral, apply, prop, screened

ID, HEALTH, SERVICE = DataCategory.IDENTITY, DataCategory.HEALTH, DataCategory.SERVICE
EVERYTHING = frozenset(DataCategory) - {DataCategory.OPERATIONAL}


def consent(cid: str, to: list[str], categories: list[str]):  # type: ignore[no-untyped-def]
    return prop(
        "consent.recorded",
        "police",
        ["ca"],
        consent_id=cid,
        recipients=to,
        categories=categories,
        recorded_by_officer="o",
    )


def test_a_screening_shares_nothing_personal_with_a_shelter_without_consent() -> None:
    s = screened()
    p = prop(
        "case.screened",
        "police",
        ["ca", "shelter"],
        age_status="adult",
        forms_of_exploitation=["forced-labour"],
    )
    caps = consent_caps(s, p)
    assert caps == {"ca": None, "shelter": frozenset()}
    assert capped({"ca": EVERYTHING, "shelter": EVERYTHING}, caps)["shelter"] == frozenset()


def test_consent_scope_persists_per_recipient_until_withdrawn() -> None:
    s = apply(screened(), consent("c1", ["shelter"], ["identity", "service"]))
    later = prop("reflection.started", "imm", ["shelter", "ca"], decided_by_officer="o")
    assert consent_caps(s, later) == {"shelter": {ID, SERVICE}, "ca": None}
    s = apply(s, prop("consent.withdrawn", "police", ["ca"], consent_id="c1"))
    assert consent_caps(s, later)["shelter"] == frozenset()


def test_an_override_with_a_legal_basis_persists_after_withdrawal() -> None:
    s = apply(screened(), consent("c1", ["shelter"], ["identity"]))
    s = apply(s, _referral(consent_override={"legal_basis": "public-task"}))
    s = apply(s, prop("consent.withdrawn", "police", ["ca"], consent_id="c1"))
    later = prop("reflection.started", "imm", ["shelter"], decided_by_officer="o")
    assert consent_caps(s, later) == {"shelter": None}


def test_a_consented_referral_shares_only_the_consent_it_names() -> None:
    s = apply(screened(), consent("c1", ["shelter"], ["identity"]))
    s = apply(s, consent("c2", ["shelter"], ["health"]))
    ref = _referral(consent_id="c2")
    assert consent_caps(s, ref) == {"shelter": {HEALTH}}
    other = prop("reflection.started", "imm", ["shelter"], decided_by_officer="o")
    assert consent_caps(s, other) == {"shelter": {ID, HEALTH}}


def test_several_roles_the_strictest_bar_wins() -> None:
    ROLES["shelter-cp"] = Role.SERVICE_PROVIDER
    s = screened()
    p = prop("reflection.started", "imm", ["shelter-cp"], decided_by_officer="o")
    both = {"shelter-cp": frozenset({Role.CHILD_PROTECTION, Role.SERVICE_PROVIDER})}
    from dataclasses import replace

    assert consent_caps(s, replace(p, recipients=both)) == {"shelter-cp": frozenset()}
    statutory = {"shelter-cp": frozenset({Role.CHILD_PROTECTION})}
    assert consent_caps(s, replace(p, recipients=statutory)) == {"shelter-cp": None}
