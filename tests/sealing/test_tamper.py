"""Every single-bit flip, and every moved ciphertext, fails with a precise error."""

from __future__ import annotations

import pytest

from contracts.envelope import Envelope
from contracts.sealing import (
    CiphertextTampered,
    MalformedEnvelope,
    SealingError,
    SignatureInvalid,
    UnknownSigningKey,
    Withheld,
    WrappedKeyTampered,
    canonical_json,
    open_category,
    open_envelope,
    parse_envelope,
    sign,
    verify,
)
from contracts.sealing.keys import b64d, b64e
from contracts.vocabulary import DataCategory
from tests.sealing.world import World, requested

READER = "shelter-b"


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture(scope="module")
def env(world: World) -> Envelope:
    return world.send("police-a", ["shelter-b", "authority-d"], requested(), "referral.requested")


def _flips(data: bytes):
    for i in range(len(data) * 8):
        b = bytearray(data)
        b[i // 8] ^= 1 << (i % 8)
        yield bytes(b)


def _with_sealed(env: Envelope, path: tuple[str, ...], value: str) -> Envelope:
    sealed = _deepcopy(env.sealed)
    node = sealed
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return env.model_copy(update={"sealed": sealed})


def _deepcopy(d):
    return {k: _deepcopy(v) if isinstance(v, dict) else v for k, v in d.items()}


def _open(world: World, e: Envelope):
    return open_envelope(e, READER, world[READER].store.get, world.lookup)


def test_untouched_envelope_opens(world: World, env: Envelope) -> None:
    assert _open(world, env).values["pickup_location"] == requested().pickup_location


def test_every_bit_of_the_signature(world: World, env: Envelope) -> None:
    sig = b64d(env.signature["sig"])
    for flipped in _flips(sig):
        bad = env.model_copy(update={"signature": {**env.signature, "sig": b64e(flipped)}})
        with pytest.raises(SignatureInvalid):
            verify(bad, world.lookup)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (("fields", "location", "pickup_location"), CiphertextTampered),  # nonce + ct + tag
        (("wraps", READER, "keys", "location"), WrappedKeyTampered),  # nonce + wrapped key
    ],
)
def test_every_bit_of_a_ciphertext_nonce_and_wrapped_key(world: World, env, path, error) -> None:
    node = env.sealed
    for p in path:
        node = node[p]
    blob = b64d(node)
    signer = world["police-a"].signing
    for i, flipped in enumerate(_flips(blob)):
        bad = _with_sealed(env, path, b64e(flipped))
        with pytest.raises(SignatureInvalid):  # as received: the signature catches it first
            _open(world, bad)
        # Even signed by the sender itself (an insider, or a bypassed check), AES-GCM
        # catches the flip with its own precise error.
        with pytest.raises(error):
            _open(world, sign(bad, signer))
        assert i < len(blob) * 8


def test_flipped_kid_of_a_wrap(world: World, env: Envelope) -> None:
    kid = env.sealed["wraps"][READER]["kid"]
    bad = _with_sealed(env, ("wraps", READER, "kid"), kid[:-1] + ("A" if kid[-1] != "A" else "B"))
    with pytest.raises(SignatureInvalid):
        _open(world, bad)
    opened = _open(world, sign(bad, world["police-a"].signing))  # no key under that id
    assert opened.values["pickup_location"] == Withheld(DataCategory.LOCATION, "key-unavailable")
    assert not opened.opened


CLEAR = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "dataschema",
    "datacontenttype",
    "sender",
    "recipients",
    "restrictions",
    "operational",
    "deadlines",
]


@pytest.mark.parametrize("attribute", CLEAR)
def test_every_bit_of_each_clear_attribute_on_the_wire(world, env, attribute) -> None:
    wire = env.canonical_bytes()
    dump = env.model_dump(mode="json")
    needle = b'"' + attribute.encode() + b'":' + canonical_json(dump[attribute])
    start = wire.index(needle) + len(attribute) + 3
    end = start + len(needle) - len(attribute) - 3
    errors = (MalformedEnvelope, SignatureInvalid, UnknownSigningKey)
    for i in range(start * 8, end * 8):
        b = bytearray(wire)
        b[i // 8] ^= 1 << (i % 8)
        with pytest.raises(errors):
            _open(world, parse_envelope(bytes(b)))


def test_every_bit_of_the_whole_wire_form_fails(world: World, env: Envelope) -> None:
    wire = env.canonical_bytes()
    step = 7  # a prime stride over the whole envelope, sealed part included
    for i in range(0, len(wire) * 8, step):
        b = bytearray(wire)
        b[i // 8] ^= 1 << (i % 8)
        with pytest.raises(SealingError):
            _open(world, parse_envelope(bytes(b)))


def test_ciphertext_moved_to_another_event_fails(world: World, env: Envelope) -> None:
    other = world.send("police-a", ["shelter-b", "authority-d"], requested(), "referral.requested")
    path = ("fields", "location", "pickup_location")
    moved = _with_sealed(other, path, env.sealed["fields"]["location"]["pickup_location"])
    with pytest.raises(SignatureInvalid):
        _open(world, moved)
    with pytest.raises(CiphertextTampered, match="pickup_location"):
        _open(world, sign(moved, world["police-a"].signing))


def test_wrapped_key_moved_to_another_event_fails(world: World, env: Envelope) -> None:
    other = world.send("police-a", ["shelter-b", "authority-d"], requested(), "referral.requested")
    path = ("wraps", READER, "keys", "location")
    moved = sign(
        _with_sealed(other, path, env.sealed["wraps"][READER]["keys"]["location"]),
        world["police-a"].signing,
    )
    with pytest.raises(WrappedKeyTampered):
        _open(world, moved)


def test_ciphertext_moved_to_another_field_fails(world: World, env: Envelope) -> None:
    # full_name (identity) -> needs (service): other category, other data key.
    moved = _with_sealed(
        env, ("fields", "service", "needs"), env.sealed["fields"]["identity"]["full_name"]
    )
    with pytest.raises(CiphertextTampered, match="needs"):
        _open(world, sign(moved, world["police-a"].signing))


def test_ciphertext_moved_to_another_field_of_the_same_category_fails(world: World) -> None:
    from tests.sealing.world import screened

    env = world.send("police-a", ["authority-d"], screened(), "case.screened")
    ident = env.sealed["fields"]["identity"]
    moved = sign(
        _with_sealed(env, ("fields", "identity", "nationality"), ident["full_name"]),
        world["police-a"].signing,
    )
    v = verify(moved, world.lookup)
    with pytest.raises(CiphertextTampered, match="nationality"):
        open_category(v, DataCategory.IDENTITY, "authority-d", world["authority-d"].store.get)


def test_wrap_moved_to_another_reader_fails(world: World, env: Envelope) -> None:
    stolen = env.sealed["wraps"]["authority-d"]["keys"]["identity"]
    moved = sign(
        _with_sealed(env, ("wraps", READER, "keys", "identity"), stolen), world["police-a"].signing
    )
    with pytest.raises(WrappedKeyTampered):
        _open(world, moved)


def test_field_sealed_under_the_wrong_category_is_malformed(world: World, env: Envelope) -> None:
    sealed = _deepcopy(env.sealed)
    sealed["fields"]["service"]["pickup_location"] = sealed["fields"]["location"].pop(
        "pickup_location"
    )
    del sealed["fields"]["location"]
    for w in sealed["wraps"].values():
        w["keys"].pop("location", None)
    bad = sign(env.model_copy(update={"sealed": sealed}), world["police-a"].signing)
    with pytest.raises(MalformedEnvelope, match="pickup_location"):
        _open(world, bad)


def test_unsigned_envelope_is_refused(world: World, env: Envelope) -> None:
    with pytest.raises(SignatureInvalid, match="unsigned"):
        verify(env.unsigned(), world.lookup)
