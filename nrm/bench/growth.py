"""Growth: does a node get slower, or bigger, as its store fills?

A fresh bus (one recipient, so the sender's and the receiver's stores both hold every
event) is filled in bulk (`POST /v1/events:batch`, whole cases) up to each checkpoint;
at each one the bench measures, with the bus otherwise quiet:

- the append cost: a probe of single-event requests at saturation, its CPU per event
  and latency (the same kind of traffic at 10,000 events as at 1,000,000);
- memory: the resident size of the bus (this process on the embedded bus; the sender's
  and the receiver's processes on the process topology);
- the stores' bytes on disk;
- the rebuild of the receiver's case views from its store alone: a fresh `CaseStore` on
  the same file replays the whole log in one pass (`CaseStore.replay`), what a node
  restored from a backup does; its time per event is extrapolated to 1,000,000 until a
  run gets there. It runs in a process of its own (`python -m nrm.bench.growth STORE`),
  as a restored node would: every case file it holds at once is not the bus's memory,
  and its own peak is reported beside it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nrm.bench.common import folder_mb, peak_rss_mb, rss_mb
from nrm.bench.end_to_end import BusUnderTest
from nrm.bench.workload import EVENTS_PER_CASE, RECIPIENTS
from referral_router.runtime.node import sqlite_store_env
from referral_router.store.case_store import CaseStore

#: Events per bulk request while filling.
FILL_BATCH = 200 - 200 % EVENTS_PER_CASE
#: Single-event requests of each probe.
PROBE = 400


def checkpoints(start: int, max_events: int) -> list[int]:
    """start, 2×start, 4×start, ... below max_events, then max_events itself."""
    out, point = [], start
    while point < max_events:
        out.append(point)
        point *= 2
    return [*out, max_events]


def rebuild(store_path: Path) -> dict[str, Any]:
    """Replay every case file of the store at `store_path` from its log; time it."""
    store = CaseStore(env={**sqlite_store_env(store_path), "AGGREGATE_CACHE_MAXSIZE": "0"})
    try:
        t0 = time.perf_counter()
        files = store.replay()
        seconds = time.perf_counter() - t0
        events = sum(len(f.state.event_ids) for f in files.values())
    finally:
        store.close()
    return {
        "cases": len(files),
        "events": events,
        "rebuild_s": round(seconds, 2),
        "rebuild_us_per_event": round(seconds / max(events, 1) * 1e6, 1),
        "rebuild_1m_events_s": round(seconds / max(events, 1) * 1e6, 1),
        "rebuild_peak_rss_mb": peak_rss_mb(),
    }


async def rebuild_apart(store_path: Path) -> dict[str, Any]:
    """`rebuild` in a process of its own; its answer, one JSON line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nrm.bench.growth",
        str(store_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the rebuild failed: {err.decode()[-500:]}")
    found: dict[str, Any] = json.loads(out)
    return found


async def run(
    but: BusUnderTest,
    points: list[int],
    store_of: Callable[[str], Path],
    rss: Callable[[], dict[str, float]] | None = None,
    tick: Callable[[int], None] | None = None,
    probe: int = PROBE,
) -> list[dict[str, Any]]:
    """Fill the bus to each checkpoint (events the sender accepted), then measure."""
    rows = []
    sent = 0
    reader = RECIPIENTS[0]
    for point in points:
        while sent < point:
            requests = max(1, min(50, (point - sent) // FILL_BATCH))
            fill = await but.run(1, requests, None, 2, tick, None, FILL_BATCH, "fill")
            sent += fill["accepted"]
            if not fill["accepted"]:
                raise RuntimeError(f"the bus stopped accepting events: {fill['first_error']}")
        seg = await but.run(1, probe, None, 32, None, None, None, "probe")
        sent += seg["accepted"]
        delivered = max(seg["delivered"], 1)
        rb = await rebuild_apart(store_of(reader))
        root = store_of(reader).parent.parent
        rows.append(
            {
                "events_sent": sent,
                "probe_events_per_s": seg["events_per_s"],
                "probe_cpu_us_per_event": round(seg["bus_cpu_s"] / delivered * 1e6),
                "probe_p50_ms": seg["p50_ms"],
                "probe_p99_ms": seg["p99_ms"],
                "store_mb": folder_mb(root),
                "receiver_store_mb": folder_mb(store_of(reader).parent, ("store.db*",)),
                "rss_mb": rss() if rss is not None else {"bus": rss_mb()},
                "receiver_events": rb["events"],
                "receiver_cases": rb["cases"],
                "rebuild_s": rb["rebuild_s"],
                "rebuild_us_per_event": rb["rebuild_us_per_event"],
                "rebuild_1m_events_s": rb["rebuild_1m_events_s"],
                "rebuild_peak_rss_mb": rb["rebuild_peak_rss_mb"],
            }
        )
    return rows


def memory_slope(before: dict[str, Any], after: dict[str, Any]) -> float:
    """Bytes of resident memory per event sent between two checkpoints (the largest of
    the processes measured): a ratio from the first checkpoint also counts bounded caches
    filling once; the slope of the last stretch says whether memory still grows."""
    events = max(after["events_sent"] - before["events_sent"], 1)
    grown = max(after["rss_mb"][k] - before["rss_mb"].get(k, 0.0) for k in after["rss_mb"])
    return grown * 2**20 / events


def verdicts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Flat: the last checkpoint's append cost and memory within 1.3× of the first's
    (the first taken once the bus is warm), and the rebuild of 1,000,000 events, as
    measured or extrapolated, under two minutes."""
    first, last = rows[0], rows[-1]
    before_last = rows[-2] if len(rows) > 1 else last
    cost = last["probe_cpu_us_per_event"] / max(first["probe_cpu_us_per_event"], 1)
    memory = max(last["rss_mb"][k] / max(first["rss_mb"].get(k, 0.0), 1.0) for k in last["rss_mb"])
    return {
        "from_events": first["events_sent"],
        "to_events": last["events_sent"],
        "append_cost_ratio": round(cost, 2),
        "memory_ratio": round(memory, 2),
        "memory_bytes_per_event_last": round(memory_slope(before_last, last)),
        "rebuild_1m_s": last["rebuild_1m_events_s"],
        "rebuild_measured_events": last["receiver_events"],
        "flat": cost <= 1.3 and memory <= 1.3,
    }


if __name__ == "__main__":
    print(json.dumps(rebuild(Path(sys.argv[1]))))
