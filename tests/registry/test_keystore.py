"""Keystores: sealed with a passphrase, tamper-evident, keys usable after reopening."""

from __future__ import annotations

import json

import pytest

from contracts.directory import HPKE_SUITE, KeyUse
from contracts.keystore import (
    KeystoreError,
    generate_agency_keys,
    open_keystore,
    read_public,
    rotated,
    seal_keystore,
)

FAST = 10  # scrypt log2(N) for tests; the default is 15


def test_round_trip_and_keys_work() -> None:
    keys = generate_agency_keys("xa-shelter")
    keys, new = rotated(keys, (KeyUse.ENCRYPTION,))
    data = seal_keystore(keys, "correct horse", log2_n=FAST)
    opened = open_keystore(data, "correct horse")
    assert [p.key_id for p in opened.pairs] == [p.key_id for p in keys.pairs]
    # the hybrid ML-KEM-768+X25519 key, rebuilt from its parts, opens what was sealed to it
    for pair in (keys.pairs[1], new[0]):
        record = pair.public_record()
        ct = HPKE_SUITE.encrypt(b"category key", record.hpke(), info=b"nrm")
        assert HPKE_SUITE.decrypt(ct, opened.pair(pair.key_id).hpke(), info=b"nrm") == (
            b"category key"
        )
    sig = opened.current(KeyUse.SIGNING).ed25519().sign(b"m")
    keys.current(KeyUse.SIGNING).public_record().ed25519().verify(sig, b"m")


def test_no_private_material_in_clear_or_repr() -> None:
    keys = generate_agency_keys("xa-police")
    data = seal_keystore(keys, "pw", log2_n=FAST)
    for pair in keys.pairs:
        assert pair.private.hex() not in data.hex()
        assert pair.private.hex() not in repr(pair) and "private" not in repr(pair)
    assert read_public(data).agency_id == "xa-police"


def test_wrong_passphrase_tamper_and_empty() -> None:
    keys = generate_agency_keys("xa-police")
    data = seal_keystore(keys, "pw", log2_n=FAST)
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        open_keystore(data, "not pw")
    with pytest.raises(KeystoreError, match="required"):
        seal_keystore(keys, "", log2_n=FAST)
    doc = json.loads(data)
    doc["agency_id"] = "xa-impostor"
    with pytest.raises(KeystoreError, match="tampered"):
        open_keystore(json.dumps(doc).encode(), "pw")
    with pytest.raises(KeystoreError):
        open_keystore(b"not json", "pw")
