"""The benchmark runs and reports its figures (no timing assertions: machines differ)."""

from __future__ import annotations

from contracts.transparency import bench


def test_bench_reports_figures() -> None:
    figures = bench.run(5000, samples=20)
    assert figures["n_leaves"] == 5000
    assert figures["inclusion_proof_hashes_max"] <= 13
    assert figures["consistency_proof_hashes_max"] <= 2 * 13
    for key in ("append_us_per_leaf", "inclusion_proof_us_median", "full_verification_s"):
        assert figures[key] > 0
