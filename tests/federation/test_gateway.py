"""The gateway alone, both ways: real keys, stores and sealing, beliefs held in memory
(`tests.federation.border`). Outbound refusals are dead letters in the gateway node's
store. Inbound, the door refuses a forgery or a border rule before anything reaches the
bus (a dead letter in the receiving gateway node's store); what it takes it publishes on
the counterpart's inbox topic, whose reception believes it by the same check (so a
forgery put on the topic past the door is refused there too), applies its receive rules
and knows a repeat as a duplicate. At the door, before any of that, a delivery that is
stale, replayed or not stamped by the peer's gateway is refused and nothing is looked up
or recorded."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from contracts.directory import KeyStatus, KeyUse
from contracts.envelope import Envelope
from contracts.events import (
    ErasureOrdered,
    ReturnCompleted,
    ReturnPlanAgreed,
    ReturnPlanningStarted,
    RiskAssessed,
)
from contracts.federation import FRESHNESS, CounterpartGrant, stamp_delivery
from contracts.kafka_binding import encode, encode_forwarding
from contracts.restrictions import Restrictions
from contracts.sealing import (
    SigningKey,
    forward,
    new_case_key,
    open_envelope,
    parse_forwarding,
    prove_unopenable,
    seal,
)
from contracts.sealing.keys import b64d, b64e
from contracts.vocabulary import DataCategory
from referral_router.receiving.reception import Outcome
from referral_router.sealing.node_seal import recorded_lookup
from referral_router.store.case_store import RECEIVED
from tests.agencies import clear_envelope, clear_part, new_case, node_parts
from tests.federation.border import GATEWAY, XA, XB, Border, document, signer

IDENTITY_HEALTH = frozenset({DataCategory.IDENTITY, DataCategory.HEALTH})
CP = "reintegration-office"


@pytest.fixture
def border(tmp_path: Path) -> Iterator[Border]:
    b = Border(tmp_path)
    yield b
    b.close()


def planning(**changes: Any) -> ReturnPlanningStarted:
    fields: dict[str, Any] = {
        "destination_country": "XB",
        "counterpart_agency": CP,
        "full_name": "Ana Example",
        "reception_needs": "insulin on arrival",
    }
    return ReturnPlanningStarted(**{**fields, **changes})


def assessed(border: Border, case: str, serious: bool = False) -> None:
    risk, grant = border.authored(
        RiskAssessed(serious_risk=serious, assessed_by_officer="ia-7"), "risk.assessed", case
    )
    border.to_gateway(risk, grant)


def planned(
    border: Border,
    case: str,
    entitled: frozenset[DataCategory] = IDENTITY_HEALTH,
    restrictions: Restrictions | None = None,
    **changes: Any,
) -> Envelope:
    env, grant = border.authored(
        planning(**changes), "return.planning-started", case, entitled, restrictions=restrictions
    )
    border.to_gateway(env, grant)
    return env


def counterpart_log(border: Border, country: str = "XB") -> list[tuple[str, str]]:
    store = border.counterparts[country].parts.store
    return [(e.direction, str(e.envelope.id)) for e in store.log(0, 1000)]


def test_a_return_event_crosses_into_the_counterpart_store(border: Border) -> None:
    case = new_case()
    assessed(border, case)
    env = planned(border, case)
    gateway = border.gateways["XA"]
    assert gateway.pending() > 0
    assert gateway.pump() == 1  # the risk assessment stays home
    assert gateway.pending() == 0
    assert counterpart_log(border) == []  # on XB's bus, not yet taken off the inbox
    (received,) = border.take("XB")
    assert (received.outcome, received.source) == ("applied", f"nrm.XB.inbox.{CP}:0")
    assert counterpart_log(border) == [(RECEIVED, str(env.id))]
    # The forwarding is kept beside it: the counterpart opens the agreed categories.
    cp = border.counterparts["XB"]
    data = cp.forwardings.get(str(env.id), CP)
    assert data is not None
    opened = open_envelope(
        parse_forwarding(data), CP, cp.parts.seal.case_keys.get, recorded_lookup(XA.directory)
    )
    assert opened.opened == IDENTITY_HEALTH
    assert opened.to_json()["reception_needs"] == "insulin on arrival"
    out = border.ledgers["XA"].list()
    into = border.ledgers["XB"].list()
    assert [(c.direction, c.outcome, c.agency, c.categories) for c in out] == [
        ("out", "crossed", CP, ("health", "identity"))
    ]
    assert [(c.direction, c.outcome, c.event_id) for c in into] == [("in", "crossed", str(env.id))]
    assert border.nodes["XA"].store.dead_letters() == []


def _unassessed(b: Border, case: str) -> Envelope:
    return planned(b, case)


def _elsewhere(b: Border, case: str) -> Envelope:
    assessed(b, case)
    return planned(b, case, destination_country="XC")


def _no_counterpart(b: Border, case: str) -> Envelope:
    assessed(b, case)
    return planned(b, case, counterpart_agency="xb-rapporteur")


def _ended_over_there(b: Border, case: str) -> Envelope:
    assessed(b, case)
    b.trust["XA"].documents["XB"] = document("XB").model_copy(update={"peers": ()})
    return planned(b, case)


def _refused_over_there(b: Border, case: str) -> Envelope:
    assessed(b, case)
    b.xb_answers = (403, {"error": "border-refused", "rule": "R5", "detail": "keys not agreed"})
    return planned(b, case)


def _no_encryption_key(b: Border, case: str) -> Envelope:
    assessed(b, case)
    record = XB.directory.agency(CP)
    assert record is not None
    keys = [
        k.model_copy(update={"status": KeyStatus.RETIRED}) if k.use is KeyUse.ENCRYPTION else k
        for k in record.keys
    ]
    agencies = [
        a.model_copy(update={"keys": keys}) if a.id == CP else a for a in XB.directory.agencies
    ]
    b.trust["XA"].directories["XB"] = XB.directory.model_copy(update={"agencies": agencies})
    return planned(b, case)


OUTBOUND_REFUSALS: list[tuple[str, Callable[[Border, str], Envelope], str, str, str]] = [
    ("no risk assessment", _unassessed, "R4", "no risk assessment reached", ""),
    ("another destination", _elsewhere, "FEDERATION", "return planned to XC", ""),
    ("not a counterpart", _no_counterpart, "FEDERATION", "xb-rapporteur is not a", ""),
    ("federation ended there", _ended_over_there, "FEDERATION", "no trust anchor for XA", ""),
    ("refused by the peer", _refused_over_there, "R5", "by XB's gateway: keys not agreed", CP),
    ("no encryption key", _no_encryption_key, "R6", "has no encryption key in XB's", CP),
]


@pytest.mark.parametrize(
    ("make", "rule", "reason", "agency"),
    [pytest.param(*c[1:], id=c[0]) for c in OUTBOUND_REFUSALS],
)
def test_an_outbound_refusal_is_a_dead_letter_and_a_ledger_line(
    border: Border,
    make: Callable[[Border, str], Envelope],
    rule: str,
    reason: str,
    agency: str,
) -> None:
    env = make(border, new_case())
    gateway = border.gateways["XA"]
    assert gateway.pump() == 1
    assert gateway.pump() == 0 and gateway.pending() == 0  # refused for good: not retried
    ((_, letter),) = border.nodes["XA"].store.dead_letters()
    assert (letter.rule, letter.event_id, letter.sender) == (rule, str(env.id), "nrm-authority")
    assert reason in letter.reason
    assert letter.source == "border:XB" + (f":{agency}" if agency else "")
    (line,) = border.ledgers["XA"].list()
    assert (line.direction, line.outcome, line.rule) == ("out", "refused", rule)
    assert line.agency == agency
    assert counterpart_log(border) == []


@pytest.mark.parametrize("serious_risk", [False, True], ids=["asylum", "serious risk"])
def test_the_gateway_node_itself_refuses_a_case_barred_from_the_origin_in_any_order(
    border: Border, serious_risk: bool
) -> None:
    """The gateway is on the country of origin's side: its own node dead-letters an
    envelope under `no_origin_contact` (set by an asylum claim it never saw, or by the
    risk assessment it receives, whose finding stays sealed) and every later one of that
    case, restricted or not, so the border rules never even see them."""
    case = new_case()
    first = Restrictions(no_origin_contact=True)
    if serious_risk:
        risk, grant = border.authored(
            RiskAssessed(serious_risk=True, assessed_by_officer="ia-7"), "risk.assessed", case
        )
        assert risk.restrictions.no_origin_contact and "serious_risk" not in risk.operational
        refused = border.offer_gateway(risk, grant)
        assert refused.letter is not None and refused.letter.rule == "R4"
        first = Restrictions()
    else:
        assessed(border, case)
    for restrictions in (first, None):
        env, grant = border.authored(
            planning(), "return.planning-started", case, IDENTITY_HEALTH, restrictions=restrictions
        )
        received = border.offer_gateway(env, grant)
        assert received.letter is not None and received.letter.rule == "R4"
        kid = env.sealed["wraps"][GATEWAY["XA"]]["kid"]
        keys = border.nodes["XA"].seal.case_keys
        assert keys.get(case, "nrm-authority", GATEWAY["XA"], kid) is None
    gateway = border.gateways["XA"]
    assert gateway.pump() == 0  # the risk assessment stays home; nothing else was recorded
    assert border.ledgers["XA"].list() == [] and counterpart_log(border) == []


def test_an_unreachable_peer_stops_the_pump_and_the_event_crosses_later(border: Border) -> None:
    case = new_case()
    assessed(border, case)
    env = planned(border, case)
    gateway = border.gateways["XA"]
    border.trust["XA"].unreachable = True
    assert gateway.pump() == 0
    assert gateway.pending() > 0 and border.nodes["XA"].store.dead_letters() == []
    border.xb_answers = (503, {"error": "unavailable", "detail": "XB's registry is down"})
    border.trust["XA"].unreachable = False
    assert gateway.pump() == 0 and gateway.pending() > 0  # the peer answers 503: retry
    border.xb_answers = None
    border.bus_down = True  # XB's gateway cannot publish: it answers 503, nothing kept
    assert gateway.pump() == 0 and gateway.pending() > 0
    assert border.ledgers["XB"].list() == [] and border.published["XB"] == []
    border.bus_down = False
    assert gateway.pump() == 1 and gateway.pending() == 0
    border.take("XB")
    assert counterpart_log(border) == [(RECEIVED, str(env.id))]


# --- inbound ---------------------------------------------------------------------------


def body(
    fw: Any, grant: bytes | None = None, *, by: SigningKey | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """A delivery as the peer's gateway posts it: stamped by that gateway (its real key
    unless `by`), now (unless `at`)."""
    raw = fw.canonical_bytes()
    origin = fw.original.country
    key = by or signer(XA if origin == "XA" else XB, GATEWAY[origin])
    stamp = stamp_delivery(
        raw, key.agency_id, key.key_id, key.private_key, at or datetime.now(UTC), os.urandom(16)
    )
    return {
        "forwarding": b64e(raw),
        "grant": b64e(grant) if grant else None,
        "stamp": stamp.model_dump(mode="json"),
    }


def hand_made(
    original_signer: SigningKey,
    forwarder: SigningKey,
    case: str,
    *,
    recipients: tuple[str, ...] = (GATEWAY["XA"],),
    restrictions: Restrictions | None = None,
    event_type: str = "return.planning-started",
    to: str = CP,
    country: str = "XA",
) -> Any:
    """A forwarding made outside any gateway, with no personal keys: what a forger, or a
    registered but hostile party, could post to the inbound door."""
    payload = (
        planning()
        if event_type == "return.planning-started"
        else ReturnPlanAgreed(agreed_by_officer="xb-7")
    )
    sender = original_signer.agency_id
    env = clear_envelope(
        sender,
        recipients,
        case,
        event_type,
        clear_part(payload),
        country=country,
        restrictions=restrictions or Restrictions(),
    )
    own = new_case_key(case, sender, sender)
    sealed = seal(env, payload, signer=original_signer, entitlements={}, case_keys={sender: own})
    keys = {sender: original_signer.public_key(), forwarder.agency_id: forwarder.public_key()}
    return forward(
        sealed,
        forwarder=forwarder,
        recipient=to,
        entitled=frozenset(),
        case_key_lookup=lambda *_: None,
        new_case_key=new_case_key(case, forwarder.agency_id, to),
        id=uuid4(),
        time=datetime.now(UTC),
        public_key_lookup=lambda agency, kid, at: keys[agency],
    )


INBOUND_REFUSALS: list[tuple[str, Callable[[str], Any], str, str]] = [
    (
        "keys not registered",
        lambda case: hand_made(
            SigningKey.generate("nrm-authority", "forged-1"),
            SigningKey.generate(GATEWAY["XA"], "forged-2"),
            case,
        ),
        "SIGNATURE",
        "not verified against XA's directory",
    ),
    (
        "sender not registered",
        lambda case: hand_made(
            SigningKey.generate("xa-ghost", "g-1"), signer(XA, GATEWAY["XA"]), case
        ),
        "R6",
        "'xa-ghost' is not in the registry's directory of XA",
    ),
    (
        "forwarded by another agency",
        lambda case: hand_made(
            signer(XA, "nrm-authority"),
            signer(XA, "immigration"),
            case,
            recipients=(GATEWAY["XA"], "immigration"),
        ),
        "FEDERATION",
        "immigration is not XA's agreed gateway",
    ),
    (
        "asylum lodged",
        lambda case: hand_made(
            signer(XA, "nrm-authority"),
            signer(XA, GATEWAY["XA"]),
            case,
            restrictions=Restrictions(no_origin_contact=True),
        ),
        "R4",
        "no contact with the country of origin applies",
    ),
]


@pytest.mark.parametrize(
    ("make", "rule", "reason"), [pytest.param(*c[1:], id=c[0]) for c in INBOUND_REFUSALS]
)
def test_an_inbound_refusal_is_refused_at_the_door_and_again_past_it(
    border: Border, make: Callable[[str], Any], rule: str, reason: str
) -> None:
    case = new_case()
    fw = make(case)
    status, answer = border.gateways["XB"].receive(body(fw))
    assert (status, answer["error"], answer["rule"]) == (403, "border-refused", rule)
    assert f"event {fw.original.id}: " in answer["detail"] and reason in answer["detail"]
    assert border.published["XB"] == []  # nothing reached XB's bus
    ((_, letter),) = border.nodes["XB"].store.dead_letters()  # XB's gateway node keeps it
    assert (letter.rule, letter.event_id) == (rule, str(fw.original.id))
    assert letter.reason in answer["detail"]
    assert letter.source == f"border-in:XA:{CP}"
    (line,) = border.ledgers["XB"].list()
    assert (line.direction, line.outcome, line.rule) == ("in", "refused", rule)
    # A registered XB agency may write to the counterpart's inbox topic: the same
    # forwarding put there past the door is refused by the node, by the same rule.
    cp = border.counterparts["XB"]
    received = border.put_on_inbox("XB", *encode_forwarding(fw))
    assert received.letter is not None and (received.letter.rule, received.outcome) == (
        rule,
        "dead-lettered",
    )
    assert reason in received.letter.reason
    assert cp.parts.store.log() == [] and cp.parts.store.case_file(case) is None
    assert cp.forwardings.get(str(fw.original.id), CP) is None  # nothing kept beside it


def test_keys_beyond_the_peers_agreement_are_refused_on_arrival(border: Border) -> None:
    """XA's gateway believes an outdated XB agreement that let the travel details (service)
    through: XB's own agreement decides what its counterpart may be handed (R5)."""
    wider = CounterpartGrant(
        agency=CP,
        event_types=("return.completed", "return.planning-started"),
        categories=(DataCategory.IDENTITY, DataCategory.HEALTH, DataCategory.SERVICE),
    )
    border.trust["XA"].documents["XB"] = document("XB", (wider,))
    case = new_case()
    assessed(border, case)
    completed = ReturnCompleted(
        voluntary=True, confirmed_by_officer="ca-1", travel_details="flight XB-204"
    )
    env, grant = border.authored(
        completed, "return.completed", case, frozenset({DataCategory.SERVICE})
    )
    border.to_gateway(env, grant)
    assert border.gateways["XA"].pump() == 1
    ((_, letter),) = border.nodes["XA"].store.dead_letters()
    assert letter.rule == "R5" and "service" in letter.reason
    ((_, there),) = border.nodes["XB"].store.dead_letters()  # refused at XB's door
    assert (there.rule, there.event_id) == ("R5", str(env.id))
    assert border.published["XB"] == [] and counterpart_log(border) == []
    assert border.counterparts["XB"].forwardings.get(str(env.id), CP) is None


def test_the_counterpart_node_applies_its_receive_rules_to_what_crosses(border: Border) -> None:
    """XB's gateway (registered, signing with its real key) forwards a plan agreement its
    oversight body wrote: XA's authority refuses it by the same rule as any envelope."""
    case = new_case()
    fw = hand_made(
        signer(XB, "xb-rapporteur"),
        signer(XB, GATEWAY["XB"]),
        case,
        recipients=(GATEWAY["XB"],),
        event_type="return.plan-agreed",
        to="nrm-authority",
        country="XB",
    )
    status, answer = border.gateways["XA"].receive(body(fw))
    assert (status, answer["outcome"]) == (202, "delivered")  # signatures and border: good
    (received,) = border.take("XA")
    assert received.outcome == "dead-lettered"
    ((_, letter),) = border.counterparts["XA"].parts.store.dead_letters()
    assert (letter.rule, letter.sender) == ("ROLE", "xb-rapporteur")
    assert "counterpart" in letter.reason


def carried_once(border: Border) -> list[dict[str, Any]]:
    """XA's gateway pumps one event across; returns the deliveries it posted to XB's."""
    sent: list[dict[str, Any]] = []
    xb = border.gateways["XB"]

    def capture(url: str, b: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        sent.append(b)
        return xb.receive(b)

    border.gateways["XA"].send = capture
    assert border.gateways["XA"].pump() == 1
    return sent


def test_a_repeated_delivery_is_a_duplicate_and_its_grant_is_not_taken(border: Border) -> None:
    case = new_case()
    assessed(border, case)
    env = planned(border, case)
    xb = border.gateways["XB"]
    (first,) = carried_once(border)
    # The same forwarding again, freshly stamped, with a grant of another key for the pair.
    other = new_case_key(case, GATEWAY["XA"], CP)
    grant = border.nodes["XA"].seal.grant(other, XB.directory.current_encryption_key(CP))
    status, answer = xb.receive(body(parse_forwarding(b64d(first["forwarding"])), grant))
    assert (status, answer["outcome"]) == (202, "duplicate")  # the door knows it crossed
    assert [r.outcome for r in border.take("XB")] == ["applied"]
    # Past the door, on the inbox topic: the node knows it too, and takes no grant.
    again = encode_forwarding(parse_forwarding(b64d(first["forwarding"])), grant)
    repeated = border.put_on_inbox("XB", *again)
    assert repeated.outcome == "duplicate"
    cp = border.counterparts["XB"]
    assert cp.parts.seal.case_keys.get(case, GATEWAY["XA"], CP, other.key_id) is None
    assert counterpart_log(border) == [(RECEIVED, str(env.id))]
    assert [c.outcome for c in border.ledgers["XB"].list()] == ["crossed"]
    assert cp.parts.store.cursor(f"nrm.XB.inbox.{CP}:0").position == 2  # both tracked


def test_the_door_answers_no_node_malformed_and_unreachable(border: Border) -> None:
    case = new_case()
    lost = hand_made(signer(XA, "nrm-authority"), signer(XA, GATEWAY["XA"]), case, to="nobody-here")
    xb = border.gateways["XB"]
    status, answer = xb.receive(body(lost))  # its inbox topic is never written to
    assert (status, answer["rule"]) == (403, "FEDERATION")
    assert "nobody-here is not a counterpart for return.planning-started" in answer["detail"]
    for malformed in ({"forwarding": "not base64url!"}, {}):
        status, answer = xb.receive(malformed)
        assert (status, answer["error"]) == (400, "malformed-forwarding")
        assert answer["rule"] == "CONTRACT"
    border.trust["XB"].unreachable = True
    fine = hand_made(signer(XA, "nrm-authority"), signer(XA, GATEWAY["XA"]), case)
    status, answer = xb.receive(body(fine))
    assert (status, answer["error"]) == (503, "unavailable")
    assert border.published["XB"] == [] and border.ledgers["XB"].list()[-1].event_id != str(
        fine.original.id
    )  # nothing decided, nothing on the bus
    border.trust["XB"].unreachable = False
    assert xb.receive(body(fine))[1]["outcome"] == "delivered"
    assert [r.outcome for r in border.take("XB")] == ["applied"]


def test_a_delivery_replayed_after_erasure_leaves_nothing_that_opens_the_case(
    border: Border,
) -> None:
    """XB erases the case at the counterpart: case keys and kept forwardings go. A captured
    delivery replayed afterwards is a duplicate at the door (it crossed before) or refused
    with ERASED by the node (it never crossed), and in neither case is its grant or
    forwarding kept."""
    case = new_case()
    assessed(border, case)
    env = planned(border, case)
    captured: list[dict[str, Any]] = []
    xb = border.gateways["XB"]

    def capture(url: str, b: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        captured.append(b)
        return xb.receive(b)

    border.gateways["XA"].send = capture
    assert border.gateways["XA"].pump() == 1
    border.take("XB")
    completed, grant = border.authored(
        ReturnCompleted(voluntary=True, confirmed_by_officer="ca-1", travel_details="flight XB-9"),
        "return.completed",
        case,
        IDENTITY_HEALTH,
    )
    border.to_gateway(completed, grant)

    def closed(url: str, b: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        captured.append(b)
        return 503, {"rule": "UNAVAILABLE", "detail": "XB's door is closed"}

    border.gateways["XA"].send = closed
    assert border.gateways["XA"].pump() == 0  # the second delivery never got in
    planning_body, completion_body = captured[0], captured[-1]
    cp = border.counterparts["XB"]
    assert cp.forwardings.get(str(env.id), CP) is not None
    assert case in cp.parts.seal.case_keys.cases()

    order = ErasureOrdered(legal_basis="erasure-request", ordered_by_officer="xb-1")
    author = node_parts(border.folder / "xb-authority", XB, "xb-authority")
    clear = clear_envelope(
        "xb-authority", [CP], case, "case.erasure-ordered", clear_part(order), country="XB"
    )
    sealed = author.seal.seal(clear, order, {})
    assert border.put_on_inbox("XB", *encode(sealed)).outcome is Outcome.APPLIED
    author.close()
    assert case not in cp.parts.seal.case_keys.cases()
    assert cp.forwardings.get(str(env.id), CP) is None

    status, answer = xb.receive(planning_body)  # byte for byte: the door refuses it
    assert (status, answer["error"]) == (403, "delivery-refused")
    restamped = body(parse_forwarding(b64d(str(planning_body["forwarding"]))))
    status, answer = xb.receive(restamped)  # a peer gateway sending it again, freshly
    assert (status, answer["outcome"]) == (202, "duplicate")
    status, answer = xb.receive(completion_body)
    assert (status, answer["outcome"]) == (202, "delivered")  # the door has no case state
    (refused,) = border.take("XB")
    assert refused.letter is not None and refused.letter.rule == "ERASED"
    assert case not in cp.parts.seal.case_keys.cases()
    for replayed in (planning_body, completion_body):
        fw = parse_forwarding(b64d(str(replayed["forwarding"])))
        assert cp.forwardings.get(str(fw.original.id), CP) is None
        prove_unopenable(fw, key_sources=[cp.parts.seal.case_keys.get])


# --- the door ------------------------------------------------------------------------


def test_a_replayed_delivery_is_refused_at_the_door(border: Border) -> None:
    case = new_case()
    assessed(border, case)
    planned(border, case)
    xb = border.gateways["XB"]
    (first,) = carried_once(border)
    before = len(border.ledgers["XB"].list())
    status, answer = xb.receive(first)  # byte for byte, stamp and all
    assert (status, answer["error"]) == (403, "delivery-refused")
    assert "replayed" in answer["detail"]
    assert len(border.ledgers["XB"].list()) == before
    assert border.counterparts["XB"].parts.store.dead_letters() == []


@pytest.mark.parametrize(
    ("why", "stamp", "said"),
    [
        ("stale", {"at": -FRESHNESS - timedelta(seconds=5)}, "outside"),
        ("from the future", {"at": FRESHNESS + timedelta(minutes=1)}, "outside"),
        ("forged key", {"by": SigningKey.generate(GATEWAY["XA"], "forged-9")}, "no signing key"),
        ("not the gateway", {"by": signer(XA, "nrm-authority")}, "not XA's gateway"),
    ],
)
def test_a_delivery_not_fresh_or_not_stamped_by_the_peer_gateway_is_refused(
    border: Border, why: str, stamp: dict[str, Any], said: str
) -> None:
    """Refused at the door: nothing recorded in the ledger or at the counterpart node."""
    case = new_case()
    fw = hand_made(signer(XA, "nrm-authority"), signer(XA, GATEWAY["XA"]), case)
    if "at" in stamp:  # an offset from now, taken now
        stamp = {"at": datetime.now(UTC) + stamp["at"]}
        border.trust["XB"].unreachable = True  # refused before any registry is asked
    status, answer = border.gateways["XB"].receive(body(fw, **stamp))
    assert (status, answer["error"]) == (403, "delivery-refused"), answer
    assert said in answer["detail"]
    assert border.ledgers["XB"].list() == []
    cp = border.counterparts["XB"]
    assert cp.parts.store.dead_letters() == [] and cp.parts.store.log() == []


def test_a_stamp_moved_onto_another_forwarding_is_refused(border: Border) -> None:
    case = new_case()
    one = hand_made(signer(XA, "nrm-authority"), signer(XA, GATEWAY["XA"]), case)
    two = hand_made(signer(XA, "nrm-authority"), signer(XA, GATEWAY["XA"]), case)
    moved = {**body(two), "stamp": body(one)["stamp"]}
    status, answer = border.gateways["XB"].receive(moved)
    assert (status, answer["error"]) == (403, "delivery-refused")
    assert "another forwarding" in answer["detail"]
