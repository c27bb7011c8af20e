"""The issue's targets, each judged `met` or `not met` against figures of the same run.

They are stated for the process topology over Kafka with 3 recipients (`nrm bench
--processes`); a run without it judges the one-process bus over Kafka, and a run without
Kafka the embedded bus, and each target's name says which. Nothing here is enforced: the
benchmark reports, it does not fail.
"""

from __future__ import annotations

from typing import Any

#: CPU per event (every bus process) at most this many times the crypto floor.
CPU_TIMES_FLOOR = 4.0
#: Throughput at saturation at least this share of raw produce-then-consume.
RAW_SHARE = 0.25
LIGHT_P50_MS, LIGHT_P99_MS = 20.0, 50.0
HALF_SATURATION_P99_MS = 250.0
OVERLOAD_ACCEPTED_P99_MS = 1000.0
#: A shed request is answered "at once": within this.
OVERLOAD_SHED_P99_MS = 250.0
#: A batch's accept cost per event at most this share of a single request's.
BATCH_SHARE = 0.2
REBUILD_1M_S = 120.0


def _row(doc: dict[str, Any], bus: tuple[str, str], label: str, recipients: int = 3) -> Any:
    for r in doc.get("end_to_end", []):
        if (r["transport"], r.get("bus"), r["label"], r["recipients"]) == (
            *bus,
            label,
            recipients,
        ):
            return r
    return None


def judged(doc: dict[str, Any]) -> tuple[str, str]:
    """The (transport, topology) the targets are judged on: the closest to the stated
    one (a process per piece over Kafka) that this run measured."""
    measured = {(r["transport"], r.get("bus")) for r in doc.get("end_to_end", [])}
    for bus in (("kafka", "processes"), ("kafka", "one process")):
        if bus in measured:
            return bus
    return ("embedded", "one process")


def _target(name: str, measured: str, met: bool | None) -> dict[str, Any]:
    return {"target": name, "measured": measured, "met": met}


def verdicts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    bus = judged(doc)
    where = f"{bus[0]}, {bus[1]}"
    out: list[dict[str, Any]] = []
    sat = _row(doc, bus, "saturation")
    if sat is not None:
        x = sat.get("ratio_cpu_to_crypto_floor")
        if x:
            measured = f"{sat['cpu_us_per_event']:,} us = {x:.1f}x"
            bare = (doc.get("stack_floor") or {}).get("ratio_with_crypto_to_crypto_floor")
            if bare:
                measured += f" (the bare stack with the crypto: {bare:.1f}x)"
            out.append(
                _target(
                    f"CPU per event <= {CPU_TIMES_FLOOR:g}x crypto floor ({where}, 3 recip.)",
                    measured,
                    x <= CPU_TIMES_FLOOR,
                )
            )
        share = sat.get("ratio_to_raw_throughput")
        if share is not None:
            out.append(
                _target(
                    f"throughput >= {RAW_SHARE:.0%} of raw transport ({where}, 3 recip.)",
                    f"{sat['events_per_s']:,} events/s = {share:.1%}",
                    share >= RAW_SHARE,
                )
            )
    light = _row(doc, bus, "light")
    if light is not None:
        out.append(
            _target(
                f"light load (10/s): p50 < {LIGHT_P50_MS:g} ms, p99 < {LIGHT_P99_MS:g} ms "
                f"({where})",
                f"p50 {light['p50_ms']:.1f} ms, p99 {light['p99_ms']:.1f} ms",
                light["p50_ms"] < LIGHT_P50_MS and light["p99_ms"] < LIGHT_P99_MS,
            )
        )
    half = _row(doc, bus, "half-saturation")
    if half is not None:
        out.append(
            _target(
                f"half saturation ({half['offered_events_per_s']}/s): "
                f"p99 < {HALF_SATURATION_P99_MS:g} ms ({where})",
                f"p99 {half['p99_ms']:.0f} ms",
                half["p99_ms"] < HALF_SATURATION_P99_MS,
            )
        )
    over = _row(doc, bus, "overload")
    if over is not None:
        answered = over["dropped"] == 0 and over["errors"] == 0
        told = over["shed_without_retry_after"] == 0
        ok = (
            answered
            and told
            and over["missing"] == 0
            and over["accept_p99_ms"] < OVERLOAD_ACCEPTED_P99_MS
            and over["shed_p99_ms"] < OVERLOAD_SHED_P99_MS
        )
        out.append(
            _target(
                f"overload (3x saturation = {over['offered_events_per_s']}/s): every request "
                f"201 or shed with Retry-After, accepted p99 < 1 s, none lost ({where})",
                f"{over['accepted']:,} accepted, {over['shed']:,} shed "
                f"({over['shed_without_retry_after']} without Retry-After, p99 "
                f"{over['shed_p99_ms']:.0f} ms), {over['dropped']} dropped, "
                f"{over['errors']} other errors, accepted p99 {over['accept_p99_ms']:.0f} ms, "
                f"{over['missing']} lost",
                ok,
            )
        )
    batch = _row(doc, bus, "batch")
    if batch is not None and sat is not None:
        if batch.get("sender_cpu_us_per_event") and sat.get("sender_cpu_us_per_event"):
            share = batch["sender_cpu_us_per_event"] / sat["sender_cpu_us_per_event"]
            measured = (
                f"{batch['sender_cpu_us_per_event']:,} vs "
                f"{sat['sender_cpu_us_per_event']:,} us = {share:.0%}"
            )
            bare = (doc.get("stack_floor") or {}).get("batch_share_at_floor")
            if bare:
                measured += f" (at the stack's floor: {bare:.0%})"
            out.append(
                _target(
                    f"batch intake: accept cost per event <= {BATCH_SHARE:.0%} of a single "
                    f"request's (the sending node's own CPU; {where})",
                    measured,
                    share <= BATCH_SHARE,
                )
            )
        else:
            share = batch.get("cpu_us_per_event", 0) / max(sat.get("cpu_us_per_event", 1), 1)
            out.append(
                _target(
                    f"batch intake: accept cost per event <= {BATCH_SHARE:.0%} of a single "
                    f"request's ({where})",
                    f"not separable with the bus in one process; whole-bus CPU per "
                    f"event, batch vs single: {share:.0%}",
                    None,
                )
            )
    growth = doc.get("growth")
    if growth:
        out.append(
            _target(
                f"append cost and memory flat from {growth['from_events']:,} to "
                f"{growth['to_events']:,} events",
                f"append cost x{growth['append_cost_ratio']}, memory x{growth['memory_ratio']}"
                f" (last stretch: {growth['memory_bytes_per_event_last']} bytes/event)",
                growth["flat"],
            )
        )
        measured = growth["rebuild_measured_events"]
        how = "measured" if measured >= 1_000_000 else f"extrapolated from {measured:,} events"
        out.append(
            _target(
                f"rebuild of 1,000,000 events < {REBUILD_1M_S:g} s",
                f"{growth['rebuild_1m_s']:.0f} s ({how})",
                growth["rebuild_1m_s"] < REBUILD_1M_S,
            )
        )
    return out
