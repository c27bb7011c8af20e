"""The node's deletable case key store: pairwise case keys in SQLite, encrypted at rest.

One row per (case, sender, recipient, key id); the 256-bit key is stored only as
AES-256-GCM ciphertext under the node master key, with the row's identity as associated
data (a row copied onto another case or party fails to open). `delete_case` is the
node's part of erasure (crypto-shredding, see `contracts.sealing`).

What deletion guarantees: with `secure_delete` on, SQLite overwrites the freed row
content with zeros inside the database file; the WAL is checkpointed and truncated,
then VACUUM rewrites the file; after `delete_case` returns, the rows' bytes are in
neither the database file nor its WAL as read through the filesystem. Not guaranteed:
copies below the filesystem (SSD wear-levelling, copy-on-write snapshots, backups) and
Python's memory. Those remnants are ciphertext under the master key; `rotate_master_key`
re-encrypts every remaining row under a new master key, and once the old master key is
destroyed every remnant written before the rotation is unreadable too. Rotate after
erasures to make them final against forensic recovery.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.sealing import CaseKey
from contracts.sealing.keys import ad

_SCHEMA = """
CREATE TABLE IF NOT EXISTS case_keys (
    case_id   TEXT NOT NULL,
    sender    TEXT NOT NULL,
    recipient TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    wrapped   BLOB NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (case_id, sender, recipient, key_id)
)
"""


class CaseKeyStoreError(Exception):
    """A row does not open under the master key (wrong key, or the file was edited)."""


class SqliteCaseKeyStore:
    """`contracts.sealing.CaseKeyStore` on SQLite, key material encrypted at rest."""

    def __init__(self, path: str | Path, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the node master key is 256 bits")
        self._aead = AESGCM(master_key)
        # One connection shared by the node's threads (HTTP workers, inbox, relay):
        # every use holds this lock, so transactions never interleave.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _aad(case: str, sender: str, recipient: str, key_id: str) -> bytes:
        return ad("nrm/case-key-store/v1", case, sender, recipient, key_id)

    def _seal(self, aead: AESGCM, key: CaseKey) -> bytes:
        n = os.urandom(12)
        aad = self._aad(key.case, key.sender, key.recipient, key.key_id)
        return n + aead.encrypt(n, key.key, aad)

    def _open(self, row: tuple[str, str, str, str, bytes], aead: AESGCM | None = None) -> CaseKey:
        case, sender, recipient, key_id, wrapped = row
        try:
            key = (aead or self._aead).decrypt(
                wrapped[:12], wrapped[12:], self._aad(case, sender, recipient, key_id)
            )
        except InvalidTag:
            raise CaseKeyStoreError(f"row ({case}, {sender}→{recipient}, {key_id})") from None
        return CaseKey(case, sender, recipient, key_id, key)

    def put(self, key: CaseKey) -> None:
        self.put_many([key])

    def put_many(self, keys: Sequence[CaseKey]) -> None:
        """Keep several keys in one durable transaction (a new case's keys: one fsync)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            (seq,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM case_keys").fetchone()
            self._db.executemany(
                "INSERT OR REPLACE INTO case_keys VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (k.case, k.sender, k.recipient, k.key_id, self._seal(self._aead, k), seq + i)
                    for i, k in enumerate(keys, 1)
                ],
            )

    def get(self, case: str, sender: str, recipient: str, key_id: str) -> CaseKey | None:
        with self._lock:
            row = self._db.execute(
                "SELECT case_id, sender, recipient, key_id, wrapped FROM case_keys "
                "WHERE case_id = ? AND sender = ? AND recipient = ? AND key_id = ?",
                (case, sender, recipient, key_id),
            ).fetchone()
        return None if row is None else self._open(row)

    def current(self, case: str, sender: str, recipient: str) -> CaseKey | None:
        """The most recently stored key of the pair: the one a sender seals with."""
        with self._lock:
            row = self._db.execute(
                "SELECT case_id, sender, recipient, key_id, wrapped FROM case_keys "
                "WHERE case_id = ? AND sender = ? AND recipient = ? ORDER BY seq DESC LIMIT 1",
                (case, sender, recipient),
            ).fetchone()
        return None if row is None else self._open(row)

    def cases(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT case_id FROM case_keys")]

    def delete_case(self, case: str) -> int:
        """Delete every key of `case`, then push the freed bytes out of file and WAL."""
        with self._lock:
            with self._db:
                n = self._db.execute("DELETE FROM case_keys WHERE case_id = ?", (case,)).rowcount
            self._scrub()
        return n

    def _scrub(self) -> None:
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def rotate_master_key(self, new_master_key: bytes) -> int:
        """Re-encrypt every row under a new master key; destroy the old one afterwards."""
        new = AESGCM(new_master_key)
        with self._lock:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                rows = self._db.execute(
                    "SELECT case_id, sender, recipient, key_id, wrapped FROM case_keys"
                ).fetchall()
                for row in rows:
                    self._db.execute(
                        "UPDATE case_keys SET wrapped = ? "
                        "WHERE case_id = ? AND sender = ? AND recipient = ? AND key_id = ?",
                        (self._seal(new, self._open(row)), *row[:4]),
                    )
            self._aead = new
            self._scrub()
        return len(rows)
