"""A naive, obviously-RFC 9162 reference: recursive MTH, PATH and SUBPROOF over ranges.

Written straight from the RFC's definitions, independent of the library's stored levels
and bit tricks, so that the library's proofs and verifiers can be checked against it.
It also describes each proof's *shape* (how its hashes combine into the root), which
decides whether a statement with a mutated index or size must be rejected.
"""

from __future__ import annotations

from hashlib import sha256

Range = tuple[int, int]
Expr = object  # nested tuples of proof positions and the markers below


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def leaf(data: bytes) -> bytes:
    return sha256(b"\x00" + data).digest()


def mth(leaf_hashes: list[bytes]) -> bytes:
    n = len(leaf_hashes)
    if n == 0:
        return sha256(b"").digest()
    if n == 1:
        return leaf_hashes[0]
    k = split(n)
    return sha256(b"\x01" + mth(leaf_hashes[:k]) + mth(leaf_hashes[k:])).digest()


def path_ranges(m: int, lo: int, hi: int) -> list[Range]:
    """PATH(m, D[lo:hi]) as the leaf ranges whose MTH the proof lists."""
    if hi - lo <= 1:
        return []
    k = split(hi - lo)
    if m < k:
        return [*path_ranges(m, lo, lo + k), (lo + k, hi)]
    return [*path_ranges(m - k, lo + k, hi), (lo, lo + k)]


def subproof_ranges(m: int, lo: int, hi: int, whole: bool) -> list[Range]:
    """SUBPROOF(m, D[lo:hi], b) as leaf ranges."""
    n = hi - lo
    if m == n:
        return [] if whole else [(lo, hi)]
    k = split(n)
    if m <= k:
        return [*subproof_ranges(m, lo, lo + k, whole), (lo + k, hi)]
    return [*subproof_ranges(m - k, lo + k, hi, False), (lo, lo + k)]


def inclusion_proof(leaf_hashes: list[bytes], index: int) -> list[bytes]:
    return [mth(leaf_hashes[a:b]) for a, b in path_ranges(index, 0, len(leaf_hashes))]


def consistency_proof(leaf_hashes: list[bytes], old: int) -> list[bytes]:
    n = len(leaf_hashes)
    if old in (0, n):
        return []
    return [mth(leaf_hashes[a:b]) for a, b in subproof_ranges(old, 0, n, True)]


def _expr(lo: int, hi: int, known: dict[Range, Expr]) -> Expr:
    if (lo, hi) in known:
        return known[(lo, hi)]
    if hi - lo <= 1:
        raise LookupError(f"range {lo}..{hi} is not covered by the proof")
    k = split(hi - lo)
    return (_expr(lo, lo + k, known), _expr(lo + k, hi, known))


def inclusion_shape(index: int, size: int) -> Expr | None:
    """How leaf and proof hashes combine into the root; None for an impossible claim.

    Two claims with the same shape are accepted or rejected together, whatever the
    hashes: that is why a mutated size can verify against an unchanged proof."""
    if not 0 <= index < size:
        return None
    ranges = path_ranges(index, 0, size)
    known: dict[Range, Expr] = {r: i for i, r in enumerate(ranges)}
    known[(index, index + 1)] = "leaf"
    return (len(ranges), _expr(0, size, known))


def consistency_shape(old: int, new: int) -> Expr | None:
    """How the proof (and, for a perfect old tree, the old root) make both roots."""
    if not 0 < old < new:
        return None  # the vectors only use 0 < old < new with a non-empty proof
    ranges = subproof_ranges(old, 0, new, True)
    known: dict[Range, Expr] = {r: i for i, r in enumerate(ranges)}
    if old & (old - 1) == 0:
        known[(0, old)] = "old-root"
    return (len(ranges), _expr(0, old, known), _expr(0, new, known))
