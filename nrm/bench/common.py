"""Small shared helpers: percentiles, a stderr progress bar, memory, disk and machine facts.

Kept dependency-free so the benchmark runs wherever the bus runs.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from nrm import serving


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        "p95_ms": round(percentile(seconds, 95) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
        "max_ms": round(max(seconds, default=0.0) * 1000, 2),
    }


def ratio(value: float, baseline: float) -> float:
    """value / baseline, 0.0 when the baseline is missing."""
    return round(value / baseline, 3) if baseline else 0.0


def _status_mb(field: str) -> float | None:
    """A memory figure of this process from /proc/self/status, in MB (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Resident memory of this process now (Linux /proc; falls back to the peak)."""
    now = _status_mb("VmRSS")
    if now is not None:
        return now
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not `ru_maxrss`: that survives
    `exec`, so a child would report its parent's peak."""
    return _status_mb("VmHWM") or 0.0


def folder_mb(folder: Path, patterns: Iterable[str] = ("*.db", "*.db-wal", "*.db-shm")) -> float:
    """Size on disk of the SQLite files under `folder` (WAL included)."""
    total = 0
    for pattern in patterns:
        total += sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())
    return round(total / 1e6, 2)


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: cores, CPU, Python and library versions."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str] = {}
    for dist in ("cryptography", "eventsourcing", "aiokafka", "fastapi", "uvicorn", "httpx"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "-"
    import sqlite3

    versions["sqlite"] = sqlite3.sqlite_version
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "event_loop": serving.event_loop(),  # the services' (and this process's)
        "platform": platform.platform(),
        "versions": versions,
    }


class Progress:
    """A one-line progress bar on stderr, redrawn at most every 0.2 s; silent if disabled."""

    def __init__(self, label: str, total: int, out: TextIO | None = None, enabled: bool = True):
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self.out = out or sys.stderr
        self.enabled = enabled
        self._t0 = time.monotonic()
        self._last = 0.0
        self.note = ""

    def advance(self, n: int = 1, note: str | None = None) -> None:
        self.done = min(self.total, self.done + n)
        if note is not None:
            self.note = note
        now = time.monotonic()
        if now - self._last >= 0.2 or self.done >= self.total:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        if not self.enabled:
            return
        width = 28
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        pct = 100 * self.done / self.total
        self.out.write(
            f"\r{self.label:<22} [{bar}] {pct:5.1f}% {now - self._t0:6.1f}s {self.note:<32.32}"
        )
        self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.done = self.total
            self._draw(time.monotonic())
            self.out.write("\n")
            self.out.flush()
