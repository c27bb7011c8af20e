"""Compact ranges: the O(log n) state that summarises a log prefix [0, size).

A compact range holds one hash per set bit of `size`: the roots of the perfect subtrees
that tile the prefix, largest first. It is enough to compute the root and to keep
appending, so an auditor can recompute a log's root while streaming its entries, with
memory logarithmic in the log's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

from contracts.transparency.errors import TreeRangeError
from contracts.transparency.hasher import EMPTY_ROOT, HASH_SIZE, hash_leaf


class CompactRange:
    """The perfect-subtree roots covering leaves [0, size) of an RFC 9162 tree."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise TreeRangeError(f"size must not be negative, got {size}")
        if len(hashes) != size.bit_count():
            raise TreeRangeError(
                f"a compact range of size {size} has {size.bit_count()} hashes, got {len(hashes)}"
            )
        for i, h in enumerate(hashes):
            if len(h) != HASH_SIZE:
                raise TreeRangeError(f"hash {i} is {len(h)} bytes, expected {HASH_SIZE}")
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The subtree roots, left (largest) to right (smallest)."""
        return tuple(self._hashes)

    def append_hash(self, leaf_hash: bytes) -> None:
        """Add one leaf hash, merging the equal-sized subtrees it completes."""
        stack = self._hashes
        h = leaf_hash
        n = self._size
        while n & 1:
            h = sha256(b"\x01" + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self._size += 1

    def extend_hashes(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self.append_hash(h)

    def append(self, leaf_data: bytes) -> None:
        self.append_hash(hash_leaf(leaf_data))

    def root(self) -> bytes:
        """Fold the subtree roots right to left, which is exactly RFC 9162's MTH."""
        if not self._hashes:
            return EMPTY_ROOT
        return fold_right(self._hashes)

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()[:16]}…)"


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect-subtree roots (largest first) into the root of their union."""
    r = hashes[-1]
    for h in reversed(hashes[:-1]):
        r = sha256(b"\x01" + h + r).digest()
    return r
