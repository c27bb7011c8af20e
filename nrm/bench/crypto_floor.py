"""The bare cryptographic floor per event (AES-GCM, HPKE, Ed25519 on the workload's sizes),
next to what sealing costs, by reusing the sealing benchmark
(`contracts.sealing.bench.run`): its floor runs the same primitives with no encoding."""

from __future__ import annotations

from typing import Any

from contracts.sealing.bench import run as sealing_run


def run(n_events: int = 300, recipients: tuple[int, ...] = (1, 3, 10)) -> list[dict[str, Any]]:
    """Per recipient count: seal/open µs, the bare floor µs, and their ratios."""
    return [sealing_run(r, n_events) for r in recipients]


def floor_us(rows: list[dict[str, Any]], recipients: int) -> float:
    """The crypto floor of one event end to end: seal once, open at every recipient."""
    for row in rows:
        if row["recipients"] == recipients:
            return float(row["floor_seal_us"] + recipients * row["floor_open_us"])
    return 0.0


def sealing_us(rows: list[dict[str, Any]], recipients: int) -> float:
    """What sealing and opening actually cost per event at `recipients`."""
    for row in rows:
        if row["recipients"] == recipients:
            return float(row["seal_us"] + recipients * row["open_us"])
    return 0.0
