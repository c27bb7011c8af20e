"""The signed directory: who is on the bus, with which roles, keys, endpoints and agreement.

Modelled on X-Road's global configuration: the registry (run by the national
coordinator) signs one document and every node verifies it against a pinned trust
anchor before believing anything in it. The signed bytes are the RFC 8785 canonical
JSON of the directory, so any party can re-derive them and the directory hash is
stable across rebuilds. Pure: no I/O, no clock (times are passed in).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from nacl.bindings import crypto_core_ed25519_is_valid_point
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from contracts.envelope import AGENCY_ID_PATTERN
from contracts.need_to_know import (
    Agreement,
    AgreementError,
    CaseContext,
    Recipient,
    entitled_categories,
    origin_barred,
)
from contracts.vocabulary import DataCategory, Role, ServiceKind

KEY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
ED25519_PUBLIC_LENGTH = 32
MLKEM768_PUBLIC_LENGTH = 1184
X25519_PUBLIC_LENGTH = 32
#: The hybrid encryption key on the wire: ML-KEM-768 encapsulation key || X25519 public key.
HYBRID_PUBLIC_LENGTH = MLKEM768_PUBLIC_LENGTH + X25519_PUBLIC_LENGTH
#: The HPKE suite every node uses with directory encryption keys (RFC 9180).
HPKE_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


class KeyUse(StrEnum):
    SIGNING = "signing"
    ENCRYPTION = "encryption"


class KeyAlg(StrEnum):
    ED25519 = "Ed25519"
    MLKEM768_X25519 = "MLKEM768-X25519"


class KeyStatus(StrEnum):
    """A key's life: active; retired by a planned rotation (it keeps verifying records
    that reached the transport within the grace period); compromised (nothing that
    reached the transport after `compromised_at` verifies)."""

    ACTIVE = "active"
    RETIRED = "retired"
    COMPROMISED = "compromised"


class AgencyStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


ALG_FOR_USE: dict[KeyUse, KeyAlg] = {
    KeyUse.SIGNING: KeyAlg.ED25519,
    KeyUse.ENCRYPTION: KeyAlg.MLKEM768_X25519,
}


class KeyMaterialError(ValueError):
    """A public key that is malformed, of the wrong length, or not a usable point."""


class DirectoryError(Exception):
    """A directory that must not be believed."""


class DirectoryMalformed(DirectoryError):
    """Not a well-formed signed directory."""


class DirectorySignatureInvalid(DirectoryError):
    """The signature does not verify against the pinned anchor."""


class DirectoryStale(DirectoryError):
    """Older than one already seen, or the same serial with different content."""


# --- base64url -------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict, unpadded base64url: exactly one text for each byte string."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not unpadded base64url")
    if len(text) % 4 == 1:
        raise ValueError("not unpadded base64url (bad length)")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not unpadded base64url") from None
    if b64url_encode(data) != text:
        raise ValueError("non-canonical base64url (stray trailing bits)")
    return data


# --- key validation --------------------------------------------------------------------


def validate_ed25519_public(raw: bytes) -> ed25519.Ed25519PublicKey:
    """A registrable Ed25519 key: 32 bytes, a canonical encoding of a point on the curve,
    not of small order. OpenSSL defers these checks to verify time, so libsodium
    (`crypto_core_ed25519_is_valid_point`) makes them at registration."""
    if len(raw) != ED25519_PUBLIC_LENGTH:
        raise KeyMaterialError(f"Ed25519 public key must be 32 bytes, got {len(raw)}")
    if not crypto_core_ed25519_is_valid_point(raw):
        raise KeyMaterialError(
            "Ed25519 public key refused: not canonical, not a point on the curve, or a "
            "small-order point"
        )
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def validate_hybrid_public(raw: bytes) -> hpke.MLKEM768X25519PublicKey:
    """ML-KEM-768 encapsulation key (FIPS 203 modulus check) || X25519 key (not small order)."""
    if len(raw) != HYBRID_PUBLIC_LENGTH:
        raise KeyMaterialError(
            f"MLKEM768-X25519 public key must be {HYBRID_PUBLIC_LENGTH} bytes "
            f"({MLKEM768_PUBLIC_LENGTH} ML-KEM-768 + {X25519_PUBLIC_LENGTH} X25519), got {len(raw)}"
        )
    try:
        pq = mlkem.MLKEM768PublicKey.from_public_bytes(raw[:MLKEM768_PUBLIC_LENGTH])
    except ValueError:
        raise KeyMaterialError(
            "ML-KEM-768 part of the public key fails the FIPS 203 modulus check"
        ) from None
    classic = x25519.X25519PublicKey.from_public_bytes(raw[MLKEM768_PUBLIC_LENGTH:])
    try:
        x25519.X25519PrivateKey.generate().exchange(classic)
    except ValueError:
        raise KeyMaterialError("X25519 part of the public key is a small-order point") from None
    return hpke.MLKEM768X25519PublicKey(pq, classic)


def hybrid_public_bytes(pq: mlkem.MLKEM768PublicKey, classic: x25519.X25519PublicKey) -> bytes:
    return pq.public_bytes_raw() + classic.public_bytes_raw()


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("time must carry a time zone")
    return v.astimezone(UTC)


# --- records ---------------------------------------------------------------------------


class PublicKeyRecord(BaseModel):
    """One public key of an agency. Retired and compromised keys stay listed, so a record
    signed in time still verifies and everyone can see when a key stopped counting.

    The times are those of the transport: a receiver checks a signature against the time
    the record reached the broker, never against the time an envelope claims.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(pattern=KEY_ID_PATTERN)
    use: KeyUse
    alg: KeyAlg
    public_key: str = Field(description="Raw public key, unpadded base64url.")
    valid_from: datetime
    valid_until: datetime | None = Field(
        default=None, description="Records reaching the transport from then on are refused."
    )
    status: KeyStatus = KeyStatus.ACTIVE
    compromised_at: datetime | None = Field(
        default=None, description="Reported compromised: nothing that arrived after counts."
    )

    @field_validator("valid_from")
    @classmethod
    def _aware_from(cls, v: datetime) -> datetime:
        return _aware(v)

    @field_validator("valid_until", "compromised_at")
    @classmethod
    def _aware_until(cls, v: datetime | None) -> datetime | None:
        return None if v is None else _aware(v)

    @field_validator("public_key")
    @classmethod
    def _b64(cls, v: str) -> str:
        b64url_decode(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> PublicKeyRecord:
        if ALG_FOR_USE[self.use] is not self.alg:
            raise ValueError(f"a {self.use} key must use {ALG_FOR_USE[self.use]}, not {self.alg}")
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if (self.status is KeyStatus.COMPROMISED) != (self.compromised_at is not None):
            raise ValueError("a compromised key, and only one, carries compromised_at")
        self.load()  # raises KeyMaterialError (a ValueError) with the precise reason
        return self

    def raw(self) -> bytes:
        return b64url_decode(self.public_key)

    def load(self) -> ed25519.Ed25519PublicKey | hpke.MLKEM768X25519PublicKey:
        raw = self.raw()
        if self.alg is KeyAlg.ED25519:
            return validate_ed25519_public(raw)
        return validate_hybrid_public(raw)

    def ed25519(self) -> ed25519.Ed25519PublicKey:
        if self.alg is not KeyAlg.ED25519:
            raise KeyMaterialError(f"key {self.key_id} is not an Ed25519 key")
        return _ed25519_key(self.public_key)

    def hpke(self) -> hpke.MLKEM768X25519PublicKey:
        if self.alg is not KeyAlg.MLKEM768_X25519:
            raise KeyMaterialError(f"key {self.key_id} is not an MLKEM768-X25519 key")
        raw = self.raw()
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:MLKEM768_PUBLIC_LENGTH]),
            x25519.X25519PublicKey.from_public_bytes(raw[MLKEM768_PUBLIC_LENGTH:]),
        )

    def valid_at(self, at: datetime, *, early: timedelta = timedelta(0)) -> bool:
        """Inside its validity window (whether active or retired) and not after a reported
        compromise. `early` tolerates clock skew before `valid_from` only: a key's end is
        never stretched."""
        return (
            self.valid_from - early <= at
            and (self.valid_until is None or at < self.valid_until)
            and (self.compromised_at is None or at < self.compromised_at)
        )


@lru_cache(maxsize=4096)
def _ed25519_key(public_key: str) -> ed25519.Ed25519PublicKey:
    """The key object of a registered key (immutable): built once, not per signature."""
    return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(public_key))


class Endpoints(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    router_url: str = Field(pattern=r"^https?://[^\s/?#]+[^\s]*$", max_length=2048)
    webhook_url: str = Field(pattern=r"^https?://[^\s/?#]+[^\s]*$", max_length=2048)


class AgencyRecord(BaseModel):
    """A registered agency as every node sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=AGENCY_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    country: str = Field(pattern=COUNTRY_PATTERN)
    roles: list[Role] = Field(min_length=1)
    services: list[ServiceKind] = Field(default_factory=list)
    endpoints: Endpoints
    status: AgencyStatus = AgencyStatus.ACTIVE
    keys: list[PublicKeyRecord] = Field(min_length=2)

    @model_validator(mode="after")
    def _consistent(self) -> AgencyRecord:
        if len(set(self.roles)) != len(self.roles):
            raise ValueError("roles must be distinct")
        if len(set(self.services)) != len(self.services):
            raise ValueError("services must be distinct")
        ids = [k.key_id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError("key ids must be distinct within an agency")
        for use in KeyUse:
            if not any(k.use is use for k in self.keys):
                raise ValueError(f"an agency needs at least one {use} key")
        return self

    def keys_for(self, use: KeyUse) -> list[PublicKeyRecord]:
        return [k for k in self.keys if k.use is use]


class TrustAnchor(BaseModel):
    """What a node pins: the registry's directory-signing public key (X-Road's anchor)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str = Field(pattern=COUNTRY_PATTERN)
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    public_key: str

    @field_validator("public_key")
    @classmethod
    def _key(cls, v: str) -> str:
        validate_ed25519_public(b64url_decode(v))
        return v

    def ed25519(self) -> ed25519.Ed25519PublicKey:
        return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(self.public_key))

    @classmethod
    def for_key(cls, country: str, key_id: str, key: ed25519.Ed25519PublicKey) -> TrustAnchor:
        return cls(country=country, key_id=key_id, public_key=b64url_encode(key.public_bytes_raw()))


class Directory(BaseModel):
    """The global configuration of one country's bus at one serial."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str = Field(pattern=COUNTRY_PATTERN)
    serial: int = Field(ge=0)
    issued_at: datetime
    agencies: list[AgencyRecord] = Field(default_factory=list)
    agreement: dict[str, Any]
    registry_key_id: str = Field(pattern=KEY_ID_PATTERN)
    _memo: dict[str, tuple[object, Any]] = PrivateAttr(default_factory=dict)

    @field_validator("issued_at")
    @classmethod
    def _issued(cls, v: datetime) -> datetime:
        return _aware(v)

    @field_validator("agreement")
    @classmethod
    def _agreement(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            Agreement.from_dict(v)
        except AgreementError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("agencies")
    @classmethod
    def _unique(cls, v: list[AgencyRecord]) -> list[AgencyRecord]:
        ids = [a.id for a in v]
        if len(set(ids)) != len(ids):
            raise ValueError("agency ids must be distinct")
        return v

    # -- encoding --

    def canonical_bytes(self) -> bytes:
        """RFC 8785 canonical JSON: what the registry signs and what is hashed."""
        return rfc8785.dumps(self.model_dump(mode="json"))

    def directory_hash(self) -> str:
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    # -- queries --

    def _cached(self, name: str, source: object, build: Callable[[], Any]) -> Any:
        """Memoised per source object, so a model_copy with new contents never sees stale
        indexes (cached_property values would be copied along with __dict__)."""
        memo = self.__pydantic_private__["_memo"]  # type: ignore[index]  # hot: skip __getattr__
        hit = memo.get(name)
        if hit is None or hit[0] is not source:
            hit = (source, build())
            memo[name] = hit
        return hit[1]

    @property
    def _by_id(self) -> dict[str, AgencyRecord]:
        return self._cached("by_id", self.agencies, lambda: {a.id: a for a in self.agencies})

    @property
    def parsed_agreement(self) -> Agreement:
        return self._cached(
            "agreement", self.agreement, lambda: Agreement.from_dict(self.agreement)
        )

    def agency(self, agency_id: str) -> AgencyRecord | None:
        return self._by_id.get(agency_id)

    def _require(self, agency_id: str) -> AgencyRecord:
        record = self.agency(agency_id)
        if record is None:
            raise LookupError(f"unknown agency {agency_id!r}")
        return record

    def signing_key(
        self,
        agency_id: str,
        key_id: str,
        at_time: datetime,
        *,
        early: timedelta = timedelta(0),
    ) -> PublicKeyRecord | None:
        """The key that verifies a signature presented at `at_time` (for a bus record: when
        it reached the transport); retired keys count within their grace period."""
        record = self.agency(agency_id)
        if record is None:
            return None
        at = _aware(at_time)
        for key in record.keys_for(KeyUse.SIGNING):
            if key.key_id == key_id and key.valid_at(at, early=early):
                return key
        return None

    def listed_signing_key(self, agency_id: str, key_id: str) -> PublicKeyRecord | None:
        """The signing key by id, whatever its window: for re-checking the integrity of an
        envelope this node accepted earlier, whose key was judged when it arrived."""
        record = self.agency(agency_id)
        if record is None:
            return None
        return next((k for k in record.keys_for(KeyUse.SIGNING) if k.key_id == key_id), None)

    def _current(self, agency_id: str, use: KeyUse, at: datetime | None) -> PublicKeyRecord | None:
        record = self.agency(agency_id)
        if record is None:
            return None
        when = self.issued_at if at is None else _aware(at)
        live = [
            k for k in record.keys_for(use) if k.status is KeyStatus.ACTIVE and k.valid_at(when)
        ]
        return max(live, key=lambda k: k.valid_from, default=None)

    def current_signing_key(
        self, agency_id: str, at: datetime | None = None
    ) -> PublicKeyRecord | None:
        return self._current(agency_id, KeyUse.SIGNING, at)

    def current_encryption_key(
        self, agency_id: str, at: datetime | None = None
    ) -> PublicKeyRecord | None:
        return self._current(agency_id, KeyUse.ENCRYPTION, at)

    def recipients(self, agency_id: str) -> list[Recipient]:
        """One Recipient per role the agency holds (need_to_know reasons per role)."""
        record = self._require(agency_id)
        services = frozenset(record.services)
        return [Recipient(record.id, role, services, record.country) for role in record.roles]

    def recipient(self, agency_id: str) -> Recipient:
        """The agency as a Recipient of its primary (first-listed) role."""
        return self.recipients(agency_id)[0]

    def entitled(self, agency_id: str, ctx: CaseContext) -> frozenset[DataCategory]:
        """Union over the agency's roles, unless a bar on any one of them (R4) empties it;
        nothing at all unless the agency is active (R6)."""
        record = self.agency(agency_id)
        if record is None or record.status is not AgencyStatus.ACTIVE:
            return frozenset()
        agreement = self.parsed_agreement
        out: frozenset[DataCategory] = frozenset()
        for who in self.recipients(agency_id):
            if origin_barred(who, ctx):
                return frozenset()
            out |= entitled_categories(agreement, who, ctx)
        return out

    def may_read(self, agency_id: str, category: DataCategory, ctx: CaseContext) -> bool:
        if category is DataCategory.OPERATIONAL:
            record = self.agency(agency_id)
            return record is not None and record.status is AgencyStatus.ACTIVE
        return category in self.entitled(agency_id, ctx)

    def active_agencies(self) -> Iterable[AgencyRecord]:
        return (a for a in self.agencies if a.status is AgencyStatus.ACTIVE)


# --- signing ---------------------------------------------------------------------------


class SignedDirectory(BaseModel):
    """The wire form: the exact canonical bytes that were signed, and the signature."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["nrm-directory/1"] = "nrm-directory/1"
    directory: str = Field(description="RFC 8785 bytes of the Directory, unpadded base64url.")
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    alg: Literal["Ed25519"] = "Ed25519"
    signature: str = Field(description="Ed25519 over the directory bytes, unpadded base64url.")

    def to_bytes(self) -> bytes:
        return rfc8785.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, data: bytes | str) -> SignedDirectory:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise DirectoryMalformed(f"not a signed directory: {exc.errors()[0]['msg']}") from None


def sign_directory(directory: Directory, private_key: ed25519.Ed25519PrivateKey) -> SignedDirectory:
    body = directory.canonical_bytes()
    return SignedDirectory(
        directory=b64url_encode(body),
        key_id=directory.registry_key_id,
        signature=b64url_encode(private_key.sign(body)),
    )


AnchorKey = ed25519.Ed25519PublicKey | TrustAnchor | bytes


def _anchor_key(anchor: AnchorKey) -> ed25519.Ed25519PublicKey:
    if isinstance(anchor, TrustAnchor):
        return anchor.ed25519()
    if isinstance(anchor, bytes):
        return validate_ed25519_public(anchor)
    return anchor


def verify_directory(
    signed: SignedDirectory | bytes | str,
    anchor_public_key: AnchorKey,
    last_seen_serial: int | None = None,
    *,
    last_seen_hash: str | None = None,
) -> Directory:
    """Believe a directory only if the anchor signed these exact bytes and it is not older.

    The signature is checked over the raw bytes before anything is parsed; the parsed
    directory must re-encode to the same bytes (no second meaning for one signature).
    Equal serial with a different hash (when `last_seen_hash` is given) is equivocation
    and is refused as stale.
    """
    if not isinstance(signed, SignedDirectory):
        signed = SignedDirectory.from_bytes(signed)
    try:
        body = b64url_decode(signed.directory)
        signature = b64url_decode(signed.signature)
    except ValueError as exc:
        raise DirectoryMalformed(f"bad base64url: {exc}") from None
    if len(signature) != 64:
        raise DirectorySignatureInvalid("an Ed25519 signature is 64 bytes")
    if isinstance(anchor_public_key, TrustAnchor) and anchor_public_key.key_id != signed.key_id:
        raise DirectorySignatureInvalid(
            f"signed by key {signed.key_id!r}, anchor pins {anchor_public_key.key_id!r}"
        )
    try:
        _anchor_key(anchor_public_key).verify(signature, body)
    except InvalidSignature:
        raise DirectorySignatureInvalid("directory signature does not verify") from None
    try:
        directory = Directory.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        raise DirectoryMalformed(f"signed body is not a valid directory: {exc}") from None
    if directory.canonical_bytes() != body:
        raise DirectoryMalformed("signed body is not in canonical form")
    if directory.registry_key_id != signed.key_id:
        raise DirectoryMalformed("key_id differs from the directory's registry_key_id")
    if (
        isinstance(anchor_public_key, TrustAnchor)
        and anchor_public_key.country != directory.country
    ):
        raise DirectorySignatureInvalid(
            f"directory of {directory.country}, anchor pinned for {anchor_public_key.country}"
        )
    if last_seen_serial is not None:
        if directory.serial < last_seen_serial:
            raise DirectoryStale(
                f"serial {directory.serial} is older than the {last_seen_serial} already seen"
            )
        if (
            directory.serial == last_seen_serial
            and last_seen_hash is not None
            and directory.directory_hash() != last_seen_hash
        ):
            raise DirectoryStale(f"serial {directory.serial} seen before with different content")
    return directory
