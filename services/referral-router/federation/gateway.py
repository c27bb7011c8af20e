"""The cross-border gateway: relays return-planning events between two countries' buses.

How an event crosses, from country A to country B:

1. A's sending agency addresses the event, like any other, to A's gateway agency (a
   registered node with the counterpart role, so A's own agreement decides what it may
   open: return events only). The gateway node verifies and stores it: the crossing is
   in A's log.
2. The gateway's pump reads its store; for each return-planning event it applies the
   border rules (`contracts.federation.check_outbound`: R2, R4, from the case's routing
   restrictions; the country of return, sealed as identity, is opened with the
   gateway's own wrap and must be the peer), believes A's federation
   document (own anchor) and B's (the anchor A imported), and for each of B's published
   counterparts re-wraps with `contracts.sealing.forward` only the categories that B's
   federation agreement AND B's directory allow (never more than the gateway itself
   could open: R10). Ciphertexts are never re-encrypted; a case-key grant for the
   counterpart rides beside the forwarding, never in a log.
3. B's gateway (`Gateway.receive`) checks the forwarding at its door as the counterpart
   node will (`federation.inbound.admit_forwarding`: both signatures verified against
   A's directory, which B believes only through the anchor B imported, and
   `check_inbound`), then publishes it, with its grant, on the counterpart's inbox topic
   of B's own transport: it never calls into a node. The node's inbox loop takes it like
   any record: the same check again, the duplicate check and the receive rules; then A's
   original envelope is recorded in the node's own store (the crossing is in B's log),
   with the forwarding's key wraps kept beside it so that `FederatedSeal` can open
   exactly the agreed categories.

Anything refused is recorded with its rule and reason: as a dead letter in the store of
the gateway node that refused it (outbound, or at the door) or of the counterpart node
(its receive rules), and in each gateway's crossing ledger (clear data only).

Each delivery carries a stamp (`contracts.federation.DeliveryStamp`) the sending gateway
signs: which forwarding, when, with a fresh nonce. The door refuses, before it asks any
registry or writes anything, what is not from the peer it serves, not of now, or seen
before; then it checks the stamp's signature against the peer gateway's registered key.
(The channel itself is mutual TLS, each gateway pinning the other's certificate as the
federation agreement names it: see `runtime/gateway.py`.)
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import uuid4

from pydantic import ValidationError

from contracts.agency_token import AuthError, ReplayCache
from contracts.directory import Directory
from contracts.envelope import Envelope
from contracts.federation import (
    FEDERATED_EVENT_TYPES,
    FRESHNESS,
    BorderRefused,
    DeliveryRefused,
    DeliveryStamp,
    PeerFederation,
    check_fresh,
    check_outbound,
    stamp_delivery,
    verify_stamp,
)
from contracts.kafka_binding import encode_forwarding
from contracts.need_to_know import CaseContext
from contracts.problems import problem
from contracts.restrictions import Restrictions
from contracts.sealing import (
    Forwarding,
    SealingError,
    Verified,
    forward,
    open_category,
    parse_forwarding,
)
from contracts.sealing.keys import b64d, b64e
from contracts.vocabulary import DataCategory
from referral_router.federation.inbound import admit_forwarding
from referral_router.federation.ledgers import CrossingLedger
from referral_router.federation.trust import PeerUnreachable, Trust
from referral_router.receiving.provenance import Refused
from referral_router.sealing.node_seal import NodeSeal
from referral_router.store.case_store import (
    RECEIVED,
    CaseFile,
    CaseStore,
    Cursor,
    DeadLetter,
    LoggedEnvelope,
)
from referral_router.transport.base import Message, Position, TransportError
from referral_router.transport.topics import inbox_topic

log = logging.getLogger("nrm.gateway")

#: (peer gateway base URL, JSON body) -> (HTTP status, JSON answer)
Send = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]


#: Publishes one record on this country's transport and returns where it was stored;
#: blocking (the door runs in a worker thread); a `TransportError` when it cannot.
Deliver = Callable[[Message], Position]


@dataclass(eq=False)
class Gateway:
    """One country's gateway to one peer: the outbound pump and the inbound door.

    The pump reads the gateway node's store and forwards with the gateway node's
    sealing; the door publishes forwardings on the counterpart nodes' inbox topics
    (`deliver`)."""

    batch_size: ClassVar[int] = 100

    country: str
    peer: str
    store: CaseStore
    seal: NodeSeal
    trust: Trust
    send: Send
    deliver: Deliver
    ledger: CrossingLedger
    cursor: Cursor = field(init=False)
    _door: threading.Lock = field(init=False, default_factory=threading.Lock)
    #: Nonces of deliveries accepted within the freshness window: a replay is refused.
    replays: ReplayCache = field(default_factory=ReplayCache)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.cursor = self.store.cursor(f"gateway-out:{self.peer}")

    @property
    def agency_id(self) -> str:
        return self.seal.agency_id

    # --- outbound ------------------------------------------------------------------

    def pending(self) -> int:
        return max(0, self.store.max_position() - self.cursor.position)

    def pump(self) -> int:
        """Carry one batch of the gateway node's received return events across. Blocking:
        run it in a worker thread. Stops (without advancing) when the peer is unreachable."""
        after = self.cursor.position
        page = self.store.log_page(after, self.batch_size)
        if page is None:
            return 0
        last, carried = after, 0
        for entry in page.entries:
            if entry.direction == RECEIVED and entry.envelope.type in FEDERATED_EVENT_TYPES:
                try:
                    self._cross(entry)
                except PeerUnreachable as exc:
                    log.warning("gateway %s -> %s: %s; will retry", self.country, self.peer, exc)
                    break
                carried += 1
            last = entry.position
        else:
            last = page.end
        if last > after:
            self.cursor.advance(last)
        return carried

    def _refuse(self, entry: LoggedEnvelope, rule: str, reason: str, agency: str = "") -> None:
        env = entry.envelope
        log.warning(
            "border %s -> %s refused %s (%s): %s", self.country, self.peer, env.id, rule, reason
        )
        source = f"border:{self.peer}" + (f":{agency}" if agency else "")
        self.store.record_dead_letter(DeadLetter.record(source, entry.position, rule, reason, env))
        self.ledger.record("out", self.peer, env, agency, rule=rule, reason=reason)

    def _cross(self, entry: LoggedEnvelope) -> None:
        env = entry.envelope
        try:
            fed = self.trust.federation(self.peer)
            case = self.store.case_file(env.subject)
            check_outbound(
                env.type,
                border_restrictions(case, env),
                case.state.risk_assessed if case else False,
            )
            mine = self.trust.peer_document(fed).peer(self.country)
            if mine is None:
                raise BorderRefused(
                    "FEDERATION",
                    f"{self.peer}'s registry holds no trust anchor for {self.country}: the "
                    "federation has ended on their side",
                )
            receivers = mine.receivers(env.type)
            verified = self.seal.verify_recorded(env)
            if env.type == "return.planning-started":
                dest = self._destination(verified)
                named = str(env.operational.get("counterpart_agency"))
                if dest != self.peer:
                    raise BorderRefused(
                        "FEDERATION", f"return planned to {dest}; this gateway leads to {self.peer}"
                    )
                if named not in receivers:
                    raise BorderRefused(
                        "FEDERATION", f"{named} is not a counterpart of {self.peer} for {env.type}"
                    )
                receivers = [named]
            if not receivers:
                raise BorderRefused(
                    "FEDERATION", f"{self.peer} publishes no counterpart for {env.type}"
                )
            peer_dir = self.trust.peer_directory(fed)
        except BorderRefused as r:
            self._refuse(entry, r.rule, r.reason)
            return
        for recipient in receivers:
            self._forward(entry, verified, fed, mine, peer_dir, recipient)

    def _forward(
        self,
        entry: LoggedEnvelope,
        verified: Verified,
        fed: PeerFederation,
        mine: PeerFederation,
        peer_dir: Directory,
        recipient: str,
    ) -> None:
        env = entry.envelope
        barred = border_restrictions(self.store.case_file(env.subject), env).no_origin_contact
        ctx = CaseContext(event_type=env.type, no_origin_contact=barred)
        entitled = mine.allowed(recipient, env.type) & peer_dir.entitled(recipient, ctx)
        encryption = peer_dir.current_encryption_key(recipient)
        if encryption is None:
            self._refuse(
                entry,
                "R6",
                f"{recipient} has no encryption key in {self.peer}'s directory",
                recipient,
            )
            return
        key = self.seal.case_key(env.subject, recipient)
        fw = forward(
            verified,
            forwarder=self.seal.signer,
            recipient=recipient,
            entitled=entitled,
            case_key_lookup=self.seal.case_keys.get,
            new_case_key=key,
            id=uuid4(),
            time=datetime.now(UTC),
        )
        grant = self.seal.grant(key, encryption) if fw.wraps else None
        body = {
            "forwarding": b64e(fw.canonical_bytes()),
            "grant": b64e(grant) if grant else None,
            "stamp": self.stamp(fw.canonical_bytes()).model_dump(mode="json"),
        }
        status, answer = self.send(fed.gateway_url, body)
        if status >= 500:
            raise PeerUnreachable(f"{self.peer}'s gateway answered {status}")
        if status >= 400:
            rule = str(answer.get("rule", "REFUSED"))
            reason = f"refused by {self.peer}'s gateway: {answer.get('detail', answer)}"
            self._refuse(entry, rule, reason, recipient)
            return
        self.ledger.record("out", self.peer, env, recipient, wrapped(fw))

    def _destination(self, verified: Verified) -> str:
        """The country of return of a plan, opened with the gateway's own wrap (it is
        identity: sealed, and the gateway's agreement lets it open return events)."""
        try:
            identity = open_category(
                verified, DataCategory.IDENTITY, self.agency_id, self.seal.case_keys.get
            )
        except SealingError as exc:
            raise BorderRefused(
                "FEDERATION",
                f"the country of return is sealed from this gateway ({type(exc).__name__}): "
                f"it cannot confirm the plan leads to {self.peer}",
            ) from None
        return str(identity.get("destination_country"))

    def stamp(self, forwarding: bytes) -> DeliveryStamp:
        """This delivery attempt, signed with the gateway node's key (a retry: a new one)."""
        signer = self.seal.signer
        return stamp_delivery(
            forwarding, signer.agency_id, signer.key_id, signer.private_key, self.clock(),
            os.urandom(16),
        )  # fmt: skip

    # --- inbound -------------------------------------------------------------------

    def receive(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Check one forwarding from the peer's gateway and publish it on its
        counterpart's inbox topic. Blocking.

        202 delivered to this country's bus (the node applies it, or dead-letters it by
        its receive rules), or duplicate when it was delivered before; else a problem
        (`contracts.problems`): 400 malformed, 403 a delivery refused at the door (stale,
        replayed, not the peer gateway's) or refused by a rule (with `rule`), 503 when a
        registry or the bus could not be reached (the sender retries; nothing was
        recorded)."""
        try:
            raw = b64d(str(body["forwarding"]))
            fw = parse_forwarding(raw)
            raw_grant = body.get("grant")
            grant = b64d(str(raw_grant)) if raw_grant else None
            stamp = DeliveryStamp.model_validate(body["stamp"])
        except (KeyError, TypeError, ValueError, SealingError, ValidationError) as exc:
            return _refusal("malformed-forwarding", f"not a stamped forwarding: {exc}", "CONTRACT")
        env = fw.original
        try:
            self._admit(raw, env.country, stamp)
        except DeliveryRefused as exc:
            log.warning("gateway %s refused a delivery: %s", self.country, exc.reason)
            return _refusal("delivery-refused", exc.reason)
        except BorderRefused as r:
            return _refusal("border-refused", r.reason, r.rule)
        except PeerUnreachable as exc:
            return _refusal("unavailable", str(exc))
        try:
            admit_forwarding(fw, grant, fw.recipient, self.trust, self.clock())
        except Refused as r:
            return self._refused_in(fw, r.rule, r.reason)
        except PeerUnreachable as exc:
            return _refusal("unavailable", str(exc))
        answer = {"event_id": str(env.id), "recipient": fw.recipient}
        if self.ledger.crossed("in", str(env.id), fw.recipient):
            return 202, {"outcome": "duplicate", **answer}  # on the bus already, durably
        key, value, headers = encode_forwarding(fw, grant)
        topic = inbox_topic(self.country, fw.recipient)
        try:
            position = self.deliver(Message(topic, key, value, headers))
        except TransportError as exc:
            log.warning("border %s <- %s: the bus did not take %s: %s", self.country,
                        env.country, env.id, exc)  # fmt: skip
            return _refusal("unavailable", f"this country's bus did not take it: {exc}")
        self.ledger.record("in", env.country, env, fw.recipient, wrapped(fw))
        return 202, {
            "outcome": "delivered",
            **answer,
            "topic": position.topic,
            "partition": position.partition,
            "offset": position.offset,
        }

    def _admit(self, forwarding: bytes, origin: str, stamp: DeliveryStamp) -> None:
        """The door: from the peer this gateway serves, of now, not seen before (no lookup,
        no write); then stamped by the gateway the federation agreement names, with its
        registered key."""
        if origin != self.peer:
            raise DeliveryRefused(f"this gateway takes deliveries from {self.peer} only")
        now = self.clock()
        check_fresh(stamp, forwarding, now)
        try:
            expires = (stamp.sent_at + FRESHNESS).timestamp()
            self.replays.check_and_add(
                stamp.gateway, stamp.nonce, expires, now.timestamp(), "delivery"
            )
        except AuthError as exc:
            seen = "replayed" in exc.reason
            raise DeliveryRefused(
                "this delivery was seen before (replayed)" if seen else exc.reason
            ) from None
        fed = self.trust.federation(self.peer)
        if stamp.gateway != fed.peer_gateway:
            raise DeliveryRefused(f"stamped by {stamp.gateway}, not {self.peer}'s gateway")
        key = self.trust.peer_directory(fed).signing_key(stamp.gateway, stamp.key_id, now)
        if key is None:
            raise DeliveryRefused(f"{stamp.gateway} has no signing key {stamp.key_id}")
        verify_stamp(stamp, key.ed25519())

    def _refused_in(self, fw: Forwarding, rule: str, reason: str) -> tuple[int, dict[str, Any]]:
        """A refusal at the door: a ledger line, and a dead letter in the gateway node's
        store (its own stream of refusals per origin), so operators find it as any other."""
        env = fw.original
        log.warning(
            "border %s <- %s refused %s (%s): %s", self.country, env.country, env.id, rule, reason
        )
        self.ledger.record("in", env.country, env, fw.recipient, rule=rule, reason=reason)
        source = f"border-in:{env.country}:{fw.recipient}"
        with self._door:
            position = self.store.cursor(source).position
            self.store.record_dead_letter(DeadLetter.record(source, position, rule, reason, env))
        return _refusal("border-refused", f"event {env.id}: {reason}", rule)


def _refusal(error: str, detail: str, rule: str | None = None) -> tuple[int, dict[str, Any]]:
    found = problem(error, detail, rule=rule)
    return found.status, found.body()


def border_restrictions(case: CaseFile | None, env: Envelope) -> Restrictions:
    """The restrictions the border rules weigh: the gateway node's own view of the case
    (derived by provenance: protections from anyone) and those of the event crossing.
    Only the competent authority may address the gateway with return planning, so the
    relaxing R2 restrictions in that event are its own attestation; the gateway node
    refused the event had anyone else sent it."""
    own = case.state.restrictions if case is not None else Restrictions()
    return own.merged(env.restrictions)


def wrapped(fw: Forwarding) -> frozenset[DataCategory]:
    """The categories a forwarding hands its recipient keys to (what the ledger lists)."""
    return frozenset(DataCategory(c) for c in fw.wraps.get(fw.recipient, {}).get("keys", {}))
