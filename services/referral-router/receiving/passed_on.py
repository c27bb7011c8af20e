"""Events passed on to this node (R10): forwardings on its inbox, believed by provenance.

An agency of this country that received an event may pass it on (`POST
/v1/cases/{case}/forward` at its node): the record carries the original signed envelope
byte for byte and the data keys re-wrapped for this node. It is believed when the
forwarder is registered and active and signed it with a key valid at arrival, the
original sender signed the event with a key valid when it did, the forwarder sent the
event or was among its recipients (only a holder passes an event on), and no category
is wrapped for this node that the forwarder did not hold itself (never wider). From there the
event goes through `Reception` like any other (authority, parties, R4, duplicates).
An erasure order without a key is the exception: whoever passes it on, every holder of
the case applies it, so it reaches agencies the authority never heard of.

A forwarding whose event comes from a peer country is the border gateway's; it goes to
`foreign` (`referral_router.federation.inbound.CrossBorder`) on a federated node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from contracts.kafka_binding import decode_forwarding
from contracts.sealing import Forwarding, SealingError, Verified, forwardable
from referral_router.receiving.provenance import (
    Admitted,
    GrantOffer,
    Parties,
    Provenance,
    Refused,
    Signatures,
    arrival,
    signature_rule,
)
from referral_router.rules.roster import UnknownAgency
from referral_router.sealing.forwardings import ForwardingStore
from referral_router.transport.base import Record


class ForwardingSignatures(Signatures, Protocol):
    """Signature checks a forwarding needs (the node's sealing)."""

    def verify_forwarding(self, fw: Forwarding, arrived: datetime) -> Verified: ...


def spreads(fw: Forwarding) -> bool:
    """An erasure order passed on without a key: any active agency may pass one on, from
    wherever it got it, since every holder of the case must apply it and it opens
    nothing (`contracts.authority`: it joins any case it reaches)."""
    return fw.original.type == "case.erasure-ordered" and not fw.wraps


@dataclass
class PassedOn:
    """Believes forwardings for this node: its own country's, and a peer's through
    `foreign` once its country is federated."""

    agency_id: str
    country: str
    parties: Parties
    signatures: ForwardingSignatures
    forwardings: ForwardingStore
    foreign: Provenance | None = None

    def admit(self, record: Record) -> Admitted:
        message = decode_forwarding(record.key, record.value, record.headers)
        fw = message.forwarding
        env = fw.original
        if env.country != self.country:
            if self.foreign is None:
                raise Refused(
                    "FEDERATION", f"this country is not federated with {env.country}", env
                )
            return self.foreign.admit(record)
        try:
            arrived = arrival(record)
            self._believe(fw, arrived)
        except Refused as refused:
            raise Refused(refused.rule, refused.reason, env) from None
        roles = self.parties.roles((env.sender, *env.recipients))
        grant = (
            GrantOffer(message.grant, fw.forwarder, self.signatures.signing_keys_at(arrived))
            if message.grant is not None
            else None
        )
        return Admitted(env, roles, fw.forwarder, arrived, grant, forwarding=fw)

    def _believe(self, fw: Forwarding, arrived: datetime) -> None:
        env = fw.original
        if fw.recipient != self.agency_id:
            raise Refused("R6", f"the forwarding is for {fw.recipient}, not this node")
        try:
            self.parties.active(fw.forwarder)
        except UnknownAgency as exc:
            raise Refused("R6", exc.message) from None
        holder = fw.forwarder in env.recipients or fw.forwarder == env.sender
        if not holder and not spreads(fw):
            raise Refused(
                "R10",
                f"only an agency that holds an event may pass it on: {fw.forwarder} neither "
                f"sent {env.id} nor is among its recipients",
            )
        try:
            verified = self.signatures.verify_forwarding(fw, arrived)
        except SealingError as exc:
            raise Refused(signature_rule(exc), f"{type(exc).__name__}: {exc}") from None
        held = frozenset(env.sealed.get("wraps", {}).get(fw.forwarder, {}).get("keys", {}))
        wider = sorted(str(c) for c in forwardable(verified, self.agency_id) if str(c) not in held)
        if wider:
            raise Refused(
                "R10",
                f"{fw.forwarder} passed on keys to categories it never held: {', '.join(wider)}",
            )

    def keep(self, admitted: Admitted) -> None:
        """The forwarding's wraps are this node's only way to open the event."""
        if admitted.envelope.country != self.country and self.foreign is not None:
            self.foreign.keep(admitted)
            return
        assert admitted.forwarding is not None
        self.forwardings.keep(admitted.forwarding)

    def forget(self, case: str) -> None:
        """An erasure order: the forwardings go with the case keys."""
        self.forwardings.delete_case(case)
        if self.foreign is not None:
            self.foreign.forget(case)
