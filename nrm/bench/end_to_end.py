"""End to end: from the sender's HTTP request to the envelope committed in each receiver's
store, through a whole bus (registry, nodes, notifier, transport).

The load comes from a separate process (`loader`), on the machine's monotonic clock. An
arrival is the moment a receiver's store committed the envelope: on the embedded bus a
commit listener on each receiving node's store notes it (the store's own API, no change
to the path measured); on the process topology the bench follows each receiver's log
stream (`GET /v1/log/stream`), as a notifier does, and notes when the entry shows (an
upper bound: the stream's write and its reading are included). A delivery's latency is
arrival minus the moment the request was due, so it includes the HTTP accept, sealing,
the group commit, the outbox relay, the transport, verification and the receiver's
append, and any queue the bus built (no coordinated omission).

CPU is the bus's own: this process's time on the embedded bus (the loader is another
process), the sum over every process of the bus (registry, nodes, notifier, the broker's
provisioner; each read from /proc/<pid>/stat before and after the window) on the process
topology, where the sending node's process alone is the sender's own CPU. The Kafka
broker's CPU is reported apart, when the bench runs the broker itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from contracts.connections import LOG_STREAM_SILENCE_S
from contracts.endpoints import router_audience
from nrm.bench.common import latency_summary, percentile, rss_mb
from nrm.bench.workload import COUNTRY, RECIPIENTS, SENDER, agencies
from nrm.broker import SecuredKafka
from nrm.embedded import CountryBus, Keychain
from nrm.supervisor import Supervisor, cpu_seconds
from referral_router.store.case_store import RECEIVED, Committed

#: Where a bus runs: every piece in this one process, or a process per piece.
ONE_PROCESS, PROCESSES = "one process", "processes"


class Bus(Protocol):
    """What the benchmark needs of a running bus, embedded or a process per piece."""

    urls: dict[str, str]
    keychain: Keychain
    verify: ssl.SSLContext | bool

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def token(self, agency_id: str, node: str | None = None) -> str: ...


class Arrivals:
    """When each (receiver, event id) was committed at the receiver."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, str], float] = {}

    def listener(self, agency: str) -> Callable[[Committed], None]:
        def committed(c: Committed) -> None:
            now = time.monotonic()
            for e in c.envelopes:
                if e.direction == RECEIVED:
                    self.at.setdefault((agency, str(e.data["id"])), now)

        return committed

    async def follow(self, bus: Bus, agency: str, stop: asyncio.Event) -> None:
        """Follow `agency`'s log stream for received entries until `stop` (a stream
        ends with its token: the next opens where it ended)."""
        after = 0
        timeout = httpx.Timeout(10.0, read=LOG_STREAM_SILENCE_S)
        async with httpx.AsyncClient(
            base_url=bus.urls[agency], timeout=timeout, verify=bus.verify
        ) as client:
            while not stop.is_set():
                try:
                    async with client.stream(
                        "GET",
                        "/v1/log/stream",
                        params={"after": after, "direction": RECEIVED},
                        headers={"Authorization": f"Bearer {bus.token(agency)}"},
                    ) as r:
                        if r.status_code != 200:
                            await asyncio.sleep(0.2)
                            continue
                        async for line in r.aiter_lines():
                            if line:  # not a keep-alive
                                item = json.loads(line)
                                self.at.setdefault((agency, item["event_id"]), time.monotonic())
                                after = max(after, int(item["position"]))
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)


#: CPU seconds used so far by each process of a bus, by "<piece>:<pid>".
CpuReading = Callable[[], Mapping[str, float]]


class ProcessCpu:
    """The CPU time of every live process a supervisor runs, read from /proc."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def __call__(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for child in list(self.supervisor.children.values()):
            pid = child.pid
            if pid is None:
                continue
            with contextlib.suppress(OSError):  # exited between the two reads
                out[f"{child.spec.name}:{pid}"] = cpu_seconds(pid)
        return out


def cpu_used(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds each process used between two readings; one started in between counts
    from zero (its whole life is in the window)."""
    return {key: t - before.get(key, 0.0) for key, t in after.items()}


def cpu_by_part(used: Mapping[str, float]) -> dict[str, float]:
    """Per piece of the bus: the sending node, the other nodes, registry, notifier..."""
    parts: dict[str, float] = {}
    for key, seconds in used.items():
        name = key.rpartition(":")[0]
        kind, _, agency = name.partition("/")
        part = "sender" if agency == SENDER else "other nodes" if kind == "node" else name
        parts[part] = round(parts.get(part, 0.0) + seconds, 2)
    return parts


@dataclass(frozen=True)
class CpuSpent:
    """CPU used between two readings of a bus: per process, per piece (a process each),
    the processes gone by the second reading, and the broker's (None when unknown)."""

    used: dict[str, float]
    parts: dict[str, float]
    gone: int
    broker: float | None


def _own_cpu() -> dict[str, float]:
    t = os.times()
    return {f"bus:{os.getpid()}": t.user + t.system}


def _broker_cpu(kafka: SecuredKafka | None) -> Callable[[], float | None]:
    """The broker's CPU seconds, when this run started the broker (else unknown)."""

    def read() -> float | None:
        pid = getattr(kafka.handle, "pid", None) if kafka is not None else None
        if isinstance(pid, int):
            with contextlib.suppress(OSError):  # the broker is gone
                return cpu_seconds(pid)
        return None

    return read


class BusUnderTest:
    """A running bus with arrivals noted at every recipient, and a loader process."""

    def __init__(
        self,
        bus: Bus,
        kind: str,
        cpu: CpuReading,
        follow: bool = False,
        topology: str = ONE_PROCESS,
        broker_cpu: Callable[[], float | None] | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.bus = bus
        self.kind = kind
        self.cpu = cpu
        self.topology = topology
        self.broker_cpu = broker_cpu or (lambda: None)
        self.ca_file = ca_file
        self.arrivals = Arrivals()
        self._follow = follow
        self._followers: list[asyncio.Task[None]] = []
        self._stop_following = asyncio.Event()
        self._loader: asyncio.subprocess.Process | None = None

    @classmethod
    def embedded(cls, data_dir: Path, kafka: SecuredKafka | None) -> BusUnderTest:
        """The whole bus in this process (SQLite transport, or the secured Kafka)."""
        bus = CountryBus(COUNTRY, data_dir, agencies=agencies(), kafka=kafka)
        kind = "kafka" if kafka is not None else "embedded"
        return cls(bus, kind, _own_cpu, broker_cpu=_broker_cpu(kafka))

    @classmethod
    def processes(cls, data_dir: Path, kafka: SecuredKafka) -> BusUnderTest:
        """A process per piece (`nrm up --processes`: registry, each node, notifier,
        provisioner) on the secured Kafka; arrivals followed through the receivers' logs."""
        from nrm.topology import CountryProcesses

        bus = CountryProcesses(COUNTRY, data_dir, kafka, agencies=agencies())
        return cls(
            bus,
            "kafka",
            ProcessCpu(bus.supervisor),
            follow=True,
            topology=PROCESSES,
            broker_cpu=_broker_cpu(kafka),
            ca_file=kafka.pki.ca_file,
        )

    async def start(self) -> None:
        await self.bus.start()
        nodes = getattr(self.bus, "nodes", None)
        for agency in RECIPIENTS:
            if self._follow or nodes is None:
                self._followers.append(
                    asyncio.create_task(
                        self.arrivals.follow(self.bus, agency, self._stop_following)
                    )
                )
            else:
                nodes[agency].store.on_commit(self.arrivals.listener(agency))
        config = {
            "base_url": self.bus.urls[SENDER],
            "sender": SENDER,
            "secrets": str(self.bus.keychain.folder),
            "audience": router_audience(SENDER),
            "ca_file": str(self.ca_file) if self.ca_file else None,
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
        n_requests: int,
        rate: float | None,
        concurrency: int = 32,
        tick: Callable[[int], None] | None = None,
        max_seconds: float | None = None,
        batch: int | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """One measurement: `n_requests` at `rate` requests/s (None: saturation), offering
        for at most `max_seconds`; each request one event, or `batch` events. Latency
        counts from when a request was due; at saturation "due" is when a lane was free."""
        readers = list(RECIPIENTS[:recipients])
        start = self._reading()
        cmd = {
            "n": n_requests,
            "rate": rate,
            "concurrency": concurrency,
            "recipients": readers,
            "max_seconds": max_seconds,
            "batch": batch,
        }
        load = asyncio.create_task(self._load(cmd))
        shown, before = 0, len(self.arrivals.at)
        while not load.done():  # follow deliveries while the load runs, for the progress bar
            await asyncio.sleep(0.2)
            if tick:
                now = (len(self.arrivals.at) - before) // recipients
                tick(now - shown)
                shown = now
        out = load.result()
        accepted = [r for r in out["results"] if r[4] == 201]
        wanted = [(a, eid) for r in accepted for eid in r[3] for a in readers]
        deadline = time.monotonic() + 60 + len(wanted) / 50
        while time.monotonic() < deadline:
            if all(k in self.arrivals.at for k in wanted):
                break
            await asyncio.sleep(0.01)
        spent = self._spent(start, self._reading())
        due_of = {eid: r[0] for r in accepted for eid in r[3]}
        latencies: list[float] = []
        last_at: dict[str, float] = {}
        arrived = {k: self.arrivals.at[k] for k in wanted if k in self.arrivals.at}
        for agency, eid in wanted:
            t = arrived.get((agency, eid))
            if t is None:
                continue
            latencies.append(t - due_of[eid])
            last_at[eid] = max(last_at.get(eid, 0.0), t)
        for key in wanted:  # what this run waited for is not kept: memory stays flat
            self.arrivals.at.pop(key, None)
        events_accepted = sum(len(r[3]) for r in accepted)
        first = min((r[1] for r in out["results"]), default=0.0)
        window = max(max(last_at.values(), default=first) - first, 1e-9)
        shed = [r for r in out["results"] if r[4] in (429, 503)]
        dropped = [r for r in out["results"] if r[4] == 599]
        failed = [r for r in out["results"] if r[4] not in (201, 429, 503, 599)]
        if tick:
            tick(max(0, len(out["results"]) - shown))
        row: dict[str, Any] = {
            "transport": self.kind,
            "bus": self.topology,
            "label": label or ("batch" if batch else "saturation" if rate is None else "fixed"),
            "recipients": recipients,
            "offered_events_per_s": round(rate * (batch or 1), 1) if rate else "saturation",
            "batch": batch,
            "requests": len(out["results"]),
            "accepted": events_accepted,
            "shed": len(shed),
            "shed_without_retry_after": sum(1 for r in shed if not r[5]),
            "dropped": len(dropped),
            "errors": len(failed),
            "first_error": (failed or dropped or [[None] * 4])[0][3],
            "delivered": len(latencies),
            "missing": len(wanted) - len(latencies),
            "events_per_s": round(len(last_at) / window, 1),
            "deliveries_per_s": round(len(latencies) / window, 1),
            "accept_p50_ms": _ms(percentile([r[2] - r[1] for r in accepted], 50)),
            "accept_p99_ms": _ms(percentile([r[2] - r[0] for r in accepted], 99)),
            "shed_p99_ms": _ms(percentile([r[2] - r[1] for r in shed], 99)),
            **latency_summary(latencies),
            "late_sends": sum(1 for r in out["results"] if r[1] - r[0] > 0.01) if rate else 0,
            "bus_cpu_s": round(sum(spent.used.values()), 2),
            "cpu_processes": len(spent.used),
            # A process gone by the second reading (a crash, a restart): its CPU since the
            # first is missing from the sum, so the row says so.
            "cpu_processes_gone": spent.gone,
            "cpu_by_part": spent.parts,
            # The sending node's own process: separable only on the process topology.
            "sender_cpu_s": spent.parts.get("sender"),
            "broker_cpu_s": None if spent.broker is None else round(spent.broker, 2),
            "loader_cpu_s": out["loader_cpu_s"],
            "window_s": round(window, 2),
            "rss_mb": rss_mb(),
        }
        return row

    async def idle(self, seconds: float) -> dict[str, Any]:
        """What the bus burns with nothing to do (timers, long polls, refreshes), in
        CPU-seconds per second, per piece when a process each."""
        await asyncio.sleep(1.0)  # the last measurement's tail (offset commits) settles
        start, t0 = self._reading(), time.monotonic()
        await asyncio.sleep(seconds)
        spent, elapsed = self._spent(start, self._reading()), time.monotonic() - t0
        return {
            "transport": self.kind,
            "bus": self.topology,
            "seconds": round(elapsed, 1),
            "cpu_s_per_s": round(sum(spent.used.values()) / elapsed, 3),
            "by_part": {k: round(v / elapsed, 3) for k, v in spent.parts.items()},
            "broker_cpu_s_per_s": (
                None if spent.broker is None else round(spent.broker / elapsed, 3)
            ),
        }

    def _reading(self) -> tuple[Mapping[str, float], float | None]:
        """CPU so far: each bus process's, and the broker's."""
        return self.cpu(), self.broker_cpu()

    def _spent(
        self,
        before: tuple[Mapping[str, float], float | None],
        after: tuple[Mapping[str, float], float | None],
    ) -> CpuSpent:
        used = cpu_used(before[0], after[0])
        broker = None if before[1] is None or after[1] is None else after[1] - before[1]
        return CpuSpent(
            used=used,
            parts=cpu_by_part(used) if self.topology == PROCESSES else {},
            gone=len(set(before[0]) - set(after[0])),
            broker=broker,
        )

    def store_position(self, agency: str) -> int:
        nodes = getattr(self.bus, "nodes", {})
        return int(nodes[agency].store.max_position()) if agency in nodes else 0

    async def stop(self) -> None:
        self._stop_following.set()
        for task in self._followers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
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


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


@dataclass(frozen=True)
class Measurement:
    """One row: `requests` requests (one event each, or `batch` events) to `recipients`
    at `rate` requests/s, or at `of_saturation` times the saturation rate this run
    measured for 3 recipients, or as fast as the bus takes them (neither); offering
    for at most `seconds`."""

    label: str
    recipients: int
    requests: int
    rate: float | None = None
    of_saturation: float | None = None
    seconds: float | None = None
    batch: int | None = None


def plan(quick: bool) -> list[Measurement]:
    """What to measure, in order (saturation for 3 recipients first: the rates of the
    half-saturation and overload rows are shares of it)."""
    if quick:
        return [
            Measurement("saturation", 3, 40),
            Measurement("light", 3, 10, rate=10.0, seconds=1.0),
            Measurement("half-saturation", 3, 30, of_saturation=0.5, seconds=1.0),
            Measurement("overload", 3, 60, of_saturation=3.0, seconds=1.0),
            Measurement("batch", 3, 2, batch=40),
            Measurement("saturation", 1, 30),
        ]
    return [
        Measurement("saturation", 3, 3000, seconds=8.0),
        Measurement("light", 3, 200, rate=10.0, seconds=20.0),
        Measurement("half-saturation", 3, 3000, of_saturation=0.5, seconds=10.0),
        Measurement("overload", 3, 20000, of_saturation=3.0, seconds=10.0),
        Measurement("batch", 3, 20, seconds=8.0, batch=200),
        Measurement("saturation", 1, 3000, seconds=6.0),
        Measurement("saturation", 10, 1000, seconds=6.0),
    ]


async def run_plan(
    but: BusUnderTest,
    measurements: Sequence[Measurement],
    tick: Callable[[int], None] | None = None,
    warmup: int = 20,
) -> list[dict[str, Any]]:
    """Warm the bus up (connections, topics, first grants), then play each measurement."""
    for r in sorted({m.recipients for m in measurements}):
        await but.run(r, warmup, None, concurrency=8)
    rows: list[dict[str, Any]] = []
    saturation = 0.0
    for m in measurements:
        rate = m.rate
        if m.of_saturation is not None:
            rate = max(1.0, m.of_saturation * saturation)
        # Open loop: enough lanes that the bus, not the loader, sets the pace. Batches go
        # one after another, as a bulk import sends them: a second batch in work at once
        # would be shed whenever the node cannot finish both within its queue bound.
        concurrency = 1 if m.batch else min(1024, max(64, int(rate * 2))) if rate else 32
        row = await but.run(
            m.recipients, m.requests, rate, concurrency, tick, m.seconds, m.batch, m.label
        )
        if m.label == "saturation" and m.recipients == 3:
            saturation = float(row["events_per_s"])
        rows.append(row)
    return rows
