"""A durable inbox cursor: the last position your system has handled, kept in a file.

Save a position only after the item is handled (stored, forwarded, acknowledged): after
a crash the inbox resumes from the last saved position, so nothing is skipped; an item
handled but not yet saved comes again (handle by `event_id` idempotently).
"""

from __future__ import annotations

import os
from pathlib import Path


class FileCursor:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def position(self) -> int:
        """0 when nothing was handled yet."""
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return 0
        if not text.isdigit():
            raise ValueError(f"{self.path}: not a cursor position: {text[:40]!r}")
        return int(text)

    def save(self, position: int) -> None:
        """Atomically and durably (written, synced, renamed over the old one)."""
        if position < self.position:
            raise ValueError(f"cursor would move back from {self.position} to {position}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            f.write(f"{position}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
