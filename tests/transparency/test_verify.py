"""Verifiers: every honest proof for sizes 1..64 verifies; malformed ones fail precisely."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from contracts.transparency import (
    EMPTY_ROOT,
    ConsistencyProofError,
    InclusionProofError,
    MerkleTree,
    ProofError,
    RootMismatchError,
    consistency_proof_size,
    inclusion_proof_size,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
    verify_root,
)
from tests.transparency import naive

MAX = 64


@pytest.fixture(scope="module")
def ref() -> tuple[MerkleTree, list[bytes], list[bytes]]:
    tree = MerkleTree()
    tree.extend(b"v-%d" % i for i in range(MAX))
    hashes = [naive.leaf(b"v-%d" % i) for i in range(MAX)]
    roots = [naive.mth(hashes[:n]) for n in range(MAX + 1)]
    return tree, hashes, roots


def test_every_naive_inclusion_proof_verifies_and_only_at_its_index(ref) -> None:
    _, hashes, roots = ref
    for size in range(1, MAX + 1):
        for index in range(size):
            proof = naive.inclusion_proof(hashes[:size], index)
            assert inclusion_proof_size(index, size) == len(proof)
            verify_inclusion(hashes[index], index, size, proof, roots[size])
            if size > 1:  # the same proof claims nothing about a neighbour
                other = (index + 1) % size
                with pytest.raises(InclusionProofError):
                    verify_inclusion(hashes[other], index, size, proof, roots[size])


def test_every_naive_consistency_proof_verifies(ref) -> None:
    _, hashes, roots = ref
    for new in range(0, MAX + 1):
        for old in range(0, new + 1):
            proof = naive.consistency_proof(hashes[:new], old)
            assert consistency_proof_size(old, new) == len(proof), (old, new)
            verify_consistency(old, new, roots[old], roots[new], proof)
            if 0 < old < new:  # a proof never links a tree to a stranger's root
                with pytest.raises(ConsistencyProofError):
                    verify_consistency(old, new, roots[old - 1], roots[new], proof)
                with pytest.raises(ConsistencyProofError):
                    verify_consistency(old, new, roots[old], roots[new - 1], proof)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 2000), data=st.data())
def test_random_large_sizes_verify(n: int, data) -> None:
    tree = MerkleTree()
    tree.extend(b"%d" % i for i in range(n))
    index = data.draw(st.integers(0, n - 1))
    old = data.draw(st.integers(0, n))
    verify_inclusion(tree.leaf_hash(index), index, n, tree.inclusion_proof(index, n), tree.root())
    verify_consistency(old, n, tree.root(old), tree.root(), tree.consistency_proof(old, n))


@settings(max_examples=200, deadline=None)
@given(
    index=st.integers(0, 2**40),
    size=st.integers(1, 2**40),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=45),
    leaf=st.binary(min_size=32, max_size=32),
    root=st.binary(min_size=32, max_size=32),
)
def test_random_inclusion_claims_fail_with_a_proof_error(index, size, proof, leaf, root) -> None:
    assume(leaf != root)  # a one-leaf tree's root is its leaf hash
    with pytest.raises(InclusionProofError):
        verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=200, deadline=None)
@given(
    old=st.integers(1, 2**40),
    new=st.integers(1, 2**40),
    proof=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=45),
    r1=st.binary(min_size=32, max_size=32),
    r2=st.binary(min_size=32, max_size=32),
)
def test_random_consistency_claims_fail_with_a_proof_error(old, new, proof, r1, r2) -> None:
    with pytest.raises(ConsistencyProofError):
        verify_consistency(old, new, r1, r2, proof)


def test_inclusion_errors_name_what_failed(ref) -> None:
    _, hashes, roots = ref
    proof = naive.inclusion_proof(hashes[:8], 5)
    with pytest.raises(InclusionProofError, match="leaf index 8 is outside a tree of size 8"):
        verify_inclusion(hashes[5], 8, 8, proof, roots[8])
    with pytest.raises(
        InclusionProofError, match="has 2 hashes; leaf 5 of a tree of size 8 needs 3"
    ):
        verify_inclusion(hashes[5], 5, 8, proof[:2], roots[8])
    with pytest.raises(InclusionProofError, match="has 4 hashes"):
        verify_inclusion(hashes[5], 5, 8, [*proof, proof[0]], roots[8])
    with pytest.raises(InclusionProofError, match=r"proof\[1\] must be 32 bytes, got 31"):
        verify_inclusion(hashes[5], 5, 8, [proof[0], proof[1][:31], proof[2]], roots[8])
    with pytest.raises(InclusionProofError, match="leaf hash must be 32 bytes"):
        verify_inclusion(b"x", 5, 8, proof, roots[8])
    with pytest.raises(InclusionProofError, match="root must be 32 bytes"):
        verify_inclusion(hashes[5], 5, 8, proof, b"")
    with pytest.raises(InclusionProofError, match=f"not the expected {roots[7].hex()}"):
        verify_inclusion(hashes[5], 5, 8, proof, roots[7])


def test_consistency_errors_name_what_failed(ref) -> None:
    _, hashes, roots = ref
    proof = naive.consistency_proof(hashes[:8], 3)
    with pytest.raises(ConsistencyProofError, match="new size 2 is smaller than old size 3"):
        verify_consistency(3, 2, roots[3], roots[2], proof)
    with pytest.raises(ConsistencyProofError, match="has 3 hashes; sizes 3 -> 8 need 4"):
        verify_consistency(3, 8, roots[3], roots[8], proof[:3])
    with pytest.raises(ConsistencyProofError, match="rebuilds old root"):
        verify_consistency(3, 8, roots[4], roots[8], proof)
    with pytest.raises(ConsistencyProofError, match="rebuilds new root"):
        verify_consistency(3, 8, roots[3], roots[7], proof)
    with pytest.raises(ConsistencyProofError, match="two different roots for the same size 5"):
        verify_consistency(5, 5, roots[5], roots[4], [])
    with pytest.raises(ConsistencyProofError, match="has 1 hashes; sizes 5 -> 5 need 0"):
        verify_consistency(5, 5, roots[5], roots[5], [roots[1]])
    with pytest.raises(ConsistencyProofError, match="old root of the empty tree"):
        verify_consistency(0, 8, roots[1], roots[8], [])
    with pytest.raises(ConsistencyProofError, match="must not be negative"):
        verify_consistency(-1, 8, roots[1], roots[8], [])
    verify_consistency(0, 8, EMPTY_ROOT, roots[8], [])


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 700))
def test_root_from_leaves_matches_the_naive_mth(n: int) -> None:
    hashes = [naive.leaf(b"%d" % i) for i in range(n)]
    assert root_from_leaves(hashes) == naive.mth(hashes)
    verify_root(iter(hashes), n, naive.mth(hashes))


def test_full_verification_errors() -> None:
    hashes = [naive.leaf(b"%d" % i) for i in range(5)]
    with pytest.raises(RootMismatchError, match="got 5 leaf hashes for a tree of size 6"):
        verify_root(hashes, 6, naive.mth(hashes))
    with pytest.raises(RootMismatchError, match="root of all 4 leaves is"):
        verify_root(hashes[:4], 4, naive.mth(hashes))
    with pytest.raises(RootMismatchError, match="leaf hash 2 is 1 bytes"):
        root_from_leaves([*hashes[:2], b"x"])
    assert issubclass(RootMismatchError, ProofError) and issubclass(ProofError, ValueError)
