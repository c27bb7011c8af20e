"""A node's view of the directory: fetch, verify against the pinned anchor, cache.

The fetching itself is injected (`fetch() -> bytes`), so each service makes the HTTP
call with its own client and this logic stays free of I/O and shared by all. A node
never moves backwards: an older serial, or the same serial with other content, is
refused, and so is anything the anchor did not sign. While the registry is down or
serves something bad, the node keeps the last good directory (autonomous nodes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from contracts.directory import AnchorKey, Directory, DirectoryError, verify_directory

Fetch = Callable[[], bytes]


class DirectoryUnavailable(DirectoryError):
    """No verified directory yet, and the registry could not supply one."""


class DirectoryClient:
    def __init__(
        self,
        fetch: Fetch,
        anchor: AnchorKey,
        *,
        max_age: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        initial: Directory | None = None,
    ) -> None:
        self._fetch = fetch
        self._anchor = anchor
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._directory = initial
        self._hash = initial.directory_hash() if initial else None
        self._fetched_at: datetime | None = None
        self.last_error: Exception | None = None

    @property
    def serial(self) -> int | None:
        return self._directory.serial if self._directory else None

    def refresh(self) -> Directory:
        """Fetch and verify now; raises on any failure, keeping the last good directory."""
        with self._lock:
            raw = self._fetch()
            directory = verify_directory(raw, self._anchor, self.serial, last_seen_hash=self._hash)
            self._directory = directory
            self._hash = directory.directory_hash()
            self._fetched_at = self._clock()
            self.last_error = None
            return directory

    def current(self) -> Directory:
        """The cached directory, refreshed when older than `max_age`. A failed refresh is
        recorded in `last_error` and the last good directory is served; with none, raise."""
        fetched = self._fetched_at
        if self._directory is not None and fetched and self._clock() - fetched < self._max_age:
            return self._directory
        try:
            return self.refresh()
        except Exception as exc:
            self.last_error = exc
            if self._directory is None:
                raise DirectoryUnavailable(f"no verified directory: {exc}") from exc
            self._fetched_at = self._clock()  # back off until the next max_age
            return self._directory
