"""An agency's officers: accounts, sign-in with lockout, and server-side sessions.

Officers are people, not agencies: the console records each decision under the officer
who signed in (R7), so accounts are personal, passwords are hashed with argon2id
(`argon2-cffi`, its RFC 9106 defaults), and guessing is stopped twice over: an account
locks after repeated failures, and an address that keeps failing is refused for a while
whatever account it tries. Everything lives in one SQLite file beside the node's other
local files; the administrator's CLI (`nrm officer ...`) writes the same file while the
node runs, and every request re-reads the officer, so a disabled account stops at once.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from contracts.events import OFFICER_ID_PATTERN
from referral_router.console.sessions import digest, new_secret

Clock = Callable[[], datetime]
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # bounds the hashing work one request can ask for

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS officers ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL, password TEXT NOT NULL,"
    " active INTEGER NOT NULL DEFAULT 1, failures INTEGER NOT NULL DEFAULT 0,"
    " locked_until TEXT, created_at TEXT NOT NULL, last_sign_in TEXT)",
    "CREATE TABLE IF NOT EXISTS sessions ("
    " id_digest TEXT PRIMARY KEY, officer TEXT NOT NULL, csrf TEXT NOT NULL,"
    " created_at TEXT NOT NULL, seen_at TEXT NOT NULL, flash TEXT)",
    "CREATE TABLE IF NOT EXISTS sign_in_failures (client TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sign_in_failures_client ON sign_in_failures (client, at)",
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class OfficerError(ValueError):
    """An administrator's request that cannot be done as asked."""


class SignInRefused(Exception):
    """A sign-in that fails. `status` is 401 (wrong credentials) or 429 (locked out or
    rate-limited, with `retry_after` seconds); the message never says which part was
    wrong, so it does not reveal which officer ids exist."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignInPolicy:
    """Lockout and session lifetimes (OWASP ASVS 2.2 / 3.3 levels for a case system)."""

    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    client_failures: int = 20
    client_window: timedelta = timedelta(minutes=15)
    idle_timeout: timedelta = timedelta(minutes=30)
    absolute_timeout: timedelta = timedelta(hours=10)


@dataclass(frozen=True)
class Officer:
    id: str
    name: str
    active: bool
    failures: int
    locked_until: datetime | None
    created_at: datetime
    last_sign_in: datetime | None

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True)
class Session:
    """A signed-in officer: who, and the CSRF token every form of this session carries."""

    officer: Officer
    csrf: str
    flash: str | None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _officer(row: tuple[object, ...]) -> Officer:
    oid, name, _, active, failures, locked, created, last = row
    created_at = _time(str(created))
    assert created_at is not None
    return Officer(
        str(oid),
        str(name),
        bool(active),
        int(str(failures)),
        _time(str(locked) if locked else None),
        created_at,
        _time(str(last) if last else None),
    )


def check_officer_id(officer_id: str) -> str:
    """The id an event will carry in clear (R7): a badge number, never a name."""
    if not (1 <= len(officer_id) <= 64) or not re.fullmatch(OFFICER_ID_PATTERN, officer_id):
        raise OfficerError(
            f"officer id {officer_id!r}: 1 to 64 of A-Z a-z 0-9 . _ : - (a badge number)"
        )
    return officer_id


def check_password(officer_id: str, password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise OfficerError(
            f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    if officer_id.lower() in password.lower():
        raise OfficerError("a password must not contain the officer id")
    return password


class OfficerBook:
    """The officers, sessions and sign-in failures of one node, in one SQLite file."""

    def __init__(
        self,
        path: Path,
        *,
        policy: SignInPolicy | None = None,
        hasher: PasswordHasher | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.path = path
        self.policy = policy or SignInPolicy()
        self._hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._clock = clock
        self._lock = threading.RLock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._conn.execute(statement)
        self._conn.commit()
        path.chmod(0o600)
        self._decoy_hash: str | None = None

    @property
    def _decoy(self) -> str:
        """Checked against when the officer id is unknown, so timing does not tell."""
        if self._decoy_hash is None:
            self._decoy_hash = self._hasher.hash(new_secret())
        return self._decoy_hash

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.commit()

    def _now(self) -> str:
        return self._clock().isoformat()

    # --- administration (`nrm officer ...`) ---------------------------------------

    def add(self, officer_id: str, name: str, password: str) -> Officer:
        check_officer_id(officer_id)
        check_password(officer_id, password)
        if not name.strip() or len(name) > 200:
            raise OfficerError("a display name has 1 to 200 characters")
        hashed = self._hasher.hash(password)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM officers WHERE id = ?", (officer_id,)).fetchone():
                raise OfficerError(f"officer {officer_id} already exists")
            db.execute(
                "INSERT INTO officers (id, name, password, created_at) VALUES (?, ?, ?, ?)",
                (officer_id, name.strip(), hashed, self._now()),
            )
        officer = self.officer(officer_id)
        assert officer is not None
        return officer

    def set_password(self, officer_id: str, password: str) -> None:
        check_password(officer_id, password)
        self._update(
            officer_id,
            "password = ?, failures = 0, locked_until = NULL",
            self._hasher.hash(password),
        )
        self._end_sessions(officer_id)

    def disable(self, officer_id: str) -> None:
        """The account can no longer sign in; its open sessions end now."""
        self._update(officer_id, "active = 0")
        self._end_sessions(officer_id)

    def enable(self, officer_id: str) -> None:
        self._update(officer_id, "active = 1, failures = 0, locked_until = NULL")

    def unlock(self, officer_id: str) -> None:
        self._update(officer_id, "failures = 0, locked_until = NULL")

    def _update(self, officer_id: str, assignments: str, *values: object) -> None:
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE officers SET {assignments} WHERE id = ?", (*values, officer_id)
            )
            if cur.rowcount == 0:
                raise OfficerError(f"no officer {officer_id}")

    def _end_sessions(self, officer_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE officer = ?", (officer_id,))

    def officers(self) -> list[Officer]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM officers ORDER BY id").fetchall()
        return [_officer(r) for r in rows]

    def officer(self, officer_id: str) -> Officer | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM officers WHERE id = ?", (officer_id,)
            ).fetchone()
        return _officer(row) if row else None

    # --- signing in ----------------------------------------------------------------

    def sign_in(self, officer_id: str, password: str, client: str) -> Officer:
        """The officer, if the password is right and neither the account nor the client
        address is locked out. Every failure counts against both."""
        now = self._clock()
        p = self.policy
        with self._lock:
            since = (now - p.client_window).isoformat()
            recent = self._conn.execute(
                "SELECT COUNT(*), MIN(at) FROM sign_in_failures WHERE client = ? AND at > ?",
                (client, since),
            ).fetchone()
        if recent[0] >= p.client_failures:
            first = _time(recent[1]) or now
            wait = max(1, int((first + p.client_window - now).total_seconds()))
            raise SignInRefused(
                429,
                f"too many failed sign-ins from this address; try again in {_minutes(wait)}",
                wait,
            )
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM officers WHERE id = ?", (officer_id,)
            ).fetchone()
            stored = str(row[2]) if row else self._decoy
        officer = _officer(row) if row else None
        if officer is not None and officer.locked_at(now):
            raise self._locked(officer.locked_until, now)
        try:
            good = (
                len(password) <= MAX_PASSWORD_LENGTH
                and self._hasher.verify(stored, password)
                and officer is not None
                and officer.active
            )
        except (VerificationError, InvalidHashError):
            good = False
        if not good:
            locked_until = self._failed(officer, client, now)
            if locked_until is not None:
                raise self._locked(locked_until, now)
            raise SignInRefused(401, "wrong officer id or password")
        with self._tx() as db:
            rehash = self._hasher.check_needs_rehash(stored)
            db.execute(
                "UPDATE officers SET failures = 0, locked_until = NULL, last_sign_in = ?"
                + (", password = ?" if rehash else "")
                + " WHERE id = ?",
                (now.isoformat(), *([self._hasher.hash(password)] if rehash else []), officer_id),
            )
        signed_in = self.officer(officer_id)
        assert signed_in is not None
        return signed_in

    def _locked(self, until: datetime | None, now: datetime) -> SignInRefused:
        wait = max(1, int(((until or now) - now).total_seconds()))
        return SignInRefused(
            429,
            f"this account is locked after {self.policy.max_failures} failed sign-ins; try "
            f"again in {_minutes(wait)} or ask an administrator to unlock it",
            wait,
        )

    def _failed(self, officer: Officer | None, client: str, now: datetime) -> datetime | None:
        """Count a failure against the client and the officer; the lock's end if this
        failure locked the account."""
        with self._tx() as db:
            db.execute(
                "DELETE FROM sign_in_failures WHERE at <= ?",
                ((now - self.policy.client_window).isoformat(),),
            )
            db.execute("INSERT INTO sign_in_failures VALUES (?, ?)", (client, now.isoformat()))
            if officer is None:
                return None
            # counted in the same write transaction: parallel guesses cannot undercount
            db.execute("UPDATE officers SET failures = failures + 1 WHERE id = ?", (officer.id,))
            (failures,) = db.execute(
                "SELECT failures FROM officers WHERE id = ?", (officer.id,)
            ).fetchone()
            if failures < self.policy.max_failures:
                return None
            locked = now + self.policy.lockout
            db.execute(
                "UPDATE officers SET failures = 0, locked_until = ? WHERE id = ?",
                (locked.isoformat(), officer.id),
            )
            return locked

    # --- sessions ------------------------------------------------------------------

    def open_session(self, officer: Officer) -> str:
        """A new session id (never reused from before sign-in: no fixation)."""
        session_id = new_secret()
        now = self._now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, NULL)",
                (digest(session_id), officer.id, new_secret(), now, now),
            )
        return session_id

    def session(self, session_id: str | None) -> Session | None:
        """The live session, touched; None when unknown, expired, or its officer is
        disabled (then it is removed)."""
        if not session_id:
            return None
        key = digest(session_id)
        now = self._clock()
        with self._lock:
            row = self._conn.execute(
                "SELECT officer, csrf, created_at, seen_at, flash FROM sessions"
                " WHERE id_digest = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        officer = self.officer(str(row[0]))
        created, seen = _time(row[2]), _time(row[3])
        assert created is not None and seen is not None
        expired = (
            now - seen > self.policy.idle_timeout or now - created > self.policy.absolute_timeout
        )
        if officer is None or not officer.active or expired:
            self.close_session(session_id)
            return None
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET seen_at = ? WHERE id_digest = ?", (now.isoformat(), key)
            )
        return Session(officer, str(row[1]), row[4])

    def close_session(self, session_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE id_digest = ?", (digest(session_id),))

    def flash(self, session_id: str, message: str | None) -> None:
        """A one-time message for the next page (kept server-side, never in the URL)."""
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET flash = ? WHERE id_digest = ?", (message, digest(session_id))
            )


def _minutes(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
