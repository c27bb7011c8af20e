"""An append-only RFC 9162 Merkle tree over a store of subtree levels.

Level 0 holds the leaf hashes; level L index i holds the root of the perfect subtree over
leaves [i·2^L, (i+1)·2^L). Such a node never changes once written, so the store only
grows, roots and proofs for any past size come from the same nodes, and a proof costs
O(log n) reads instead of rehashing O(n) leaves. Appending writes only the right edge:
one leaf hash plus, on average, one new interior node.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import Protocol, runtime_checkable

from contracts.transparency.compact import CompactRange, fold_right
from contracts.transparency.errors import TreeRangeError
from contracts.transparency.hasher import (
    EMPTY_ROOT,
    HASH_SIZE,
    hash_leaf,
    largest_power_of_two_below,
)


@runtime_checkable
class LevelStore(Protocol):
    """Where the tree keeps its perfect-subtree hashes, one append-only list per level.

    `append` names the index of its first hash so that a store shared by two writers can
    refuse a second write at the same place instead of silently interleaving.
    """

    def get(self, level: int, index: int) -> bytes:
        """The hash at (level, index); raises IndexError or KeyError if absent."""
        ...

    def size(self, level: int) -> int:
        """How many hashes the level holds (0 for a level never written)."""
        ...

    def append(self, level: int, start: int, hashes: Sequence[bytes]) -> None:
        """Store `hashes` at indexes start, start+1, … of `level`; start == size(level)."""
        ...


class MemoryLevelStore:
    """A LevelStore in Python lists: for tests, benchmarks and in-process auditors."""

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = []

    def get(self, level: int, index: int) -> bytes:
        if index < 0:
            raise IndexError(f"negative index {index} at level {level}")
        return self._levels[level][index]

    def size(self, level: int) -> int:
        return len(self._levels[level]) if level < len(self._levels) else 0

    def append(self, level: int, start: int, hashes: Sequence[bytes]) -> None:
        while len(self._levels) <= level:
            self._levels.append([])
        row = self._levels[level]
        if start != len(row):
            raise TreeRangeError(f"level {level} holds {len(row)} hashes, cannot write at {start}")
        row.extend(hashes)

    def level(self, level: int) -> Sequence[bytes]:
        """A level's hashes (level 0: every leaf hash), read-only by convention."""
        return self._levels[level] if level < len(self._levels) else ()


class MerkleTree:
    """An append-only RFC 9162 tree: leaves, roots at any size, inclusion and consistency
    proofs. Every read goes to the store, so a store rolled back by its owner's
    transaction leaves no stale state here.
    """

    __slots__ = ("_store",)

    def __init__(self, store: LevelStore | None = None) -> None:
        self._store: LevelStore = MemoryLevelStore() if store is None else store

    @property
    def store(self) -> LevelStore:
        return self._store

    @property
    def size(self) -> int:
        """The number of leaves."""
        return self._store.size(0)

    # -- writing ----------------------------------------------------------------------

    def append(self, leaf_data: bytes) -> int:
        """Hash and add one entry; returns its leaf index."""
        return self.append_hash(hash_leaf(leaf_data))

    def append_hash(self, leaf_hash: bytes) -> int:
        """Add one already-hashed leaf (RFC 9162 leaf hash); returns its leaf index."""
        if len(leaf_hash) != HASH_SIZE:
            raise TreeRangeError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
        store = self._store
        index = store.size(0)
        store.append(0, index, (leaf_hash,))
        h, level, i = leaf_hash, 0, index
        while i & 1:  # a right child completes its parent: hash up the right edge
            h = sha256(b"\x01" + store.get(level, i - 1) + h).digest()
            level += 1
            i >>= 1
            store.append(level, i, (h,))
        return index

    def extend(self, leaves: Iterable[bytes]) -> range:
        """Hash and add many entries at once; returns the range of their leaf indexes."""
        return self.extend_hashes([sha256(b"\x00" + d).digest() for d in leaves])

    def extend_hashes(self, leaf_hashes: Iterable[bytes]) -> range:
        """Add many leaf hashes, writing each level in one batch (cheaper on a database)."""
        new = list(leaf_hashes)
        for i, h in enumerate(new):
            if len(h) != HASH_SIZE:
                raise TreeRangeError(f"leaf hash {i} is {len(h)} bytes, expected {HASH_SIZE}")
        store = self._store
        start = store.size(0)
        first, level = start, 0
        while new:
            store.append(level, first, new)
            if first & 1:  # the first new node is a right child of an older left sibling
                row = [store.get(level, first - 1), *new]
                first -= 1
            else:
                row = new
            new = [
                sha256(b"\x01" + row[j] + row[j + 1]).digest() for j in range(0, len(row) - 1, 2)
            ]
            first >>= 1
            level += 1
        return range(start, self._store.size(0))

    # -- reading ----------------------------------------------------------------------

    def leaf_hash(self, index: int) -> bytes:
        self._check_index(index, self.size)
        return self._store.get(0, index)

    def root(self, size: int | None = None) -> bytes:
        """The tree head at `size` leaves (default: now); any past size works."""
        n = self._checked_size(size)
        return EMPTY_ROOT if n == 0 else self._range_hash(0, n)

    def compact_range(self, size: int | None = None) -> CompactRange:
        """The compact range of [0, size): lets a client keep appending on its own."""
        n = self._checked_size(size)
        return CompactRange(n, self._perfect_subtrees(0, n))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 PATH(index, D[0:size]): sibling hashes from the leaf up to the root."""
        n = self._checked_size(size)
        self._check_index(index, n)
        proof: list[bytes] = []
        lo, hi = 0, n
        while hi - lo > 1:
            k = largest_power_of_two_below(hi - lo)
            if index < lo + k:
                proof.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range_hash(lo, lo + k))
                lo += k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 PROOF(old_size, D[0:new_size]): shows the new tree extends the old."""
        n = self._checked_size(new_size)
        if not 0 <= old_size <= n:
            raise TreeRangeError(f"old size {old_size} is not within 0..{n}")
        if old_size in (0, n):
            return []
        proof: list[bytes] = []
        lo, hi, m, whole_old_tree = 0, n, old_size, True
        while m != hi - lo:
            k = largest_power_of_two_below(hi - lo)
            if m <= k:
                proof.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range_hash(lo, lo + k))
                lo += k
                m -= k
                whole_old_tree = False
        if not whole_old_tree:  # the old tree's last subtree is not the old root itself
            proof.append(self._range_hash(lo, hi))
        proof.reverse()
        return proof

    # -- internals --------------------------------------------------------------------

    def _checked_size(self, size: int | None) -> int:
        current = self.size
        if size is None:
            return current
        if not 0 <= size <= current:
            raise TreeRangeError(f"size {size} is not within 0..{current}")
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            raise TreeRangeError(f"leaf index {index} is outside a tree of size {size}")

    def _perfect_subtrees(self, begin: int, end: int) -> list[bytes]:
        """Stored roots tiling [begin, end), largest first; `begin` must be aligned to the
        largest of them, which holds for every range RFC 9162's recursion produces."""
        get = self._store.get
        out: list[bytes] = []
        pos, rest = begin, end - begin
        level = rest.bit_length() - 1
        while rest:
            width = 1 << level
            if rest & width:
                out.append(get(level, pos >> level))
                pos += width
                rest -= width
            level -= 1
        return out

    def _range_hash(self, begin: int, end: int) -> bytes:
        """MTH(D[begin:end]): one read for a perfect subtree, O(log n) on the right edge."""
        return fold_right(self._perfect_subtrees(begin, end))
