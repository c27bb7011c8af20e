"""The embedded transport's storage: Kafka's partitioned log in one SQLite file.

One file holds topics, records keyed by (topic, partition, offset) and committed offsets
keyed by (group, topic, partition), so a crashed process loses nothing it acknowledged:
every append and commit is one transaction, and WAL with ``synchronous=FULL`` makes the
commit durable before it returns. Blocking calls; the transport runs them in threads.
One connection behind a lock keeps ``:memory:`` databases working and writes serialised.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .base import Headers, Message, Position, Record, TopicPartition, UnknownTopicError
from .partitioning import partition_for

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL CHECK (partitions > 0)
);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    headers BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS committed_offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
"""


def encode_headers(headers: Headers) -> bytes:
    """Length-prefixed pairs: order, duplicates and arbitrary bytes survive exactly."""
    out = [struct.pack(">I", len(headers))]
    for name, value in headers:
        raw = name.encode()
        out.append(struct.pack(">I", len(raw)) + raw + struct.pack(">I", len(value)) + value)
    return b"".join(out)


def decode_headers(data: bytes) -> Headers:
    (count,) = struct.unpack_from(">I", data, 0)
    pos, pairs = 4, []
    for _ in range(count):
        (n,) = struct.unpack_from(">I", data, pos)
        name = data[pos + 4 : pos + 4 + n].decode()
        pos += 4 + n
        (v,) = struct.unpack_from(">I", data, pos)
        pairs.append((name, bytes(data[pos + 4 : pos + 4 + v])))
        pos += 4 + v
    return tuple(pairs)


class SqliteLog:
    """Topics, partitions and offsets over one SQLite database (file or ``:memory:``)."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:") -> None:
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA secure_delete=ON")  # deleted records are overwritten
        self._db.executescript(_SCHEMA)
        self._partitions: dict[str, int] = dict(
            self._db.execute("SELECT name, partitions FROM topics").fetchall()
        )
        self._ends: dict[TopicPartition, int] = {
            (t, p): end
            for t, p, end in self._db.execute(
                'SELECT topic, partition, MAX("offset") + 1 FROM records GROUP BY 1, 2'
            )
        }

    def create_topics(self, names: Iterable[str], partitions: int) -> list[str]:
        """Create the missing topics; returns the names created now."""
        if partitions <= 0:
            raise ValueError("a topic has at least one partition")
        with self._lock:
            new = [n for n in dict.fromkeys(names) if n not in self._partitions]
            if new:
                with self._transaction():
                    self._db.executemany(
                        "INSERT INTO topics (name, partitions) VALUES (?, ?)",
                        [(n, partitions) for n in new],
                    )
                self._partitions.update(dict.fromkeys(new, partitions))
            return new

    def partitions(self, topic: str) -> int | None:
        """Partition count of ``topic``, None if it does not exist."""
        return self._partitions.get(topic)

    def end_offset(self, tp: TopicPartition) -> int:
        """The offset the next record of ``tp`` will get (Kafka's high watermark)."""
        return self._ends.get(tp, 0)

    def append(self, messages: Sequence[Message]) -> list[Position]:
        """Append a batch in one durable transaction; offsets assigned in batch order."""
        now = time.time_ns() // 1_000_000
        with self._lock:
            missing = {m.topic for m in messages if m.topic not in self._partitions}
            if missing:
                raise UnknownTopicError(f"unknown topic(s): {sorted(missing)}")
            ends: dict[TopicPartition, int] = {}
            rows, positions = [], []
            for m in messages:
                tp = (m.topic, partition_for(m.key, self._partitions[m.topic]))
                offset = ends.get(tp, self._ends.get(tp, 0))
                ends[tp] = offset + 1
                rows.append((*tp, offset, m.key, m.value, encode_headers(m.headers), now))
                positions.append(Position(tp[0], tp[1], offset))
            with self._transaction():
                self._db.executemany(
                    'INSERT INTO records (topic, partition, "offset", key, value, headers, '
                    "timestamp_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            self._ends.update(ends)
            return positions

    def read(self, tp: TopicPartition, start: int, limit: int) -> list[Record]:
        """Records of ``tp`` from offset ``start`` on, at most ``limit``."""
        if limit <= 0 or start >= self.end_offset(tp):
            return []
        with self._lock:
            rows = self._db.execute(
                'SELECT "offset", key, value, headers, timestamp_ms FROM records '
                'WHERE topic = ? AND partition = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
                (*tp, start, limit),
            ).fetchall()
        return [
            Record(tp[0], tp[1], o, bytes(k), bytes(v), decode_headers(h), ts, appended_at=True)
            for o, k, v, h, ts in rows
        ]

    def committed(self, group_id: str, tp: TopicPartition) -> int | None:
        """The group's committed next offset for ``tp``, None if it never committed."""
        with self._lock:
            row = self._db.execute(
                "SELECT next_offset FROM committed_offsets "
                "WHERE group_id = ? AND topic = ? AND partition = ?",
                (group_id, *tp),
            ).fetchone()
        return None if row is None else int(row[0])

    def commit(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Store the group's next offsets, all in one durable transaction."""
        with self._lock, self._transaction():
            self._db.executemany(
                "INSERT INTO committed_offsets (group_id, topic, partition, next_offset) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (group_id, topic, partition) "
                "DO UPDATE SET next_offset = excluded.next_offset",
                [(group_id, t, p, o) for (t, p), o in offsets.items()],
            )

    def delete_before(self, offsets: Mapping[TopicPartition, int]) -> int:
        """Delete records before each offset; end offsets stay (Kafka's DeleteRecords).

        Freed pages are zeroed (secure_delete) and the WAL is checkpointed and truncated,
        so the deleted bytes leave both files."""
        with self._lock:
            with self._transaction():
                deleted = 0
                for (topic, partition), before in offsets.items():
                    cur = self._db.execute(
                        'DELETE FROM records WHERE topic = ? AND partition = ? AND "offset" < ?',
                        (topic, partition, before),
                    )
                    deleted += cur.rowcount
            if deleted:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return deleted

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error (the caller holds the lock)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
