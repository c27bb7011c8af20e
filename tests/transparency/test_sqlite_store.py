"""The SQLite level store gives the same roots and proofs as the in-memory one, writes
inside the caller's transaction, and refuses a second write at the same position."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from contracts.transparency import LevelStore, MerkleTree, verify_consistency
from referral_router.audit.levels import SqliteLevelStore


def _open(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path)


def test_same_roots_and_proofs_as_memory(tmp_path: Path) -> None:
    conn = _open(tmp_path / "node.db")
    store = SqliteLevelStore(conn)
    assert isinstance(store, LevelStore)
    on_disk, in_memory = MerkleTree(store), MerkleTree()
    for i in range(37):
        on_disk.append(b"e%d" % i)
        in_memory.append(b"e%d" % i)
    on_disk.extend(b"b%d" % i for i in range(40))
    in_memory.extend(b"b%d" % i for i in range(40))
    conn.commit()
    conn.close()

    reopened = MerkleTree(SqliteLevelStore(_open(tmp_path / "node.db")))
    n = in_memory.size
    assert reopened.size == n == 77
    for size in range(n + 1):
        assert reopened.root(size) == in_memory.root(size)
        for index in range(0, size, 7):
            assert reopened.inclusion_proof(index, size) == in_memory.inclusion_proof(index, size)
        for old in range(0, size + 1, 5):
            assert reopened.consistency_proof(old, size) == in_memory.consistency_proof(old, size)
    verify_consistency(10, n, in_memory.root(10), reopened.root(), reopened.consistency_proof(10))


def test_writes_follow_the_callers_transaction(tmp_path: Path) -> None:
    conn = _open(tmp_path / "node.db")
    tree = MerkleTree(SqliteLevelStore(conn))
    tree.extend([b"a", b"b", b"c"])
    conn.commit()
    root3 = tree.root()
    tree.append(b"d")
    assert tree.size == 4
    conn.rollback()  # the events were not committed: neither are their leaves
    assert tree.size == 3 and tree.root() == root3
    other = MerkleTree(SqliteLevelStore(_open(tmp_path / "node.db")))
    assert other.size == 3


def test_a_second_writer_at_the_same_position_fails(tmp_path: Path) -> None:
    conn = _open(tmp_path / "node.db")
    store = SqliteLevelStore(conn)
    MerkleTree(store).append(b"x")
    with pytest.raises(sqlite3.IntegrityError):
        store.append(0, 0, [bytes(32)])
    with pytest.raises(IndexError, match="no hash at level 3"):
        store.get(3, 0)
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        SqliteLevelStore(conn, table="levels; DROP TABLE x")
