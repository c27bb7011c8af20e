"""A gateway's crossing ledger, clear data only: what crossed or was refused, for
operators to list."""

from __future__ import annotations

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
