"""Audit: the verifiable log at n leaves (`contracts.transparency.bench.run`), next to the
floor of the same hashing done bare: full verification recomputes 2n-1 SHA-256 hashes, so
its baseline is hashlib doing exactly that many in a loop."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from contracts.transparency.bench import run as transparency_run


def _sha256_floor_s(n_leaves: int) -> float:
    """Seconds for 2n-1 bare SHA-256 calls (n leaf hashes of ~20 B, n-1 of 65 B)."""
    leaf = b"\x00nrm-bench-leaf-000000"
    node = b"\x01" + b"\x00" * 64
    sha = hashlib.sha256
    t0 = time.perf_counter()
    for _ in range(n_leaves):
        sha(leaf).digest()
    for _ in range(n_leaves - 1):
        sha(node).digest()
    return time.perf_counter() - t0


def run(n_leaves: int) -> dict[str, Any]:
    row = transparency_run(n_leaves, samples=200)
    floor = _sha256_floor_s(n_leaves)
    row = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
    row["sha256_floor_s"] = round(floor, 3)
    row["full_verification_ratio_to_floor"] = round(row["full_verification_s"] / floor, 2)
    return row
