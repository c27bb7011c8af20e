"""The forwardings a node received (R10), kept beside its store: its only way to open
the events they carry.

A forwarding holds the original envelope's ciphertexts and the key wraps for this node:
no plaintext, so it may sit beside the node's store. Whether it came from an agency of
this country passing a case on, or across a border from a peer's gateway, it is kept
by (event id, recipient) and goes with the case on an erasure order.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from contracts.sealing import Forwarding


class ForwardingStore:
    """The forwardings a node received, by (event id, recipient).

    A forwarding holds the original envelope's ciphertexts and the key wraps for this
    node: no plaintext, so it may sit beside the node's store. Its rows go with the case
    on an erasure order (`delete_case`), as the case keys do: nothing of an erased case
    is kept that a key could ever open again."""

    def __init__(self, path: Path) -> None:
        # One connection shared by the node's threads: every use holds the lock.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS forwardings (event_id TEXT, recipient TEXT, "
            "forwarding BLOB NOT NULL, case_id TEXT, PRIMARY KEY (event_id, recipient))"
        )
        self._db.execute("PRAGMA secure_delete = ON")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(forwardings)")}
        if "case_id" not in columns:  # a store kept before erasure reached forwardings
            self._db.execute("ALTER TABLE forwardings ADD COLUMN case_id TEXT")
        self._lock = threading.Lock()

    def put(self, event_id: str, recipient: str, data: bytes, case: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO forwardings VALUES (?, ?, ?, ?)",
                (event_id, recipient, data, case),
            )

    def keep(self, fw: Forwarding) -> None:
        """Keep a forwarding believed for its recipient."""
        env = fw.original
        self.put(str(env.id), fw.recipient, fw.canonical_bytes(), env.subject)

    def delete_case(self, case: str) -> int:
        """Forget every forwarding of the case (rows kept before the case column are
        found by the case their forwarding names)."""
        with self._lock:
            n = self._db.execute("DELETE FROM forwardings WHERE case_id = ?", (case,)).rowcount
            legacy = self._db.execute(
                "SELECT event_id, recipient, forwarding FROM forwardings WHERE case_id IS NULL"
            ).fetchall()
            for event_id, recipient, data in legacy:
                if json.loads(data)["original"]["subject"] == case:
                    self._db.execute(
                        "DELETE FROM forwardings WHERE event_id = ? AND recipient = ?",
                        (event_id, recipient),
                    )
                    n += 1
            self._db.execute("VACUUM")
        return n

    def get(self, event_id: str, recipient: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT forwarding FROM forwardings WHERE event_id = ? AND recipient = ?",
                (event_id, recipient),
            ).fetchone()
        return bytes(row[0]) if row else None

    def close(self) -> None:
        self._db.close()
