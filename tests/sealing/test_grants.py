"""Case key grants (HPKE, authenticated by signature and key commitment) and key rotation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts.sealing import (
    CaseKey,
    CaseKeyGrant,
    GrantInvalid,
    HpkeKeyPair,
    KeyCommitmentMismatch,
    SigningKey,
    UnknownSigningKey,
    accept_grant,
    grant_case_key,
    hpke_public_key_from_bytes,
    new_case_key,
    open_envelope,
    verify,
)
from contracts.sealing.keys import b64d, b64e
from contracts.vocabulary import DataCategory
from tests.sealing.world import CASE, T0, World, requested


def _grant(world: World, recipient: str = "shelter-b") -> tuple[CaseKey, CaseKeyGrant]:
    ck = new_case_key(CASE, "police-a", recipient)
    r = world[recipient]
    g = grant_case_key(
        ck,
        signer=world["police-a"].signing,
        recipient_public_key=r.hpke.public_key,
        recipient_key_id=r.hpke.key_id,
        time=T0,
    )
    return ck, g


def test_grant_round_trip_and_hpke_key_serialisation() -> None:
    world = World()
    ck, g = _grant(world)
    r = world["shelter-b"]
    assert accept_grant(CaseKeyGrant.from_bytes(g.to_bytes()), r.hpke, world.lookup) == ck
    again = HpkeKeyPair.from_private_bytes(r.id, r.hpke.key_id, r.hpke.private_bytes())
    assert accept_grant(g, again, world.lookup).key == ck.key
    assert hpke_public_key_from_bytes(r.hpke.public_bytes()) is not None


def test_grant_for_someone_else_is_refused() -> None:
    world = World()
    _, g = _grant(world)
    with pytest.raises(GrantInvalid, match="not authority-d"):
        accept_grant(g, world["authority-d"].hpke, world.lookup)
    stolen = g.model_copy(
        update={"recipient": "authority-d", "recipient_key_id": "authority-d-kem-1"}
    )
    with pytest.raises(GrantInvalid, match="signature"):
        accept_grant(stolen, world["authority-d"].hpke, world.lookup)


def test_every_bit_of_a_grant_sealed_key_fails() -> None:
    world = World()
    _, g = _grant(world)
    blob = b64d(g.sealed_key)
    r = world["shelter-b"]
    for i in range(0, len(blob) * 8, 97):  # 1120-byte HPKE output: a stride keeps it quick
        b = bytearray(blob)
        b[i // 8] ^= 1 << (i % 8)
        with pytest.raises(GrantInvalid):
            accept_grant(g.model_copy(update={"sealed_key": b64e(bytes(b))}), r.hpke, world.lookup)


def test_hpke_info_binds_the_case_even_for_the_sender_itself() -> None:
    world = World()
    _, g = _grant(world)
    s = world["police-a"].signing
    other = g.model_copy(update={"case": "case-ffffffffffff", "signature": None})
    resigned = other.model_copy(
        update={
            "signature": {
                "alg": "Ed25519",
                "kid": s.key_id,
                "sig": b64e(s.private_key.sign(other.signing_bytes())),
            }
        }
    )
    with pytest.raises(GrantInvalid, match="does not open"):
        accept_grant(resigned, world["shelter-b"].hpke, world.lookup)


def test_forged_grant_cannot_open_a_signed_envelope() -> None:
    """HPKE base mode is unauthenticated: anyone can seal a key to shelter-b. A forger
    without police-a's signing key is refused at the signature; and even a key that got
    into the store cannot match the key id (commitment) the real envelope names."""
    world = World()
    env = world.send("police-a", ["shelter-b"], requested(), "referral.requested")
    real_kid = env.sealed["wraps"]["shelter-b"]["kid"]
    forger = SigningKey.generate("police-a", "police-a-sig-1")  # right name, wrong key
    fake = new_case_key(CASE, "police-a", "shelter-b")
    r = world["shelter-b"]
    g = grant_case_key(
        fake,
        signer=forger,
        recipient_public_key=r.hpke.public_key,
        recipient_key_id=r.hpke.key_id,
        time=T0,
    )
    with pytest.raises(GrantInvalid, match="signature"):
        accept_grant(g, r.hpke, world.lookup)
    with pytest.raises(KeyCommitmentMismatch):
        CaseKey(CASE, "police-a", "shelter-b", real_kid, fake.key)

    def lying_store(case: str, sender: str, recipient: str, key_id: str) -> CaseKey:
        return fake

    with pytest.raises(KeyCommitmentMismatch):
        open_envelope(env, "shelter-b", lying_store, world.lookup)


def test_grants_never_enter_the_envelope() -> None:
    world = World()
    env = world.send("police-a", ["shelter-b", "authority-d"], requested(), "referral.requested")
    wire = env.canonical_bytes()
    assert world.grants_in_transit
    for g in world.grants_in_transit:
        assert CaseKeyGrant.from_bytes(g).sealed_key.encode() not in wire


def test_unknown_signer_is_refused() -> None:
    world = World()
    env = world.send("police-a", ["shelter-b"], requested(), "referral.requested")
    bad = env.model_copy(update={"signature": {**env.signature, "kid": "police-a-sig-9"}})
    with pytest.raises(UnknownSigningKey):
        verify(bad, world.lookup)


def test_key_rotation_old_envelopes_still_verify() -> None:
    world = World()
    old = world.send("police-a", ["shelter-b"], requested(), "referral.requested", time=T0)
    retired = world["police-a"].signing
    world.rotate_signing("police-a", T0 + timedelta(days=30), "police-a-sig-2")
    later = T0 + timedelta(days=31)
    new = world.send("police-a", ["shelter-b"], requested(), "referral.requested", time=later)
    assert verify(old, world.lookup).signer_key_ids == ("police-a-sig-1",)
    assert verify(new, world.lookup).signer_key_ids == ("police-a-sig-2",)
    opened = open_envelope(old, "shelter-b", world["shelter-b"].store.get, world.lookup)
    assert DataCategory.LOCATION in opened.opened
    # The retired key no longer signs anything dated after its retirement.
    from contracts.sealing import sign

    late = sign(new.model_copy(update={"signature": None, "sender": "police-a"}), retired)
    with pytest.raises(UnknownSigningKey):
        verify(late, world.lookup)
