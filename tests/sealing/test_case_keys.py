"""The router's SQLite case key store: encrypted at rest, and deletion that leaves no bytes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from contracts.sealing import new_case_key
from referral_router.sealing.case_keys import CaseKeyStoreError, SqliteCaseKeyStore

CASE = "case-0123456789abcdef"
OTHER = "case-fedcba9876543210"
MASTER = bytes(range(32))


def _raw(dir_: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(dir_.iterdir()) if p.is_file())


def test_put_get_current_and_encrypted_at_rest(tmp_path: Path) -> None:
    store = SqliteCaseKeyStore(tmp_path / "k.db", MASTER)
    a = new_case_key(CASE, "police-a", "shelter-b")
    b = new_case_key(CASE, "police-a", "shelter-b")
    store.put(a)
    store.put(b)
    assert store.get(CASE, "police-a", "shelter-b", a.key_id) == a
    assert store.current(CASE, "police-a", "shelter-b") == b
    assert store.get(CASE, "police-a", "clinic-c", a.key_id) is None
    assert a.key not in _raw(tmp_path) and b.key not in _raw(tmp_path)
    store.close()
    with pytest.raises(CaseKeyStoreError):
        SqliteCaseKeyStore(tmp_path / "k.db", b"\x00" * 32).get(
            CASE, "police-a", "shelter-b", a.key_id
        )


def test_a_row_moved_to_another_case_does_not_open(tmp_path: Path) -> None:
    store = SqliteCaseKeyStore(tmp_path / "k.db", MASTER)
    a = new_case_key(CASE, "police-a", "shelter-b")
    store.put(a)
    db = sqlite3.connect(tmp_path / "k.db")
    db.execute("UPDATE case_keys SET case_id = ?", (OTHER,))
    db.commit()
    db.close()
    with pytest.raises(CaseKeyStoreError):
        store.get(OTHER, "police-a", "shelter-b", a.key_id)


def test_delete_case_removes_the_bytes_from_file_and_wal(tmp_path: Path) -> None:
    store = SqliteCaseKeyStore(tmp_path / "k.db", MASTER)
    doomed = [new_case_key(CASE, "police-a", r) for r in ("shelter-b", "clinic-c", "police-a")]
    kept = new_case_key(OTHER, "police-a", "shelter-b")
    for k in [*doomed, kept]:
        store.put(k)
    wrapped = [
        row[0]
        for row in store._db.execute("SELECT wrapped FROM case_keys WHERE case_id = ?", (CASE,))
    ]
    assert all(w in _raw(tmp_path) for w in wrapped)  # in the file or its WAL before
    assert store.delete_case(CASE) == 3
    raw = _raw(tmp_path)
    for w in wrapped:
        assert w not in raw
    assert CASE.encode() not in raw
    assert store.get(CASE, "police-a", "shelter-b", doomed[0].key_id) is None
    assert store.get(OTHER, "police-a", "shelter-b", kept.key_id) == kept
    assert store.cases() == [OTHER]


def test_rotate_master_key(tmp_path: Path) -> None:
    store = SqliteCaseKeyStore(tmp_path / "k.db", MASTER)
    k = new_case_key(CASE, "police-a", "shelter-b")
    store.put(k)
    new_master = b"\x42" * 32
    assert store.rotate_master_key(new_master) == 1
    store.close()
    with pytest.raises(CaseKeyStoreError):
        SqliteCaseKeyStore(tmp_path / "k.db", MASTER).get(CASE, "police-a", "shelter-b", k.key_id)
    assert (
        SqliteCaseKeyStore(tmp_path / "k.db", new_master).get(
            CASE, "police-a", "shelter-b", k.key_id
        )
        == k
    )
