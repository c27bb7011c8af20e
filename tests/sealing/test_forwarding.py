"""R10: forwarding re-wraps only what the forwarder can open and the new reader may read."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.sealing import (
    CiphertextTampered,
    Forwarding,
    NotEntitled,
    SignatureInvalid,
    forward,
    open_envelope,
    parse_forwarding,
)
from contracts.sealing.keys import b64e
from contracts.vocabulary import PERSONAL_CATEGORIES, DataCategory
from tests.sealing.world import CASE, T0, World, requested

LATER = T0 + timedelta(hours=2)


def _forward(world: World, source, forwarder: str, to: str, entitled) -> Forwarding:
    f = world[forwarder]
    ck = f.store.current(CASE, forwarder, to) or world.deliver(CASE, forwarder, to)
    return forward(
        source,
        forwarder=f.signing,
        recipient=to,
        entitled=frozenset(entitled),
        case_key_lookup=f.store.get,
        new_case_key=ck,
        id=uuid.uuid4(),
        time=LATER,
        public_key_lookup=world.lookup,
    )


def test_shelter_forwards_to_clinic_without_widening() -> None:
    world = World()
    env = world.send("police-a", ["shelter-b"], requested(), "referral.requested")
    clinic = world.entitlements("referral.requested", ["clinic-c"])["clinic-c"]
    assert DataCategory.HEALTH in clinic  # the agreement would allow health...
    fwd = _forward(world, env, "shelter-b", "clinic-c", clinic)
    wire = fwd.canonical_bytes()
    assert parse_forwarding(wire) == fwd
    opened = open_envelope(
        parse_forwarding(wire), "clinic-c", world["clinic-c"].store.get, world.lookup
    )
    # ...but the shelter never had it, so the clinic does not get it either.
    assert opened.opened == {DataCategory.IDENTITY}
    assert DataCategory.HEALTH in opened.withheld
    assert opened.values["full_name"] == "Ana Example"
    assert opened.forwarded_by == "shelter-b"
    assert fwd.original == env  # ciphertexts reused, not re-encrypted


def test_forwarding_is_signed_by_the_forwarder() -> None:
    world = World()
    env = world.send("police-a", ["shelter-b"], requested(), "referral.requested")
    fwd = _forward(world, env, "shelter-b", "clinic-c", PERSONAL_CATEGORIES)
    wrap = fwd.wraps["clinic-c"]["keys"]["identity"]
    bad = fwd.model_copy(
        update={
            "wraps": {"clinic-c": {**fwd.wraps["clinic-c"], "keys": {"identity": wrap[:-2] + "AA"}}}
        }
    )
    with pytest.raises(SignatureInvalid):
        open_envelope(bad, "clinic-c", world["clinic-c"].store.get, world.lookup)


def test_a_forwarder_cannot_invent_a_key_it_never_had() -> None:
    world = World()
    env = world.send("police-a", ["shelter-b"], requested(), "referral.requested")
    fwd = _forward(world, env, "shelter-b", "clinic-c", PERSONAL_CATEGORIES)
    ck = world["shelter-b"].store.current(CASE, "shelter-b", "clinic-c")
    import os

    from contracts.sealing.core import wrap_aad

    n = os.urandom(12)
    guess = os.urandom(32)
    aad = wrap_aad(str(env.id), CASE, "shelter-b", "clinic-c", ck.key_id, "health")
    keys = {**fwd.wraps["clinic-c"]["keys"], "health": b64e(n + ck.aead.encrypt(n, guess, aad))}
    forged = fwd.model_copy(
        update={"wraps": {"clinic-c": {"kid": ck.key_id, "keys": keys}}, "signature": None}
    )
    s = world["shelter-b"].signing
    forged = forged.model_copy(
        update={
            "signature": {
                "alg": "Ed25519",
                "kid": s.key_id,
                "sig": b64e(s.private_key.sign(forged.signing_bytes())),
            }
        }
    )
    with pytest.raises(CiphertextTampered):
        open_envelope(forged, "clinic-c", world["clinic-c"].store.get, world.lookup)


def test_only_a_receiver_may_forward() -> None:
    world = World()
    env = world.send("police-a", ["shelter-b"], requested(), "referral.requested")
    with pytest.raises(NotEntitled):
        _forward(world, env, "lawyer-f", "clinic-c", PERSONAL_CATEGORIES)


def test_forwarding_chain_keeps_the_ceiling() -> None:
    world = World()
    env = world.send("police-a", ["shelter-b"], requested(), "referral.requested")
    first = _forward(
        world, env, "shelter-b", "clinic-c", {DataCategory.IDENTITY, DataCategory.SERVICE}
    )
    second = _forward(world, first, "clinic-c", "lawyer-f", PERSONAL_CATEGORIES)
    assert second.parent == first.id and second.original == env
    opened = open_envelope(second, "lawyer-f", world["lawyer-f"].store.get, world.lookup)
    assert opened.opened == {DataCategory.IDENTITY, DataCategory.SERVICE}


cats = st.frozensets(st.sampled_from(PERSONAL_CATEGORIES))


@settings(max_examples=25, deadline=None)
@given(first=cats, wanted=cats)
def test_forwarding_never_widens(first: frozenset, wanted: frozenset) -> None:
    world = _WORLD
    env = world.send(
        "police-a",
        ["shelter-b"],
        requested(),
        "referral.requested",
        entitlements={"shelter-b": first},
    )
    fwd = _forward(world, env, "shelter-b", "clinic-c", wanted)
    opened = open_envelope(fwd, "clinic-c", world["clinic-c"].store.get, world.lookup)
    present = {DataCategory(c) for c in env.sealed["fields"]}
    assert opened.opened == first & wanted & present
    assert opened.opened <= first


_WORLD = World()
