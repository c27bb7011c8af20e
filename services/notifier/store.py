"""The notifier's durable state in one SQLite file: cursors, notifications, deliveries
with their attempts and dead letters, open deadlines and escalations.

One transaction per log page inserts its notifications, their deliveries and deadline
changes and advances the cursor, so a crash either keeps all of it or none (the page is
read again, and unique notification ids make that a no-op): no notification is lost and
none is created twice. Plain `sqlite3` in WAL mode; every method takes the lock, so the
HTTP API (threads) and the loops (event loop) can share one store.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from notifier.deadlines import Change, Close, Escalated, Open
from notifier.notifications import Notification

SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    agency TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY, agency TEXT NOT NULL, webhook_url TEXT NOT NULL,
    event_types TEXT NOT NULL, secret_sealed TEXT, registry_status TEXT NOT NULL,
    local_status TEXT NOT NULL DEFAULT 'active', local_reason TEXT, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, agency TEXT NOT NULL,
    kind TEXT NOT NULL, type TEXT NOT NULL, body BLOB NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS notifications_agency ON notifications (agency, seq);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, subscription TEXT NOT NULL,
    notification_seq INTEGER NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, tries INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, last_error TEXT, updated_at TEXT NOT NULL,
    UNIQUE (subscription, notification_seq));
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_at);
CREATE TABLE IF NOT EXISTS attempts (
    delivery INTEGER NOT NULL, number INTEGER NOT NULL, at TEXT NOT NULL,
    status_code INTEGER, error TEXT, duration_ms INTEGER NOT NULL, outcome TEXT NOT NULL,
    PRIMARY KEY (delivery, number));
CREATE TABLE IF NOT EXISTS dead_letters (
    delivery INTEGER PRIMARY KEY, subscription TEXT NOT NULL, notification_id TEXT NOT NULL,
    reason TEXT NOT NULL, at TEXT NOT NULL, replayed_at TEXT);
CREATE TABLE IF NOT EXISTS deadlines (
    agency TEXT NOT NULL, kind TEXT NOT NULL, about_event_id TEXT NOT NULL,
    case_pseudonym TEXT NOT NULL, key TEXT NOT NULL, due TEXT NOT NULL, due_ts REAL NOT NULL,
    action TEXT NOT NULL, target TEXT, status TEXT NOT NULL, resolved_by TEXT, detail TEXT,
    tries INTEGER NOT NULL DEFAULT 0, next_try_ts REAL NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL, PRIMARY KEY (agency, kind, about_event_id));
CREATE INDEX IF NOT EXISTS deadlines_open ON deadlines (agency, status, due_ts);
"""


@dataclass(frozen=True)
class StoredSubscription:
    id: str
    agency_id: str
    webhook_url: str
    event_types: frozenset[str]
    secret_sealed: dict[str, Any] | None
    registry_status: str
    local_status: str
    local_reason: str | None

    @property
    def active(self) -> bool:
        return self.registry_status == "active" and self.local_status == "active"

    def wants(self, event_type: str) -> bool:
        return event_type in self.event_types


@dataclass(frozen=True)
class DueDelivery:
    id: int
    subscription: str
    notification_id: str
    body: bytes
    attempts: int
    tries: int


@dataclass(frozen=True)
class DueDeadline:
    agency: str
    kind: str
    about_event_id: str
    case: str
    due: datetime
    action: str
    tries: int
    target: datetime | None
    key: str = ""


class NotifierStore:
    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def ping(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM cursors").fetchone()[0])

    # -- cursor and ingestion -----------------------------------------------------------

    def known(self, agency: str) -> bool:
        """True once the agency's subscriptions were loaded (its cursor row exists)."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM cursors WHERE agency = ?", (agency,)).fetchone()
            return row is not None

    def cursor(self, agency: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT position FROM cursors WHERE agency = ?", (agency,)
            ).fetchone()
            return int(row[0]) if row else 0

    def ingest(
        self,
        agency: str,
        position: int,
        notifications: Iterable[Notification],
        changes: Iterable[Change],
        subscriptions: list[StoredSubscription],
        now: datetime,
    ) -> int:
        """One page, atomically: notifications and their deliveries, deadline changes,
        the new cursor. Returns how many notifications were new."""
        stamp = now.isoformat()
        created = 0
        with self._tx() as db:
            for n in notifications:
                created += self._add_notification(db, n, subscriptions, now)
            for change in changes:
                self._apply(db, agency, change, stamp)
            db.execute(
                "INSERT INTO cursors (agency, position, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (agency) DO UPDATE SET position = excluded.position, "
                "updated_at = excluded.updated_at WHERE excluded.position > cursors.position",
                (agency, position, stamp),
            )
        return created

    def _add_notification(
        self,
        db: sqlite3.Connection,
        n: Notification,
        subscriptions: list[StoredSubscription],
        now: datetime,
    ) -> int:
        cur = db.execute(
            "INSERT OR IGNORE INTO notifications (id, agency, kind, type, body, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (n.id, n.agency_id, n.kind, n.type, n.body, now.isoformat()),
        )
        if cur.rowcount == 0:
            return 0  # already recorded before a crash: its deliveries exist too
        seq = cur.lastrowid
        for sub in subscriptions:
            if (
                sub.agency_id == n.agency_id
                and sub.active
                and (n.kind != "event" or sub.wants(n.type))
            ):
                db.execute(
                    "INSERT OR IGNORE INTO deliveries (subscription, notification_seq, status, "
                    "next_at, updated_at) VALUES (?, ?, 'pending', ?, ?)",
                    (sub.id, seq, now.timestamp(), now.isoformat()),
                )
        return 1

    def _apply(self, db: sqlite3.Connection, agency: str, change: Change, stamp: str) -> None:
        if isinstance(change, Open):
            if change.requires is not None and not self._set_by(db, agency, change):
                return
            db.execute(
                "INSERT OR IGNORE INTO deadlines (agency, kind, about_event_id, case_pseudonym, "
                "key, due, due_ts, action, target, status, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
                (
                    agency,
                    change.kind,
                    change.about_event_id,
                    change.case,
                    change.key,
                    change.due.isoformat(),
                    change.due.timestamp(),
                    change.action,
                    change.target.isoformat() if change.target else None,
                    stamp,
                ),
            )
        elif isinstance(change, Close):
            marks = ",".join("?" for _ in change.kinds)
            sql = (
                "UPDATE deadlines SET status = ?, resolved_by = ?, updated_at = ? "
                f"WHERE agency = ? AND case_pseudonym = ? AND kind IN ({marks}) "
                "AND status = 'open' AND about_event_id != ?"
            )
            args: list[Any] = [
                change.status,
                change.by_event_id,
                stamp,
                agency,
                change.case,
                *change.kinds,
                change.by_event_id,
            ]
            if change.key is not None:
                sql += " AND key = ?"
                args.append(change.key)
            db.execute(sql, args)
        elif isinstance(change, Escalated):
            db.execute(
                "UPDATE deadlines SET status = 'escalated', updated_at = ? "
                "WHERE agency = ? AND kind = ? AND about_event_id = ? AND status = 'open'",
                (stamp, agency, change.kind, change.about_event_id),
            )

    @staticmethod
    def _set_by(db: sqlite3.Connection, agency: str, change: Open) -> bool:
        """Whether `agency` set a deadline of `change.requires` with the same key in the
        case (it made the referral that a decline answered)."""
        row = db.execute(
            "SELECT 1 FROM deadlines WHERE agency = ? AND case_pseudonym = ? AND kind = ? "
            "AND key = ? LIMIT 1",
            (agency, change.case, change.requires, change.key),
        ).fetchone()
        return row is not None

    # -- subscriptions ------------------------------------------------------------------

    def replace_subscriptions(self, agency: str, subs: list[dict[str, Any]], now: datetime) -> None:
        """The registry's current list; ones no longer listed count as deleted. The
        local status (disabled after a 410) is kept."""
        stamp = now.isoformat()
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO cursors (agency, position, updated_at) VALUES (?, 0, ?)",
                (agency, stamp),
            )
            listed = {s["id"] for s in subs}
            for row in db.execute("SELECT id FROM subscriptions WHERE agency = ?", (agency,)):
                if row["id"] not in listed:
                    db.execute(
                        "UPDATE subscriptions SET registry_status = 'deleted', updated_at = ? "
                        "WHERE id = ?",
                        (stamp, row["id"]),
                    )
            for s in subs:
                sealed = s.get("secret_sealed")
                db.execute(
                    "INSERT INTO subscriptions (id, agency, webhook_url, event_types, "
                    "secret_sealed, registry_status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET webhook_url = excluded.webhook_url, "
                    "event_types = excluded.event_types, secret_sealed = excluded.secret_sealed, "
                    "registry_status = excluded.registry_status, updated_at = excluded.updated_at",
                    (
                        s["id"],
                        agency,
                        s["webhook_url"],
                        json.dumps(sorted(s["event_types"])),
                        json.dumps(sealed) if sealed is not None else None,
                        s.get("status", "active"),
                        stamp,
                    ),
                )

    def subscriptions(self, agency: str | None = None) -> list[StoredSubscription]:
        with self._lock:
            if agency is None:
                rows = self._db.execute("SELECT * FROM subscriptions ORDER BY id").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM subscriptions WHERE agency = ? ORDER BY id", (agency,)
                ).fetchall()
        return [_subscription(r) for r in rows]

    def subscription(self, subscription_id: str) -> StoredSubscription | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM subscriptions WHERE id = ?", (subscription_id,)
            ).fetchone()
        return _subscription(row) if row else None

    def set_local_status(
        self, subscription_id: str, status: str, reason: str | None, now: datetime
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE subscriptions SET local_status = ?, local_reason = ?, updated_at = ? "
                "WHERE id = ?",
                (status, reason, now.isoformat(), subscription_id),
            )

    # -- deliveries ---------------------------------------------------------------------

    def due_deliveries(self, now_ts: float, limit: int = 200) -> list[DueDelivery]:
        with self._lock:
            rows = self._db.execute(
                "SELECT d.id, d.subscription, n.id AS nid, n.body, d.attempts, d.tries "
                "FROM deliveries d JOIN notifications n ON n.seq = d.notification_seq "
                "JOIN subscriptions s ON s.id = d.subscription "
                "WHERE d.status = 'pending' AND d.next_at <= ? "
                "AND s.registry_status = 'active' AND s.local_status = 'active' "
                "ORDER BY d.id LIMIT ?",
                (now_ts, limit),
            ).fetchall()
        return [
            DueDelivery(
                r["id"], r["subscription"], r["nid"], bytes(r["body"]), r["attempts"], r["tries"]
            )
            for r in rows
        ]

    def record_attempt(
        self,
        delivery: DueDelivery,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
        result: str,
        status: str,
        now: datetime,
        next_at: float | None = None,
        dead_reason: str | None = None,
    ) -> None:
        """One attempt (its `result`, see notifications.outcome) and the delivery's new
        `status`: 'delivered', 'pending' (retry at `next_at`), 'dead' (with a dead-letter
        record) or 'gone' (the subscription answered 410 and is disabled)."""
        stamp = now.isoformat()
        number = delivery.attempts + 1
        with self._tx() as db:
            db.execute(
                "INSERT INTO attempts (delivery, number, at, status_code, error, duration_ms, "
                "outcome) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (delivery.id, number, stamp, status_code, error, duration_ms, result),
            )
            db.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, tries = ?, next_at = ?, "
                "last_error = ?, updated_at = ? WHERE id = ?",
                (
                    status,
                    number,
                    delivery.tries + 1,
                    next_at if next_at is not None else now.timestamp(),
                    error if error else (f"HTTP {status_code}" if status_code else None),
                    stamp,
                    delivery.id,
                ),
            )
            if status == "dead":
                db.execute(
                    "INSERT OR REPLACE INTO dead_letters (delivery, subscription, "
                    "notification_id, reason, at) VALUES (?, ?, ?, ?, ?)",
                    (
                        delivery.id,
                        delivery.subscription,
                        delivery.notification_id,
                        dead_reason or error or f"HTTP {status_code}",
                        stamp,
                    ),
                )

    def replay(self, subscription_id: str, now: datetime) -> int:
        """Dead-lettered and disabled ('gone') deliveries go back to pending with a fresh
        attempt budget; their history stays. Re-enables a subscription disabled by 410."""
        stamp = now.isoformat()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET status = 'pending', tries = 0, next_at = ?, "
                "updated_at = ? WHERE subscription = ? AND status IN ('dead', 'gone')",
                (now.timestamp(), stamp, subscription_id),
            )
            db.execute(
                "UPDATE dead_letters SET replayed_at = ? WHERE subscription = ? "
                "AND replayed_at IS NULL",
                (stamp, subscription_id),
            )
            db.execute(
                "UPDATE subscriptions SET local_status = 'active', local_reason = NULL, "
                "updated_at = ? WHERE id = ?",
                (stamp, subscription_id),
            )
            return cur.rowcount

    def deliveries(
        self, subscription_id: str, status: str | None, after: int, limit: int
    ) -> list[dict[str, Any]]:
        """Status and attempt history, metadata only (ids, types, codes, times)."""
        with self._lock:
            sql = (
                "SELECT d.*, n.id AS nid, n.type AS ntype, n.kind AS nkind FROM deliveries d "
                "JOIN notifications n ON n.seq = d.notification_seq "
                "WHERE d.subscription = ? AND d.id > ?"
            )
            args: list[Any] = [subscription_id, after]
            if status is not None:
                sql += " AND d.status = ?"
                args.append(status)
            rows = self._db.execute(sql + " ORDER BY d.id LIMIT ?", (*args, limit)).fetchall()
            out = []
            for r in rows:
                attempts = self._db.execute(
                    "SELECT number, at, status_code, error, duration_ms, outcome FROM attempts "
                    "WHERE delivery = ? ORDER BY number",
                    (r["id"],),
                ).fetchall()
                dead = self._db.execute(
                    "SELECT reason, at, replayed_at FROM dead_letters WHERE delivery = ?",
                    (r["id"],),
                ).fetchone()
                out.append(
                    {
                        "id": r["id"],
                        "notification_id": r["nid"],
                        "kind": r["nkind"],
                        "type": r["ntype"],
                        "status": r["status"],
                        "attempts": r["attempts"],
                        "next_attempt_at": (
                            datetime.fromtimestamp(r["next_at"]).astimezone().isoformat()
                            if r["status"] == "pending"
                            else None
                        ),
                        "last_error": r["last_error"],
                        "history": [dict(a) for a in attempts],
                        "dead_letter": dict(dead) if dead else None,
                    }
                )
            return out

    def delivery_counts(self, subscription_id: str) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT status, count(*) FROM deliveries WHERE subscription = ? GROUP BY status",
                (subscription_id,),
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    # -- notifications (SSE) ------------------------------------------------------------

    def add_notification(
        self, n: Notification, subscriptions: list[StoredSubscription], now: datetime
    ) -> int:
        with self._tx() as db:
            return self._add_notification(db, n, subscriptions, now)

    def notifications_after(
        self, agency: str, after: int, limit: int = 100
    ) -> list[tuple[int, str, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, body FROM notifications WHERE agency = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (agency, after, limit),
            ).fetchall()
        return [(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    # -- deadlines ----------------------------------------------------------------------

    def due_deadlines(self, agency: str, now_ts: float) -> list[DueDeadline]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM deadlines WHERE agency = ? AND status = 'open' AND ("
                "action IN ('escalate', 'remind', 'erase') AND due_ts <= ?) "
                "AND next_try_ts <= ? ORDER BY due_ts",
                (agency, now_ts, now_ts),
            ).fetchall()
        return [
            DueDeadline(
                r["agency"],
                r["kind"],
                r["about_event_id"],
                r["case_pseudonym"],
                datetime.fromisoformat(r["due"]),
                r["action"],
                r["tries"],
                datetime.fromisoformat(r["target"]) if r["target"] else None,
                r["key"],
            )
            for r in rows
        ]

    def settle_deadline(
        self, d: DueDeadline, status: str, detail: str | None, now: datetime
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deadlines SET status = ?, detail = ?, tries = tries + 1, updated_at = ? "
                "WHERE agency = ? AND kind = ? AND about_event_id = ? AND status = 'open'",
                (status, detail, now.isoformat(), d.agency, d.kind, d.about_event_id),
            )

    def postpone_deadline(self, d: DueDeadline, detail: str, next_ts: float, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE deadlines SET detail = ?, tries = tries + 1, next_try_ts = ?, "
                "updated_at = ? WHERE agency = ? AND kind = ? AND about_event_id = ?",
                (detail, next_ts, now.isoformat(), d.agency, d.kind, d.about_event_id),
            )

    def remind(
        self, d: DueDeadline, n: Notification, subs: list[StoredSubscription], now: datetime
    ) -> None:
        """The reminder notification and the deadline's 'reminded' state, together."""
        with self._tx() as db:
            self._add_notification(db, n, subs, now)
            db.execute(
                "UPDATE deadlines SET status = 'reminded', updated_at = ? "
                "WHERE agency = ? AND kind = ? AND about_event_id = ? AND status = 'open'",
                (now.isoformat(), d.agency, d.kind, d.about_event_id),
            )

    def deadlines(self, agency: str, status: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            sql = "SELECT * FROM deadlines WHERE agency = ?"
            args: list[Any] = [agency]
            if status:
                sql += " AND status = ?"
                args.append(status)
            rows = self._db.execute(sql + " ORDER BY due_ts", args).fetchall()
        return [
            {
                "kind": r["kind"],
                "case": r["case_pseudonym"],
                "about_event_id": r["about_event_id"],
                "due": r["due"],
                "action": r["action"],
                "reminds_of_due": r["target"],
                "status": r["status"],
                "resolved_by": r["resolved_by"],
                "detail": r["detail"],
            }
            for r in rows
        ]


def _subscription(r: sqlite3.Row) -> StoredSubscription:
    return StoredSubscription(
        id=r["id"],
        agency_id=r["agency"],
        webhook_url=r["webhook_url"],
        event_types=frozenset(json.loads(r["event_types"])),
        secret_sealed=json.loads(r["secret_sealed"]) if r["secret_sealed"] else None,
        registry_status=r["registry_status"],
        local_status=r["local_status"],
        local_reason=r["local_reason"],
    )
