"""Events from a peer country, into the nodes behind this country's gateway.

A forwarding crosses as a record of its own kind (`contracts.kafka_binding`: the
forwarding's canonical JSON, its case-key grant beside it) and goes through the node's
`Reception` like any record of its inbox; only what is believed differs (`CrossBorder`).
Today the gateway hands the record over in process (`FederatedInbox`); publishing the
same record to the node's inbox topic would take it through the very same path.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from contracts.envelope import Envelope
from contracts.federation import BorderRefused, check_inbound
from contracts.kafka_binding import decode_forwarding, encode_forwarding
from contracts.sealing import Forwarding, SealingError, forwardable, verify
from referral_router.federation.trust import Trust
from referral_router.receiving.provenance import (
    Admitted,
    GrantOffer,
    Refused,
    arrival,
    signature_rule,
)
from referral_router.receiving.reception import Received, Reception, stream_of
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
        fw = message.forwarding
        env = fw.original
        try:
            return self._admit(fw, env, message.grant, arrival(record))
        except BorderRefused as r:
            raise Refused(r.rule, r.reason, env) from None
        except UnknownAgency as exc:
            raise Refused("R6", f"{exc.message} of {env.country}", env) from None
        except Refused as refused:
            raise Refused(refused.rule, refused.reason, env) from None

    def _admit(
        self, fw: Forwarding, env: Envelope, grant: bytes | None, arrived: datetime
    ) -> Admitted:
        if fw.recipient != self.agency_id:
            raise BorderRefused("R6", f"the forwarding is for {fw.recipient}, not this node")
        origin = env.country
        fed = self.trust.federation(origin)
        directory = self.trust.peer_directory(fed)
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

    def keep(self, admitted: Admitted) -> None:
        """The forwarding's wraps are this node's only way to open the event."""
        assert admitted.forwarding is not None
        env = admitted.envelope
        self.forwardings.put(
            str(env.id), self.agency_id, admitted.forwarding.canonical_bytes(), env.subject
        )

    def forget(self, case: str) -> None:
        """An erasure order: the forwardings go with the case keys."""
        self.forwardings.delete_case(case)


class FederatedInbox:
    """Hands forwardings to one node's reception in process, each as the record its inbox
    would carry, at the next position of the origin country's stream."""

    def __init__(self, reception: Reception) -> None:
        self.reception = reception
        self._lock = threading.Lock()  # one hand-over at a time takes the next position

    def deliver(self, fw: Forwarding, grant: bytes | None) -> Received:
        """Applied, duplicate, or dead-lettered with its rule (the node's dead letters);
        `PeerUnreachable` when a registry could not be asked: nothing was recorded."""
        key, value, headers = encode_forwarding(fw, grant)
        topic = f"federation:{fw.original.country}"
        with self._lock:
            offset = self.reception.store.cursor(stream_of(topic, 0)).position
            # The hand-over is this country's transport for the record: its arrival is now.
            now = time.time_ns() // 1_000_000
            record = Record(topic, 0, offset, key, value, headers, now, appended_at=True)
            return self.reception.apply(record)
