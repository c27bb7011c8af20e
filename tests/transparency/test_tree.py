"""The tree against published RFC 6962 values and against the naive reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.transparency import (
    EMPTY_ROOT,
    CompactRange,
    MemoryLevelStore,
    MerkleTree,
    TreeRangeError,
    hash_children,
    hash_leaf,
)
from tests.transparency import naive

REFERENCE = json.loads((Path(__file__).parent / "vectors" / "rfc6962_reference.json").read_text())
MAX = 64


def _data(i: int) -> bytes:
    return b"leaf-%d" % i


@pytest.fixture(scope="module")
def grown() -> tuple[MerkleTree, list[bytes]]:
    tree = MerkleTree()
    for i in range(MAX):
        tree.append(_data(i))
    return tree, [naive.leaf(_data(i)) for i in range(MAX)]


def test_hashing_is_rfc9162() -> None:
    assert EMPTY_ROOT.hex() == REFERENCE["roots"][0]
    assert hash_leaf(b"").hex() == REFERENCE["roots"][1]
    a, b = (hash_leaf(bytes.fromhex(x)) for x in REFERENCE["leaves_hex"][:2])
    assert hash_children(a, b).hex() == REFERENCE["roots"][2]


def test_roots_and_proofs_match_the_published_reference() -> None:
    tree = MerkleTree()
    tree.extend(bytes.fromhex(x) for x in REFERENCE["leaves_hex"])
    for size, root in enumerate(REFERENCE["roots"]):
        assert tree.root(size).hex() == root
    for case in REFERENCE["inclusion"]:
        assert [p.hex() for p in tree.inclusion_proof(case["index"], case["size"])] == case["proof"]


def test_every_root_and_inclusion_proof_matches_the_naive_reference(grown) -> None:
    tree, hashes = grown
    for size in range(0, MAX + 1):
        assert tree.root(size) == naive.mth(hashes[:size])
        for index in range(size):
            assert tree.inclusion_proof(index, size) == naive.inclusion_proof(
                hashes[:size], index
            ), (index, size)


def test_every_consistency_proof_matches_the_naive_reference(grown) -> None:
    tree, hashes = grown
    for new in range(0, MAX + 1):
        for old in range(0, new + 1):
            assert tree.consistency_proof(old, new) == naive.consistency_proof(hashes[:new], old), (
                old,
                new,
            )


def test_store_holds_one_node_per_complete_subtree(grown) -> None:
    tree, _ = grown
    store = tree.store
    assert isinstance(store, MemoryLevelStore)
    assert [store.size(level) for level in range(8)] == [64, 32, 16, 8, 4, 2, 1, 0]


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(st.lists(st.binary(max_size=8), max_size=40), min_size=1, max_size=6),
    data=st.data(),
)
def test_batches_appends_and_past_sizes_agree(chunks: list[list[bytes]], data) -> None:
    """However leaves arrive (one by one or in batches), every past root and proof is the
    reference's: a checkpoint signed long ago stays provable."""
    one, batch = MerkleTree(), MerkleTree()
    leaves: list[bytes] = []
    for chunk in chunks:
        for d in chunk:
            assert one.append(d) == len(leaves)
            leaves.append(d)
        assert batch.extend(chunk) == range(len(leaves) - len(chunk), len(leaves))
    hashes = [naive.leaf(d) for d in leaves]
    n = len(leaves)
    assert one.size == batch.size == n
    size = data.draw(st.integers(0, n))
    assert one.root(size) == batch.root(size) == naive.mth(hashes[:size])
    old = data.draw(st.integers(0, size))
    assert batch.consistency_proof(old, size) == naive.consistency_proof(hashes[:size], old)
    if size:
        index = data.draw(st.integers(0, size - 1))
        assert batch.inclusion_proof(index, size) == naive.inclusion_proof(hashes[:size], index)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 300))
def test_compact_range_tracks_the_tree(n: int) -> None:
    tree, compact = MerkleTree(), CompactRange()
    for i in range(n):
        tree.append(_data(i))
        compact.append(_data(i))
    assert compact.root() == tree.root()
    resumed = tree.compact_range(n // 2)
    resumed.extend_hashes(tree.leaf_hash(i) for i in range(n // 2, n))
    assert resumed.root() == tree.root() and resumed.hashes == compact.hashes


def test_out_of_range_requests_are_refused(grown) -> None:
    tree, _ = grown
    with pytest.raises(TreeRangeError, match=r"size 65 is not within 0\.\.64"):
        tree.root(65)
    with pytest.raises(TreeRangeError, match="leaf index 5 is outside a tree of size 5"):
        tree.inclusion_proof(5, 5)
    with pytest.raises(TreeRangeError, match=r"old size 9 is not within 0\.\.8"):
        tree.consistency_proof(9, 8)
    with pytest.raises(TreeRangeError, match="leaf hash is 3 bytes"):
        MerkleTree().append_hash(b"abc")
    with pytest.raises(TreeRangeError, match="has 1 hashes, got 0"):
        CompactRange(4, [])
    store = MemoryLevelStore()
    with pytest.raises(TreeRangeError, match="cannot write at 1"):
        store.append(0, 1, [EMPTY_ROOT])
