"""Events passed on to a node (R10), received through its one reception path: real keys,
stores and sealing, a directory held in memory. What is believed is exactly what the
forwarder held; a forwarder that never held the event, keys it never had, a forwarding
for someone else or from an unknown agency end as dead letters naming their rule, and
an erasure order follows the case to every agency it was passed on to."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.events import ErasureOrdered, EventPayload, ReferralRequested
from contracts.kafka_binding import (
    ENVELOPE_CONTENT_TYPE,
    FORWARDING_CONTENT_TYPE,
    encode,
    encode_forwarding,
)
from contracts.restrictions import set_by
from contracts.sealing import Forwarding, ForwardingBasis, Withheld
from contracts.sealing.core import wrap_aad
from contracts.sealing.keys import b64e
from contracts.vocabulary import DataCategory, Role, ServiceKind
from referral_router.receiving.passed_on import PassedOn
from referral_router.receiving.provenance import Domestic
from referral_router.receiving.reception import Outcome, Received, Reception
from referral_router.sealing.forwardings import ForwardingStore
from referral_router.store.case_store import RECEIVED, LoggedForwarding
from referral_router.transport.base import Record
from tests.agencies import Country, NodeParts, clear_envelope, clear_part, country, new_case
from tests.agencies import node_parts as parts_of

ROLES = {
    "police": Role.FIRST_RESPONDER,
    "shelter": Role.SERVICE_PROVIDER,
    "clinic": Role.SERVICE_PROVIDER,
    "lawyer": Role.SERVICE_PROVIDER,
    "authority": Role.COMPETENT_AUTHORITY,
    "consul": Role.CONSULATE,
}
BASIS = ForwardingBasis(consent_id="consent-1", by_officer="sh-1")


@dataclass
class Node:
    parts: NodeParts
    reception: Reception
    forwardings: ForwardingStore
    offset: int = 0

    def take(self, value: tuple[bytes, bytes, Any]) -> Received:
        key, payload, headers = value
        self.offset += 1
        now = time.time_ns() // 1_000_000
        topic = f"nrm.XA.inbox.{self.parts.agency_id}"
        return self.reception.apply(
            Record(topic, 0, self.offset, key, payload, headers, now, appended_at=True)
        )


class Bus:
    """Five agencies of XA, each with the lower layers and reception of a node."""

    def __init__(self, folder: Path) -> None:
        services = {"clinic": (ServiceKind.MEDICAL,), "shelter": (ServiceKind.SHELTER,)}
        self.xa: Country = country("XA", ROLES, services=services)
        self.nodes: dict[str, Node] = {}
        for agency in ROLES:
            parts = parts_of(folder / agency, self.xa, agency)
            store = ForwardingStore(folder / agency / "forwardings.db")
            parts.seal.forwardings = store
            roster = self.xa.roster()
            reception = Reception(
                agency,
                parts.store,
                parts.seal,
                {
                    ENVELOPE_CONTENT_TYPE: Domestic(agency, roster, parts.seal),
                    FORWARDING_CONTENT_TYPE: PassedOn(agency, "XA", roster, parts.seal, store),
                },
                roles=lambda a=agency: frozenset({ROLES[a]}),
            )
            self.nodes[agency] = Node(parts, reception, store)

    def close(self) -> None:
        for node in self.nodes.values():
            node.forwardings.close()
            node.parts.close()

    def send(
        self,
        sender: str,
        recipients: tuple[str, ...],
        payload: EventPayload,
        event_type: str,
        case: str,
        entitled: dict[str, frozenset[DataCategory]],
    ) -> Any:
        """Sealed and signed by `sender`'s node, then received by each recipient's."""
        clear = clear_envelope(
            sender, recipients, case, event_type, clear_part(payload), restrictions=set_by(payload)
        )
        seal = self.nodes[sender].parts.seal
        env = seal.seal(clear, payload, entitled)
        for r in recipients:
            got = self.nodes[r].take(encode(env, seal.grant_for(env, r)))
            assert got.outcome is Outcome.APPLIED, got.letter
            self.nodes[r].parts.store.case_file(case)  # recorded
        return env

    def referral(self, case: str) -> Any:
        payload = ReferralRequested(
            referral_id="ref-1",
            to_agency="shelter",
            service=ServiceKind.SHELTER,
            consent_id="consent-1",
            full_name="Ana Example",
            needs="a safe bed",
            medical_notes="insulin twice a day",
            pickup_location="3 Quay Street, back door",
        )
        cats = {DataCategory.IDENTITY, DataCategory.SERVICE, DataCategory.HEALTH}
        return self.send(
            "police", ("shelter",), payload, "referral.requested", case, {"shelter": cats}
        )

    def pass_on(self, env: Any, forwarder: str, to: str, cats: frozenset[DataCategory]) -> Any:
        seal = self.nodes[forwarder].parts.seal
        verified, held = seal.held(env)
        return seal.forward(verified, to, cats & held, datetime.now(UTC), BASIS)


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[Bus]:
    b = Bus(tmp_path)
    yield b
    b.close()


def deliver(bus: Bus, fw: Forwarding, grant: bytes | None = None) -> Received:
    sender = bus.nodes[fw.forwarder].parts.seal
    grant = grant if grant is not None else sender.grant_for_forwarding(fw)
    return bus.nodes[fw.recipient].take(encode_forwarding(fw, grant))


def resigned(bus: Bus, fw: Forwarding, **changes: Any) -> Forwarding:
    """`fw` changed and signed again by its forwarder: what a hostile forwarder can make."""
    signer = bus.nodes[fw.forwarder].parts.seal.signer
    unsigned = fw.model_copy(update={**changes, "signature": None})
    sig = signer.private_key.sign(unsigned.signing_bytes())
    return unsigned.model_copy(
        update={"signature": {"alg": "Ed25519", "kid": signer.key_id, "sig": b64e(sig)}}
    )


def test_a_case_passed_on_opens_only_what_the_forwarder_held(bus: Bus) -> None:
    case = new_case()
    env = bus.referral(case)
    wanted = frozenset({DataCategory.IDENTITY, DataCategory.HEALTH, DataCategory.LOCATION})
    fw = bus.pass_on(env, "shelter", "clinic", wanted)
    assert set(fw.wraps["clinic"]["keys"]) == {"identity", "health"}  # never held location
    got = deliver(bus, fw)
    assert got.outcome is Outcome.APPLIED, got.letter
    clinic = bus.nodes["clinic"]
    (entry,) = clinic.parts.store.log(0, 100)
    assert (entry.direction, entry.envelope) == (RECEIVED, env)  # the original, byte for byte
    opened = clinic.parts.seal.open(env)
    assert opened["full_name"] == "Ana Example"
    assert opened["medical_notes"] == "insulin twice a day"
    assert opened["pickup_location"] == Withheld(DataCategory.LOCATION).to_json()
    assert opened["needs"] == Withheld(DataCategory.SERVICE).to_json()
    assert clinic.parts.seal.passed_on_by(env) == "shelter"
    view = clinic.parts.store.case_file(case)
    assert view is not None and {"shelter", "police"} <= view.state.parties
    assert deliver(bus, fw).outcome is Outcome.DUPLICATE  # redelivered: applied once


def _not_a_holder(bus: Bus, env: Any) -> Forwarding:
    fw = bus.pass_on(env, "shelter", "clinic", frozenset())
    lawyer = bus.nodes["lawyer"].parts.seal.signer
    unsigned = fw.model_copy(update={"forwarder": "lawyer", "wraps": {}, "signature": None})
    sig = lawyer.private_key.sign(unsigned.signing_bytes())
    return unsigned.model_copy(
        update={"signature": {"alg": "Ed25519", "kid": lawyer.key_id, "sig": b64e(sig)}}
    )


def _wider(bus: Bus, env: Any) -> Forwarding:
    """The shelter adds a wrap for location, which police never granted it: a key it
    cannot have, so a guess (it would never open the field; the receiver refuses first)."""
    fw = bus.pass_on(env, "shelter", "clinic", frozenset({DataCategory.IDENTITY}))
    kid = fw.wraps["clinic"]["kid"]
    key = bus.nodes["shelter"].parts.seal.case_keys.get(env.subject, "shelter", "clinic", kid)
    assert key is not None
    n = os.urandom(12)
    aad = wrap_aad(str(env.id), env.subject, "shelter", "clinic", kid, "location")
    keys = {
        **fw.wraps["clinic"]["keys"],
        "location": b64e(n + key.aead.encrypt(n, os.urandom(32), aad)),
    }
    return resigned(bus, fw, wraps={"clinic": {"kid": kid, "keys": keys}})


def _for_someone_else(bus: Bus, env: Any) -> Forwarding:
    return resigned(bus, bus.pass_on(env, "shelter", "clinic", frozenset()), recipient="lawyer")


def _forged(bus: Bus, env: Any) -> Forwarding:
    fw = bus.pass_on(env, "shelter", "clinic", frozenset())
    return fw.model_copy(update={"signature": {**fw.signature, "sig": b64e(os.urandom(64))}})


def _foreign(bus: Bus, env: Any) -> Forwarding:
    fw = bus.pass_on(env, "shelter", "clinic", frozenset())
    original = fw.original.model_copy(update={"source": "nrm://XB/police"})
    return resigned(bus, fw, original=original)


REFUSED = [
    ("a forwarder that never held the event", _not_a_holder, "R10", "lawyer neither sent"),
    ("keys the forwarder never held", _wider, "R10", "never held: location"),
    ("a forwarding for another node", _for_someone_else, "R6", "is for lawyer"),
    ("a forged forwarder signature", _forged, "SIGNATURE", "SignatureInvalid"),
    ("an event of a country not federated", _foreign, "FEDERATION", "not federated with XB"),
]


@pytest.mark.parametrize(
    ("make", "rule", "reason"), [pytest.param(*c[1:], id=c[0]) for c in REFUSED]
)
def test_a_forwarding_not_to_be_believed_is_a_dead_letter_and_keeps_nothing(
    bus: Bus, make: Any, rule: str, reason: str
) -> None:
    case = new_case()
    env = bus.referral(case)
    fw = make(bus, env)
    target = bus.nodes["clinic"]
    got = target.take(encode_forwarding(fw, None))
    assert got.outcome is Outcome.DEAD_LETTERED and got.letter is not None
    assert got.letter.rule == rule and reason in got.letter.reason, got.letter.reason
    assert target.parts.store.log(0, 100) == []
    assert target.forwardings.get(str(env.id), "clinic") is None
    assert target.parts.seal.case_keys.cases() == []


def erasure_order(bus: Bus, case: str, to: tuple[str, ...]) -> Any:
    payload = ErasureOrdered(legal_basis="erasure-request", ordered_by_officer="ia-1")
    clear = clear_envelope("authority", to, case, "case.erasure-ordered", clear_part(payload))
    return bus.nodes["authority"].parts.seal.seal(clear, payload, {})


def test_an_erasure_order_follows_the_case_to_where_it_was_passed_on(bus: Bus) -> None:
    """The authority never heard of the clinic (nor, here, of police); the shelter, which
    passed the case on, passes the order on too (no key in it) to every holder it knows,
    and the clinic destroys its keys."""
    case = new_case()
    env = bus.referral(case)
    fw = bus.pass_on(env, "shelter", "clinic", frozenset({DataCategory.IDENTITY}))
    shelter, clinic = bus.nodes["shelter"], bus.nodes["clinic"]
    file = shelter.parts.store.case_file(case)
    assert file is not None
    shelter.parts.store.record_forwarded(file, [fw])
    assert deliver(bus, fw).outcome is Outcome.APPLIED
    assert clinic.parts.seal.open(env)["full_name"] == "Ana Example"
    order = erasure_order(bus, case, ("shelter",))
    got = shelter.take(encode(order, None))
    assert got.outcome is Outcome.APPLIED, got.letter
    page = shelter.parts.store.outbox_page(0, 100)
    assert page is not None
    passed = [e.forwarding for e in page.entries if isinstance(e, LoggedForwarding)]
    onward = {p.recipient: p for p in passed if p.original == order}
    assert sorted(onward) == ["clinic", "police"]  # where it was passed on, and its sender
    assert all(p.wraps == {} for p in onward.values())
    got = clinic.take(encode_forwarding(onward["clinic"], None))
    assert got.outcome is Outcome.APPLIED, got.letter
    assert clinic.parts.seal.case_keys.cases() == []
    assert clinic.forwardings.get(str(env.id), "clinic") is None
    assert clinic.parts.seal.open(env)["full_name"]["withheld"] == "identity"
    erased = clinic.parts.store.case_file(case)
    assert erased is not None and erased.state.erased


def test_the_order_is_never_passed_to_the_origin_side_or_an_unknown_agency(bus: Bus) -> None:
    case = new_case()
    bus.referral(case)
    order = erasure_order(bus, case, ("shelter",))
    assert bus.nodes["shelter"].take(encode(order, None)).outcome is Outcome.APPLIED
    holders = {"police", "ghost", "consul", "shelter", "authority", "clinic"}
    made = bus.nodes["shelter"].parts.seal.pass_on_order(order, holders)
    assert sorted(fw.recipient for fw in made) == ["clinic", "police"]
    assert all(fw.wraps == {} and fw.original == order for fw in made)
