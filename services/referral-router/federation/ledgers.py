"""A gateway's small stores, clear data and ciphertext only: the forwardings a node
received across the border, and the crossing ledger operators list."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts.envelope import Envelope
from contracts.vocabulary import DataCategory


def _open(path: Path, schema: str) -> sqlite3.Connection:
    """One connection shared by the gateway's threads (each use holds the owner's lock)."""
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute(schema)
    return db


class ForwardingStore:
    """The forwardings a node received across the border, by (event id, recipient).

    A forwarding holds the original envelope's ciphertexts and the key wraps for this
    node: no plaintext, so it may sit beside the node's store. Its rows go with the case
    on an erasure order (`delete_case`), as the case keys do: nothing of an erased case
    is kept that a key could ever open again."""

    def __init__(self, path: Path) -> None:
        self._db = _open(
            path,
            "CREATE TABLE IF NOT EXISTS forwardings (event_id TEXT, recipient TEXT, "
            "forwarding BLOB NOT NULL, case_id TEXT, PRIMARY KEY (event_id, recipient))",
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


@dataclass(frozen=True)
class Crossing:
    """One event at the border, as a gateway saw it: clear facts only."""

    seq: int
    direction: str  # out | in
    peer: str
    event_id: str
    event_type: str
    case: str
    agency: str  # the counterpart it was (to be) delivered to
    categories: tuple[str, ...]  # the categories re-wrapped for it
    outcome: str  # crossed | refused
    rule: str
    reason: str
    at: str

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "categories": list(self.categories)}


class CrossingLedger:
    """Each gateway's own list of what crossed or was refused (for operators and demos;
    the audit logs are derived from the node stores, not from this)."""

    def __init__(self, path: Path) -> None:
        self._db = _open(
            path,
            "CREATE TABLE IF NOT EXISTS crossings (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "direction TEXT, peer TEXT, event_id TEXT, event_type TEXT, 'case' TEXT, "
            "agency TEXT, categories TEXT, outcome TEXT, rule TEXT, reason TEXT, at TEXT)",
        )
        self._lock = threading.Lock()

    def record(
        self,
        direction: str,
        peer: str,
        env: Envelope,
        agency: str,
        categories: frozenset[DataCategory] | tuple[str, ...] = (),
        rule: str = "",
        reason: str = "",
    ) -> None:
        cats = ",".join(sorted(str(c) for c in categories))
        with self._lock:
            self._db.execute(
                "INSERT INTO crossings (direction, peer, event_id, event_type, 'case', agency, "
                "categories, outcome, rule, reason, at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    direction,
                    peer,
                    str(env.id),
                    env.type,
                    env.subject,
                    agency,
                    cats,
                    "refused" if rule else "crossed",
                    rule,
                    reason,
                    datetime.now(UTC).isoformat(),
                ),
            )

    def crossed(self, direction: str, event_id: str, agency: str) -> bool:
        """Whether the event already crossed this way for `agency`."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM crossings WHERE direction = ? AND event_id = ? AND agency = ? "
                "AND outcome = 'crossed' LIMIT 1",
                (direction, event_id, agency),
            ).fetchone()
        return row is not None

    def list(self, after: int = 0, limit: int = 100) -> list[Crossing]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM crossings WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return [
            Crossing(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                tuple(filter(None, r[7].split(","))),
                *r[8:],
            )
            for r in rows
        ]

    def close(self) -> None:
        self._db.close()
