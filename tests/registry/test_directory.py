"""The signed directory as a node sees it: tampering, rollback, rotation, rebuild."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from contracts.directory import (
    Directory,
    DirectoryError,
    DirectoryMalformed,
    DirectorySignatureInvalid,
    DirectoryStale,
    KeyUse,
    SignedDirectory,
    TrustAnchor,
    b64url_decode,
    b64url_encode,
    sign_directory,
    verify_directory,
)
from contracts.directory_client import DirectoryClient, DirectoryUnavailable
from contracts.keystore import generate_agency_keys
from contracts.need_to_know import CaseContext
from contracts.vocabulary import DataCategory
from tests.registry.conftest import Bus, key_input


def _populated(bus: Bus) -> Bus:
    bus.register(bus.party("xa-police"), ["first-responder"])
    bus.register(bus.party("xa-shelter"), ["service-provider"], ["shelter", "medical"])
    return bus


def test_every_signature_byte_flip_is_refused(bus: Bus) -> None:
    _populated(bus)
    signed = bus.registry.signed_directory()
    anchor = bus.config.anchor()
    sig = b64url_decode(signed.signature)
    assert len(sig) == 64
    for i in range(len(sig)):
        for bit in (0x01, 0x80):
            bad = bytearray(sig)
            bad[i] ^= bit
            tampered = signed.model_copy(update={"signature": b64url_encode(bytes(bad))})
            with pytest.raises(DirectorySignatureInvalid):
                verify_directory(tampered, anchor)


def test_body_byte_flips_are_refused(bus: Bus) -> None:
    _populated(bus)
    signed = bus.registry.signed_directory()
    anchor = bus.config.anchor()
    body = b64url_decode(signed.directory)
    step = max(1, len(body) // 150)
    for i in [*range(0, len(body), step), len(body) - 1]:
        bad = bytearray(body)
        bad[i] ^= 0x01
        tampered = signed.model_copy(update={"directory": b64url_encode(bytes(bad))})
        with pytest.raises(DirectorySignatureInvalid):
            verify_directory(tampered, anchor)


def test_wire_byte_flips_never_verify(bus: Bus) -> None:
    _populated(bus)
    wire = bus.registry.signed_directory().to_bytes()
    anchor = bus.config.anchor()
    for i in range(0, len(wire), max(1, len(wire) // 200)):
        bad = bytearray(wire)
        bad[i] ^= 0x01
        with pytest.raises(DirectoryError):
            verify_directory(bytes(bad), anchor)


def test_wrong_anchor_and_resigned_body_refused(bus: Bus) -> None:
    _populated(bus)
    signed = bus.registry.signed_directory()
    other = generate_agency_keys("xb-registry").current(KeyUse.SIGNING)
    with pytest.raises(DirectorySignatureInvalid):
        verify_directory(signed, other.ed25519().public_key())
    # an attacker's edit, re-signed with the attacker's key, against the real anchor
    d = verify_directory(signed, bus.config.anchor())
    forged = sign_directory(d.model_copy(update={"serial": d.serial + 100}), other.ed25519())
    with pytest.raises(DirectorySignatureInvalid):
        verify_directory(forged, bus.config.anchor())


def test_non_canonical_body_refused(bus: Bus) -> None:
    d = bus.registry.directory()
    key = bus.config.signing_key
    body = json.dumps(d.model_dump(mode="json"), indent=1).encode()
    signed = SignedDirectory(
        directory=b64url_encode(body),
        key_id=d.registry_key_id,
        signature=b64url_encode(key.sign(body)),
    )
    with pytest.raises(DirectoryMalformed, match="canonical"):
        verify_directory(signed, bus.config.anchor())


def test_older_or_equivocating_serial_refused(bus: Bus) -> None:
    anchor = bus.config.anchor()
    old = bus.registry.signed_directory()
    _populated(bus)
    new = bus.registry.signed_directory()
    current = verify_directory(new, anchor)
    with pytest.raises(DirectoryStale):
        verify_directory(old, anchor, current.serial)
    assert verify_directory(new, anchor, current.serial, last_seen_hash=current.directory_hash())
    twin = sign_directory(
        current.model_copy(update={"issued_at": current.issued_at + timedelta(seconds=1)}),
        bus.config.signing_key,
    )
    with pytest.raises(DirectoryStale, match="different content"):
        verify_directory(twin, anchor, current.serial, last_seen_hash=current.directory_hash())


def test_anchor_pins_key_id_and_country(bus: Bus) -> None:
    signed = bus.registry.signed_directory()
    a = bus.config.anchor()
    verify_directory(signed, TrustAnchor.model_validate_json(a.model_dump_json()))
    with pytest.raises(DirectorySignatureInvalid):
        verify_directory(signed, a.model_copy(update={"key_id": "other"}))
    with pytest.raises(DirectorySignatureInvalid):
        verify_directory(signed, a.model_copy(update={"country": "XB"}))


def test_old_signatures_verify_after_rotation(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    old = police.keys.current(KeyUse.SIGNING)
    signed_at = bus.clock()
    message = b"case event signed before rotation"
    signature = old.ed25519().sign(message)
    bus.clock.advance(3600)
    police.rotate()
    body = {"keys": [key_input(police.keys, u) for u in KeyUse]}
    r = bus.client.post("/v1/agencies/xa-police/keys", json=body, headers=bus.operator.auth())
    assert r.status_code == 200
    d = verify_directory(bus.registry.signed_directory(), bus.config.anchor())
    key = d.signing_key("xa-police", old.key_id, signed_at)
    assert key is not None and key.status == "retired"
    key.ed25519().verify(signature, message)  # raises if not
    # A planned rotation: the old key still counts for records reaching the transport
    # within the grace period (24 h by default), and not a moment after.
    rotated = bus.clock()
    assert d.signing_key("xa-police", old.key_id, rotated) is not None
    last = rotated + timedelta(hours=24) - timedelta(microseconds=1)
    assert d.signing_key("xa-police", old.key_id, last) is not None
    assert d.signing_key("xa-police", old.key_id, rotated + timedelta(hours=24)) is None
    assert d.current_signing_key("xa-police", bus.clock()).key_id != old.key_id
    assert (
        d.current_encryption_key("xa-police", bus.clock()).key_id
        == police.keys.current(KeyUse.ENCRYPTION).key_id
    )


def test_rebuilt_registry_signs_the_same_directory(bus: Bus) -> None:
    _populated(bus)
    police = bus.party("xa-police-2")
    bus.register(police, ["first-responder", "law-enforcement"], ["protection"])
    bus.client.post(
        "/v1/agencies/xa-shelter/status",
        json={"status": "suspended", "reason": "inspection"},
        headers=bus.operator.auth(),
    )
    bus.clock.advance(5)
    police.rotate()
    bus.client.post(
        "/v1/agencies/xa-police-2/keys",
        json={"keys": [key_input(police.keys, KeyUse.ENCRYPTION)]},
        headers=bus.operator.auth(),
    )
    before = bus.registry.signed_directory()
    rebuilt = bus.reopen()
    after = rebuilt.signed_directory()
    assert rebuilt.directory().directory_hash() == bus.registry.directory().directory_hash()
    assert after.to_bytes() == before.to_bytes()
    assert rebuilt.history(0, 1000) == bus.registry.history(0, 1000)


def test_query_helpers(bus: Bus) -> None:
    _populated(bus)
    d: Directory = bus.registry.directory()
    assert d.agency("xa-nobody") is None
    assert d.recipient("xa-shelter").role == "service-provider"
    ctx = CaseContext("services.delivered", service_providers=frozenset({"xa-shelter"}))
    assert d.may_read("xa-shelter", DataCategory.HEALTH, ctx)  # medical service
    assert d.may_read("xa-shelter", DataCategory.LOCATION, ctx)
    assert not d.may_read("xa-police", DataCategory.LOCATION, ctx)
    assert not d.may_read("xa-nobody", DataCategory.OPERATIONAL, ctx)
    with pytest.raises(LookupError):
        d.recipient("xa-nobody")
    suspended = d.model_copy(
        update={
            "agencies": [
                a.model_copy(update={"status": "suspended"}) if a.id == "xa-shelter" else a
                for a in d.agencies
            ]
        }
    )
    assert not suspended.may_read("xa-shelter", DataCategory.LOCATION, ctx)
    assert len(d.directory_hash()) == 64


def test_directory_client_refreshes_and_refuses_bad_directories(bus: Bus) -> None:
    anchor = bus.config.anchor()
    served: list[bytes] = [bus.registry.signed_directory().to_bytes()]
    client = DirectoryClient(
        lambda: served[-1], anchor, refresh_every=timedelta(seconds=60), clock=bus.clock
    )
    first = client.current()
    old_wire = served[-1]
    _populated(bus)
    served.append(bus.registry.signed_directory().to_bytes())
    assert client.current().serial == first.serial  # cached until refresh_every
    bus.clock.advance(61)
    assert client.current().serial > first.serial
    newest = client.serial
    # rollback to the old directory: refused, last good kept
    served.append(old_wire)
    with pytest.raises(DirectoryStale):
        client.refresh()
    bus.clock.advance(61)
    assert client.current().serial == newest and isinstance(client.last_error, DirectoryStale)
    # tampered: refused, last good kept
    tampered = bytearray(served[1])
    tampered[len(tampered) // 2] ^= 0x01
    served.append(bytes(tampered))
    with pytest.raises(DirectoryError):
        client.refresh()
    assert client.serial == newest


def test_directory_client_without_any_good_directory() -> None:
    def down() -> bytes:
        raise OSError("registry unreachable")

    key = generate_agency_keys("xa-registry").current(KeyUse.SIGNING).ed25519().public_key()
    client = DirectoryClient(down, key)
    with pytest.raises(DirectoryUnavailable):
        client.current()
