"""Federation of two countries' NRM buses: what each registry publishes, and the border rules.

Modelled on X-Road federation: neither country hands its registry or its Kafka to the
other. Each registry imports the other's trust anchor (its directory-signing key) and
publishes, signed with its own directory key, a `FederationDocument`: per peer country,
that peer's anchor and addresses, and which of ITS OWN agencies receive which
return-planning event types with which data categories. A gateway believes its own
registry's document (own anchor) and the peer's (the imported anchor); removing the anchor
ends the federation, and the next event at either gateway is refused with that reason.

Pure: no I/O, no clock. The gateways (services/referral-router/federation/) apply
`check_outbound` before forwarding and `check_inbound` before delivering.

Between the two gateways: mutual TLS, each pinning the other's certificate as the
federation agreement names it (`peer_gateway_certificate`, imported by the operator like
the anchor), and each delivery stamped (`DeliveryStamp`): the sending gateway signs when
and which forwarding it delivers, with a fresh nonce, so the receiving gateway refuses a
stale or replayed delivery before it asks any registry or writes anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.directory import (
    COUNTRY_PATTERN,
    KEY_ID_PATTERN,
    TrustAnchor,
    b64url_decode,
    b64url_encode,
)
from contracts.envelope import AGENCY_ID_PATTERN
from contracts.need_to_know import RETURN_EVENT_TYPES
from contracts.restrictions import Restrictions
from contracts.timestamps import UtcDateTime
from contracts.vocabulary import DataCategory

FEDERATION_FORMAT = "nrm-federation/1"
#: Only return events ever cross a border (docs/domain.md, lifecycle step 7).
FEDERATED_EVENT_TYPES: frozenset[str] = RETURN_EVENT_TYPES
#: Never across a border, whatever an agreement says: the exploitation account (what
#: traffickers did, who they are) and locations (where the person is kept safe).
NEVER_ACROSS: frozenset[DataCategory] = frozenset(
    {DataCategory.EXPLOITATION_ACCOUNT, DataCategory.LOCATION}
)
_URL = r"^https?://[^\s/?#]+[^\s]*$"
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")


class FederationError(ValueError):
    """A federation agreement that must not be published or believed."""


class FederationSignatureInvalid(FederationError):
    """The document was not signed by the pinned (or imported) anchor."""


class BorderRefused(Exception):
    """An event the border rules forbid to cross; `rule` is R2, R4, FEDERATION, ..."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


class CounterpartGrant(BaseModel):
    """One agency of the publishing country that receives return events from the peer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    event_types: tuple[str, ...] = Field(min_length=1)
    categories: tuple[DataCategory, ...] = ()

    @field_validator("event_types")
    @classmethod
    def _return_only(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = sorted(set(v) - FEDERATED_EVENT_TYPES)
        if bad:
            raise ValueError(f"only return-planning events cross a border, not {', '.join(bad)}")
        if len(set(v)) != len(v):
            raise ValueError("event types must be distinct")
        return tuple(sorted(v))

    @field_validator("categories")
    @classmethod
    def _personal_not_barred(cls, v: tuple[DataCategory, ...]) -> tuple[DataCategory, ...]:
        if DataCategory.OPERATIONAL in v:
            raise ValueError("the operational category always travels; do not list it")
        barred = sorted(str(c) for c in set(v) & NEVER_ACROSS)
        if barred:
            raise ValueError(f"never across a border: {', '.join(barred)}")
        if len(set(v)) != len(v):
            raise ValueError("categories must be distinct")
        return tuple(sorted(v))


class PeerFederation(BaseModel):
    """One federation as the publishing registry holds it (imported by its operator)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    peer: str = Field(pattern=COUNTRY_PATTERN)
    anchor: TrustAnchor = Field(description="The peer registry's directory-signing key.")
    registry_url: str = Field(pattern=_URL, max_length=2048)
    gateway_url: str = Field(pattern=_URL, max_length=2048)
    peer_gateway: str = Field(
        pattern=AGENCY_ID_PATTERN, description="The peer's gateway agency: the only forwarder."
    )
    gateway: str = Field(pattern=AGENCY_ID_PATTERN, description="Our own gateway agency.")
    counterparts: tuple[CounterpartGrant, ...] = ()
    peer_gateway_certificate: str | None = Field(
        default=None,
        max_length=16384,
        description="The peer gateway's TLS certificate (PEM): the only one our gateway "
        "accepts from that peer, as client and as server (pinned).",
    )

    @field_validator("peer_gateway_certificate")
    @classmethod
    def _one_pem_certificate(cls, v: str | None) -> str | None:
        if v is not None and len(_PEM_CERT.findall(v)) != 1:
            raise ValueError("peer_gateway_certificate must be exactly one PEM certificate")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> PeerFederation:
        if self.anchor.country != self.peer:
            raise ValueError(f"anchor is for {self.anchor.country}, not {self.peer}")
        agencies = [c.agency for c in self.counterparts]
        if len(set(agencies)) != len(agencies):
            raise ValueError("each counterpart agency is listed once")
        if self.gateway in agencies:
            raise ValueError("the gateway forwards; it is not a receiving counterpart")
        return self

    def receivers(self, event_type: str) -> list[str]:
        """Our agencies that receive `event_type` from the peer."""
        return [c.agency for c in self.counterparts if event_type in c.event_types]

    def allowed(self, agency: str, event_type: str) -> frozenset[DataCategory]:
        """The personal categories `agency` may receive in `event_type` from the peer."""
        for c in self.counterparts:
            if c.agency == agency and event_type in c.event_types:
                return frozenset(c.categories)
        return frozenset()


class FederationDocument(BaseModel):
    """Every federation one country's registry is in, at one serial."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str = Field(pattern=COUNTRY_PATTERN)
    serial: int = Field(ge=0)
    issued_at: UtcDateTime
    registry_key_id: str = Field(pattern=KEY_ID_PATTERN)
    peers: tuple[PeerFederation, ...] = ()

    @model_validator(mode="after")
    def _distinct(self) -> FederationDocument:
        names = [p.peer for p in self.peers]
        if len(set(names)) != len(names) or self.country in names:
            raise ValueError("each peer country once, and never the country itself")
        return self

    def peer(self, country: str) -> PeerFederation | None:
        return next((p for p in self.peers if p.peer == country), None)

    def canonical_bytes(self) -> bytes:
        return rfc8785.dumps(self.model_dump(mode="json"))


class SignedFederation(BaseModel):
    """Wire form, like the signed directory but with its own format name, so a directory
    signature can never be passed off as a federation document (domain separation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["nrm-federation/1"] = FEDERATION_FORMAT
    document: str
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    alg: Literal["Ed25519"] = "Ed25519"
    signature: str

    def to_bytes(self) -> bytes:
        return rfc8785.dumps(self.model_dump(mode="json"))


def _signed_part(body: bytes) -> bytes:
    return FEDERATION_FORMAT.encode() + b"\n" + body


def sign_federation(
    document: FederationDocument, private_key: ed25519.Ed25519PrivateKey
) -> SignedFederation:
    body = document.canonical_bytes()
    return SignedFederation(
        document=b64url_encode(body),
        key_id=document.registry_key_id,
        signature=b64url_encode(private_key.sign(_signed_part(body))),
    )


def verify_federation(signed: SignedFederation | bytes, anchor: TrustAnchor) -> FederationDocument:
    """Believe a federation document only if `anchor` signed these exact bytes."""
    try:
        s = (
            signed
            if isinstance(signed, SignedFederation)
            else SignedFederation.model_validate_json(signed)
        )
        body, sig = b64url_decode(s.document), b64url_decode(s.signature)
    except (ValidationError, ValueError) as exc:
        raise FederationError(f"not a signed federation document: {exc}") from None
    if s.key_id != anchor.key_id:
        raise FederationSignatureInvalid(
            f"signed by key {s.key_id!r}, anchor pins {anchor.key_id!r}"
        )
    try:
        anchor.ed25519().verify(sig, _signed_part(body))
    except InvalidSignature:
        raise FederationSignatureInvalid("federation document signature does not verify") from None
    try:
        doc = FederationDocument.model_validate(json.loads(body))
    except (ValidationError, ValueError) as exc:
        raise FederationError(f"signed body is not a federation document: {exc}") from None
    if doc.country != anchor.country or doc.canonical_bytes() != body:
        raise FederationSignatureInvalid("document is not the anchor country's, or not canonical")
    return doc


# --- border rules ----------------------------------------------------------------------


def check_outbound(event_type: str, restrictions: Restrictions, risk_assessed: bool) -> None:
    """Rules the sending gateway applies before an event leaves the country.

    `restrictions` are the gateway's own view of the case (derived by provenance) merged
    with the crossing event's; `risk_assessed`: a risk assessment by an agency that may
    make one reached the gateway. R4 stops the whole case once it may not contact the
    country of origin (an asylum claim, refugee status, a serious risk found: the
    gateway never learns which); R2 and the risk assessment gate return planning itself.
    """
    if event_type not in FEDERATED_EVENT_TYPES:
        raise BorderRefused("FEDERATION", f"{event_type} is not a return-planning event")
    if restrictions.no_origin_contact:
        raise BorderRefused(
            "R4",
            "no contact with the country of origin applies to this case: nothing of it "
            "crosses this border",
        )
    if event_type == "return.planning-started":
        if not risk_assessed:
            raise BorderRefused(
                "R4",
                "no risk assessment reached the border gateway: return planning needs one "
                "that found no serious risk (send risk.assessed to the gateway too)",
            )
        if restrictions.no_return:
            raise BorderRefused(
                "R2", "a best-interests determination found return against the child's interests"
            )
        if restrictions.child_safeguards and not (
            restrictions.guardian_appointed and restrictions.best_interests_determined
        ):
            raise BorderRefused(
                "R2",
                "a presumed child: no return planning before a guardian is appointed and a "
                "best-interests determination is made",
            )


def check_inbound(
    *,
    federation: PeerFederation,
    event_type: str,
    source_country: str,
    forwarder: str,
    recipient: str,
    restrictions: Restrictions,
    wrapped: Iterable[DataCategory],
) -> None:
    """Rules the receiving gateway applies to a verified forwarding from `federation.peer`."""
    if event_type not in FEDERATED_EVENT_TYPES:
        raise BorderRefused("FEDERATION", f"{event_type} is not a return-planning event")
    if source_country != federation.peer:
        raise BorderRefused(
            "FEDERATION", f"event from {source_country} relayed as if from {federation.peer}"
        )
    if forwarder != federation.peer_gateway:
        raise BorderRefused("FEDERATION", f"{forwarder} is not {federation.peer}'s agreed gateway")
    if recipient not in federation.receivers(event_type):
        raise BorderRefused(
            "FEDERATION",
            f"{recipient} is not a counterpart for {event_type} from {federation.peer}",
        )
    extra = sorted(str(c) for c in set(wrapped) - federation.allowed(recipient, event_type))
    if extra:
        raise BorderRefused(
            "R5", f"keys for categories the federation agreement does not allow: {', '.join(extra)}"
        )
    if restrictions.no_origin_contact:
        raise BorderRefused(
            "R4", "no contact with the country of origin applies: this case must not reach it"
        )


# --- deliveries between gateways ---------------------------------------------------------

DELIVERY_FORMAT = "nrm-delivery/1"
#: How far a delivery's stamp may be from the receiver's clock (either way).
FRESHNESS = timedelta(seconds=120)


class DeliveryRefused(Exception):
    """A delivery the receiving gateway must not look at further (stale, replayed,
    unsigned); `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeliveryStamp(BaseModel):
    """The sending gateway's signed statement: this forwarding (by digest), now, once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: str = Field(pattern=AGENCY_ID_PATTERN)
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    sent_at: UtcDateTime
    nonce: str = Field(pattern=r"^[A-Za-z0-9_-]{22,64}$")
    forwarding_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(pattern=r"^[A-Za-z0-9_-]{86}$")

    def signed_bytes(self) -> bytes:
        return _delivery_bytes(
            self.gateway, self.key_id, self.sent_at, self.nonce, self.forwarding_sha256
        )


def _delivery_bytes(gateway: str, key_id: str, sent_at: datetime, nonce: str, digest: str) -> bytes:
    fields = {
        "gateway": gateway,
        "key_id": key_id,
        "sent_at": sent_at.isoformat(),
        "nonce": nonce,
        "forwarding_sha256": digest,
    }
    return DELIVERY_FORMAT.encode() + b"\n" + rfc8785.dumps(fields)


def stamp_delivery(
    forwarding: bytes,
    gateway: str,
    key_id: str,
    key: ed25519.Ed25519PrivateKey,
    now: datetime,
    nonce: bytes,
) -> DeliveryStamp:
    """Stamp one delivery attempt (a retry gets a new stamp: new time, new nonce)."""
    digest = hashlib.sha256(forwarding).hexdigest()
    text = b64url_encode(nonce)
    signature = key.sign(_delivery_bytes(gateway, key_id, now, text, digest))
    return DeliveryStamp(
        gateway=gateway,
        key_id=key_id,
        sent_at=now,
        nonce=text,
        forwarding_sha256=digest,
        signature=b64url_encode(signature),
    )


def check_fresh(stamp: DeliveryStamp, forwarding: bytes, now: datetime) -> None:
    """What needs no key and no lookup: the stamp is for these bytes and of now."""
    if hashlib.sha256(forwarding).hexdigest() != stamp.forwarding_sha256:
        raise DeliveryRefused("the stamp is for another forwarding")
    if abs(now - stamp.sent_at) > FRESHNESS:
        raise DeliveryRefused(
            f"stamped {stamp.sent_at.isoformat()}, outside {int(FRESHNESS.total_seconds())} s "
            f"of now ({now.isoformat()}): stale, or a clock to fix"
        )


def verify_stamp(stamp: DeliveryStamp, key: ed25519.Ed25519PublicKey) -> None:
    """The peer gateway's signing key (from its directory) signed the stamp."""
    try:
        key.verify(b64url_decode(stamp.signature), stamp.signed_bytes())
    except (InvalidSignature, ValueError):
        raise DeliveryRefused("the delivery stamp's signature does not verify") from None
