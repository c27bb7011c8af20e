"""Erasure: once every node deletes the case's keys, no remaining secret opens the log."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from contracts.sealing import (
    HPKE_SUITE,
    ErasureIncomplete,
    Withheld,
    erase_case,
    forward,
    open_envelope,
    prove_unopenable,
)
from contracts.sealing.grants import _info
from contracts.sealing.keys import b64d
from contracts.vocabulary import DataCategory
from referral_router.sealing.case_keys import SqliteCaseKeyStore
from tests.sealing.world import CASE, T0, World, requested, screened

OTHER_CASE = "case-99999999aaaa"


def _secrets_of(world: World, masters: list[bytes]) -> list[bytes]:
    """Every long-term secret that survives erasure, raw and hashed, as 32-byte keys."""
    raw: list[bytes] = list(masters)
    for a in world.agencies.values():
        raw.append(
            a.signing.private_key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )
        hp = a.hpke.private_bytes()
        raw += [hp[:32], hp[32:64], hp[64:], hashlib.sha256(hp).digest()]
    return raw + [hashlib.sha256(r).digest() for r in raw]


def test_erasure_leaves_every_field_unrecoverable(tmp_path: Path) -> None:
    world = World()
    # The router of authority-d keeps its case keys in the SQLite store.
    master = b"\x11" * 32
    sqlite = SqliteCaseKeyStore(tmp_path / "keys.db", master)
    world["authority-d"].store = sqlite  # type: ignore[assignment]

    log = [
        world.send(
            "police-a", ["shelter-b", "authority-d", "clinic-c"], requested(), "referral.requested"
        ),
        world.send("police-a", ["authority-d", "consulate-e"], screened(), "case.screened"),
    ]
    f = world["shelter-b"]
    fwd = forward(
        log[0],
        forwarder=f.signing,
        recipient="clinic-c",
        entitled=frozenset(DataCategory),
        case_key_lookup=f.store.get,
        new_case_key=world.deliver(CASE, "shelter-b", "clinic-c"),
        id=uuid.uuid4(),
        time=T0 + timedelta(hours=1),
        public_key_lookup=world.lookup,
    )
    log.append(fwd)
    # An unrelated case must survive the erasure.
    keep = world.send("police-a", ["authority-d"], screened(), "case.screened", case=OTHER_CASE)
    log_bytes = [e.canonical_bytes() for e in log]

    stores = [a.store for a in world.agencies.values()]
    with pytest.raises(ErasureIncomplete):
        prove_unopenable(log[0], [s.get for s in stores])

    deleted = erase_case(CASE, *stores)
    assert deleted >= 8

    secrets = _secrets_of(world, [master])
    for item in log:
        proof = prove_unopenable(item, [s.get for s in stores], secrets)
        assert proof.wraps_checked and proof.fields_checked
    # Every node, with its own store, now sees only withheld fields.
    for a in world.agencies.values():
        for item in log:
            opened = open_envelope(item, a.id, a.store.get, world.lookup)
            assert not opened.opened
            assert all(
                isinstance(v, Withheld) for k, v in opened.values.items() if k not in item_ops(item)
            )
    # Nothing in the log is sealed to a long-term HPKE key: try every blob anyway, with
    # every agency's HPKE private key and every grant context the log could name.
    blobs = {
        b64d(m.decode())
        for wire in log_bytes
        for m in re.findall(rb'"([A-Za-z0-9_-]{40,})"', wire)
        if _is_b64(m.decode())
    }
    kids = _kids(log_bytes)
    opened_any = 0
    for blob, a, sender, kid in itertools.product(
        blobs, world.agencies.values(), world.agencies, kids
    ):
        try:
            HPKE_SUITE.decrypt(blob, a.hpke.private_key, info=_info(CASE, sender, a.id, kid))
            opened_any += 1
        except Exception:
            pass
    assert opened_any == 0
    assert len(blobs) > 20 and len(kids) == 5
    # Indeed no logged blob is even as long as an ML-KEM-768+X25519 encapsulation.
    assert max(map(len, blobs)) < 1088 + 32
    # The SQLite file and WAL no longer hold the case's rows; the other case still opens.
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert CASE.encode() not in raw
    assert OTHER_CASE.encode() in raw
    kept = open_envelope(keep, "authority-d", sqlite.get, world.lookup)
    assert DataCategory.EXPLOITATION_ACCOUNT in kept.opened
    sqlite.close()


def item_ops(item) -> set[str]:
    env = getattr(item, "original", item)
    return set(env.operational)


def _is_b64(text: str) -> bool:
    try:
        b64d(text)
    except ValueError:
        return False
    return True


def _kids(log_bytes: list[bytes]) -> set[str]:
    kids: set[str] = set()
    for wire in log_bytes:
        doc = json.loads(wire)
        for layer in (doc.get("sealed", doc.get("original", {}).get("sealed", {})), doc):
            for w in layer.get("wraps", {}).values():
                kids.add(w["kid"])
    return kids


def test_erase_case_is_idempotent_and_scoped() -> None:
    world = World()
    world.send("police-a", ["shelter-b"], requested(), "referral.requested")
    world.send("police-a", ["shelter-b"], requested(), "referral.requested", case=OTHER_CASE)
    stores = [a.store for a in world.agencies.values()]
    assert erase_case(CASE, *stores) == 3  # police self key, police→shelter at both ends
    assert erase_case(CASE, *stores) == 0
    assert len(world["shelter-b"].store) == 1
