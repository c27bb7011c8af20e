"""Sealing and opening: need-to-know per category, withheld markers, forced decrypts."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.sealing import (
    MalformedEnvelope,
    NotEntitled,
    Withheld,
    canonical_json,
    open_category,
    open_envelope,
    parse_envelope,
    signing_bytes,
    verify,
)
from contracts.sealing.keys import b64d
from contracts.vocabulary import DataCategory
from tests.sealing.world import World, requested, screened

RECIPIENTS = ["shelter-b", "authority-d", "consulate-e", "clinic-c"]


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture(scope="module")
def referral(world: World):
    return world.send("police-a", RECIPIENTS, requested(), "referral.requested")


def test_sender_reads_everything(world: World, referral) -> None:
    opened = open_envelope(referral, "police-a", world["police-a"].store.get, world.lookup)
    assert opened.payload() == requested()
    assert not opened.withheld


def test_entitled_recipient_reads_its_categories_only(world: World, referral) -> None:
    opened = open_envelope(referral, "shelter-b", world["shelter-b"].store.get, world.lookup)
    assert opened.opened == {DataCategory.IDENTITY, DataCategory.LOCATION, DataCategory.SERVICE}
    assert opened.values["pickup_location"] == requested().pickup_location
    assert opened.values["medical_notes"] == Withheld(DataCategory.HEALTH)
    assert opened.to_json()["medical_notes"]["withheld"] == "health"
    assert opened.values["referral_id"] == "ref-1"  # operational stays clear


def test_unentitled_recipient_gets_withheld_and_forced_decrypt_raises(world: World, referral):
    store = world["authority-d"].store
    opened = open_envelope(referral, "authority-d", store.get, world.lookup)
    assert opened.to_json()["pickup_location"] == {"withheld": "location", "reason": "not-entitled"}
    with pytest.raises(NotEntitled, match="location"):
        open_category(
            verify(referral, world.lookup), DataCategory.LOCATION, "authority-d", store.get
        )
    with pytest.raises(NotEntitled):
        opened.payload()


def test_consulate_without_entitlement_gets_nothing(world: World, referral) -> None:
    assert "consulate-e" not in referral.sealed["wraps"]
    opened = open_envelope(referral, "consulate-e", world["consulate-e"].store.get, world.lookup)
    assert opened.opened == frozenset()
    personal = {k for k, v in opened.values.items() if isinstance(v, Withheld)}
    assert personal == {
        "full_name",
        "needs",
        "medical_notes",
        "pickup_location",
        "override_explanation",
    }
    assert world["consulate-e"].store.current(referral.subject, "police-a", "consulate-e") is None


def test_consulate_barred_after_asylum_even_for_return(world: World) -> None:
    ent = world.entitlements("return.planning-started", ["consulate-e"], no_origin_contact=True)
    assert ent["consulate-e"] == frozenset()


def test_a_stranger_with_no_key_sees_only_clear_fields(world: World, referral) -> None:
    opened = open_envelope(referral, "lawyer-f", world["lawyer-f"].store.get, world.lookup)
    assert opened.opened == frozenset()
    assert opened.withheld == {
        DataCategory.IDENTITY,
        DataCategory.LOCATION,
        DataCategory.HEALTH,
        DataCategory.SERVICE,
        DataCategory.DECISION,
    }


def test_entitlement_for_a_non_recipient_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="not a recipient"):
        world.send(
            "police-a",
            ["shelter-b"],
            requested(),
            "referral.requested",
            entitlements={"lawyer-f": frozenset({DataCategory.IDENTITY})},
        )


def test_screening_event_round_trip_all_categories(world: World) -> None:
    env = world.send("police-a", ["authority-d"], screened(), "case.screened")
    opened = open_envelope(env, "authority-d", world["authority-d"].store.get, world.lookup)
    assert opened.values["account"] == screened().account
    assert opened.values["found_at"] == Withheld(DataCategory.LOCATION)
    assert isinstance(opened.values["immediate_needs"], Withheld)


def test_fast_signing_bytes_equal_the_contract(world: World, referral) -> None:
    assert signing_bytes(referral) == referral.signing_bytes()
    public = world.lookup("police-a", referral.signature["kid"], referral.time)
    public.verify(b64d(referral.signature["sig"]), referral.signing_bytes())  # the contract
    assert parse_envelope(referral.canonical_bytes()) == referral


def test_non_canonical_wire_bytes_are_refused(referral) -> None:
    pretty = json.dumps(json.loads(referral.canonical_bytes()), indent=1).encode()
    with pytest.raises(MalformedEnvelope, match="canonical"):
        parse_envelope(pretty)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_canonical_json_is_rfc8785(value) -> None:
    try:
        expected = rfc8785.dumps(value)
    except Exception:
        return  # values RFC 8785 rejects are out of scope
    assert canonical_json(value) == expected
