"""An agency's private keys at rest: every key pair it ever had, sealed with a passphrase.

Old pairs are kept after rotation because old key wraps must still open and old
signatures must still be attributable. `cryptography` has no serialization for the
hybrid ML-KEM-768+X25519 private key, so the keystore keeps its parts' private bytes
(the 64-byte ML-KEM seed and the 32-byte X25519 scalar) and rebuilds the key.

Format: JSON with a clear header (agency id, key ids, public keys, KDF parameters) and
one AES-256-GCM ciphertext of the private parts under a scrypt-derived key; the header
is the associated data, so editing a public key or parameter makes opening fail. Pure:
bytes in, bytes out; nothing here prints or logs private material.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from contracts.directory import (
    KeyAlg,
    KeyStatus,
    KeyUse,
    PublicKeyRecord,
    b64url_decode,
    b64url_encode,
    hybrid_public_bytes,
)

FORMAT = "nrm-keystore/1"
#: scrypt cost 2**15, r=8, p=1: ~32 MiB and ~0.1 s per open (OWASP's floor for scrypt).
DEFAULT_SCRYPT_LOG2_N = 15


class KeystoreError(ValueError):
    """Wrong passphrase, tampered or malformed keystore."""


@dataclass(frozen=True)
class KeyPair:
    """One key pair. `private` is the raw private part(s); never shown by repr."""

    key_id: str
    use: KeyUse
    created_at: datetime
    public_key: bytes
    private: bytes = field(repr=False)

    @property
    def alg(self) -> KeyAlg:
        return KeyAlg.ED25519 if self.use is KeyUse.SIGNING else KeyAlg.MLKEM768_X25519

    def ed25519(self) -> ed25519.Ed25519PrivateKey:
        if self.use is not KeyUse.SIGNING:
            raise KeystoreError(f"{self.key_id} is not a signing key")
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.private)

    def hpke(self) -> hpke.MLKEM768X25519PrivateKey:
        if self.use is not KeyUse.ENCRYPTION:
            raise KeystoreError(f"{self.key_id} is not an encryption key")
        return hpke.MLKEM768X25519PrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(self.private[:64]),
            x25519.X25519PrivateKey.from_private_bytes(self.private[64:]),
        )

    def public_record(self, valid_from: datetime | None = None) -> PublicKeyRecord:
        return PublicKeyRecord(
            key_id=self.key_id,
            use=self.use,
            alg=self.alg,
            public_key=b64url_encode(self.public_key),
            valid_from=valid_from or self.created_at,
            status=KeyStatus.ACTIVE,
        )


def generate_pair(key_id: str, use: KeyUse, now: datetime | None = None) -> KeyPair:
    created = (now or datetime.now(UTC)).astimezone(UTC)
    if use is KeyUse.SIGNING:
        sk = ed25519.Ed25519PrivateKey.generate()
        return KeyPair(
            key_id, use, created, sk.public_key().public_bytes_raw(), sk.private_bytes_raw()
        )
    pq = mlkem.MLKEM768PrivateKey.generate()
    classic = x25519.X25519PrivateKey.generate()
    return KeyPair(
        key_id,
        use,
        created,
        hybrid_public_bytes(pq.public_key(), classic.public_key()),
        pq.private_bytes_raw() + classic.private_bytes_raw(),
    )


@dataclass(frozen=True)
class AgencyKeys:
    """All key pairs of one agency, oldest first; the newest of each use is current."""

    agency_id: str
    pairs: tuple[KeyPair, ...]

    def current(self, use: KeyUse) -> KeyPair:
        for pair in reversed(self.pairs):
            if pair.use is use:
                return pair
        raise KeystoreError(f"no {use} key in the keystore")

    def pair(self, key_id: str) -> KeyPair:
        for p in self.pairs:
            if p.key_id == key_id:
                return p
        raise KeystoreError(f"no key {key_id!r} in the keystore")

    def with_pairs(self, *new: KeyPair) -> AgencyKeys:
        known = {p.key_id for p in self.pairs}
        for p in new:
            if p.key_id in known:
                raise KeystoreError(f"key id {p.key_id!r} already in the keystore")
        return AgencyKeys(self.agency_id, self.pairs + new)

    def current_public_records(self) -> list[PublicKeyRecord]:
        return [self.current(use).public_record() for use in KeyUse]


def new_key_id(agency_id: str, use: KeyUse, now: datetime) -> str:
    """Readable and unique: agency, use, UTC time, and 4 random bytes."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    prefix = "sig" if use is KeyUse.SIGNING else "enc"
    return f"{prefix}-{stamp}-{os.urandom(4).hex()}"[:64]


def generate_agency_keys(agency_id: str, now: datetime | None = None) -> AgencyKeys:
    at = (now or datetime.now(UTC)).astimezone(UTC)
    return AgencyKeys(
        agency_id,
        tuple(generate_pair(new_key_id(agency_id, u, at), u, at) for u in KeyUse),
    )


def rotated(
    keys: AgencyKeys, uses: tuple[KeyUse, ...] = tuple(KeyUse), now: datetime | None = None
) -> tuple[AgencyKeys, tuple[KeyPair, ...]]:
    """A new pair for each use, added after the old ones (which are kept)."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    new = tuple(generate_pair(new_key_id(keys.agency_id, u, at), u, at) for u in uses)
    return keys.with_pairs(*new), new


def _header(keys: AgencyKeys, salt: bytes, log2_n: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "agency_id": keys.agency_id,
        "kdf": {"name": "scrypt", "salt": b64url_encode(salt), "log2_n": log2_n, "r": 8, "p": 1},
        "aead": "AES-256-GCM",
        "public": [
            {
                "key_id": p.key_id,
                "use": str(p.use),
                "alg": str(p.alg),
                "created_at": p.created_at.isoformat(),
                "public_key": b64url_encode(p.public_key),
            }
            for p in keys.pairs
        ],
    }


def _kdf(passphrase: str | bytes, salt: bytes, log2_n: int) -> bytes:
    if not passphrase:
        raise KeystoreError("a passphrase is required")
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    if not 10 <= log2_n <= 22:
        raise KeystoreError("scrypt cost out of range")
    return Scrypt(salt=salt, length=32, n=2**log2_n, r=8, p=1).derive(secret)


def seal_keystore(
    keys: AgencyKeys, passphrase: str | bytes, *, log2_n: int = DEFAULT_SCRYPT_LOG2_N
) -> bytes:
    salt, nonce = os.urandom(16), os.urandom(12)
    header = _header(keys, salt, log2_n)
    secret = rfc8785.dumps({p.key_id: b64url_encode(p.private) for p in keys.pairs})
    ciphertext = AESGCM(_kdf(passphrase, salt, log2_n)).encrypt(
        nonce, secret, rfc8785.dumps(header)
    )
    doc = dict(header, nonce=b64url_encode(nonce), ciphertext=b64url_encode(ciphertext))
    return json.dumps(doc, indent=2).encode() + b"\n"


@dataclass(frozen=True)
class KeystorePublic:
    """What can be read without the passphrase."""

    agency_id: str
    records: tuple[PublicKeyRecord, ...]

    def current(self, use: KeyUse) -> PublicKeyRecord:
        for r in reversed(self.records):
            if r.use is use:
                return r
        raise KeystoreError(f"no {use} key in the keystore")


def _parse(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise KeystoreError("keystore is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeystoreError(f"not an {FORMAT} keystore")
    return doc


def read_public(data: bytes) -> KeystorePublic:
    doc = _parse(data)
    try:
        records = tuple(
            PublicKeyRecord(
                key_id=p["key_id"],
                use=p["use"],
                alg=p["alg"],
                public_key=p["public_key"],
                valid_from=datetime.fromisoformat(p["created_at"]),
            )
            for p in doc["public"]
        )
        return KeystorePublic(str(doc["agency_id"]), records)
    except (KeyError, TypeError, ValueError) as exc:
        raise KeystoreError(f"malformed keystore header: {exc}") from None


def open_keystore(data: bytes, passphrase: str | bytes) -> AgencyKeys:
    doc = _parse(data)
    try:
        header = {k: doc[k] for k in ("format", "agency_id", "kdf", "aead", "public")}
        salt = b64url_decode(doc["kdf"]["salt"])
        log2_n = int(doc["kdf"]["log2_n"])
        nonce = b64url_decode(doc["nonce"])
        ciphertext = b64url_decode(doc["ciphertext"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KeystoreError(f"malformed keystore: {exc}") from None
    try:
        secret = AESGCM(_kdf(passphrase, salt, log2_n)).decrypt(
            nonce, ciphertext, rfc8785.dumps(header)
        )
    except InvalidTag:
        raise KeystoreError("wrong passphrase or tampered keystore") from None
    privates = json.loads(secret)
    pairs = []
    for p in header["public"]:
        use = KeyUse(p["use"])
        pair = KeyPair(
            p["key_id"],
            use,
            datetime.fromisoformat(p["created_at"]),
            b64url_decode(p["public_key"]),
            b64url_decode(privates[p["key_id"]]),
        )
        derived = (
            pair.ed25519().public_key().public_bytes_raw()
            if use is KeyUse.SIGNING
            else hybrid_public_bytes(
                mlkem.MLKEM768PrivateKey.from_seed_bytes(pair.private[:64]).public_key(),
                x25519.X25519PrivateKey.from_private_bytes(pair.private[64:]).public_key(),
            )
        )
        if derived != pair.public_key:
            raise KeystoreError(f"key {pair.key_id}: private part does not match its public key")
        pairs.append(pair)
    return AgencyKeys(str(header["agency_id"]), tuple(pairs))
