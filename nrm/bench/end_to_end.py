"""End to end: from the sender's HTTP request to the envelope committed in each receiver's
store, through a whole embedded bus (registry, 11 nodes, transport) in this process.

Arrival is timed by wrapping each receiving node's `CaseStore.save_tracked` on the
instance (the benchmark's hook; production code is untouched): the hook notes the time
once the store's transaction (a whole partition batch: group commit) has committed. The
load comes from a separate process (`loader`), on the same monotonic clock. A delivery's
latency is arrival minus the moment the sender's HTTP request went out, so it includes the
HTTP accept, sealing, the outbox relay, the transport, verification and the receiver's
append.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts.endpoints import router_audience
from nrm.bench.common import latency_summary, rss_mb
from nrm.bench.workload import COUNTRY, RECIPIENTS, SENDER, agencies
from nrm.broker import SecuredKafka
from nrm.embedded import CountryBus
from referral_router.store.case_store import CaseFile


class BusUnderTest:
    """A running bus with arrival hooks on every recipient and a loader process."""

    def __init__(self, data_dir: Path, kafka: SecuredKafka | None) -> None:
        self.data_dir = data_dir
        self.on_kafka = kafka is not None
        self.bus = CountryBus(COUNTRY, data_dir, agencies=agencies(), kafka=kafka)
        self.arrivals: dict[tuple[str, str], float] = {}
        self._loader: asyncio.subprocess.Process | None = None

    @property
    def kind(self) -> str:
        return "kafka" if self.on_kafka else "embedded"

    async def start(self) -> None:
        await self.bus.start()
        for agency in RECIPIENTS:
            self._hook(agency)
        config = {
            "base_url": self.bus.urls[SENDER],
            "sender": SENDER,
            "secrets": str(self.bus.keychain.folder),
            "audience": router_audience(SENDER),
        }
        self._loader = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nrm.bench.loader",
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**28,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert self._loader.stdout is not None
        ready = await asyncio.wait_for(self._loader.stdout.readline(), 120)
        if not ready:
            raise RuntimeError("the load generator did not start")

    def _hook(self, agency: str) -> None:
        store = self.bus.nodes[agency].store
        original: Callable[..., bool] = store.save_tracked
        arrivals = self.arrivals

        def timed(source: str, position: int, *objs: Any) -> bool:
            event_ids = [
                str(e.envelope["id"])
                for obj in objs
                for e in getattr(obj, "pending_events", ())
                if isinstance(e, CaseFile.EnvelopeRecorded)
            ]
            applied = original(source, position, *objs)
            if applied:
                now = time.monotonic()
                for event_id in event_ids:
                    arrivals[(agency, event_id)] = now
            return applied

        store.save_tracked = timed  # type: ignore[method-assign]

    async def _load(self, cmd: dict[str, Any]) -> dict[str, Any]:
        proc = self._loader
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError("the load generator exited")
        out: dict[str, Any] = json.loads(line)
        return out

    async def run(
        self,
        recipients: int,
        n_events: int,
        rate: float | None,
        concurrency: int = 32,
        tick: Callable[[int], None] | None = None,
        max_seconds: float | None = None,
    ) -> dict[str, Any]:
        """One measurement: `n_events` at `rate` events/s (None: saturation), offering for
        at most `max_seconds`. Latency counts from when a request was due, so a bus that
        falls behind a fixed load is charged for the queue it builds (no coordinated
        omission); at saturation "due" is when a lane became free."""
        readers = list(RECIPIENTS[:recipients])
        cpu0 = os.times()
        load = asyncio.create_task(
            self._load(
                {
                    "n": n_events,
                    "rate": rate,
                    "concurrency": concurrency,
                    "recipients": readers,
                    "max_seconds": max_seconds,
                }
            )
        )
        # Follow deliveries while the load runs, for the progress bar.
        shown, before = 0, len(self.arrivals)
        while not load.done():
            await asyncio.sleep(0.2)
            if tick:
                now = min((len(self.arrivals) - before) // recipients, n_events)
                tick(now - shown)
                shown = now
        out = load.result()
        sent = [r for r in out["results"] if r[4] == 201]
        errors = [r for r in out["results"] if r[4] != 201]
        wanted = [(a, r[3]) for r in sent for a in readers]
        deadline = time.monotonic() + 60 + n_events / 50
        while time.monotonic() < deadline:
            missing = sum(1 for k in wanted if k not in self.arrivals)
            if not missing:
                break
            await asyncio.sleep(0.01)
        cpu1 = os.times()
        send_at = {r[3]: r for r in sent}
        latencies: list[float] = []
        per_event_last: dict[str, float] = {}
        for agency, eid in wanted:
            t = self.arrivals.get((agency, eid))
            if t is None:
                continue
            latencies.append(t - send_at[eid][0])
            per_event_last[eid] = max(per_event_last.get(eid, 0.0), t)
        accept = [r[2] - r[1] for r in sent]
        first = min((r[1] for r in out["results"]), default=0.0)
        last = max(per_event_last.values(), default=first)
        window = max(last - first, 1e-9)
        done = len(per_event_last)
        if tick:
            tick(max(0, len(out["results"]) - shown))
        busy_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        row: dict[str, Any] = {
            "transport": self.kind,
            "recipients": recipients,
            "offered_events_per_s": rate or "saturation",
            "events": len(out["results"]),
            "accepted": len(sent),
            "errors": len(errors),
            "first_error": errors[0][3] if errors else None,
            "delivered": len(latencies),
            "missing": len(wanted) - len(latencies),
            "events_per_s": round(done / window, 1),
            "deliveries_per_s": round(len(latencies) / window, 1),
            "accept_p50_ms": latency_summary(accept)["p50_ms"],
            "accept_p99_ms": latency_summary(accept)["p99_ms"],
            **latency_summary(latencies),
            "late_sends": sum(1 for r in out["results"] if r[1] - r[0] > 0.01) if rate else 0,
            "bus_cpu_s": round(busy_s, 2),
            "loader_cpu_s": out["loader_cpu_s"],
            "window_s": round(window, 2),
            "rss_mb": rss_mb(),
        }
        return row

    def store_position(self, agency: str) -> int:
        return self.bus.nodes[agency].store.max_position()

    async def stop(self) -> None:
        proc = self._loader
        if proc is not None and proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.write(b'{"op": "stop"}\n')
            await proc.stdin.drain()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await self.bus.stop()


#: (recipients, offered events/s or None for saturation, events, max seconds offering)
Measurement = tuple[int, float | None, int, float | None]


def plan(quick: bool) -> list[Measurement]:
    """What to measure: fixed loads are capped in time, saturation in events."""
    if quick:
        return [(1, None, 40, None), (3, 50.0, 40, 0.8), (3, None, 40, None), (10, None, 20, None)]
    out: list[Measurement] = []
    for r in (1, 3, 10):
        out += [(r, 200.0, 1000, 5.0), (r, 1000.0, 5000, 5.0), (r, None, 5000, 6.0)]
    return out


async def run_plan(
    but: BusUnderTest,
    measurements: list[Measurement],
    tick: Callable[[int], None] | None = None,
    warmup: int = 20,
) -> list[dict[str, Any]]:
    """Warm the bus up (connections, topics, first grants), then play each measurement."""
    for r in sorted({m[0] for m in measurements}):
        await but.run(r, warmup, None, concurrency=8)
    rows = []
    for recipients, rate, n, seconds in measurements:
        concurrency = 64 if rate else 32
        rows.append(await but.run(recipients, n, rate, concurrency, tick, seconds))
    return rows
