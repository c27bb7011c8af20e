"""The authority table: one row per event type, no default, following the domain."""

from __future__ import annotations

import pytest

from contracts.authority import (
    AUTHORITY,
    ORIGIN_CONTACT_ROLES,
    UnknownEventType,
    authority,
    may_emit,
    origin_contact,
    vouchers,
)
from contracts.events import CATALOGUE, categories_of
from contracts.need_to_know import (
    CONSENT_BOUND_ROLES,
    ORIGIN_SIDE_ROLES,
    CaseContext,
    Recipient,
    consent_bound,
    entitled_categories,
    load_default_agreement,
    origin_side,
)
from contracts.restrictions import PROTECTIVE, RELAXING, Restrictions
from contracts.vocabulary import DataCategory, Role


def test_every_event_type_has_exactly_one_row() -> None:
    assert set(AUTHORITY) == set(CATALOGUE)
    with pytest.raises(UnknownEventType):
        authority("case.reopened")


def test_no_row_lets_any_role_emit() -> None:
    for event_type, row in AUTHORITY.items():
        assert row.emitters, event_type
        assert row.emitters != frozenset(Role), event_type
        assert Role.OVERSIGHT not in row.emitters, event_type


def test_a_consulate_screens_and_answers_what_it_is_asked_nothing_more() -> None:
    """The Bali Process guide names "embassy and consular officers" among those who can
    identify a victim, and a consulate issues travel documents for a return: it screens,
    answers a referral addressed to it and reports the service delivered, nothing else."""
    consular = {t for t, row in AUTHORITY.items() if Role.CONSULATE in row.emitters}
    assert consular == {
        "case.screened",
        "referral.accepted",
        "referral.declined",
        "services.delivered",
    }


def test_the_bali_guide_s_identifiers_may_screen() -> None:
    screeners = authority("case.screened").emitters
    for role in (Role.IMMIGRATION, Role.ASYLUM, Role.CONSULATE, Role.LAW_ENFORCEMENT):
        assert role in screeners
    assert Role.OVERSIGHT not in screeners and Role.COUNTERPART not in screeners


@pytest.mark.parametrize(
    ("event_type", "allowed"),
    [
        ("identification.decided", {Role.COMPETENT_AUTHORITY}),
        ("case.closed", {Role.COMPETENT_AUTHORITY}),
        ("risk.assessed", {Role.COMPETENT_AUTHORITY, Role.IMMIGRATION}),
        ("case.erasure-ordered", {Role.COMPETENT_AUTHORITY, Role.NATIONAL_COORDINATOR}),
        ("guardian.appointed", {Role.CHILD_PROTECTION}),
        ("best-interests.determined", {Role.CHILD_PROTECTION}),
        ("asylum.lodged", {Role.ASYLUM, Role.IMMIGRATION}),
        ("residence.granted", {Role.IMMIGRATION}),
        ("return.planning-started", {Role.COMPETENT_AUTHORITY}),
        (
            "return.plan-agreed",
            {Role.COUNTERPART, Role.SERVICE_PROVIDER, Role.CHILD_PROTECTION},
        ),
        (
            "reintegration.monitored",
            {Role.COUNTERPART, Role.COMPETENT_AUTHORITY, Role.SERVICE_PROVIDER},
        ),
        ("age.assessed", {Role.CHILD_PROTECTION}),
        (
            "identification.review-requested",
            {Role.COMPETENT_AUTHORITY, Role.SERVICE_PROVIDER, Role.CHILD_PROTECTION},
        ),
        ("case.linked", {Role.COMPETENT_AUTHORITY}),
        ("residence.renewed", {Role.IMMIGRATION}),
        ("residence.ended", {Role.IMMIGRATION}),
        ("witness-protection.decided", {Role.LAW_ENFORCEMENT}),
        ("proceedings.opened", {Role.LAW_ENFORCEMENT}),
        ("proceedings.concluded", {Role.LAW_ENFORCEMENT}),
        ("non-punishment.decided", {Role.LAW_ENFORCEMENT}),
    ],
)
def test_decisions_belong_to_their_authority(event_type: str, allowed: set[Role]) -> None:
    assert authority(event_type).emitters == allowed
    for role in Role:
        assert may_emit({role}, event_type) is (role in allowed)


def test_first_responders_and_oversight_may_not_assess_risk_or_close() -> None:
    for role in (Role.FIRST_RESPONDER, Role.OVERSIGHT, Role.SERVICE_PROVIDER):
        assert not may_emit({role}, "risk.assessed")
        assert not may_emit({role}, "case.closed")
        assert not may_emit({role}, "identification.decided")


def test_an_agency_with_several_roles_may_emit_what_any_of_them_may() -> None:
    both = {Role.FIRST_RESPONDER, Role.LAW_ENFORCEMENT}
    assert may_emit(both, "compensation.claimed")  # law enforcement may
    assert may_emit(both, "case.screened")
    assert not may_emit(both, "case.closed")
    assert not may_emit(set(), "case.screened")


def test_relaxing_restrictions_are_vouched_only_by_the_roles_that_establish_them() -> None:
    assert vouchers("guardian_appointed") == {Role.CHILD_PROTECTION}
    assert vouchers("best_interests_determined") == {Role.CHILD_PROTECTION}
    assert vouchers("child_safeguards_lifted") == {Role.CHILD_PROTECTION}
    for row in AUTHORITY.values():
        assert row.establishes <= set(RELAXING)
    assert set(PROTECTIVE) | set(RELAXING) == set(Restrictions.model_fields)
    assert not set(PROTECTIVE) & set(RELAXING)
    with pytest.raises(ValueError, match="not a relaxing"):
        vouchers("no_origin_contact")


def test_named_parties_are_clear_fields_of_the_event() -> None:
    for event_type, row in AUTHORITY.items():
        fields = categories_of(CATALOGUE[event_type])
        for name in row.names:
            assert fields[name] is DataCategory.OPERATIONAL, (event_type, name)


def test_only_closing_orders_and_links_cannot_open_a_case() -> None:
    closing = {t for t, row in AUTHORITY.items() if not row.opens_case}
    assert closing == {"case.closed", "case.erasure-ordered", "case.linked"}


def test_justice_events_never_go_to_the_origin_side() -> None:
    from contracts.authority import justice

    barred = {t for t in AUTHORITY if justice(t)}
    assert barred == {
        "cooperation.decided",
        "witness-protection.decided",
        "proceedings.opened",
        "proceedings.concluded",
        "non-punishment.decided",
    }
    for t in barred:  # their substance is sealed as legal status
        cats = set(categories_of(CATALOGUE[t]).values()) - {DataCategory.OPERATIONAL}
        assert cats == {DataCategory.LEGAL_STATUS}, t


def test_the_origin_side_and_who_may_address_it() -> None:
    assert {Role.COMPETENT_AUTHORITY} == ORIGIN_CONTACT_ROLES
    assert origin_contact({Role.COMPETENT_AUTHORITY, Role.SERVICE_PROVIDER})
    assert not origin_contact({Role.IMMIGRATION})
    assert {Role.CONSULATE, Role.COUNTERPART} == ORIGIN_SIDE_ROLES
    assert origin_side({Role.IMMIGRATION, Role.CONSULATE})  # the strictest bar wins
    assert not origin_side({Role.IMMIGRATION})
    assert {Role.SERVICE_PROVIDER} == CONSENT_BOUND_ROLES
    assert consent_bound({Role.CHILD_PROTECTION, Role.SERVICE_PROVIDER})


@pytest.mark.parametrize("role", [Role.CONSULATE, Role.COUNTERPART])
def test_r4_empties_the_origin_side_after_asylum_even_for_return(role: Role) -> None:
    agreement = load_default_agreement()
    who = Recipient("origin", role)
    planning = CaseContext(event_type="return.planning-started")
    assert DataCategory.IDENTITY in entitled_categories(agreement, who, planning)
    barred = CaseContext(event_type="return.planning-started", no_origin_contact=True)
    assert entitled_categories(agreement, who, barred) == frozenset()
