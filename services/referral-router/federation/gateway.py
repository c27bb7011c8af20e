"""The cross-border gateway: relays return-planning events between two countries' buses.

How an event crosses, from country A to country B:

1. A's sending agency addresses the event, like any other, to A's gateway agency (a
   registered node with the counterpart role, so A's own agreement decides what it may
   open: return events only). The gateway node verifies and stores it: the crossing is
   in A's log.
2. The gateway's pump reads its store; for each return-planning event it applies the
   border rules (`contracts.federation.check_outbound`: R2, R4), believes A's federation
   document (own anchor) and B's (the anchor A imported), and for each of B's published
   counterparts re-wraps with `contracts.sealing.forward` only the categories that B's
   federation agreement AND B's directory allow (never more than the gateway itself
   could open: R10). Ciphertexts are never re-encrypted; a case-key grant for the
   counterpart rides beside the forwarding, never in a log.
3. B's gateway (`Gateway.receive`) verifies both signatures against A's directory, which
   it believes only through the anchor B imported, checks `check_inbound`, and hands the
   forwarding to the counterpart's node (`FederatedInbox`), which records A's original
   envelope in its own store (the crossing is in B's log) and keeps the forwarding's key
   wraps beside it so that `FederatedSeal` can open exactly the agreed categories.

Anything refused is recorded with its rule and reason: as a dead letter in the sending
gateway node's store, and in each gateway's crossing ledger (clear data only).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import uuid4

from eventsourcing.persistence import Tracking

from contracts.directory import Directory
from contracts.envelope import Envelope
from contracts.federation import (
    FEDERATED_EVENT_TYPES,
    BorderRefused,
    PeerFederation,
    check_inbound,
    check_outbound,
)
from contracts.need_to_know import CaseContext
from contracts.problems import problem
from contracts.sealing import (
    CaseKey,
    CaseKeyGrant,
    Forwarding,
    HpkeKeyPair,
    SealingError,
    Verified,
    accept_grant,
    forward,
    forwardable,
    grant_case_key,
    new_case_key,
    parse_forwarding,
    verify,
)
from contracts.sealing.keys import b64d, b64e
from contracts.vocabulary import DataCategory, Role
from referral_router.federation.ledgers import ForwardingStore
from referral_router.federation.trust import PeerTrust, PeerUnreachable, directory_lookup
from referral_router.runtime.node import NodeRuntime
from referral_router.sealing.node_seal import NodeSeal
from referral_router.store.case_store import RECEIVED, DeadLetter, LoggedEnvelope

log = logging.getLogger("nrm.gateway")

#: (peer gateway base URL, JSON body) -> (HTTP status, JSON answer)
Send = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]


class FederatedInbox:
    """Delivers verified forwardings into one node's own store (the receiving side's log)."""

    def __init__(self, runtime: NodeRuntime, forwardings: ForwardingStore) -> None:
        self.runtime = runtime
        self.forwardings = forwardings
        self._lock = threading.Lock()

    @property
    def agency_id(self) -> str:
        return self.runtime.settings.agency_id

    def deliver(self, fw: Forwarding, grant: bytes | None, peer_directory: Directory) -> str:
        """Take the grant into the node's case key store, keep the forwarding, record the
        original envelope as received; 'duplicate' when the event is already there."""
        rt, me, env = self.runtime, self.agency_id, fw.original
        if grant is not None:
            try:
                g = CaseKeyGrant.from_bytes(grant)
                if (g.case, g.sender, g.recipient) != (env.subject, fw.forwarder, me):
                    raise BorderRefused("SEALING", "the grant is for another case, sender or node")
                pair = rt.seal.keys.pair(g.recipient_key_id)
                hpke_pair = HpkeKeyPair.from_private_bytes(me, pair.key_id, pair.private)
                rt.case_keys.put(accept_grant(g, hpke_pair, directory_lookup(peer_directory)))
            except BorderRefused:
                raise
            except Exception as exc:
                raise BorderRefused("SEALING", f"case key grant refused: {exc}") from None
        with self._lock:
            case = rt.store.case_file(env.subject)
            if case is not None and str(env.id) in case.state.event_ids:
                return "duplicate"
            self.forwardings.put(str(env.id), me, fw.canonical_bytes())
            roles: dict[str, Role] = {}
            for agency in (env.sender, *env.recipients):
                record = peer_directory.agency(agency)
                roles[agency] = record.roles[0] if record else Role.COUNTERPART
            source = f"federation:{env.country}"
            position = rt.store.applied_up_to(source) or 0
            rt.store.record_received(env, roles, source, position)
        return "applied"


class Ledger(Protocol):
    def record(
        self,
        direction: str,
        peer: str,
        env: Envelope,
        agency: str,
        categories: frozenset[DataCategory] | tuple[str, ...] = (),
        rule: str = "",
        reason: str = "",
    ) -> None: ...


class Gateway:
    """One country's gateway to one peer: the outbound pump and the inbound door."""

    batch_size = 100

    def __init__(
        self,
        country: str,
        peer: str,
        node: NodeRuntime,
        trust: PeerTrust,
        send: Send,
        inboxes: Mapping[str, FederatedInbox],
        ledger: Ledger,
    ) -> None:
        self.country = country
        self.peer = peer
        self.node = node
        self.trust = trust
        self.send = send
        self.inboxes = inboxes
        self.ledger = ledger
        self._tracking = f"gateway-out:{peer}"
        self._keys_lock = threading.Lock()

    @property
    def agency_id(self) -> str:
        return self.node.settings.agency_id

    # --- outbound ------------------------------------------------------------------

    @property
    def position(self) -> int:
        return self.node.store.applied_up_to(self._tracking) or 0

    def pending(self) -> int:
        return max(0, self.node.store.max_position() - self.position)

    def pump(self) -> int:
        """Carry one batch of the gateway node's received return events across. Blocking:
        run it in a worker thread. Stops (without advancing) when the peer is unreachable."""
        store = self.node.store
        after, upto = self.position, store.max_position()
        if upto <= after:
            return 0
        batch = store.log(after, self.batch_size, upto)
        last, carried = after, 0
        for entry in batch:
            if entry.direction == RECEIVED and entry.envelope.type in FEDERATED_EVENT_TYPES:
                try:
                    self._cross(entry)
                except PeerUnreachable as exc:
                    log.warning("gateway %s -> %s: %s; will retry", self.country, self.peer, exc)
                    break
                carried += 1
            last = entry.position
        else:
            last = batch[-1].position if len(batch) == self.batch_size else upto
        if last > after:
            store.recorder.insert_tracking(Tracking(self._tracking, last))  # type: ignore[attr-defined]
        return carried

    def _refuse(self, entry: LoggedEnvelope, rule: str, reason: str, agency: str = "") -> None:
        env = entry.envelope
        log.warning(
            "border %s -> %s refused %s (%s): %s", self.country, self.peer, env.id, rule, reason
        )
        letter = DeadLetter.record(
            source=f"border:{self.peer}" + (f":{agency}" if agency else ""),
            position=entry.position,
            reason=reason,
            rule=rule,
            event_id=str(env.id),
            event_type=env.type,
            sender=env.sender,
        )
        self.node.store.record_dead_letter(letter)
        self.ledger.record("out", self.peer, env, agency, rule=rule, reason=reason)

    def _cross(self, entry: LoggedEnvelope) -> None:
        env = entry.envelope
        try:
            fed = self.trust.federation(self.peer)
            case = self.node.store.case_file(env.subject)
            check_outbound(env.type, env.flags, case.state.serious_risk if case else None)
            mine = self.trust.peer_document(fed).peer(self.country)
            if mine is None:
                raise BorderRefused(
                    "FEDERATION",
                    f"{self.peer}'s registry holds no trust anchor for {self.country}: the "
                    "federation has ended on their side",
                )
            receivers = mine.receivers(env.type)
            if env.type == "return.planning-started":
                dest = env.operational.get("destination_country")
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
            verified = verify(env, self.node.seal.public_signing_key)
        except BorderRefused as r:
            self._refuse(entry, r.rule, r.reason)
            return
        for recipient in receivers:
            self._forward(entry, verified, fed, mine, peer_dir, recipient)

    def _case_key(self, case: str, recipient: str) -> CaseKey:
        with self._keys_lock:
            keys = self.node.case_keys
            key = keys.current(case, self.agency_id, recipient)
            if key is None:
                key = new_case_key(case, self.agency_id, recipient)
                keys.put(key)
            return key

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
        ctx = CaseContext(event_type=env.type, asylum_lodged=env.flags.asylum_lodged)
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
        seal: NodeSeal = self.node.seal
        key = self._case_key(env.subject, recipient)
        now = datetime.now(UTC)
        fw = forward(
            verified,
            forwarder=seal.signer,
            recipient=recipient,
            entitled=entitled,
            case_key_lookup=self.node.case_keys.get,
            new_case_key=key,
            id=uuid4(),
            time=now,
        )
        grant = None
        if fw.wraps:
            grant = grant_case_key(
                key,
                signer=seal.signer,
                recipient_public_key=encryption.hpke(),
                recipient_key_id=encryption.key_id,
                time=now,
            ).to_bytes()
        body = {"forwarding": b64e(fw.canonical_bytes()), "grant": b64e(grant) if grant else None}
        status, answer = self.send(fed.gateway_url, body)
        if status >= 500:
            raise PeerUnreachable(f"{self.peer}'s gateway answered {status}")
        cats = frozenset(DataCategory(c) for c in fw.wraps.get(recipient, {}).get("keys", {}))
        if status >= 400:
            rule = str(answer.get("rule", "REFUSED"))
            reason = f"refused by {self.peer}'s gateway: {answer.get('detail', answer)}"
            self._refuse(entry, rule, reason, recipient)
            return
        self.ledger.record("out", self.peer, env, recipient, cats)

    # --- inbound -------------------------------------------------------------------

    def receive(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Verify, check and deliver one forwarding from the peer's gateway. Blocking.

        202 applied or duplicate; else a problem (`contracts.problems`): 400 malformed,
        403 refused by a rule (with `rule`), 503 when a registry could not be asked (the
        sender retries)."""
        try:
            fw = parse_forwarding(b64d(str(body["forwarding"])))
            raw_grant = body.get("grant")
            grant = b64d(str(raw_grant)) if raw_grant else None
        except (KeyError, TypeError, ValueError, SealingError) as exc:
            return _refusal("malformed-forwarding", f"not a forwarding: {exc}", "CONTRACT")
        env = fw.original
        origin = env.country
        try:
            fed = self.trust.federation(origin)
            peer_dir = self.trust.peer_directory(fed)
            try:
                verified = verify(fw, directory_lookup(peer_dir))
            except SealingError as exc:
                raise BorderRefused(
                    "SIGNATURE",
                    f"not verified against {origin}'s directory: {type(exc).__name__}: {exc}",
                ) from None
            check_inbound(
                federation=fed,
                event_type=env.type,
                source_country=origin,
                forwarder=fw.forwarder,
                recipient=fw.recipient,
                flags=env.flags,
                wrapped=forwardable(verified, fw.recipient),
            )
            inbox = self.inboxes.get(fw.recipient)
            if inbox is None:
                raise BorderRefused("R6", f"{fw.recipient} has no node behind this gateway")
            outcome = inbox.deliver(fw, grant, peer_dir)
        except BorderRefused as r:
            log.warning(
                "border %s <- %s refused %s (%s): %s",
                self.country,
                origin,
                env.id,
                r.rule,
                r.reason,
            )
            self.ledger.record("in", origin, env, fw.recipient, rule=r.rule, reason=r.reason)
            return _refusal("border-refused", f"event {env.id}: {r.reason}", r.rule)
        except PeerUnreachable as exc:
            return _refusal("unavailable", str(exc))
        if outcome == "applied":
            self.ledger.record("in", origin, env, fw.recipient, forwardable(verified, fw.recipient))
        return 202, {"outcome": outcome, "event_id": str(env.id), "recipient": fw.recipient}


def _refusal(error: str, detail: str, rule: str | None = None) -> tuple[int, dict[str, Any]]:
    found = problem(error, detail, rule=rule)
    return found.status, found.body()
