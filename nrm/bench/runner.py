"""Sequences the stages, computes the ratios, and writes the report files.

Order matters a little: the cheap, CPU-only baselines run first while the machine is
quiet; the Kafka broker is started once and shared by the raw baseline and the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from nrm import serving
from nrm.bench import (
    audit,
    crypto_floor,
    end_to_end,
    growth,
    stack_floor,
    store_append,
    targets,
)
from nrm.bench import transport_baseline as tb
from nrm.bench.common import Progress, machine_facts, ratio
from nrm.bench.report import svg, text, write_json
from nrm.broker import SecuredKafka, start_local


@dataclass
class Options:
    quick: bool = False
    kafka: str | None = None  # bootstrap of a running broker; None: start our own
    kafka_pki: Path | None = None  # with `kafka`: the nrm pki folder its brokers trust
    no_kafka: bool = False
    max_events: int | None = None  # growth: sender events to reach
    audit_leaves: int | None = None
    profile: bool | None = None  # None: on in full runs
    out: Path = Path("results")
    progress: bool = True
    #: the buses measured end to end: "embedded", "kafka" (one process) and "processes"
    #: (a process per piece, as `nrm up --processes`, over Kafka)
    buses: tuple[str, ...] = ("embedded", "kafka")
    stages: tuple[str, ...] = field(
        default=("crypto", "store", "stack", "transport", "e2e", "growth", "audit")
    )


def run(opts: Options, out: TextIO | None = None) -> dict[str, Any]:
    """Run every selected stage; print the table (to `out`, else the standard output of
    the moment: a default bound at import would miss a later redirection); write JSON and
    SVG; return the doc."""
    return serving.run(_run(opts, out if out is not None else sys.stdout))


async def _run(opts: Options, out: TextIO) -> dict[str, Any]:
    t_start = time.monotonic()
    q = opts.quick
    doc: dict[str, Any] = {"quick": q, "machine": machine_facts(), "skipped": []}
    say = _Say(opts.progress)
    if "crypto" in opts.stages:
        say("crypto floor")
        doc["crypto_floor"] = crypto_floor.run(60 if q else 500)
    if "store" in opts.stages:
        say("store append")
        doc["store_append"] = store_append.run(200 if q else 3000)
    if "stack" in opts.stages:
        say("a bare HTTPS request (the stack's floor)")
        doc["stack_floor"] = await stack_floor.https_request_us(1000 if q else 3000)

    with tempfile.TemporaryDirectory(prefix="nrm-bench-") as tmp:
        work = Path(tmp)
        kafka: SecuredKafka | None = None
        if opts.no_kafka:
            doc["skipped"].append("Kafka stages (--no-kafka)")
        elif opts.kafka:
            from nrm.pki import LocalCA

            assert opts.kafka_pki is not None, "a broker of one's own comes with its PKI"
            kafka = SecuredKafka(opts.kafka, LocalCA(opts.kafka_pki))
        else:
            say("starting a secured Kafka broker (deploy/kafka.py)")
            try:
                kafka = await asyncio.to_thread(start_local, work / "kafka")
            except Exception as exc:  # no Java or no classpath: say so, keep going
                doc["skipped"].append(f"Kafka stages: broker did not start ({exc})"[:300])
        try:
            await _transports_and_bus(opts, doc, work, kafka, say)
        finally:
            if kafka is not None and kafka.handle is not None:
                await asyncio.to_thread(kafka.stop)

    if "audit" in opts.stages:
        leaves = opts.audit_leaves or (10_000 if q else 1_000_000)
        say(f"audit at {leaves:,} leaves")
        doc["audit"] = await asyncio.to_thread(audit.run, leaves)
    _ratios(doc)
    doc["elapsed_s"] = round(time.monotonic() - t_start, 1)
    opts.out.mkdir(parents=True, exist_ok=True)
    write_json(doc, opts.out / "bench.json")
    (opts.out / "bench.svg").write_text(svg(doc))
    report = text(doc)
    (opts.out / "bench.txt").write_text(report)
    out.write(report)
    out.write(f"written: {opts.out / 'bench.json'}, {opts.out / 'bench.svg'}\n")
    return doc


class _Say:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, what: str) -> None:
        if self.enabled:
            print(f"[nrm bench] {what} ...", file=sys.stderr, flush=True)


async def _transports_and_bus(
    opts: Options, doc: dict[str, Any], work: Path, kafka: SecuredKafka | None, say: _Say
) -> None:
    q = opts.quick
    recips = (1, 3, 10)
    if "transport" in opts.stages:
        say("transport baselines")
        rows = []
        for r in recips:
            rows.append(await tb.embedded_loop(150 if q else 3000, r))
        rows.append(await tb.embedded_loop(60 if q else 1000, 3, 200.0))
        if kafka:
            await tb.kafka_loop(kafka, 100, 1)  # warm the broker up; not reported
            for r in recips:
                rows.append(await tb.kafka_loop(kafka, 150 if q else 3000, r))
            rows.append(await tb.kafka_loop(kafka, 60 if q else 1000, 3, 200.0))
            if not q:
                rows.append(await tb.kafka_loop(kafka, 3000, 3, 1000.0))
        doc["transport_baseline"] = rows
    if "stack" in opts.stages and "transport" in opts.stages and kafka:  # with its loop
        producing = await tb.kafka_producer_us(kafka, 300 if q else 3000, 3)
        doc.setdefault("stack_floor", {})["kafka_producer_us"] = round(producing, 1)
    if "e2e" in opts.stages:
        buses: list[tuple[str, Callable[[], end_to_end.BusUnderTest]]] = []
        if "embedded" in opts.buses:
            buses.append(
                ("embedded", lambda: end_to_end.BusUnderTest.embedded(work / "bus-embedded", None))
            )
        if kafka and "kafka" in opts.buses:
            buses.append(
                ("kafka", lambda: end_to_end.BusUnderTest.embedded(work / "bus-kafka", kafka))
            )
        if "processes" in opts.buses and kafka:
            buses.append(
                (
                    "kafka, a process per piece",
                    lambda: end_to_end.BusUnderTest.processes(work / "bus-processes", kafka),
                )
            )
        elif "processes" in opts.buses:
            doc["skipped"].append("process topology (it runs on Kafka only)")
        doc["end_to_end"] = []
        profile = opts.profile if opts.profile is not None else not q
        measurements = end_to_end.plan(q)
        for kind, make in buses:
            but = make()
            say(f"end to end on {kind}: starting the bus (registry, 11 nodes, notifier)")
            await but.start()
            try:
                total = sum(m.requests * (m.batch or 1) for m in measurements)
                bar = Progress(f"e2e {kind}", total, enabled=opts.progress and sys.stderr.isatty())
                rows = await end_to_end.run_plan(
                    but, measurements, tick=bar.advance, warmup=10 if q else 20
                )
                bar.close()
                doc["end_to_end"] += rows
                doc.setdefault("idle", []).append(await but.idle(3.0 if q else 10.0))
                if profile and kind == "embedded":
                    doc["profile"] = await _profile(but)
            finally:
                await but.stop()
    if "growth" in opts.stages:
        if opts.max_events:
            points = growth.checkpoints(min(10_000, opts.max_events), opts.max_events)
        else:
            points = [1_000, 2_000] if q else growth.checkpoints(10_000, 40_000)
        say(f"growth to {points[-1]:,} events (embedded, one recipient)")
        but = end_to_end.BusUnderTest.embedded(work / "bus-growth", None)
        await but.start()
        try:
            gbar = Progress("growth", points[-1], enabled=opts.progress and sys.stderr.isatty())
            rows = await growth.run(
                but,
                points,
                lambda agency: but.bus.root / "nodes" / agency / "store.db",  # type: ignore[attr-defined]
                tick=gbar.advance,
                probe=60 if q else growth.PROBE,
            )
            gbar.close()
            doc["growth"] = {"rows": rows, **growth.verdicts(rows)}
        finally:
            await but.stop()


async def _profile(but: end_to_end.BusUnderTest) -> dict[str, Any]:
    """One saturation run (3 recipients) under the all-threads sampler."""
    from nrm.bench.sampler import Sampler

    sampler = Sampler().start()
    try:
        row = await but.run(3, 2000, None, max_seconds=6.0, label="profile")
    finally:
        sampler.stop()
    return {
        "what": "embedded, 3 recipients, saturation",
        "events_per_s": row["events_per_s"],
        "samples": sampler.samples,
        "top": sampler.top(25),
    }


def _ratios(doc: dict[str, Any]) -> None:
    """Each stage's figure over its baseline from this same run, and the targets."""
    raw = {
        (r["transport"], r["recipients"]): r
        for r in doc.get("transport_baseline", [])
        if r["offered_events_per_s"] == "saturation"
    }
    floor = doc.get("crypto_floor", [])
    for row in doc.get("end_to_end", []):
        base = raw.get((row["transport"], row["recipients"]))
        if base and row["label"] == "saturation":
            row["ratio_to_raw_throughput"] = ratio(row["events_per_s"], base["events_per_s"])
        done = row["delivered"] / max(row["recipients"], 1)
        if done:
            cpu_us = row["bus_cpu_s"] / done * 1e6
            row["cpu_us_per_event"] = round(cpu_us)
            with contextlib.suppress(ZeroDivisionError):
                row["ratio_cpu_to_crypto_floor"] = ratio(
                    cpu_us, crypto_floor.floor_us(floor, row["recipients"])
                )
        if row.get("sender_cpu_s") is not None and row["accepted"]:
            row["sender_cpu_us_per_event"] = round(row["sender_cpu_s"] / row["accepted"] * 1e6)
    stack = stack_floor.floor(doc)
    if stack is not None:
        crypto = crypto_floor.floor_us(floor, stack["recipients"])
        stack["crypto_floor_us"] = round(crypto, 1)
        stack["ratio_with_crypto_to_crypto_floor"] = ratio(stack["stack_us"] + crypto, crypto)
        doc["stack_floor"].update(stack)
    sender = stack_floor.at_the_floor(doc)
    if sender is not None:
        doc["stack_floor"].update(sender)
    doc["targets"] = targets.verdicts(doc)
