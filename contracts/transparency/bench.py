"""Benchmark of the verifiable log at n leaves (in memory): returns figures, prints nothing.

Used to check the design's cost claims (append of a few µs, proofs in well under a
millisecond from stored levels, a full re-verification of a million leaves in seconds)
on the machine at hand; timings are medians over deterministic random samples.
"""

from __future__ import annotations

import gc
import random
import statistics
from time import perf_counter
from typing import Any

from contracts.transparency.hasher import HASH_SIZE
from contracts.transparency.tree import MemoryLevelStore, MerkleTree
from contracts.transparency.verify import root_from_leaves, verify_consistency, verify_inclusion


def _leaves(n: int) -> list[bytes]:
    return [b"nrm-bench-leaf-%d" % i for i in range(n)]


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t = perf_counter()
    out = fn(*args)
    return (perf_counter() - t) * 1e6, out


def _sample_proofs(
    tree: MerkleTree, n_leaves: int, root: bytes, samples: int, rng: random.Random
) -> tuple[list[float], ...]:
    inc_gen: list[float] = []
    inc_ver: list[float] = []
    inc_len: list[float] = []
    for _ in range(samples):
        index = rng.randrange(n_leaves)
        us, proof = _timed(tree.inclusion_proof, index, n_leaves)
        inc_gen.append(us)
        inc_len.append(len(proof))
        us, _ = _timed(verify_inclusion, tree.leaf_hash(index), index, n_leaves, proof, root)
        inc_ver.append(us)
    con_gen: list[float] = []
    con_ver: list[float] = []
    con_len: list[float] = []
    for _ in range(samples):
        old = rng.randrange(1, n_leaves)
        us, proof = _timed(tree.consistency_proof, old, n_leaves)
        con_gen.append(us)
        con_len.append(len(proof))
        us, _ = _timed(verify_consistency, old, n_leaves, tree.root(old), root, proof)
        con_ver.append(us)
    root_us = [_timed(tree.root, rng.randrange(1, n_leaves + 1))[0] for _ in range(samples)]
    return inc_gen, inc_ver, inc_len, con_gen, con_ver, con_len, root_us


def run(n_leaves: int, samples: int = 200, seed: int = 0) -> dict[str, Any]:
    """Build a tree of `n_leaves` and measure append, proofs, and full verification."""
    if n_leaves < 2:
        raise ValueError("benchmark needs at least 2 leaves")
    rng = random.Random(seed)
    leaves = _leaves(n_leaves)

    tree = MerkleTree()
    append = tree.append
    t0 = perf_counter()
    for d in leaves:
        append(d)
    append_s = perf_counter() - t0

    batch_tree = MerkleTree()
    t0 = perf_counter()
    for i in range(0, n_leaves, 1000):
        batch_tree.extend(leaves[i : i + 1000])
    extend_s = perf_counter() - t0
    root = tree.root()
    if batch_tree.root() != root:
        raise AssertionError("batch and single appends disagree")

    # A collector pass over a million live hashes takes milliseconds; it would be charged
    # to whichever proof happened to trigger it, so proofs are timed with it paused.
    gc.collect()
    gc.disable()
    try:
        inc_gen, inc_ver, inc_len, con_gen, con_ver, con_len, root_us = _sample_proofs(
            tree, n_leaves, root, samples, rng
        )
    finally:
        gc.enable()

    store = tree.store
    assert isinstance(store, MemoryLevelStore)
    leaf_hashes = store.level(0)
    t0 = perf_counter()
    full_root = root_from_leaves(leaf_hashes)
    full_s = perf_counter() - t0
    if full_root != root:
        raise AssertionError("full verification disagrees with the tree")

    return {
        "n_leaves": n_leaves,
        "append_us_per_leaf": append_s / n_leaves * 1e6,
        "extend_us_per_leaf": extend_s / n_leaves * 1e6,
        "root_at_past_size_us_median": statistics.median(root_us),
        "inclusion_proof_us_median": statistics.median(inc_gen),
        "inclusion_proof_us_p99": _p99(inc_gen),
        "inclusion_proof_hashes_max": max(inc_len),
        "inclusion_proof_bytes_max": max(inc_len) * HASH_SIZE,
        "inclusion_verify_us_median": statistics.median(inc_ver),
        "consistency_proof_us_median": statistics.median(con_gen),
        "consistency_proof_us_p99": _p99(con_gen),
        "consistency_proof_hashes_max": max(con_len),
        "consistency_proof_bytes_max": max(con_len) * HASH_SIZE,
        "consistency_verify_us_median": statistics.median(con_ver),
        "full_verification_s": full_s,
        "samples": samples,
    }
