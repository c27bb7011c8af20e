"""The benchmark runs and reports its figures (no timing asserts: machines differ)."""

from __future__ import annotations

from contracts.sealing.bench import run


def test_bench_reports_seal_open_and_floor() -> None:
    r = run(recipients=3, n_events=5)
    for key in ("seal_us", "open_us", "floor_seal_us", "floor_open_us", "seal_ratio", "open_ratio"):
        assert r[key] > 0
    assert r["recipients"] == 3 and r["categories"] == 5
