"""Verifiers for RFC 9162 inclusion and consistency proofs and for whole logs.

Pure functions over hashes and sizes, meant for auditors who trust nothing but this
file and SHA-256. Each raises a precise `ProofError` subclass naming what failed; none
returns a boolean that could be ignored. Proof lengths are checked before hashing, so a
truncated or padded proof is reported as such rather than as a root mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

from contracts.transparency.errors import (
    ConsistencyProofError,
    InclusionProofError,
    ProofError,
    RootMismatchError,
)
from contracts.transparency.hasher import EMPTY_ROOT, HASH_SIZE


def inclusion_proof_size(index: int, size: int) -> int:
    """Hashes in the proof for leaf `index` of a tree of `size` leaves.

    The proof has one hash per level below the point where the leaf's path and the
    tree's last leaf's path split ("inner"), plus one per left sibling above it
    ("border").
    """
    if not 0 <= index < size:
        raise InclusionProofError(f"leaf index {index} is outside a tree of size {size}")
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_size(old_size: int, new_size: int) -> int:
    """Hashes in the proof that a tree of `new_size` leaves extends one of `old_size`."""
    if not 0 <= old_size <= new_size:
        raise ConsistencyProofError(
            f"old size {old_size} is not within 0..{new_size} (the new size)"
        )
    if old_size in (0, new_size):
        return 0
    shift = (old_size & -old_size).bit_length() - 1  # the old tree's last perfect subtree
    index = (old_size - 1) >> shift
    last = (new_size - 1) >> shift
    inner = (index ^ last).bit_length()
    seed = 0 if index == 0 else 1  # no seed when the old tree is itself a perfect subtree
    return seed + inner + (index >> inner).bit_count()


def _check_hash(what: str, value: bytes, error: type[ProofError]) -> None:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != HASH_SIZE:
        got = len(value) if isinstance(value, bytes | bytearray | memoryview) else type(value)
        raise error(f"{what} must be {HASH_SIZE} bytes, got {got}")


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root implied by a leaf hash and its inclusion proof (RFC 9162, 2.1.3.2)."""
    want = inclusion_proof_size(index, size)
    if len(proof) != want:
        raise InclusionProofError(
            f"inclusion proof has {len(proof)} hashes; leaf {index} of a tree of size "
            f"{size} needs {want}"
        )
    _check_hash("leaf hash", leaf_hash, InclusionProofError)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p, InclusionProofError)
    fn, sn, r = index, size - 1, bytes(leaf_hash)
    for p in proof:
        if fn & 1 or fn == sn:  # the sibling is on the left
            r = sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:  # skip levels where the right edge has no sibling
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`."""
    _check_hash("root", root, InclusionProofError)
    got = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if got != root:
        raise InclusionProofError(
            f"inclusion proof for leaf {index} of size {size} leads to root {got.hex()}, "
            f"not the expected {bytes(root).hex()}"
        )


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree (`new_size`, `new_root`) extends (`old_size`, `old_root`)
    (RFC 9162, 2.1.4.2): the log only appended, never rewrote or dropped entries."""
    if old_size < 0 or new_size < 0:
        raise ConsistencyProofError(f"sizes must not be negative: {old_size}, {new_size}")
    if new_size < old_size:
        raise ConsistencyProofError(f"new size {new_size} is smaller than old size {old_size}")
    _check_hash("old root", old_root, ConsistencyProofError)
    _check_hash("new root", new_root, ConsistencyProofError)
    want = consistency_proof_size(old_size, new_size)
    if len(proof) != want:
        raise ConsistencyProofError(
            f"consistency proof has {len(proof)} hashes; sizes {old_size} -> {new_size} need {want}"
        )
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p, ConsistencyProofError)
    if old_size == new_size:
        if old_root != new_root:
            raise ConsistencyProofError(
                f"two different roots for the same size {old_size}: "
                f"{bytes(old_root).hex()} and {bytes(new_root).hex()}"
            )
        return
    if old_size == 0:
        if old_root != EMPTY_ROOT:
            raise ConsistencyProofError(
                f"old root of the empty tree must be {EMPTY_ROOT.hex()}, "
                f"got {bytes(old_root).hex()}"
            )
        return
    hashes = list(proof)
    if old_size & (old_size - 1) == 0:  # a perfect old tree is its own seed
        hashes.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:  # climb to the root of the old tree's last perfect subtree
        fn >>= 1
        sn >>= 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if fn & 1 or fn == sn:  # c is a left sibling: part of both trees
            fr = sha256(b"\x01" + c + fr).digest()
            sr = sha256(b"\x01" + c + sr).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:  # c is a right sibling: only in the new tree
            sr = sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if fr != old_root:
        raise ConsistencyProofError(
            f"consistency proof {old_size} -> {new_size} rebuilds old root {fr.hex()}, "
            f"not the expected {bytes(old_root).hex()}"
        )
    if sr != new_root:
        raise ConsistencyProofError(
            f"consistency proof {old_size} -> {new_size} rebuilds new root {sr.hex()}, "
            f"not the expected {bytes(new_root).hex()}"
        )


def root_from_leaves(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over every leaf hash, computed level by level (pairs, odd one carried up),
    which equals RFC 9162's left-heavy split. For full re-verification of a log."""
    level = list(leaf_hashes)
    for i, h in enumerate(level):
        if len(h) != HASH_SIZE:
            raise RootMismatchError(f"leaf hash {i} is {len(h)} bytes, expected {HASH_SIZE}")
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        odd = level[-1] if len(level) & 1 else None
        level = [
            sha256(b"\x01" + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=False)
        ]
        if odd is not None:
            level.append(odd)
    return level[0]


def verify_root(leaf_hashes: Iterable[bytes], size: int, root: bytes) -> None:
    """Check that exactly `size` leaf hashes produce `root` (full audit of a log)."""
    hashes = list(leaf_hashes)
    if len(hashes) != size:
        raise RootMismatchError(f"got {len(hashes)} leaf hashes for a tree of size {size}")
    got = root_from_leaves(hashes)
    if got != root:
        raise RootMismatchError(
            f"root of all {size} leaves is {got.hex()}, not the expected {bytes(root).hex()}"
        )
