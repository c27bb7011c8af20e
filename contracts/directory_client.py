"""A node's view of the directory: fetch, verify against the pinned anchor, cache, age.

The fetching itself is injected (`fetch() -> bytes`), so each service makes the HTTP
call with its own client and this logic stays free of I/O and shared by all. A node
never moves backwards: an older serial, or the same serial with other content, is
refused, and so is anything the anchor did not sign. The last serial accepted (and its
hash) can be remembered across restarts (`last_seen`, `remember`), so a restarted node
refuses an older directory too.

While the registry is down or serves something bad, the node keeps the last good
directory (autonomous nodes), but not for ever: the directory's age is the time since
the registry last confirmed it, and past `max_age` (`check_fresh`) the node must stop
sending and applying events, since a suspension, revocation or key compromise it has
not heard of may be in force.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from contracts.directory import AnchorKey, Directory, DirectoryError, verify_directory

Fetch = Callable[[], bytes]
Remember = Callable[[int, str], None]

REFRESH_EVERY = timedelta(minutes=5)
MAX_AGE = timedelta(hours=1)


class DirectoryUnavailable(DirectoryError):
    """No verified directory yet, and the registry could not supply one."""


class DirectoryTooOld(DirectoryError):
    """The registry has not confirmed the directory for longer than the maximum age."""


class DirectoryClient:
    def __init__(
        self,
        fetch: Fetch,
        anchor: AnchorKey,
        *,
        refresh_every: timedelta = REFRESH_EVERY,
        max_age: timedelta = MAX_AGE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        initial: Directory | None = None,
        last_seen: tuple[int, str] | None = None,
        remember: Remember | None = None,
    ) -> None:
        self._fetch = fetch
        self._anchor = anchor
        self.refresh_every = refresh_every
        self.max_age = max_age
        self._clock = clock
        self._remember = remember
        self._lock = threading.Lock()
        self._directory = initial
        self._floor = last_seen
        if initial is not None:
            self._floor = self._highest(last_seen, (initial.serial, initial.directory_hash()))
        self._confirmed_at: datetime | None = clock() if initial is not None else None
        self._next_attempt: datetime | None = None
        self.last_error: Exception | None = None

    @staticmethod
    def _highest(a: tuple[int, str] | None, b: tuple[int, str] | None) -> tuple[int, str] | None:
        if a is None or b is None:
            return a or b
        return b if b[0] >= a[0] else a

    @property
    def serial(self) -> int | None:
        """The highest serial ever accepted (remembered across restarts when wired)."""
        return self._floor[0] if self._floor else None

    def refresh(self) -> Directory:
        """Fetch and verify now; raises on any failure, keeping the last good directory."""
        with self._lock:
            raw = self._fetch()
            floor = self._floor
            directory = verify_directory(
                raw,
                self._anchor,
                floor[0] if floor else None,
                last_seen_hash=floor[1] if floor else None,
            )
            seen = (directory.serial, directory.directory_hash())
            if seen != floor and self._remember is not None:
                self._remember(*seen)  # durable before it is believed
            self._directory, self._floor = directory, seen
            self._confirmed_at = self._clock()
            self._next_attempt = None
            self.last_error = None
            return directory

    def current(self) -> Directory:
        """The cached directory, refreshed once `refresh_every` has passed. A failed
        refresh is recorded in `last_error` (retried after `refresh_every`) and the last
        good directory is served; with none, raise. Freshness is `check_fresh`'s call."""
        now = self._clock()
        confirmed, directory = self._confirmed_at, self._directory
        due = confirmed is None or now - confirmed >= self.refresh_every
        if directory is not None and (not due or (self._next_attempt or now) > now):
            return directory
        try:
            return self.refresh()
        except Exception as exc:
            self.last_error = exc
            self._next_attempt = now + self.refresh_every
            if self._directory is None:
                raise DirectoryUnavailable(f"no verified directory: {exc}") from exc
            return self._directory

    def refresh_due(self) -> bool:
        """Whether `current` (or `check_fresh`) would ask the registry now: the one
        moment they do I/O. No I/O itself, so an event loop can ask first."""
        now = self._clock()
        confirmed = self._confirmed_at
        due = confirmed is None or now - confirmed >= self.refresh_every
        return self._directory is None or (due and (self._next_attempt or now) <= now)

    def cached(self) -> Directory:
        """The last good directory, without asking the registry (no I/O: safe on an event
        loop); the first one is fetched if there is none yet."""
        directory = self._directory
        return directory if directory is not None else self.current()

    def age(self) -> timedelta | None:
        """Time since the registry last confirmed the directory; None if it never did."""
        confirmed = self._confirmed_at
        return None if confirmed is None else self._clock() - confirmed

    def check_fresh(self, refresh: bool = True) -> Directory:
        """The directory, if the registry confirmed it within `max_age`; else raise
        `DirectoryTooOld` (or `DirectoryUnavailable` when there is none). With
        `refresh=False` the directory held is judged as it is, without asking the
        registry even when a refresh is due: an event loop's call, whose refresh is a
        worker's job (a blocking fetch there would stall the node, and deadlock one that
        serves its registry on the same loop)."""
        directory = self.current() if refresh else self.cached()
        age = self.age()
        if age is None or age > self.max_age:
            cause = f"; last refresh failed: {self.last_error}" if self.last_error else ""
            said = "never" if age is None else f"{int(age.total_seconds())} s ago"
            raise DirectoryTooOld(
                f"the registry last confirmed directory serial {directory.serial} {said}, "
                f"beyond the maximum age of {int(self.max_age.total_seconds())} s{cause}"
            )
        return directory
