"""The committed JSON vectors: regenerated identically, matched by the tree, and every
single-bit mutation of a proof, root, leaf, index or size is rejected (transparency-dev
style), except the listed same-shape size flips that no proof can tell apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.transparency import (
    ConsistencyProofError,
    InclusionProofError,
    MerkleTree,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from tests.transparency import make_vectors

VECTORS = Path(__file__).parent / "vectors"
BITS = make_vectors.BITS


def _load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def _flips(value: bytes) -> Iterator[bytes]:
    for i in range(len(value) * 8):
        out = bytearray(value)
        out[i // 8] ^= 1 << (i % 8)
        yield bytes(out)


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    t = MerkleTree()
    t.extend((make_vectors.LEAF_FORMAT % i).encode() for i in range(make_vectors.MAX_LEAVES))
    return t


def test_committed_vectors_are_what_the_generator_produces() -> None:
    for name, text in make_vectors.render().items():
        assert (VECTORS / name).read_text() == text, f"{name} is stale: rerun make_vectors"


def test_tree_reproduces_the_vectors(tree: MerkleTree) -> None:
    for r in _load("roots.json")["roots"]:
        assert tree.root(r["size"]).hex() == r["root"]
        assert root_from_leaves(tree.leaf_hash(i) for i in range(r["size"])).hex() == r["root"]
    for v in _load("inclusion.json")["vectors"]:
        assert [p.hex() for p in tree.inclusion_proof(v["index"], v["size"])] == v["proof"]
    for v in _load("consistency.json")["vectors"]:
        proof = tree.consistency_proof(v["old_size"], v["new_size"])
        assert [p.hex() for p in proof] == v["proof"]


@pytest.mark.parametrize(
    "v", _load("inclusion.json")["vectors"], ids=lambda v: f"{v['index']}@{v['size']}"
)
def test_inclusion_vector_and_all_its_bit_flips(v: dict) -> None:
    leaf, root = bytes.fromhex(v["leaf_hash"]), bytes.fromhex(v["root"])
    proof = [bytes.fromhex(p) for p in v["proof"]]
    index, size = v["index"], v["size"]
    verify_inclusion(leaf, index, size, proof, root)

    flipped = 0
    for bad in _flips(leaf):
        with pytest.raises(InclusionProofError):
            verify_inclusion(bad, index, size, proof, root)
        flipped += 1
    for bad in _flips(root):
        with pytest.raises(InclusionProofError):
            verify_inclusion(leaf, index, size, proof, bad)
        flipped += 1
    for k, p in enumerate(proof):
        for bad in _flips(p):
            with pytest.raises(InclusionProofError):
                verify_inclusion(leaf, index, size, [*proof[:k], bad, *proof[k + 1 :]], root)
            flipped += 1
    assert flipped == v["hash_bit_flips"]

    for bit in range(BITS):
        if bit in v["index_flips_accepted_bits"]:
            verify_inclusion(leaf, index ^ (1 << bit), size, proof, root)
        else:
            with pytest.raises(InclusionProofError):
                verify_inclusion(leaf, index ^ (1 << bit), size, proof, root)
        if bit in v["size_flips_accepted_bits"]:
            verify_inclusion(leaf, index, size ^ (1 << bit), proof, root)
        else:
            with pytest.raises(InclusionProofError):
                verify_inclusion(leaf, index, size ^ (1 << bit), proof, root)


@pytest.mark.parametrize(
    "v", _load("consistency.json")["vectors"], ids=lambda v: f"{v['old_size']}-{v['new_size']}"
)
def test_consistency_vector_and_all_its_bit_flips(v: dict) -> None:
    old, new = v["old_size"], v["new_size"]
    r1, r2 = bytes.fromhex(v["old_root"]), bytes.fromhex(v["new_root"])
    proof = [bytes.fromhex(p) for p in v["proof"]]
    verify_consistency(old, new, r1, r2, proof)

    flipped = 0
    for bad in _flips(r1):
        with pytest.raises(ConsistencyProofError):
            verify_consistency(old, new, bad, r2, proof)
        flipped += 1
    for bad in _flips(r2):
        with pytest.raises(ConsistencyProofError):
            verify_consistency(old, new, r1, bad, proof)
        flipped += 1
    for k, p in enumerate(proof):
        for bad in _flips(p):
            with pytest.raises(ConsistencyProofError):
                verify_consistency(old, new, r1, r2, [*proof[:k], bad, *proof[k + 1 :]])
            flipped += 1
    assert flipped == v["hash_bit_flips"]

    for bit in range(BITS):
        if bit in v["old_size_flips_accepted_bits"]:
            verify_consistency(old ^ (1 << bit), new, r1, r2, proof)
        else:
            with pytest.raises(ConsistencyProofError):
                verify_consistency(old ^ (1 << bit), new, r1, r2, proof)
        if bit in v["new_size_flips_accepted_bits"]:
            verify_consistency(old, new ^ (1 << bit), r1, r2, proof)
        else:
            with pytest.raises(ConsistencyProofError):
                verify_consistency(old, new ^ (1 << bit), r1, r2, proof)
