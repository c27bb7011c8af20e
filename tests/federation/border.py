"""Two countries' gateways and counterpart nodes in one process, for the gateway's unit
tests: real keys, stores and sealing; beliefs (`Trust`) held in memory instead of asked
of registries, the peer's gateway called directly instead of over HTTP, and each
country's bus a list of published records that `Border.take` hands to the counterpart's
reception, as its inbox loop would."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.directory import Directory, KeyUse, TrustAnchor
from contracts.envelope import Envelope
from contracts.events import EventPayload
from contracts.federation import (
    BorderRefused,
    CounterpartGrant,
    FederationDocument,
    PeerFederation,
)
from contracts.kafka_binding import ENVELOPE_CONTENT_TYPE, FORWARDING_CONTENT_TYPE, encode
from contracts.restrictions import Restrictions, set_by
from contracts.sealing import SigningKey
from contracts.vocabulary import DataCategory, Role
from referral_router.federation.gateway import Gateway
from referral_router.federation.inbound import CrossBorder
from referral_router.federation.ledgers import CrossingLedger
from referral_router.federation.trust import PeerUnreachable
from referral_router.receiving.provenance import Domestic
from referral_router.receiving.reception import Received, Reception
from referral_router.sealing.forwardings import ForwardingStore
from referral_router.transport.base import Message, Position, Record, TransportError
from referral_router.transport.topics import inbox_topic
from tests.agencies import (
    Country,
    NodeParts,
    clear_envelope,
    clear_part,
    country,
    node_parts,
)

XA = country(
    "XA",
    {
        "nrm-authority": Role.COMPETENT_AUTHORITY,
        "federation-xb": Role.COUNTERPART,
        "immigration": Role.IMMIGRATION,
    },
)
XB = country(
    "XB",
    {
        "federation-xa": Role.COUNTERPART,
        "reintegration-office": Role.COUNTERPART,
        "xb-rapporteur": Role.OVERSIGHT,
        "xb-authority": Role.COMPETENT_AUTHORITY,
    },
)
GATEWAY = {"XA": "federation-xb", "XB": "federation-xa"}
COUNTERPARTS = {
    "XA": CounterpartGrant(
        agency="nrm-authority",
        event_types=("return.plan-agreed", "reintegration.monitored"),
        categories=(DataCategory.SERVICE,),
    ),
    "XB": CounterpartGrant(
        agency="reintegration-office",
        event_types=("return.planning-started", "return.completed"),
        categories=(DataCategory.IDENTITY, DataCategory.HEALTH),
    ),
}
ANCHORS = {
    c: TrustAnchor.for_key(c, f"{c.lower()}-registry-1", Ed25519PrivateKey.generate().public_key())
    for c in ("XA", "XB")
}


def document(
    home: str, counterparts: tuple[CounterpartGrant, ...] | None = None
) -> FederationDocument:
    """What `home`'s registry publishes about its federation with the other country."""
    peer = "XB" if home == "XA" else "XA"
    fed = PeerFederation(
        peer=peer,
        anchor=ANCHORS[peer],
        registry_url=f"https://registry.{peer.lower()}.example",
        gateway_url=f"https://gateway.{peer.lower()}.example",
        peer_gateway=GATEWAY[peer],
        gateway=GATEWAY[home],
        counterparts=(COUNTERPARTS[home],) if counterparts is None else counterparts,
    )
    return FederationDocument(
        country=home,
        serial=1,
        issued_at=datetime.now(UTC),
        registry_key_id=f"{home.lower()}-registry-1",
        peers=(fed,),
    )


@dataclass
class Beliefs:
    """A country's `Trust`, held in memory: its own document, the peer's as it believes
    it, and the peer's directory."""

    own: FederationDocument
    documents: dict[str, FederationDocument]
    directories: dict[str, Directory]
    unreachable: bool = False

    def federation(self, peer: str) -> PeerFederation:
        if self.unreachable:
            raise PeerUnreachable("the registry did not answer")
        fed = self.own.peer(peer)
        if fed is None:
            raise BorderRefused(
                "FEDERATION", f"{self.own.country}'s registry holds no trust anchor for {peer}"
            )
        return fed

    def peer_document(self, fed: PeerFederation) -> FederationDocument:
        return self.documents[fed.peer]

    def peer_directory(self, fed: PeerFederation) -> Directory:
        if self.unreachable:
            raise PeerUnreachable(f"{fed.peer}'s directory did not answer")
        return self.directories[fed.peer]


@dataclass
class Counterpart:
    """A node behind a gateway: its parts, the reception that believes forwardings."""

    parts: NodeParts
    reception: Reception
    forwardings: ForwardingStore


def signer(where: Country, agency: str) -> SigningKey:
    pair = where.keys[agency].current(KeyUse.SIGNING)
    return SigningKey(agency, pair.key_id, pair.ed25519())


def domestic_reception(parts: NodeParts, where: Country) -> Reception:
    roster = where.roster()
    domestic = Domestic(parts.agency_id, roster, parts.seal)
    return Reception(
        parts.agency_id,
        parts.store,
        parts.seal,
        {ENVELOPE_CONTENT_TYPE: domestic},
        roles=lambda: roster.roles_of(parts.agency_id),
    )


@dataclass
class Border:
    """XA's gateway towards XB and XB's towards XA, each with one counterpart node."""

    folder: Path
    trust: dict[str, Beliefs] = field(init=False)
    #: When set, XA's gateway gets this answer from XB's instead of XB's own.
    xb_answers: tuple[int, dict[str, Any]] | None = None
    #: When set, a country's bus refuses what its gateway publishes (a broker outage).
    bus_down: bool = False

    def __post_init__(self) -> None:
        own = {c: document(c) for c in ("XA", "XB")}
        self.trust = {
            "XA": Beliefs(own["XA"], {"XB": own["XB"]}, {"XB": XB.directory}),
            "XB": Beliefs(own["XB"], {"XA": own["XA"]}, {"XA": XA.directory}),
        }
        self.author = node_parts(self.folder / "xa-author", XA, "nrm-authority")
        self.nodes = {
            "XA": node_parts(self.folder / "xa-gateway", XA, GATEWAY["XA"]),
            "XB": node_parts(self.folder / "xb-gateway", XB, GATEWAY["XB"]),
        }
        self.gateway_reception = domestic_reception(self.nodes["XA"], XA)
        self.counterparts = {
            "XA": self._counterpart("XA", XA, "nrm-authority"),
            "XB": self._counterpart("XB", XB, "reintegration-office"),
        }
        self.ledgers = {c: CrossingLedger(self.folder / f"{c}-crossings.db") for c in ("XA", "XB")}
        self.gateways = {
            c: Gateway(
                c,
                peer,
                self.nodes[c].store,
                self.nodes[c].seal,
                self.trust[c],
                self._send_to(peer),
                self._deliver_in(c),
                self.ledgers[c],
            )
            for c, peer in (("XA", "XB"), ("XB", "XA"))
        }
        self.published: dict[str, list[Record]] = {"XA": [], "XB": []}
        self._next = {"XA": 0, "XB": 0}
        self._offset = 0

    def _counterpart(self, code: str, where: Country, agency: str) -> Counterpart:
        parts = node_parts(self.folder / f"{code.lower()}-{agency}", where, agency)
        reception = domestic_reception(parts, where)
        forwardings = ForwardingStore(parts.folder / "forwardings.db")
        crossing = CrossBorder(agency, self.trust[code], forwardings)
        reception.believe(FORWARDING_CONTENT_TYPE, crossing)
        return Counterpart(parts, reception, forwardings)

    def _deliver_in(self, code: str) -> Any:
        def deliver(m: Message) -> Position:
            if self.bus_down:
                raise TransportError("no broker answers")
            offset = self._next[code]
            self._next[code] += 1
            now = time.time_ns() // 1_000_000  # the transport stamps its append time
            record = Record(m.topic, 0, offset, m.key, m.value, m.headers, now, True)
            self.published[code].append(record)
            return Position(m.topic, 0, offset)

        return deliver

    def take(self, code: str) -> list[Received]:
        """The counterpart node of `code` applies what was published on its inbox topic
        since the last take (its inbox loop's work); nothing else is on that bus."""
        cp = self.counterparts[code]
        topic = inbox_topic(code, cp.parts.agency_id)
        records, self.published[code] = self.published[code], []
        assert all(r.topic == topic for r in records), [r.topic for r in records]
        return cp.reception.apply_batch(records) if records else []

    def put_on_inbox(self, code: str, key: bytes, value: bytes, headers: Any) -> Received:
        """A record put on the counterpart's inbox topic past the gateway's door (any
        registered agency of `code` may write to it), applied by the counterpart."""
        topic = inbox_topic(code, self.counterparts[code].parts.agency_id)
        offset = self._next[code]
        self._next[code] += 1
        now = time.time_ns() // 1_000_000
        record = Record(topic, 0, offset, key, value, tuple(headers), now, True)
        return self.counterparts[code].reception.apply(record)

    def _send_to(self, peer: str) -> Any:
        def send(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            assert url == f"https://gateway.{peer.lower()}.example"
            if peer == "XB" and self.xb_answers is not None:
                return self.xb_answers
            return self.gateways[peer].receive(body)

        return send

    def close(self) -> None:
        for parts in (self.author, *self.nodes.values()):
            parts.close()
        for cp in self.counterparts.values():
            cp.parts.close()
            cp.forwardings.close()
        for ledger in self.ledgers.values():
            ledger.close()

    # --- XA's authority sends to its gateway ----------------------------------------

    def authored(
        self,
        payload: EventPayload,
        event_type: str,
        case: str,
        entitled: frozenset[DataCategory] = frozenset(),
        recipients: tuple[str, ...] = (GATEWAY["XA"],),
        restrictions: Restrictions | None = None,
    ) -> tuple[Envelope, bytes | None]:
        """An event nrm-authority sealed and signed, and its grant for XA's gateway, with
        the restrictions its node would write (those its own facts set, and more)."""
        clear = clear_envelope(
            "nrm-authority",
            recipients,
            case,
            event_type,
            clear_part(payload),
            restrictions=(restrictions or Restrictions()).merged(set_by(payload)),
        )
        entitlements = {r: entitled if r == GATEWAY["XA"] else frozenset() for r in recipients}
        sealed = self.author.seal.seal(clear, payload, entitlements)
        return sealed, self.author.seal.grant_for(sealed, GATEWAY["XA"])

    def to_gateway(self, envelope: Envelope, grant: bytes | None) -> None:
        """XA's gateway node receives it from its inbox, as any node would."""
        received = self.offer_gateway(envelope, grant)
        assert received.letter is None, received.letter

    def offer_gateway(self, envelope: Envelope, grant: bytes | None) -> Received:
        """XA's gateway node decides on it, whatever the outcome."""
        key, value, headers = encode(envelope, grant)
        self._offset += 1
        now = time.time_ns() // 1_000_000
        record = Record(
            "nrm.XA.inbox.federation-xb", 0, self._offset, key, value, headers, now, True
        )
        return self.gateway_reception.apply(record)
