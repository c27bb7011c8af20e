"""Events from a peer country, into the nodes behind this country's gateway.

A forwarding crosses as a record of its own kind (`contracts.kafka_binding`: the
forwarding's canonical JSON, its case-key grant beside it). The receiving gateway checks
it at its door (`admit_forwarding`) and publishes it on the counterpart node's inbox topic
of this country's own transport; the node takes it through its ordinary inbox loop and
`Reception`, believing it by the very same check (`CrossBorder`), so a forwarding that a
hostile party put on an inbox topic past the door is refused there all the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts.envelope import Envelope
from contracts.federation import BorderRefused, check_inbound
from contracts.kafka_binding import decode_forwarding
from contracts.sealing import Forwarding, SealingError, forwardable, verify
from referral_router.federation.trust import Trust
from referral_router.receiving.provenance import (
    Admitted,
    GrantOffer,
    Refused,
    arrival,
    signature_rule,
)
from referral_router.rules.roster import Pinned, Roster, UnknownAgency
from referral_router.sealing.forwardings import ForwardingStore
from referral_router.sealing.node_seal import arrival_lookup
from referral_router.transport.base import Record


@dataclass(frozen=True)
class CrossBorder:
    """Believes forwardings from a peer country's gateway, for one node of this country.

    Both signatures (the original sender's and the forwarding gateway's) must verify
    against the peer's directory, which is believed only through the trust anchor this
    country's registry imported; both agencies must be active there (R6); the border
    rules of this country's federation agreement must hold (`check_inbound`)."""

    agency_id: str
    trust: Trust
    forwardings: ForwardingStore

    def admit(self, record: Record) -> Admitted:
        message = decode_forwarding(record.key, record.value, record.headers)
        try:
            arrived = arrival(record)
        except Refused as refused:
            raise Refused(refused.rule, refused.reason, message.forwarding.original) from None
        return admit_forwarding(
            message.forwarding, message.grant, self.agency_id, self.trust, arrived
        )

    def keep(self, admitted: Admitted) -> None:
        """The forwarding's wraps are this node's only way to open the event."""
        assert admitted.forwarding is not None
        self.forwardings.keep(admitted.forwarding)

    def forget(self, case: str) -> None:
        """An erasure order: the forwardings go with the case keys."""
        self.forwardings.delete_case(case)


def admit_forwarding(
    fw: Forwarding, grant: bytes | None, agency_id: str, trust: Trust, arrived: datetime
) -> Admitted:
    """Believe a forwarding for `agency_id` that reached this country at `arrived` (keys
    are judged valid at that time), or `Refused` naming the rule: what the receiving
    gateway checks at its door and the node again on its inbox."""
    env = fw.original
    try:
        return _admit(fw, env, grant, agency_id, trust, arrived)
    except BorderRefused as r:
        raise Refused(r.rule, r.reason, env) from None
    except UnknownAgency as exc:
        raise Refused("R6", f"{exc.message} of {env.country}", env) from None
    except Refused as refused:
        raise Refused(refused.rule, refused.reason, env) from None


def _admit(
    fw: Forwarding,
    env: Envelope,
    grant: bytes | None,
    agency_id: str,
    trust: Trust,
    arrived: datetime,
) -> Admitted:
    if fw.recipient != agency_id:
        raise BorderRefused("R6", f"the forwarding is for {fw.recipient}, not this node")
    origin = env.country
    fed = trust.federation(origin)
    directory = trust.peer_directory(fed)
    peer = Roster(Pinned(lambda: directory))
    peer.active(env.sender)
    peer.active(fw.forwarder)
    signing_keys = arrival_lookup(directory, arrived)
    try:
        verified = verify(fw, signing_keys)
    except SealingError as exc:
        raise BorderRefused(
            signature_rule(exc),
            f"not verified against {origin}'s directory: {type(exc).__name__}: {exc}",
        ) from None
    check_inbound(
        federation=fed,
        event_type=env.type,
        source_country=origin,
        forwarder=fw.forwarder,
        recipient=fw.recipient,
        restrictions=env.restrictions,
        wrapped=forwardable(verified, fw.recipient),
    )
    return Admitted(
        envelope=env,
        roles=peer.roles((env.sender, *env.recipients)),
        received_by=fw.forwarder,
        arrived=arrived,
        grant=GrantOffer(grant, fw.forwarder, signing_keys) if grant is not None else None,
        forwarding=fw,
    )
