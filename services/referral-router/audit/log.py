"""The node's verifiable audit log: an append-only RFC 9162 Merkle tree over its store.

Every envelope the node recorded (sent or received), in the store's commit order, is one
leaf: SHA-256(0x00 || RFC 8785 bytes of the whole signed envelope), ciphertext included,
plaintext never (the store holds none). The log is derived: it catches up from the
store's notification log and keeps, in its own SQLite file, the tree levels, one row per
leaf (index, store position, event id, leaf hash), the decisions seen (R7) and every
checkpoint it signed. Tree rows and leaf rows of a batch commit in one transaction, so a
crash never leaves them apart and a restart resumes after the last logged position.

Because the leaf table keeps the hash the log recorded, a row later rewritten, reordered
or deleted in the store no longer matches its leaf, and `nrm audit verify` names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.audit_verification import Decision, agency_of_origin, decision_of
from contracts.canonical import canonical_json
from contracts.transparency import (
    Checkpoint,
    MerkleTree,
    NoteSigner,
    NoteVerifier,
    hash_leaf,
    parse_note,
    sign_checkpoint,
)
from referral_router.audit.levels import SqliteLevelStore
from referral_router.store.case_store import CaseStore, Committed, LoggedEnvelope

Clock = Callable[[], datetime]


class AuditLogError(Exception):
    """Base of the audit log's errors; `status` is the HTTP status that fits."""

    status = 400


class UnknownEvent(AuditLogError, LookupError):
    """No leaf logs this event id (yet)."""

    status = 404


class AuditRangeError(AuditLogError, ValueError):
    """A size, index or range outside what the log holds."""

    status = 422


class NoCheckpoint(AuditLogError, LookupError):
    """No checkpoint has been issued yet."""

    status = 404


@dataclass(frozen=True)
class IssuedCheckpoint:
    """One signed checkpoint in the log's history."""

    seq: int
    size: int
    root: bytes
    note: str
    issued_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "size": self.size,
            "root": self.root.hex(),
            "issued_at": self.issued_at.isoformat(),
            "note": self.note,
        }


@dataclass(frozen=True)
class InclusionProof:
    event_id: str
    index: int
    size: int
    leaf_hash: bytes
    proof: list[bytes]

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "index": self.index,
            "size": self.size,
            "leaf_hash": self.leaf_hash.hex(),
            "proof": [p.hex() for p in self.proof],
        }


@dataclass(frozen=True)
class LeafView:
    """A leaf with the envelope the store holds for it now (None if gone or unreadable)."""

    index: int
    position: int
    event_id: str
    leaf_hash: bytes
    direction: str | None
    envelope: dict[str, Any] | None
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "position": self.position,
            "event_id": self.event_id,
            "leaf_hash": self.leaf_hash.hex(),
            "direction": self.direction,
            "envelope": self.envelope,
        }
        if self.problem:
            out["problem"] = self.problem
        return out


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_leaves ("
    " idx INTEGER PRIMARY KEY, position INTEGER NOT NULL UNIQUE,"
    " event_id TEXT NOT NULL, leaf_hash BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_leaves_event ON audit_leaves (event_id)",
    "CREATE TABLE IF NOT EXISTS audit_decisions (idx INTEGER PRIMARY KEY, decision TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_checkpoints ("
    " seq INTEGER PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL,"
    " note TEXT NOT NULL, issued_at TEXT NOT NULL)",
)


class AuditLog:
    """A node's append-only Merkle log over its `CaseStore`, with signed checkpoints.

    Thread-safe (one connection behind a lock), as FastAPI runs sync endpoints in a pool.
    `origin` is `<domain>/<country>/<agency>`; `signer` is the agency's Ed25519 signing
    key, the one the directory lists, so anyone holding the directory can verify.
    """

    def __init__(
        self,
        store: CaseStore,
        levels_db_path: str | Path,
        origin: str,
        signer: Ed25519PrivateKey,
        *,
        batch_size: int = 500,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.origin = origin
        self.agency_id = agency_of_origin(origin)[1]
        self._signer = NoteSigner(origin, signer)
        self._batch = batch_size
        self._clock = clock
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(levels_db_path), check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            self._conn.execute(statement)
        self._tree = MerkleTree(SqliteLevelStore(self._conn, "audit_levels"))
        #: Every store position up to this one is logged (None: not known yet).
        self._covered: int | None = None
        pinned = self._conn.execute("SELECT value FROM audit_meta WHERE key='origin'").fetchone()
        if pinned is None:
            self._conn.execute("INSERT INTO audit_meta VALUES ('origin', ?)", (origin,))
        elif pinned[0] != origin:
            self._conn.close()
            raise AuditLogError(f"{levels_db_path} is the log of {pinned[0]!r}, not {origin!r}")
        self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def verifier(self) -> NoteVerifier:
        return self._signer.verifier()

    @property
    def size(self) -> int:
        with self._lock:
            return self._tree.size

    def root(self, size: int | None = None) -> bytes:
        with self._lock:
            return self._tree.root(self._size_arg(size))

    # --- writing -------------------------------------------------------------------

    def follow(self) -> None:
        """Append what the store commits as it commits it, from memory (the envelopes'
        JSON as just written), instead of reading it back; a transaction the log did not
        see follow on from the last one (another process on the store) makes it catch up
        from the store first."""
        self.store.on_commit(self._committed)

    def _committed(self, c: Committed) -> None:
        with self._lock:
            if self._covered is not None and c.last <= self._covered:
                return
            if self._covered is None or c.first != self._covered + 1:
                self.catch_up()
                return
            self._append([(e.position, e.data, e.canonical) for e in c.envelopes])
            self._covered = c.last

    def catch_up(self) -> int:
        """Append every envelope recorded since the last logged position; returns how
        many. Idempotent, and safe after a crash: a batch commits whole or not at all."""
        added = 0
        with self._lock:
            upto = self.store.max_position()
            (last,) = self._conn.execute(
                "SELECT COALESCE(MAX(position), 0) FROM audit_leaves"
            ).fetchone()
            last = max(last, self._covered or 0)
            while last < upto:
                batch = self.store.log(after=last, limit=self._batch, upto=upto)
                if not batch:
                    break
                self._append(
                    [(e.position, e.envelope.model_dump(mode="json"), None) for e in batch]
                )
                added += len(batch)
                last = batch[-1].position
            self._covered = max(upto, self._covered or 0)
            return added

    def _append(self, batch: Sequence[tuple[int, Mapping[str, Any], bytes | None]]) -> None:
        """Leaves for (store position, envelope JSON, its canonical bytes if known)
        entries, in log order."""
        if not batch:
            return
        start = self._tree.size
        rows, decisions = [], []
        for i, (position, data, canonical) in enumerate(batch):
            h = hash_leaf(canonical or canonical_json(data))
            rows.append((position, str(data["id"]), h))
            d = decision_of(data)
            if d is not None:
                decisions.append((start + i, json.dumps(d.as_json())))
        self._append_leaves(rows, decisions)

    def _append_leaves(
        self,
        rows: Sequence[tuple[int, str, bytes]],
        decisions: Sequence[tuple[int, str]] = (),
    ) -> None:
        """Append (store position, event id, leaf hash) rows: tree and leaf table in one
        transaction. Separate from reading the store so tests can feed RFC vectors."""
        with self._lock:
            start = self._tree.size
            try:
                self._tree.extend_hashes([h for _, _, h in rows])
                self._conn.executemany(
                    "INSERT INTO audit_leaves VALUES (?, ?, ?, ?)",
                    [(start + i, p, e, h) for i, (p, e, h) in enumerate(rows)],
                )
                self._conn.executemany("INSERT INTO audit_decisions VALUES (?, ?)", decisions)
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise

    def issue_checkpoint(self) -> IssuedCheckpoint:
        """Catch up, then sign a checkpoint of the whole log. The same size gives the
        same note (Ed25519 is deterministic), so an unchanged log adds no history entry."""
        with self._lock:
            self.catch_up()
            size = self._tree.size
            latest = self._latest()
            if latest is not None and latest.size == size:
                return latest
            root = self._tree.root(size)
            note = sign_checkpoint(Checkpoint(self.origin, size, root), self._signer)
            at = self._clock().astimezone(UTC)
            cur = self._conn.execute(
                "INSERT INTO audit_checkpoints (size, root, note, issued_at) VALUES (?, ?, ?, ?)",
                (size, root, note, at.isoformat()),
            )
            self._conn.commit()
            assert cur.lastrowid is not None
            return IssuedCheckpoint(cur.lastrowid, size, root, note, at)

    def attach_cosignatures(self, seq: int, cosigned_note: str) -> None:
        """Keep witness cosignatures with checkpoint `seq`: its note is replaced by the
        same note with more signature lines, never by other signed text."""
        with self._lock:
            row = self._conn.execute(
                "SELECT note FROM audit_checkpoints WHERE seq = ?", (seq,)
            ).fetchone()
            if row is None:
                raise NoCheckpoint(f"no checkpoint #{seq}")
            mine, theirs = parse_note(row[0]), parse_note(cosigned_note)
            if theirs.text != mine.text or not set(mine.signatures) <= set(theirs.signatures):
                raise AuditLogError(f"not checkpoint #{seq} with cosignatures added")
            self._conn.execute(
                "UPDATE audit_checkpoints SET note = ? WHERE seq = ?", (cosigned_note, seq)
            )
            self._conn.commit()

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Issue a checkpoint every `interval` seconds until `stop` is set (periodic
        checkpoints for witnesses); the work runs in a thread, off the event loop."""
        while not stop.is_set():
            await asyncio.to_thread(self.issue_checkpoint)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    # --- checkpoints ---------------------------------------------------------------

    def _latest(self) -> IssuedCheckpoint | None:
        row = self._conn.execute(
            "SELECT seq, size, root, note, issued_at FROM audit_checkpoints "
            "ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return _checkpoint(row) if row else None

    def latest_checkpoint(self) -> IssuedCheckpoint:
        with self._lock:
            latest = self._latest()
        if latest is None:
            raise NoCheckpoint("no checkpoint issued yet: POST /v1/audit/checkpoints")
        return latest

    def checkpoints(self, start: int = 0, limit: int = 100) -> list[IssuedCheckpoint]:
        """History in issue order; `start` is the 0-based position in that history."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, size, root, note, issued_at FROM audit_checkpoints "
                "ORDER BY seq LIMIT ? OFFSET ?",
                (limit, start),
            ).fetchall()
        return [_checkpoint(r) for r in rows]

    def checkpoint_count(self) -> int:
        with self._lock:
            (n,) = self._conn.execute("SELECT COUNT(*) FROM audit_checkpoints").fetchone()
        return int(n)

    # --- proofs --------------------------------------------------------------------

    def _size_arg(self, size: int | None) -> int:
        current = self._tree.size
        if size is None:
            return current
        if not 0 <= size <= current:
            raise AuditRangeError(f"size {size} is not within 0..{current} (the log's size)")
        return size

    def leaf_index(self, event_id: str) -> int:
        """The first leaf that logs `event_id` (catching up once if it is not logged)."""
        with self._lock:
            for attempt in (0, 1):
                row = self._conn.execute(
                    "SELECT MIN(idx) FROM audit_leaves WHERE event_id = ?", (event_id,)
                ).fetchone()
                if row[0] is not None:
                    return int(row[0])
                if attempt == 0:
                    self.catch_up()
        raise UnknownEvent(f"event {event_id!r} is not in this node's log")

    def inclusion_proof(self, event_id: str, size: int | None = None) -> InclusionProof:
        """RFC 9162 inclusion proof of the event's leaf in the tree of `size` leaves
        (default: the whole log)."""
        with self._lock:
            index = self.leaf_index(event_id)
            n = self._size_arg(size)
            if index >= n:
                raise AuditRangeError(
                    f"event {event_id} is leaf {index}, not within a tree of size {n}"
                )
            return InclusionProof(
                event_id,
                index,
                n,
                self._tree.leaf_hash(index),
                self._tree.inclusion_proof(index, n),
            )

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """RFC 9162 proof that the tree of `new` leaves extends the one of `old` leaves."""
        with self._lock:
            n = self._size_arg(new)
            if not 0 <= old <= n:
                raise AuditRangeError(f"old size {old} is not within 0..{n} (the new size)")
            return self._tree.consistency_proof(old, n)

    # --- reading leaves ------------------------------------------------------------

    def leaves(self, start: int = 0, limit: int = 100) -> list[LeafView]:
        """Leaves [start, start+limit) with the envelopes the store holds for them now."""
        with self._lock:
            if start < 0 or limit < 1:
                raise AuditRangeError("start must be >= 0 and limit >= 1")
            rows = self._conn.execute(
                "SELECT idx, position, event_id, leaf_hash FROM audit_leaves "
                "WHERE idx >= ? ORDER BY idx LIMIT ?",
                (start, limit),
            ).fetchall()
        if not rows:
            return []
        stored = self._stored(rows[0][1], rows[-1][1], len(rows))
        out = []
        for idx, position, event_id, leaf_hash in rows:
            found = stored.get(position)
            if isinstance(found, LoggedEnvelope):
                env = found.envelope.model_dump(mode="json")
                out.append(LeafView(idx, position, event_id, leaf_hash, found.direction, env))
            else:
                problem = found or "the store no longer holds this position"
                out.append(LeafView(idx, position, event_id, leaf_hash, None, None, problem))
        return out

    def _stored(self, first: int, last: int, count: int) -> dict[int, LoggedEnvelope | str]:
        """Store entries by position in [first, last]; a value is a problem text when the
        row cannot be read (rewritten into something that is no envelope)."""
        try:
            batch = self.store.log(after=first - 1, limit=count)
            return {e.position: e for e in batch if e.position <= last}
        except Exception:  # a rewritten row: fall back to one read per position
            pass
        with self._lock:
            positions = [
                p
                for (p,) in self._conn.execute(
                    "SELECT position FROM audit_leaves WHERE position BETWEEN ? AND ?",
                    (first, last),
                )
            ]
        out: dict[int, LoggedEnvelope | str] = {}
        for p in positions:
            try:
                got = self.store.log(after=p - 1, limit=1)
            except Exception as exc:  # any decoding failure of a tampered row
                out[p] = f"the stored row is unreadable: {type(exc).__name__}"
                continue
            if got and got[0].position == p:
                out[p] = got[0]
        return out

    def decisions(self, start: int = 0, limit: int = 100) -> list[tuple[int, Decision]]:
        """Decisions (R7) from leaf index `start` on: (leaf index, decision)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT idx, decision FROM audit_decisions WHERE idx >= ? ORDER BY idx LIMIT ?",
                (start, limit),
            ).fetchall()
        out = []
        for idx, text in rows:
            d = json.loads(text)
            out.append(
                (
                    int(idx),
                    Decision(
                        d["event_id"],
                        d["type"],
                        d["case"],
                        d["time"],
                        d["agency"],
                        d["officer"],
                        d["details"],
                    ),
                )
            )
        return out


def _checkpoint(row: Sequence[Any]) -> IssuedCheckpoint:
    seq, size, root, note, issued_at = row
    return IssuedCheckpoint(
        int(seq), int(size), bytes(root), note, datetime.fromisoformat(issued_at)
    )
