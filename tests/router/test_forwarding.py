"""R10 at the forwarding node: the rules of passing a case on (those of a referral), and
the property that matters: whatever the agreement, the grants the forwarder received and
the consent, what the new recipient opens is never wider than any of them."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from contracts.need_to_know import Agreement, CaseContext, Condition, Recipient
from contracts.need_to_know import entitled_categories as agreement_entitled
from contracts.restrictions import Restrictions
from contracts.sealing import forward, forwardable, open_envelope, verify
from contracts.vocabulary import PERSONAL_CATEGORIES, DataCategory, Role, ServiceKind
from referral_router.rules.forwarding import (
    PassingOn,
    check_forward,
    forwarded,
    forwarding_entitlement,
    passes_on,
)
from referral_router.rules.lifecycle import CaseState, Consent, RuleViolation
from tests.agencies import clear_envelope
from tests.router.test_lifecycle import ROLES, T0, apply, prop, screened
from tests.sealing.world import CASE, World, requested


def passing(to: str = "shelter", sender: str = "cp", **kw: object) -> PassingOn:
    return PassingOn(
        sender,
        frozenset({ROLES[sender]}),
        to,
        frozenset({ROLES[to]}),
        T0,
        **kw,  # type: ignore[arg-type]
    )


def consented(state: CaseState, to: str, *categories: str, active: bool = True) -> CaseState:
    c = Consent("c1", frozenset({to}), False, frozenset(categories), active)
    return replace(state, consents={**state.consents, "c1": c})


def refused(state: CaseState, f: PassingOn) -> RuleViolation:
    with pytest.raises(RuleViolation) as info:
        check_forward(state, f)
    return info.value


# --- the rules of a referral ------------------------------------------------------------


def test_passing_on_needs_consent_naming_the_recipient_or_an_override() -> None:
    s = screened()
    assert refused(s, passing()).rule == "R9"
    assert refused(s, passing(consent_id="c1")).rule == "R9"  # no such consent
    assert refused(consented(s, "shelter", "identity", active=False), passing(consent_id="c1"))
    assert refused(consented(s, "clinic", "identity"), passing(consent_id="c1")).rule == "R9"
    check_forward(consented(s, "shelter", "identity"), passing(consent_id="c1"))
    check_forward(s, passing(consent_override={"legal_basis": "child-protection"}))


def test_only_the_authority_passes_a_case_to_the_origin_side_and_never_when_barred() -> None:
    s = screened()
    override = {"consent_override": {"legal_basis": "public-task"}}
    assert refused(s, passing("consul", "cp", **override)).rule == "R4"
    check_forward(s, passing("consul", "ca", **override))
    barred = replace(s, restrictions=Restrictions(no_origin_contact=True))
    v = refused(barred, passing("consul", "ca", **override))
    assert v.rule == "R4" and "no contact with the country of origin" in v.message


def test_an_erased_or_closed_case_is_not_passed_on() -> None:
    s = screened()
    override = {"consent_override": {"legal_basis": "public-task"}}
    assert refused(replace(s, erased=True), passing(**override)).rule == "ERASED"
    assert refused(replace(s, closed=True), passing(**override)).rule == "LIFECYCLE"
    assert refused(s, passing("cp", "cp", **override)).rule == "LIFECYCLE"


def test_what_may_be_passed_on_the_sent_and_received_events_the_recipient_lacks() -> None:
    f = passing("shelter", "cp")
    received = clear_envelope("police", ["cp", "ca"], CASE)
    sent = clear_envelope("cp", ["ca"], CASE)
    held_by_shelter = clear_envelope("police", ["cp", "shelter"], CASE)
    from_shelter = clear_envelope("shelter", ["cp"], CASE)
    elsewhere = clear_envelope("police", ["ca"], CASE)  # passed on to cp: not cp's to pass
    assert passes_on(received, f) and passes_on(sent, f)
    assert not passes_on(held_by_shelter, f) and not passes_on(from_shelter, f)
    assert not passes_on(elsewhere, f)


def test_a_justice_event_is_never_passed_on_to_the_origin_side() -> None:
    """R4: whoever passes a case on, the proceedings stay on this side."""
    justice = clear_envelope("ca", ["police"], CASE, "proceedings.opened")
    assert not passes_on(justice, passing("consul", "ca"))
    assert passes_on(justice, passing("shelter", "ca"))
    assert passes_on(clear_envelope("ca", ["police"], CASE), passing("consul", "ca"))


def test_the_new_recipient_becomes_a_party_that_an_erasure_order_follows() -> None:
    s = forwarded(screened(), "clinic")
    assert "clinic" in s.parties and s.forwarded_to == {"clinic"}


# --- never wider: the property ----------------------------------------------------------

ROLE_LIST = [Role.SERVICE_PROVIDER, Role.CHILD_PROTECTION, Role.LAW_ENFORCEMENT, Role.IMMIGRATION]
#: Conditions, "always" weighted up so that agreements grant something more often than not.
CONDITIONS = [Condition.ALWAYS, Condition.ALWAYS, Condition.ALWAYS, *Condition]
agreements = st.dictionaries(
    st.sampled_from(PERSONAL_CATEGORIES),
    st.dictionaries(st.sampled_from(ROLE_LIST), st.sampled_from(CONDITIONS), min_size=2),
    min_size=3,
    max_size=len(PERSONAL_CATEGORIES),
).map(lambda grants: Agreement("random", grants))
categories = st.frozensets(st.sampled_from(PERSONAL_CATEGORIES))
#: Mostly large sets (everything but a few), so that something is usually passed on.
most = categories.map(lambda left_out: frozenset(PERSONAL_CATEGORIES) - left_out)


@settings(max_examples=120, deadline=None)
@given(
    agreement=agreements,
    received=most,
    role=st.sampled_from(ROLE_LIST),
    services=st.frozensets(st.sampled_from([ServiceKind.MEDICAL, ServiceKind.PROTECTION])),
    consent=st.none() | most,
    override=st.booleans(),
    asylum=st.booleans(),
)
def test_forwarding_never_widens(
    agreement: Agreement,
    received: frozenset[DataCategory],
    role: Role,
    services: frozenset[ServiceKind],
    consent: frozenset[DataCategory] | None,
    override: bool,
    asylum: bool,
) -> None:
    """Real sealing end to end: police grants the shelter `received`; the shelter passes
    the referral on to a recipient of a random role under a random agreement, on a random
    consent or an override; the recipient opens exactly what the agreement allows it in
    that event, within what the shelter held and what the consent covers, and never more."""
    world = _WORLD
    env = world.send(
        "police-a", ["shelter-b"], requested(), "referral.requested",
        entitlements={"shelter-b": received},
    )  # fmt: skip
    to = Recipient("clinic-c", role, services, "XA")
    state = CaseState(
        pseudonym=CASE,
        originator="police-a",
        referrals={},
        restrictions=Restrictions(no_origin_contact=asylum),
    )
    if consent is not None:
        state = replace(
            state,
            consents={"c1": Consent("c1", frozenset({"clinic-c"}), False, frozenset(consent))},
        )
    f = PassingOn(
        "shelter-b",
        frozenset({Role.SERVICE_PROVIDER}),
        "clinic-c",
        frozenset({role}),
        T0,
        "c1" if consent is not None else None,
        {"legal_basis": "vital-interests"} if override else None,
    )

    if consent is None and not override:  # R9: the node refuses before any key moves
        assert refused(state, f).rule == "R9"
        return
    check_forward(state, f)

    def entitled(agency: str, ctx: CaseContext) -> frozenset[DataCategory]:
        assert agency == "clinic-c"
        return agreement_entitled(agreement, to, ctx)

    verified = verify(env, world.lookup)
    held = forwardable(verified, "shelter-b")
    assert held == received & {DataCategory(c) for c in env.sealed["fields"]}
    shared = forwarding_entitlement(state, env, f, entitled, held)
    clinic = world["clinic-c"]
    key = clinic.store.current(CASE, "shelter-b", "clinic-c")
    fw = forward(
        verified,
        forwarder=world["shelter-b"].signing,
        recipient="clinic-c",
        entitled=shared,
        case_key_lookup=world["shelter-b"].store.get,
        new_case_key=world["shelter-b"].store.current(CASE, "shelter-b", "clinic-c") or key,
        id=uuid.uuid4(),
        time=T0 + timedelta(hours=1),
    )
    opened = open_envelope(fw, "clinic-c", clinic.store.get, world.lookup).opened
    ctx = CaseContext(
        event_type="referral.requested",
        case_originator="police-a",
        no_origin_contact=asylum,
    )
    allowed = agreement_entitled(agreement, to, ctx)
    ceiling = held & allowed
    if not override and role is Role.SERVICE_PROVIDER:
        assert consent is not None
        ceiling &= consent
    assert opened <= held  # never more than the forwarder held (what its sender granted it)
    assert opened <= allowed  # never more than the agreement allows the new recipient
    assert opened == ceiling  # and, within those, exactly what was due
    event(f"categories passed on: {len(opened)}")


def _world() -> World:
    w = World()
    w.deliver(CASE, "shelter-b", "clinic-c")
    return w


_WORLD = _world()


def test_the_property_test_can_fail() -> None:
    """A forwarder that passed on what the agreement denies would be caught: the clinic
    (medical) may not read location in a referral not its own, yet a careless re-wrap
    hands it over, and the property's ceiling says so."""
    world = _WORLD
    env = world.send(
        "police-a", ["shelter-b"], requested(), "referral.requested",
        entitlements={"shelter-b": frozenset(PERSONAL_CATEGORIES)},
    )  # fmt: skip
    careless = forward(
        verify(env, world.lookup),
        forwarder=world["shelter-b"].signing,
        recipient="clinic-c",
        entitled=frozenset(PERSONAL_CATEGORIES),
        case_key_lookup=world["shelter-b"].store.get,
        new_case_key=world["shelter-b"].store.current(CASE, "shelter-b", "clinic-c"),
        id=uuid.uuid4(),
        time=T0 + timedelta(hours=1),
    )
    opened = open_envelope(careless, "clinic-c", world["clinic-c"].store.get, world.lookup)
    clinic = Recipient("clinic-c", Role.SERVICE_PROVIDER, frozenset({ServiceKind.MEDICAL}))
    ctx = CaseContext(event_type="referral.requested", case_originator="police-a")
    assert DataCategory.LOCATION in opened.opened
    assert not opened.opened <= agreement_entitled(world.agreement, clinic, ctx)


def test_screened_view_helpers_still_apply() -> None:
    """The lifecycle helpers this module builds on (a sanity check of the fixtures)."""
    s = apply(
        screened(),
        prop("consent.recorded", "police", ["ca"], consent_id="c9", recipients=["shelter"],
             categories=["identity"], recorded_by_officer="o"),
    )  # fmt: skip
    assert s.consented("shelter") == {"identity"}
