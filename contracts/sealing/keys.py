"""Key types of sealing: signing keys, HPKE key pairs, pairwise case keys and their store.

A *pairwise case key* is one random 256-bit key per (case pseudonym, sender agency,
recipient agency). It wraps every per-event data key the sender seals for that recipient
in that case, so public-key work happens once per case and recipient, not per event.
Its key id is a commitment to it: ``HMAC-SHA256(key, "nrm/case-key-id/v1" ‖ case ‖
sender ‖ recipient)``, base64url. The key id is written into every signed envelope, so
a key that arrives by a forged (unauthenticated HPKE) grant can never be mistaken for
the one the signed envelope was sealed under.
"""

from __future__ import annotations

import binascii
import hmac as _std_hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives import hashes, hmac, hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.sealing.errors import KeyCommitmentMismatch

#: The HPKE suite of case key grants (RFC 9180): hybrid post-quantum KEM.
HPKE_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
HPKE_SUITE_NAME = "MLKEM768-X25519/HKDF-SHA256/AES-256-GCM"

#: (agency_id, key_id, time) -> the Ed25519 public key valid at that time, or raise.
PublicKeyLookup = Callable[[str, str, datetime], ed25519.Ed25519PublicKey]
#: (case, sender, recipient, key_id) -> the pairwise case key, or None.
CaseKeyLookup = Callable[[str, str, str, str], "CaseKey | None"]


_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def b64e(data: bytes) -> str:
    """base64url without padding (hot path: one C call per step)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url text")
    # = base64.urlsafe_b64decode(text + padding), without its per-call Python steps
    raw = binascii.a2b_base64(text.encode().translate(_FROM_URLSAFE) + b"=" * (-len(text) % 4))
    if b64e(raw) != text:
        raise ValueError("non-canonical base64url")
    return raw


def ad(*parts: str | bytes) -> bytes:
    """Unambiguous associated data: each part length-prefixed (2 bytes, big-endian).

    Concatenation-compatible: ``ad(a, b) + ad(c) == ad(a, b, c)``, so hot paths build
    a per-event prefix once and append the per-field parts.
    """
    out = []
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        out.append(len(b).to_bytes(2, "big"))
        out.append(b)
    return b"".join(out)


def case_key_id(key: bytes, case: str, sender: str, recipient: str) -> str:
    """The commitment that names a case key in signed envelopes."""
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(ad("nrm/case-key-id/v1", case, sender, recipient))
    return b64e(h.finalize())


@dataclass(frozen=True)
class SigningKey:
    """An agency's registered Ed25519 signing key and the id the registry knows it by."""

    agency_id: str
    key_id: str
    private_key: ed25519.Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, agency_id: str, key_id: str) -> SigningKey:
        return cls(agency_id, key_id, ed25519.Ed25519PrivateKey.generate())

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self.private_key.public_key()


@dataclass(frozen=True)
class HpkeKeyPair:
    """An agency's long-term HPKE (ML-KEM-768+X25519) key pair: receives case key grants.

    `cryptography` cannot serialise the hybrid private key, so its parts are kept:
    the 64-byte ML-KEM seed and the 32-byte X25519 scalar (`private_bytes`).
    """

    agency_id: str
    key_id: str
    mlkem_key: mlkem.MLKEM768PrivateKey = field(repr=False)
    x25519_key: x25519.X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, agency_id: str, key_id: str) -> HpkeKeyPair:
        return cls(
            agency_id,
            key_id,
            mlkem.MLKEM768PrivateKey.generate(),
            x25519.X25519PrivateKey.generate(),
        )

    @classmethod
    def from_private_bytes(cls, agency_id: str, key_id: str, data: bytes) -> HpkeKeyPair:
        if len(data) != 96:
            raise ValueError("hybrid private key is 64 + 32 bytes")
        return cls(
            agency_id,
            key_id,
            mlkem.MLKEM768PrivateKey.from_seed_bytes(data[:64]),
            x25519.X25519PrivateKey.from_private_bytes(data[64:]),
        )

    def private_bytes(self) -> bytes:
        return self.mlkem_key.private_bytes_raw() + self.x25519_key.private_bytes_raw()

    @property
    def private_key(self) -> hpke.MLKEM768X25519PrivateKey:
        return hpke.MLKEM768X25519PrivateKey(self.mlkem_key, self.x25519_key)

    @property
    def public_key(self) -> hpke.MLKEM768X25519PublicKey:
        return hpke.MLKEM768X25519PublicKey(
            self.mlkem_key.public_key(), self.x25519_key.public_key()
        )

    def public_bytes(self) -> bytes:
        """ML-KEM-768 public key (1184 bytes) followed by the X25519 public key (32)."""
        return (
            self.mlkem_key.public_key().public_bytes_raw()
            + self.x25519_key.public_key().public_bytes_raw()
        )


def hpke_public_key_from_bytes(data: bytes) -> hpke.MLKEM768X25519PublicKey:
    """Inverse of `HpkeKeyPair.public_bytes`."""
    if len(data) != 1184 + 32:
        raise ValueError("hybrid public key is 1184 + 32 bytes")
    return hpke.MLKEM768X25519PublicKey(
        mlkem.MLKEM768PublicKey.from_public_bytes(data[:1184]),
        x25519.X25519PublicKey.from_public_bytes(data[1184:]),
    )


@dataclass(frozen=True)
class CaseKey:
    """A pairwise case key: wraps the data keys `sender` seals for `recipient` in `case`.

    The AES-GCM context is built once per key, not per wrap (it is on the hot path).
    """

    case: str
    sender: str
    recipient: str
    key_id: str
    key: bytes = field(repr=False)
    aead: AESGCM = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ValueError("a case key is 256 bits")
        if not _std_hmac.compare_digest(
            case_key_id(self.key, self.case, self.sender, self.recipient), self.key_id
        ):
            raise KeyCommitmentMismatch(
                f"case key for ({self.case}, {self.sender}→{self.recipient}) "
                f"does not match key id {self.key_id}"
            )
        object.__setattr__(self, "aead", AESGCM(self.key))


def new_case_key(case: str, sender: str, recipient: str) -> CaseKey:
    """A fresh random pairwise case key (use recipient == sender for the sender's own)."""
    key = AESGCM.generate_key(256)
    return CaseKey(case, sender, recipient, case_key_id(key, case, sender, recipient), key)


class CaseKeyStore(Protocol):
    """Where a node keeps the pairwise case keys it holds (as sender or recipient).

    Deleting a case's rows is the node's whole part of erasure (crypto-shredding).
    """

    def put(self, key: CaseKey) -> None: ...

    def get(self, case: str, sender: str, recipient: str, key_id: str) -> CaseKey | None: ...

    def current(self, case: str, sender: str, recipient: str) -> CaseKey | None: ...

    def delete_case(self, case: str) -> int: ...


class MemoryCaseKeyStore:
    """In-memory `CaseKeyStore` for tests, tools and auditors.

    Python cannot scrub immutable `bytes`: deletion drops every reference, it does not
    overwrite memory. The router's SQLite store is the one that leaves no bytes on disk.
    """

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str, str, str], CaseKey] = {}
        self._current: dict[tuple[str, str, str], CaseKey] = {}

    def put(self, key: CaseKey) -> None:
        self._keys[(key.case, key.sender, key.recipient, key.key_id)] = key
        self._current[(key.case, key.sender, key.recipient)] = key

    def get(self, case: str, sender: str, recipient: str, key_id: str) -> CaseKey | None:
        return self._keys.get((case, sender, recipient, key_id))

    def current(self, case: str, sender: str, recipient: str) -> CaseKey | None:
        return self._current.get((case, sender, recipient))

    def delete_case(self, case: str) -> int:
        doomed = [k for k in self._keys if k[0] == case]
        for k in doomed:
            del self._keys[k]
        for k in [k for k in self._current if k[0] == case]:
            del self._current[k]
        return len(doomed)

    def __iter__(self) -> Iterator[CaseKey]:
        return iter(list(self._keys.values()))

    def __len__(self) -> int:
        return len(self._keys)
