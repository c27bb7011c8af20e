"""RFC 9162 (RFC 6962) Merkle tree hashing with SHA-256.

Leaves and interior nodes carry distinct one-byte prefixes so that no leaf can be
passed off as an interior node (second-preimage attacks on the tree shape).
"""

from __future__ import annotations

from hashlib import sha256

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT: bytes = sha256(b"").digest()
"""The root of the empty tree, SHA-256 of the empty string (RFC 9162, 2.1.1)."""


def hash_leaf(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one log entry."""
    return sha256(LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return sha256(NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The RFC 9162 split point k of a range of n > 1 leaves: the largest 2^i < n."""
    return 1 << ((n - 1).bit_length() - 1)
