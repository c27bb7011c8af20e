"""Growth: how throughput, store size, memory and rebuild time move as the stores fill.

Runs saturation segments (3 recipients) through the same embedded bus until the sender
has sent `max_events`, and after each checkpoint measures: the segment's throughput, the
bytes on disk of every SQLite file of the bus, this process's resident memory, and the
time to rebuild one receiving node's case views from its store alone (a fresh CaseStore
on the same file, every case file reconstructed from its events: what a restarted or
re-provisioned node does). Rebuild time per event is extrapolated to 1,000,000 events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from nrm.bench.common import folder_mb, rss_mb
from nrm.bench.end_to_end import BusUnderTest
from nrm.bench.workload import RECIPIENTS
from referral_router.runtime.node import sqlite_store_env
from referral_router.store.case_store import CaseFile, CaseStore


def checkpoints(start: int, max_events: int) -> list[int]:
    """start, 2×start, 4×start, ... below max_events, then max_events itself."""
    out, point = [], start
    while point < max_events:
        out.append(point)
        point *= 2
    return [*out, max_events]


def rebuild(store_path: Path) -> dict[str, Any]:
    """Reconstruct every case file of the store at `store_path`; time it."""
    store = CaseStore(env=sqlite_store_env(store_path))
    try:
        topic = f"{CaseFile.Opened.__module__}:{CaseFile.Opened.__qualname__}"
        t0 = time.perf_counter()
        ids: list[UUID] = []
        start = 1
        while True:
            page = store.recorder.select_notifications(start=start, limit=5000, topics=[topic])
            if not page:
                break
            ids += [n.originator_id for n in page]
            start = page[-1].id + 1
        events = 0
        for case_id in ids:
            case = store.repository.get(case_id)
            assert isinstance(case, CaseFile)
            events += len(case.entries)
        seconds = time.perf_counter() - t0
    finally:
        store.close()
    return {
        "cases": len(ids),
        "events": events,
        "rebuild_s": round(seconds, 3),
        "rebuild_us_per_event": round(seconds / max(events, 1) * 1e6, 1),
        "rebuild_1m_events_extrapolated_s": round(seconds / max(events, 1) * 1e6, 1),
    }


async def run(
    but: BusUnderTest,
    points: list[int],
    already_sent: int,
    tick: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Fill the bus up to each checkpoint (counting events sent before), then measure."""
    rows = []
    sent = already_sent
    reader = RECIPIENTS[0]
    store_path = but.bus.root / "nodes" / reader / "store.db"
    for point in points:
        if point <= sent:
            continue
        seg = await but.run(3, point - sent, None, concurrency=32, tick=tick)
        sent += seg["accepted"]
        rb = await asyncio.to_thread(rebuild, store_path)
        rows.append(
            {
                "events_sent": sent,
                "segment_events_per_s": seg["events_per_s"],
                "segment_p99_ms": seg["p99_ms"],
                "store_mb": folder_mb(but.bus.root),
                "receiver_store_mb": folder_mb(store_path.parent, ("store.db*",)),
                "rss_mb": rss_mb(),
                "receiver_events": rb["events"],
                "receiver_cases": rb["cases"],
                "rebuild_s": rb["rebuild_s"],
                "rebuild_us_per_event": rb["rebuild_us_per_event"],
                "rebuild_1m_events_extrapolated_s": rb["rebuild_1m_events_extrapolated_s"],
            }
        )
    return rows
