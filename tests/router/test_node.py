"""The sending node alone: a real store and directory, a fake at its `Sealer` Protocol.
Nothing is appended unless every step passed; a retry gets the first answer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.envelope import Envelope
from contracts.events import (
    AsylumLodged,
    CaseScreened,
    ErasureOrdered,
    EventPayload,
    Indicator,
    RiskAssessed,
)
from contracts.policy import load_policy
from contracts.restrictions import Restrictions
from contracts.vocabulary import DataCategory, Role, ServiceKind
from referral_router.rules.lifecycle import RuleViolation, UnknownCase
from referral_router.rules.roster import UnknownAgency
from referral_router.sending.node import (
    AgencyNode,
    IdempotencyConflict,
    InvalidSubmission,
    Submission,
)
from referral_router.store.case_store import RECEIVED, SENT, CaseStore
from tests.agencies import Country, clear_envelope, clear_part, country, new_case

XA = country(
    "XA",
    {
        "police": Role.FIRST_RESPONDER,
        "authority": Role.COMPETENT_AUTHORITY,
        "shelter": Role.SERVICE_PROVIDER,
        "child-protection": Role.CHILD_PROTECTION,
        "consulate": Role.CONSULATE,
        "asylum": Role.ASYLUM,
        "closed-ngo": Role.SERVICE_PROVIDER,
    },
    services={"shelter": (ServiceKind.SHELTER,)},
    suspended=frozenset({"closed-ngo"}),
)
NOW = datetime.now(UTC)
Entitled = Mapping[str, frozenset[DataCategory]]


@dataclass
class FakeSealer:
    """Signs with a marker; remembers what it was asked to seal and erase, and when."""

    store: CaseStore
    sealed: list[tuple[str, Entitled]] = field(default_factory=list)
    erased: list[tuple[str, list[str]]] = field(default_factory=list)
    keeps: int = 0

    def seal(self, envelope: Envelope, payload: EventPayload, entitlements: Entitled) -> Envelope:
        self.sealed.append((envelope.type, dict(entitlements)))
        return envelope.model_copy(update={"signature": {"alg": "Ed25519", "kid": "k", "sig": "s"}})

    def open(self, envelope: Envelope) -> dict[str, Any]:
        return {}

    def erase(self, case: str) -> int:
        file = self.store.case_file(case)
        self.erased.append((case, [e.type for _, e in self.store.envelopes(case)] if file else []))
        return 1

    def keep_new_keys(self) -> None:
        self.keeps += 1


@dataclass
class Node:
    node: AgencyNode
    sealer: FakeSealer
    store: CaseStore


@pytest.fixture
def open_node(tmp_path: Path) -> Iterator[Any]:
    stores: list[CaseStore] = []

    def make(agency: str, where: Country = XA) -> Node:
        path = tmp_path / f"{agency}.db"
        store = CaseStore(
            env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
        )
        stores.append(store)
        sealer = FakeSealer(store)
        node = AgencyNode(
            agency, where.code, store, where.roster(), sealer, load_policy(where.code), lambda: NOW
        )
        return Node(node, sealer, store)

    yield make
    for store in stores:
        store.close()


def screening(age: str = "adult") -> CaseScreened:
    return CaseScreened(
        forms_of_exploitation=["forced-labour"],
        age_status=age,
        screened_by_officer="p-17",
        full_name="Ana Example",
        nationality="MD",
        found_at="Warehouse 7",
        indicators=[Indicator(form="forced-labour", strength="strong", observation="no pay")],
    )


def screen(recipients: tuple[str, ...], age: str = "adult") -> Submission:
    return Submission("case.screened", screening(age), recipients)


def types(store: CaseStore) -> list[tuple[str, str]]:
    return [(e.direction, e.envelope.type) for e in store.log(0, 1000)]


def test_a_retry_with_the_same_key_gets_the_first_answer_and_appends_nothing(
    open_node: Any,
) -> None:
    n = open_node("police")
    first = n.node.submit(screen(("authority",)), idempotency_key="k-1")
    again = n.node.submit(screen(("authority",)), idempotency_key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.body == first.body
    assert types(n.store) == [(SENT, "case.screened")]
    assert len(n.sealer.sealed) == 1
    with pytest.raises(IdempotencyConflict):
        n.node.submit(screen(("authority", "shelter")), idempotency_key="k-1")
    other = n.node.submit(screen(("authority",)), idempotency_key="k-2")
    assert other.body["case"] != first.body["case"]  # another key: another case
    assert types(n.store) == [(SENT, "case.screened")] * 2


@pytest.mark.parametrize(
    ("recipients", "error", "words"),
    [
        (("nobody",), UnknownAgency, "'nobody' is not in the registry's directory"),
        (("authority", "closed-ngo"), UnknownAgency, "'closed-ngo' is suspended"),
        (("police",), InvalidSubmission, "does not send events to itself"),
    ],
    ids=["unregistered", "suspended", "itself"],
)
def test_only_registered_active_parties_are_sent_to(
    open_node: Any, recipients: tuple[str, ...], error: type[Exception], words: str
) -> None:
    """R6: information is never sent to a party whose identity is unknown."""
    n = open_node("police")
    with pytest.raises(error, match=words):
        n.node.submit(screen(recipients), idempotency_key="k")
    assert n.store.log() == [] and n.sealer.sealed == []
    assert n.store.idempotent_answer("police", "k") is None


def test_a_rule_refusal_appends_nothing_and_keeps_no_answer(open_node: Any) -> None:
    n = open_node("police")
    with pytest.raises(RuleViolation) as refused:
        n.node.submit(screen(("authority",), age="unknown"), idempotency_key="k")
    assert refused.value.rule == "R2"
    with pytest.raises(UnknownCase):
        n.node.submit(
            Submission(
                "risk.assessed",
                RiskAssessed(serious_risk=False, assessed_by_officer="x"),
                ("authority",),
                new_case(),
            )
        )
    assert n.store.log() == [] and n.sealer.sealed == []
    # The refused request left no answer behind: corrected, the same key is accepted.
    fixed = n.node.submit(screen(("authority", "child-protection"), age="unknown"), "k")
    assert fixed.status_code == 201 and fixed.body["restrictions"]["presumed_child"] is True


def test_each_recipient_is_sealed_for_what_the_agreement_lets_it_read(open_node: Any) -> None:
    """R5: the node hands sealing one entitlement per recipient, from the directory."""
    n = open_node("authority")
    n.node.submit(screen(("child-protection", "consulate")))
    ((event_type, entitled),) = n.sealer.sealed
    assert event_type == "case.screened"
    assert DataCategory.IDENTITY in entitled["child-protection"]
    assert entitled["consulate"] == frozenset()  # identity for return only


def receive(store: CaseStore, env: Envelope, roles: Mapping[str, Role]) -> None:
    """As reception records an envelope this node received."""
    case = store.case_file_or_new(env.subject)
    case.record(env, RECEIVED, roles)
    inbox = store.cursor("nrm.XA.inbox.authority:0")
    assert inbox.advance(inbox.position + 1, case)


def test_an_erasure_order_goes_to_every_known_party_but_a_barred_consulate(
    open_node: Any,
) -> None:
    """The order reaches every agency that took part, so each destroys its keys; R4 still
    bars the consulate, and a party no longer registered is left out. The node's own
    keys go before the order is recorded."""
    n = open_node("authority")
    case = n.node.submit(screen(("police", "consulate"))).body["case"]
    lodged = clear_envelope(
        "asylum",
        ("authority", "gone-agency"),
        case,
        "asylum.lodged",
        clear_part(AsylumLodged()),
        restrictions=Restrictions(no_origin_contact=True),
    )
    receive(n.store, lodged, XA.roster().roles(("asylum", "authority", "gone-agency")))
    order = Submission(
        "case.erasure-ordered",
        ErasureOrdered(legal_basis="erasure-request", ordered_by_officer="ca-1"),
        ("police",),
        case,
    )
    receipt = n.node.submit(order)
    assert receipt.status_code == 201
    assert receipt.body["recipients"] == ["police", "asylum"]
    assert n.sealer.erased == [(case, ["case.screened", "asylum.lodged"])]
    assert types(n.store)[-1] == (SENT, "case.erasure-ordered")
