"""SQLite storage for the node's verifiable log: the `LevelStore` of the Merkle tree.

One row per perfect-subtree hash, keyed (level, idx). Rows are written inside the
caller's transaction and never committed here, so the log's leaves and the events they
hash are committed (or rolled back) together; the primary key makes a second writer at
the same position fail instead of forking the tree.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

from contracts.transparency.hasher import HASH_SIZE

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class SqliteLevelStore:
    """A `contracts.transparency.LevelStore` in one table of a given sqlite3 connection."""

    def __init__(self, conn: sqlite3.Connection, table: str = "audit_levels") -> None:
        if not _IDENT.fullmatch(table):
            raise ValueError(f"table name {table!r} is not a plain SQL identifier")
        self._conn = conn
        self._table = table
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} ("
            "level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, "
            "PRIMARY KEY (level, idx)) WITHOUT ROWID"
        )
        self._get_sql = f"SELECT hash FROM {table} WHERE level = ? AND idx = ?"
        self._size_sql = f"SELECT MAX(idx) FROM {table} WHERE level = ?"
        self._insert_sql = f"INSERT INTO {table} (level, idx, hash) VALUES (?, ?, ?)"

    def get(self, level: int, index: int) -> bytes:
        row = self._conn.execute(self._get_sql, (level, index)).fetchone()
        if row is None:
            raise IndexError(f"no hash at level {level}, index {index} in {self._table}")
        return bytes(row[0])

    def size(self, level: int) -> int:
        (top,) = self._conn.execute(self._size_sql, (level,)).fetchone()
        return 0 if top is None else top + 1

    def append(self, level: int, start: int, hashes: Sequence[bytes]) -> None:
        """Insert without committing; a duplicate (level, idx) raises IntegrityError."""
        for h in hashes:
            if len(h) != HASH_SIZE:
                raise ValueError(f"hash is {len(h)} bytes, expected {HASH_SIZE}")
        self._conn.executemany(
            self._insert_sql, ((level, start + i, h) for i, h in enumerate(hashes))
        )
