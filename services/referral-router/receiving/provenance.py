"""What a node believes about an arrival, by where it came from.

Two provenances reach a node's inbox. A domestic envelope is believed when its sender is
a registered, active agency of this country (R6) and its signature verifies against this
country's directory. A cross-border forwarding (`referral_router.federation.inbound`) is
believed when both signatures verify against the peer country's directory, itself
believed through the trust anchor this country's registry imported. Either way the
result is an `Admitted` arrival, and from there `Reception` treats all alike.

Either way, a signing key counts only if it was valid when the record reached this
country's transport (`arrival`), never at the time the envelope claims for itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from contracts.envelope import Envelope
from contracts.kafka_binding import decode
from contracts.sealing import Forwarding, KeyOutOfTime, PublicKeyLookup
from contracts.vocabulary import Role
from referral_router.rules.roster import UnknownAgency
from referral_router.transport.base import Record


class Refused(Exception):
    """An arrival that can never be applied: dead-lettered with `rule` and `reason`."""

    def __init__(self, rule: str, reason: str, envelope: Envelope | None = None) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason
        self.envelope = envelope


@dataclass(frozen=True)
class GrantOffer:
    """A case-key grant that came with an arrival: whose key it must be, and which
    directory vouches for its signer (None: this country's)."""

    grant: bytes
    sender: str
    signing_keys: PublicKeyLookup | None = None


@dataclass(frozen=True)
class Admitted:
    """An arrival whose provenance is verified: all the one path after it needs."""

    envelope: Envelope
    #: The sender's and recipients' roles, from the directory that vouched for them.
    roles: Mapping[str, frozenset[Role]]
    #: Whom on this node's side the envelope was addressed to (R6): this node, or the
    #: gateway that received it and forwarded it across the border.
    received_by: str
    #: When the record reached this country's transport (what keys are judged by).
    arrived: datetime
    grant: GrantOffer | None = None
    #: The forwarding it crossed the border in, kept beside the envelope once applied.
    forwarding: Forwarding | None = None


def signature_rule(exc: BaseException) -> str:
    """R6 for a registered key used out of its time (rotated out, compromised), SIGNATURE
    for anything else a signature check refuses."""
    out_of_time = isinstance(exc, KeyOutOfTime) or isinstance(exc.__cause__, KeyOutOfTime)
    return "R6" if out_of_time else "SIGNATURE"


def arrival(record: Record) -> datetime:
    """When the record reached the transport, as the transport stamped it. A record
    without the transport's own stamp (a topic not set to LogAppendTime) carries only
    its producer's word for it, which a node does not take."""
    if not record.appended_at:
        raise Refused(
            "TIME",
            f"{record.topic} does not stamp records with their arrival time (set "
            "message.timestamp.type=LogAppendTime): a producer's time is not taken",
        )
    return datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)


class Provenance(Protocol):
    """How one kind of record is believed."""

    def admit(self, record: Record) -> Admitted:
        """Decode and verify; `Refused` (or `MalformedMessage`) names the rule."""
        ...

    def keep(self, admitted: Admitted) -> None:
        """Keep what must lie beside an envelope about to be recorded."""
        ...

    def forget(self, case: str) -> None:
        """Erase what was kept beside the case's envelopes (an erasure order)."""
        ...


class Parties(Protocol):
    """Who is on this country's bus (the roster)."""

    def active(self, agency_id: str) -> Any: ...

    def roles(self, agency_ids: Iterable[str]) -> dict[str, frozenset[Role]]: ...


class Signatures(Protocol):
    """This country's signing keys, judged at a record's arrival (the node's sealing)."""

    def verify(self, envelope: Envelope, arrived: datetime) -> object: ...

    def signing_keys_at(self, arrived: datetime) -> PublicKeyLookup: ...


@dataclass(frozen=True)
class Domestic:
    """Envelopes from agencies of this node's own country, on its inbox topic."""

    agency_id: str
    parties: Parties
    #: The sender's signature against this country's directory (the node's sealing).
    signatures: Signatures

    def admit(self, record: Record) -> Admitted:
        message = decode(record.key, record.value, record.headers)
        envelope = message.envelope
        try:
            arrived = arrival(record)
        except Refused as refused:
            raise Refused(refused.rule, refused.reason, envelope) from None
        try:
            self.parties.active(envelope.sender)
        except UnknownAgency as exc:
            raise Refused("R6", exc.message, envelope) from None
        try:
            self.signatures.verify(envelope, arrived)
        except Exception as exc:
            raise Refused(signature_rule(exc), f"{type(exc).__name__}: {exc}", envelope) from None
        roles = self.parties.roles((envelope.sender, *envelope.recipients))
        grant = (
            GrantOffer(message.grant, envelope.sender, self.signatures.signing_keys_at(arrived))
            if message.grant is not None
            else None
        )
        return Admitted(envelope, roles, self.agency_id, arrived, grant)

    def keep(self, admitted: Admitted) -> None:
        """Nothing: a domestic envelope opens with the case keys alone."""

    def forget(self, case: str) -> None:
        """Nothing kept beside domestic envelopes: the case keys go with the sealing."""
