"""Two independent deployments (XA destination, XB origin), federated: a full return, the
canary on XB's side, asylum (R4), a forged envelope, and ending the federation.

The ending test changes the federation and therefore runs last in this module."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from contracts.envelope import Envelope, dataschema_for, source_for
from contracts.events import ReturnPlanningStarted
from contracts.restrictions import Restrictions
from contracts.sealing import (
    SigningKey,
    forward,
    new_case_key,
    seal,
)
from contracts.sealing.keys import b64e
from contracts.transparency import verify_inclusion
from contracts.vocabulary import DataCategory
from nrm.demo import CANARY
from nrm.federation_demo import (
    DESTINATION,
    GATEWAY,
    ORIGIN,
    XB_MARK,
    agreement,
    before_return,
    categories_marked,
    completion,
    planning,
    scenario,
)
from referral_router.audit.log import AuditLog
from tests.federation.conftest import RunningPair
from tests.problems import (
    BadRequest,
    assert_openapi_problems,
    assert_problem,
    assert_refused,
    framework_errors,
)
from tests.zero_trust.rogue import RogueSender

XA, XB = DESTINATION, ORIGIN


@pytest.fixture(scope="module")
def returned(federation: RunningPair) -> str:
    """The whole return, played once: planned, agreed, completed, monitored."""
    return federation.play(scenario())


def store_event_ids(federation: RunningPair, country: str, agency: str) -> set[str]:
    store = federation.pair.buses[country].nodes[agency].store
    return {str(e.envelope.id) for e in store.log(0, 10_000)}


def test_full_return_across_two_deployments(federation: RunningPair, returned: str) -> None:
    xa = federation.case(XA, "nrm-authority", returned).json()
    xb = federation.case(XB, "reintegration-office", returned).json()
    assert xa["return_stage"] == xb["return_stage"] == "completed"
    chain = ["return.planning-started", "return.plan-agreed", "return.completed"]
    assert [e["type"] for e in xb["events"]] == [*chain, "reintegration.monitored"]
    assert [e["type"] for e in xa["events"] if e["type"] in chain] == chain
    # Separate deployments: two registries, two transports, two sets of stores.
    a, b = federation.pair.buses[XA], federation.pair.buses[XB]
    assert a.registry_url != b.registry_url and a.transport is not b.transport
    assert (a.root / "bus.db").exists() and (b.root / "bus.db").exists()
    # Every crossing is an envelope in a node store on both sides (what the audit
    # logs are derived from): the sending gateway's, and the receiving counterpart's.
    out_a = {e["event_id"] for e in xa["events"] if e["type"] in chain[::2]}
    assert out_a <= store_event_ids(federation, XA, GATEWAY[XA])
    assert out_a <= store_event_ids(federation, XB, "reintegration-office")
    out_b = {e["event_id"] for e in xb["events"] if e["direction"] == "sent"}
    assert len(out_b) == 2
    assert out_b <= store_event_ids(federation, XB, GATEWAY[XB])
    assert out_b <= store_event_ids(federation, XA, "nrm-authority")


def test_each_crossing_is_in_both_countries_audit_logs(
    federation: RunningPair, returned: str, tmp_path: Path
) -> None:
    """The audit log is derived from node stores: every crossing has a leaf, with a
    verifiable inclusion proof, in the sending gateway's log and the counterpart's log."""
    ends = {
        XA: ((XA, GATEWAY[XA]), (XB, "reintegration-office")),
        XB: ((XB, GATEWAY[XB]), (XA, "nrm-authority")),
    }
    logs: dict[tuple[str, str], AuditLog] = {}
    for country, agency in {end for pair in ends.values() for end in pair}:
        store = federation.pair.buses[country].nodes[agency].store
        logs[(country, agency)] = AuditLog(
            store,
            tmp_path / f"{country}-{agency}.db",
            f"nrm/{country}/{agency}",
            ed25519.Ed25519PrivateKey.generate(),
        )
    xb = federation.case(XB, "reintegration-office", returned).json()
    crossed = 0
    for event in xb["events"]:
        sending = XA if event["direction"] == "received" else XB
        for end in ends[sending]:
            log = logs[end]
            log.catch_up()
            proof = log.inclusion_proof(event["event_id"])
            verify_inclusion(proof.leaf_hash, proof.index, proof.size, proof.proof, log.root())
        crossed += 1
    assert crossed == 4
    for log in logs.values():
        log.close()


def test_counterpart_opens_exactly_the_agreed_categories(
    federation: RunningPair, returned: str
) -> None:
    federation.settle()
    views = {
        agency: federation.case(XB, agency, returned).text
        for agency in federation.pair.buses[XB].nodes
    }
    # XB's agreement: identity and health of return planning, nothing of the completion.
    assert categories_marked(views["reintegration-office"]) == {"identity", "health"}
    assert f"flight XB-204 {CANARY}" not in views["reintegration-office"]
    for agency, text in views.items():
        if agency != "reintegration-office":
            assert CANARY not in text, agency
    # Positive control the other way: XA's authority opens XB's plan (agreed: service).
    assert XB_MARK in federation.case(XA, "nrm-authority", returned).text
    # Not one marker in clear in any byte XB wrote (stores, transport, keys, gateway).
    files = [p for p in (federation.data_dir / XB).rglob("*") if p.is_file()]
    assert any(p.name == "forwardings.db" for p in files)
    leaks = [str(p) for p in files if CANARY.encode() in p.read_bytes()]
    leaks += [str(p) for p in files if XB_MARK.encode() in p.read_bytes()]
    assert leaks == []


def test_asylum_case_never_crosses(federation: RunningPair) -> None:
    """The authority, told of the claim, refuses itself to address XB's gateway (409 R4,
    checked by `play`); a node that skips that check is refused by the gateway's own node,
    which then takes nothing more of the case. Nothing reaches XB."""
    case = federation.play([*before_return(asylum=True), planning(asylum=True)])
    assert federation.case(XA, GATEWAY[XA], case).status_code == 404
    bus = federation.pair.buses[XA]
    rogue = RogueSender("nrm-authority", XA, bus.agency_keys["nrm-authority"])
    plan = {
        "destination_country": XB,
        "counterpart_agency": "reintegration-office",
        "full_name": "Name",
    }
    flagged = Restrictions(no_origin_contact=True)
    for flags in (flagged, Restrictions()):
        env, grants = rogue.envelope(
            "return.planning-started",
            case,
            [GATEWAY[XA]],
            plan,
            bus.registry.directory(),
            restrictions=flags,
        )
        federation.run(rogue.publish(bus.transport, env, grants))
        federation.settle()
        letters = federation.dead_letters(XA, GATEWAY[XA])
        assert any(d["event_id"] == str(env.id) and d["rule"] == "R4" for d in letters)
    assert federation.case(XA, GATEWAY[XA], case).status_code == 404
    for agency in federation.pair.buses[XB].nodes:
        assert federation.case(XB, agency, case).status_code == 404, agency


def forged_forwarding(case: str) -> dict[str, object]:
    """An envelope claiming to come from XA's authority, via XA's gateway, with keys that
    are not the registered ones."""
    author = SigningKey.generate("nrm-authority", "nrm-authority-signing-forged")
    gateway = SigningKey.generate(GATEWAY[XA], "federation-xb-signing-forged")
    payload = ReturnPlanningStarted(
        destination_country=XB,
        counterpart_agency="reintegration-office",
        full_name="Forged Person",
    )
    env = Envelope(
        id=uuid.uuid4(),
        source=source_for(XA, "nrm-authority"),
        type="return.planning-started",
        subject=case,
        time=datetime.now(UTC),
        dataschema=dataschema_for("return.planning-started"),
        sender="nrm-authority",
        recipients=(GATEWAY[XA],),
    )
    keys = {r: new_case_key(case, "nrm-authority", r) for r in ("nrm-authority", GATEWAY[XA])}
    sealed = seal(
        env,
        payload,
        signer=author,
        entitlements={GATEWAY[XA]: frozenset({DataCategory.IDENTITY})},
        case_keys=keys,
    )
    public = {author.agency_id: author.public_key(), gateway.agency_id: gateway.public_key()}
    own = {(k.case, k.sender, k.recipient, k.key_id): k for k in keys.values()}
    fw = forward(
        sealed,
        forwarder=gateway,
        recipient="reintegration-office",
        entitled=frozenset({DataCategory.IDENTITY}),
        case_key_lookup=lambda c, s, r, kid: own.get((c, s, r, kid)),
        new_case_key=new_case_key(case, GATEWAY[XA], "reintegration-office"),
        id=uuid.uuid4(),
        time=datetime.now(UTC),
        public_key_lookup=lambda agency, kid, at: public[agency],
    )
    return {"forwarding": b64e(fw.canonical_bytes()), "grant": None}


def test_forged_envelope_claiming_xa_is_refused_by_xb(federation: RunningPair) -> None:
    """XA's gateway itself (its pinned certificate, its real stamp) relays a forgery: the
    door lets it in, XB's counterpart node refuses the signatures."""
    case = "case-" + uuid.uuid4().hex[:20]
    with federation.border(XB, as_country=XA) as door:
        body = federation.stamped(forged_forwarding(case), by=XA)
        resp = door.post("/v1/federation/inbound", json=body)
        assert "XA's directory" in assert_problem(resp, "border-refused", rule="SIGNATURE").detail
        assert federation.case(XB, "reintegration-office", case).status_code == 404
        bad = door.post("/v1/federation/inbound", json={"forwarding": "x"})
        assert_problem(bad, "malformed-forwarding", rule="CONTRACT")


def test_a_replayed_or_stale_delivery_is_refused_at_the_border(federation: RunningPair) -> None:
    case = "case-" + uuid.uuid4().hex[:20]
    with federation.border(XB, as_country=XA) as door:
        body = federation.stamped(forged_forwarding(case), by=XA)
        first = door.post("/v1/federation/inbound", json=body)
        assert first.json()["error"] == "border-refused"  # reached the node, which refused
        replayed = door.post("/v1/federation/inbound", json=body)
        assert "replayed" in assert_problem(replayed, "delivery-refused").detail
        old = federation.stamped(body, by=XA, at=datetime.now(UTC) - timedelta(minutes=10))
        stale = door.post("/v1/federation/inbound", json=old)
        assert "outside" in assert_problem(stale, "delivery-refused").detail
        not_ours = federation.stamped(body, by=XB)  # XB's own key, not its peer's gateway
        assert_problem(door.post("/v1/federation/inbound", json=not_ours), "delivery-refused")


@pytest.mark.parametrize("as_country", [None, XB], ids=["no-certificate", "own-ca-not-pinned"])
def test_the_border_door_refuses_any_client_but_the_pinned_peer_gateway(
    federation: RunningPair, as_country: str | None
) -> None:
    """No client certificate, or a valid certificate of the door's own CA that is not the
    one the federation agreement names: the TLS handshake fails, no request is read."""
    with federation.border(XB, as_country=as_country) as door, pytest.raises(httpx.HTTPError):
        door.get("/healthz")
    plain = federation.pair.gateway_urls[XB].replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/healthz", timeout=10)
    with federation.border(XB, as_country=XA) as door:
        assert door.get("/healthz").status_code == 200


def test_a_ten_megabyte_delivery_gets_413_at_the_border(federation: RunningPair) -> None:
    ledger = federation.pair.gateways[XB].ledger
    before = len(ledger.list(limit=1000))
    with federation.border(XB, as_country=XA) as door:
        resp = door.post(
            "/v1/federation/inbound",
            content=b"{" + b" " * (10 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
        )
    assert_problem(resp, "payload-too-large")
    assert len(ledger.list(limit=1000)) == before  # nothing recorded


def test_the_crossings_are_for_the_gateway_itself_and_oversight(federation: RunningPair) -> None:
    bus = federation.pair.buses[XA]
    url = f"{federation.pair.admin_urls[XA]}/v1/federation/crossings"
    gateway = GATEWAY[XA]

    def as_(agency: str) -> httpx.Response:
        token = bus.token(agency, node=gateway)
        return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    assert_problem(httpx.get(url, timeout=30), "unauthenticated")
    assert "oversight" in assert_problem(as_("border-police"), "forbidden").detail
    assert as_("rapporteur").status_code == 200
    assert as_(gateway).status_code == 200


BORDER_ERRORS = [
    b
    for b in framework_errors("/v1/federation/inbound", "/healthz", {})
    if not (b.method == "GET" and b.error == "schema-violation")  # /healthz takes no query
]


@pytest.mark.parametrize("bad", BORDER_ERRORS, ids=str)
def test_the_border_door_answers_every_error_as_a_problem(
    federation: RunningPair, bad: BadRequest
) -> None:
    url = federation.pair.gateway_urls[XB]
    assert_refused(bad.send(url, verify=federation.tls_as(XA, XB)), bad)


@pytest.mark.parametrize(
    "bad", framework_errors(None, "/v1/federation/crossings", {"limit": 0}), ids=str
)
def test_the_local_door_answers_every_error_as_a_problem(
    federation: RunningPair, bad: BadRequest
) -> None:
    bus = federation.pair.buses[XB]
    token = {"Authorization": f"Bearer {bus.token(GATEWAY[XB])}"}
    assert_refused(bad.send(federation.pair.admin_urls[XB], token), bad)


def test_the_gateway_documents_its_errors_as_problems(federation: RunningPair) -> None:
    local = httpx.get(f"{federation.pair.admin_urls[XA]}/openapi.json", timeout=30).json()
    with federation.border(XA, as_country=XB) as door:
        border = door.get("/openapi.json").json()
    assert assert_openapi_problems(local) + assert_openapi_problems(border) >= 5


@pytest.mark.parametrize(
    ("ending", "reason"),
    [
        (XA, "XA's registry holds no trust anchor for XB"),
        (XB, "XB's registry holds no trust anchor for XA"),
    ],
)
def test_ending_the_federation_stops_the_next_event(
    federation: RunningPair, ending: str, reason: str
) -> None:
    case = federation.play([*before_return(), planning(), agreement()])
    federation.run(federation.pair.end_federation(ending, "agreement suspended"))
    try:
        federation.play([completion()], case=case)  # XA accepts it; the border does not
        letters = [
            d
            for d in federation.dead_letters(XA, GATEWAY[XA])
            if d["event_type"] == "return.completed"
        ]
        assert any(d["rule"] == "FEDERATION" and reason in d["reason"] for d in letters)
        xb = federation.case(XB, "reintegration-office", case).json()
        assert xb["return_stage"] == "agreed"
        assert "return.completed" not in [e["type"] for e in xb["events"]]
    finally:
        federation.run(federation.pair.federate(ending))


def test_no_marker_in_any_byte_either_country_wrote(federation: RunningPair) -> None:
    federation.settle()
    files = [p for p in Path(federation.data_dir).rglob("*") if p.is_file()]
    assert [str(p) for p in files if CANARY.encode() in p.read_bytes()] == []
