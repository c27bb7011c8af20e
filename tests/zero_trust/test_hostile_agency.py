"""A registered agency whose node ignores its own rules, against a real bus.

The hostile node signs with the agency's real keys (`RogueSender`), so every signature
verifies; it skips every sender check and publishes straight to the transport. Each
attack must end as a dead letter naming its rule at the receiving node, with that node's
view of the case byte-identical before and after and no case key kept from the attack.
The whole module runs on the embedded transport and on the session's Apache Kafka broker,
where the hostile node publishes with its own certificate: the broker's ACLs let a
registered agency write to the inboxes of those it may address, so what stops it there
too is the receiving node.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.directory import KeyUse
from contracts.kafka_binding import encode
from contracts.keystore import rotated
from contracts.restrictions import Restrictions
from contracts.vocabulary import Role
from nrm.embedded import AgencySpec
from registry.models import KeyInput
from tests.bus.running import RunningBus
from tests.registry.conftest import key_input
from tests.zero_trust.rogue import RogueSender

ROLES = {
    "police": Role.FIRST_RESPONDER,
    "authority": Role.COMPETENT_AUTHORITY,
    "authority2": Role.COMPETENT_AUTHORITY,
    "imm": Role.IMMIGRATION,
    "imm2": Role.IMMIGRATION,
    "asylum": Role.ASYLUM,
    "consulate": Role.CONSULATE,
    "gateway": Role.COUNTERPART,
    "rapporteur": Role.OVERSIGHT,
}
DELIVERED = {"referral_id": "r-1", "service": "initial-assistance"}
RETURN_PLAN = {
    "destination_country": "XB",
    "counterpart_agency": "gateway",
    "full_name": "Hostile Test Person",
}
ADULT = {
    "forms_of_exploitation": ["forced-labour"],
    "age_status": "adult",
    "screened_by_officer": "po-1",
    "full_name": "Hostile Test Person",
    "nationality": "XB",
    "found_at": "a farm",
    "indicators": [{"form": "forced-labour", "strength": "medium", "observation": "no pay"}],
}
CHILD = {**ADULT, "age_status": "disputed"}


@dataclass
class World:
    """The running bus, the agencies' ids on it, and a rogue for each."""

    bus: RunningBus
    ids: dict[str, str]
    rogues: dict[str, RogueSender] = field(default_factory=dict)

    def id(self, name: str) -> str:
        return self.ids[name]

    def rogue(self, name: str) -> RogueSender:
        if name not in self.rogues:
            agency = self.id(name)
            keys = self.bus.bus.agency_keys[agency]
            self.rogues[name] = RogueSender(agency, "XA", keys)
        return self.rogues[name]

    def post(
        self, name: str, case: str | None, event_type: str, to: list[str], payload: dict[str, Any]
    ) -> Any:
        recipients = [self.id(r) for r in to]
        with self.bus.client(self.id(name)) as c:
            if case is None:
                return c.post("/v1/cases", json={"recipients": recipients, "payload": payload})
            body = {"type": event_type, "recipients": recipients, "payload": payload}
            return c.post(f"/v1/cases/{case}/events", json=body)

    def screen(self, by: str, to: list[str]) -> str:
        r = self.post(by, None, "case.screened", to, ADULT)
        assert r.status_code == 201, r.text
        self.settle()
        return str(r.json()["case"])

    def settle(self) -> None:
        """Every node published what it sent and drained its inbox (a whole bus of
        consumer groups on one shared machine may take a while on Kafka)."""
        self.bus.run(self.bus.bus.settle(timeout=60), timeout=90)

    def view(self, name: str, case: str) -> bytes:
        with self.bus.client(self.id(name)) as c:
            return c.get(f"/v1/cases/{case}").content

    def letters(self, name: str) -> list[dict[str, Any]]:
        with self.bus.client(self.id(name)) as c:
            return list(c.get("/v1/dead-letters", params={"limit": 500}).json()["items"])

    def attack(
        self, by: str, event_type: str, case: str, to: list[str], payload: dict[str, Any], **kw: Any
    ) -> Any:
        """Seal, sign and publish as `by`, with no rule checked; returns the envelope."""
        rogue = self.rogue(by)
        recipients = [self.id(r) for r in to]
        env, grants = rogue.envelope(
            event_type, case, recipients, payload, self.bus.bus.registry.directory(), **kw
        )
        self.bus.run(rogue.publish(self.transport(by), env, grants))
        return env

    def transport(self, name: str) -> Any:
        """`name`'s own connection to the bus: its principal on Kafka."""
        bus = self.bus.bus
        return bus.transports.get(self.id(name), bus.transport)

    def note(self, by: str, case: str, to: str, **kw: Any) -> Any:
        """An event any assisting agency may send (a service delivered), as `attack`."""
        return self.attack(by, "services.delivered", case, [to], dict(DELIVERED), **kw)

    def dead_letter(self, at: str, event_id: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [d for d in self.letters(at) if d["event_id"] == event_id]
            if found:
                return found[0]
            time.sleep(0.2)
        raise AssertionError(f"{at} never dead-lettered {event_id}")

    def refused(self, at: str, env: Any, rule: str, case: str, before: bytes) -> dict[str, Any]:
        """The attack's envelope is a dead letter with `rule`, the receiver's view of the
        case did not change by one byte, and no case key of the attack was kept."""
        letter = self.dead_letter(at, str(env.id))
        assert letter["rule"] == rule, letter
        self.settle()
        assert self.view(at, case) == before
        me = self.id(at)
        wrap = env.sealed.get("wraps", {}).get(me)
        if wrap is not None:
            keys = self.bus.bus.nodes[me].case_keys
            kept = keys.get(case, env.sender, me, wrap["kid"])
            assert kept is None, "a dead letter's grant was kept"
        return letter


@pytest.fixture(
    scope="module",
    params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)],
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tag = secrets.token_hex(3)
    ids = {name: f"{name}-{tag}" for name in ROLES}
    agencies = tuple(AgencySpec(ids[n], n, (role,)) for n, role in ROLES.items())
    kw: dict[str, Any] = {"agencies": agencies}
    if request.param == "kafka":
        kw["kafka"] = request.getfixturevalue("kafka_broker")
    bus = RunningBus(tmp_path_factory.mktemp(f"hostile-{request.param}"), **kw)
    try:
        yield World(bus, ids)
    finally:
        bus.stop()


# --- authority: ROLE ---------------------------------------------------------------------


def test_a_first_responder_cannot_close_the_case(world: World) -> None:
    case = world.screen("police", ["authority"])
    before = world.view("authority", case)
    closing = {"reason_code": "other", "decided_by_officer": "po-1"}
    env = world.attack("police", "case.closed", case, ["authority"], closing)
    letter = world.refused("authority", env, "ROLE", case, before)
    assert "competent-authority" in letter["reason"]
    decided = world.post(
        "authority",
        case,
        "identification.decided",
        ["police"],
        {"stage": "reasonable-grounds", "decided_by_officer": "ca-1", "outcome": "positive"},
    )
    assert decided.status_code == 201, decided.text


@pytest.mark.parametrize("assessor", ["police", "rapporteur"])
def test_a_risk_assessment_by_police_or_rapporteur_satisfies_nothing(
    world: World, assessor: str
) -> None:
    case = world.screen("police", ["authority", "imm"])
    before = world.view("authority", case)
    env = world.attack(
        assessor,
        "risk.assessed",
        case,
        ["authority"],
        {"serious_risk": False, "assessed_by_officer": "x-1"},
    )
    world.refused("authority", env, "ROLE", case, before)
    plan = world.post(
        "authority",
        case,
        "return.planning-started",
        ["gateway"],
        RETURN_PLAN,
    )
    assert plan.status_code == 409 and plan.json()["rule"] == "R4", plan.text


# --- parties: R6 -------------------------------------------------------------------------


def test_an_authority_never_party_to_the_case_cannot_close_it(world: World) -> None:
    case = world.screen("police", ["authority"])
    before = world.view("authority", case)
    closing = {"reason_code": "other", "decided_by_officer": "ca-9"}
    env = world.attack("authority2", "case.closed", case, ["authority"], closing)
    letter = world.refused("authority", env, "R6", case, before)
    assert "takes no part" in letter["reason"]


def test_injection_into_a_case_by_a_stranger_is_refused(world: World) -> None:
    case = world.screen("police", ["authority", "imm"])
    before = world.view("authority", case)
    env = world.attack(
        "imm2", "reflection.started", case, ["authority"], {"decided_by_officer": "im-9"}
    )
    world.refused("authority", env, "R6", case, before)


# --- R4, whoever sends and in whatever order ---------------------------------------------


def _consulate_told(world: World, to: list[str]) -> str:
    """Police screens; the authority informs the consulate (allowed while no claim is
    lodged), so the consulate's node holds the case."""
    case = world.screen("police", to)
    informed = world.post(
        "authority",
        case,
        "risk.assessed",
        ["consulate", "imm"],
        {"serious_risk": False, "assessed_by_officer": "ca-1"},
    )
    assert informed.status_code == 201, informed.text
    return case


def _asylum_case(world: World) -> str:
    """The consulate told; then an asylum claim is lodged with the authorities and
    immigration. Police is never told."""
    case = _consulate_told(world, ["authority", "imm", "asylum"])
    # every agency that may address the country of origin is told (R4): both authorities
    told = ["authority", "authority2", "imm"]
    lodged = world.post("asylum", case, "asylum.lodged", told, {"refugee": False})
    assert lodged.status_code == 201, lodged.text
    world.settle()
    return case


def test_a_party_never_told_of_the_claim_cannot_reach_the_consulate(world: World) -> None:
    case = _asylum_case(world)
    honest = world.post("police", case, "services.delivered", ["consulate"], DELIVERED)
    assert honest.status_code == 409 and honest.json()["rule"] == "R4", honest.text
    before = world.view("consulate", case)
    assert b"Hostile Test Person" not in before
    plan = world.attack(
        "police",
        "return.planning-started",
        case,
        ["consulate"],
        {**RETURN_PLAN, "counterpart_agency": "consulate"},
    )
    world.refused("consulate", plan, "ROLE", case, before)
    note = world.note("police", case, "consulate")
    letter = world.refused("consulate", note, "R4", case, before)
    assert "only the competent authority" in letter["reason"]


def test_the_consulate_refuses_a_flagged_envelope_and_remembers_it(world: World) -> None:
    """Out of order: the flagged envelope arrives first; a later unflagged one of the
    same case (sent by a node that never heard of the claim) is refused too."""
    case = _asylum_case(world)
    honest = world.post(
        "authority",
        case,
        "risk.assessed",
        ["consulate"],
        {"serious_risk": False, "assessed_by_officer": "ca-1"},
    )
    assert honest.status_code == 409 and honest.json()["rule"] == "R4"
    before = world.view("consulate", case)
    flagged = world.attack(
        "authority",
        "risk.assessed",
        case,
        ["consulate"],
        {"serious_risk": False, "assessed_by_officer": "ca-1"},
        restrictions=Restrictions(no_origin_contact=True),
    )
    world.refused("consulate", flagged, "R4", case, before)
    unflagged = world.attack(
        "authority",
        "return.planning-started",
        case,
        ["consulate"],
        {**RETURN_PLAN, "counterpart_agency": "consulate"},
    )
    letter = world.refused("consulate", unflagged, "R4", case, before)
    assert "takes nothing more" in letter["reason"]


def test_the_gateway_of_the_country_of_origin_opens_nothing_after_asylum(world: World) -> None:
    case = _asylum_case(world)
    honest = world.post(
        "authority",
        case,
        "return.planning-started",
        ["gateway"],
        RETURN_PLAN,
    )
    assert honest.status_code == 409 and honest.json()["rule"] == "R4"
    before = world.view("gateway", case)
    env = world.attack(
        "authority",
        "return.planning-started",
        case,
        ["gateway"],
        {**RETURN_PLAN, "reception_needs": "insulin"},
        restrictions=Restrictions(no_origin_contact=True),
    )
    world.refused("gateway", env, "R4", case, before)
    assert b"Hostile Test Person" not in world.view("gateway", case)


# --- keys in time --------------------------------------------------------------------------


def _wait_for_directory(world: World, serial: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(n.roster.directory.serial >= serial for n in world.bus.bus.nodes.values()):
            return
        time.sleep(0.2)
    raise AssertionError("the nodes never saw the new directory")


def test_a_rotated_out_key_is_refused_whatever_time_the_envelope_claims(world: World) -> None:
    """The key is checked before anything else: the sender need not even be a party."""
    case = world.screen("police", ["authority"])
    agency = world.id("imm2")
    bus = world.bus.bus
    old = world.rogue("imm2").signer().key_id
    new_keys, _ = rotated(bus.agency_keys[agency])
    inputs = [KeyInput(**key_input(new_keys, use)) for use in KeyUse]
    before_rotation = datetime.now(UTC)
    bus.registry.rotate_keys(agency, inputs, "op", grace=timedelta(0))
    _wait_for_directory(world, bus.registry.directory().serial)
    before = world.view("authority", case)
    env = world.attack(
        "imm2",
        "reflection.started",
        case,
        ["authority"],
        {"decided_by_officer": "im-9"},
        time=before_rotation - timedelta(minutes=1),
        key_id=old,
    )
    letter = world.refused("authority", env, "R6", case, before)
    assert "reached the transport" in letter["reason"] and "retired" in letter["reason"]


def test_a_key_reported_compromised_is_refused(world: World) -> None:
    case = world.screen("police", ["authority"])
    agency = world.id("rapporteur")
    bus = world.bus.bus
    key = world.rogue("rapporteur").signer().key_id
    bus.registry.report_compromise(agency, key, "laptop stolen", "op")
    _wait_for_directory(world, bus.registry.directory().serial)
    before = world.view("authority", case)
    env = world.attack(
        "rapporteur",
        "risk.assessed",
        case,
        ["authority"],
        {"serious_risk": False, "assessed_by_officer": "x-1"},
        time=datetime.now(UTC) - timedelta(hours=1),
    )
    letter = world.refused("authority", env, "R6", case, before)
    assert "compromised" in letter["reason"]


def test_an_envelope_from_the_future_is_refused(world: World) -> None:
    case = world.screen("police", ["authority"])
    before = world.view("authority", case)
    env = world.note("police", case, "authority", time=datetime.now(UTC) + timedelta(hours=1))
    world.refused("authority", env, "TIME", case, before)


# --- replays -----------------------------------------------------------------------------


def test_replays_apply_nothing_twice_and_go_nowhere_else(world: World) -> None:
    case = world.screen("police", ["authority"])
    sent = world.post("police", case, "services.delivered", ["authority"], DELIVERED)
    assert sent.status_code == 201
    world.settle()
    node = world.bus.bus.nodes[world.id("authority")]
    stored = next(
        env for _, env in node.store.envelopes(case) if str(env.id) == sent.json()["event_id"]
    )
    before = world.view("authority", case)
    letters = len(world.letters("authority"))
    rogue = world.rogue("police")
    key, value, headers = encode(stored)
    # the very envelope, again: a duplicate, applied once
    world.bus.run(
        rogue.republish(world.transport("police"), key, value, headers, world.id("authority"))
    )
    world.settle()
    assert world.view("authority", case) == before
    assert len(world.letters("authority")) == letters
    # to a node it was never addressed to
    imm_before = world.view("imm", case)
    world.bus.run(rogue.republish(world.transport("police"), key, value, headers, world.id("imm")))
    letter = world.dead_letter("imm", str(stored.id))
    assert letter["rule"] == "R6" and "not a recipient" in letter["reason"]
    assert world.view("imm", case) == imm_before
    # the same event id with other content, signed again
    altered = world.note("police", case, "authority", event_id=stored.id)
    world.refused("authority", altered, "REPLAY", case, before)


def test_nothing_is_kept_of_an_event_for_an_erased_case(world: World) -> None:
    case = world.screen("police", ["authority"])
    erased = world.post(
        "authority",
        case,
        "case.erasure-ordered",
        ["police"],
        {"legal_basis": "erasure-request", "ordered_by_officer": "ca-1"},
    )
    assert erased.status_code == 201, erased.text
    world.settle()
    before = world.view("authority", case)
    env = world.note("police", case, "authority")
    world.refused("authority", env, "ERASED", case, before)
    assert case not in world.bus.bus.nodes[world.id("authority")].case_keys.cases()


# --- deadlines and flags -----------------------------------------------------------------


def test_a_pushed_deadline_is_refused(world: World) -> None:
    case = world.screen("police", ["authority"])
    before = world.view("authority", case)
    now = datetime.now(UTC)
    env = world.attack(
        "police",
        "referral.requested",
        case,
        ["authority"],
        {
            "referral_id": f"r-{uuid.uuid4().hex[:6]}",
            "to_agency": world.id("authority"),
            "service": "identification",
            "urgent": True,
            "consent_override": {"legal_basis": "public-task", "authorised_by_officer": "po-1"},
        },
        time=now,
        deadlines={"referral-answer": now + timedelta(days=30)},
    )
    letter = world.refused("authority", env, "R8", case, before)
    assert "referral-answer" in letter["reason"]


def test_a_relaxing_flag_from_a_sender_who_cannot_establish_it_does_not_count(
    world: World,
) -> None:
    case = world.screen("police", ["authority"])
    env = world.note(
        "police",
        case,
        "authority",
        restrictions=Restrictions(guardian_appointed=True, best_interests_determined=True),
    )
    world.settle()
    with world.bus.client(world.id("authority")) as c:
        view = c.get(f"/v1/cases/{case}").json()
    assert str(env.id) in [e["event_id"] for e in view["events"]]  # applied: a legal event
    assert view["restrictions"]["guardian_appointed"] is False
    assert view["restrictions"]["best_interests_determined"] is False


def test_grants_of_refused_records_are_never_kept(world: World, tmp_path: Path) -> None:
    """Across every attack above, the receivers hold no key any rogue envelope named."""
    for rogue in world.rogues.values():
        for env in rogue.sent:
            for recipient, wrap in env.sealed.get("wraps", {}).items():
                node = world.bus.bus.nodes.get(recipient)
                if node is None or recipient == env.sender:
                    continue
                stored = node.store.case_file(env.subject)
                applied = stored is not None and str(env.id) in stored.state.event_ids
                kept = node.case_keys.get(env.subject, env.sender, recipient, wrap["kid"])
                assert applied or kept is None, (recipient, env.type)


# --- the whole process: relaxing facts, officers, justice -----------------------------------


def test_only_child_protection_ends_the_presumption_of_minority(world: World) -> None:
    """An adult finding is a relaxing fact (R2): from police it is refused and counts for
    nothing at the authority's node."""
    r = world.post("police", None, "case.screened", ["authority", "imm"], CHILD)
    assert r.status_code == 409 and r.json()["rule"] == "R2", r.text  # no child protection
    case = world.screen("police", ["authority"])
    before = world.view("authority", case)
    finding = {"outcome": "adult", "assessed_by_officer": "po-1"}
    env = world.attack("police", "age.assessed", case, ["authority"], finding)
    world.refused("authority", env, "ROLE", case, before)


def test_a_decline_in_an_older_version_naming_no_officer_is_refused(world: World) -> None:
    """R7: the contract now requires the officer; a node that sends version 2 without one
    is refused by the receiver, whatever else the decline says."""
    case = world.screen("police", ["authority", "imm"])
    referral = {
        "referral_id": "r-imm",
        "to_agency": world.id("imm"),
        "service": "legal-aid",
        "consent_override": {"legal_basis": "public-task", "authorised_by_officer": "p"},
    }
    r = world.post("police", case, "referral.requested", ["imm"], referral)
    assert r.status_code == 201, r.text
    world.settle()
    before = world.view("police", case)
    old = {"referral_id": "r-imm", "reason_code": "capacity"}
    env = world.attack("imm", "referral.declined", case, ["police"], old, version=2)
    letter = world.refused("police", env, "R7", case, before)
    assert "answered_by_officer" in letter["reason"]


def test_a_justice_event_never_reaches_the_consulate_even_from_the_authority(
    world: World,
) -> None:
    case = _consulate_told(world, ["authority", "imm"])
    world.settle()
    decision = {"recorded_by_officer": "ca-1", "decision": "will-cooperate"}
    honest = world.post("authority", case, "cooperation.decided", ["consulate"], decision)
    assert honest.status_code == 409 and honest.json()["rule"] == "R4", honest.text
    before = world.view("consulate", case)
    env = world.attack("authority", "cooperation.decided", case, ["consulate"], decision)
    letter = world.refused("consulate", env, "R4", case, before)
    assert "justice" in letter["reason"]
