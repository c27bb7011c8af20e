"""The registry over HTTP: writes by the operator only, precise 4xx, nothing stored."""

from __future__ import annotations

import base64

import pytest

from contracts.directory import KeyUse, b64url_encode, verify_directory
from contracts.keystore import generate_pair
from tests.problems import assert_problem
from tests.registry.conftest import Bus, key_input


def test_register_then_read_back(bus: Bus) -> None:
    police = bus.party("xa-police")
    record = bus.register(police, ["first-responder"])
    assert record["status"] == "active" and len(record["keys"]) == 2
    got = bus.client.get("/v1/agencies/xa-police", headers=police.auth())
    assert got.status_code == 200 and got.json() == record
    listing = bus.client.get("/v1/agencies", headers=police.auth()).json()
    assert [a["id"] for a in listing["agencies"]] == ["xa-police"]


def test_directory_is_public_signed_and_serial_grows(bus: Bus) -> None:
    anchor = bus.config.anchor()
    first = verify_directory(bus.client.get("/v1/directory").content, anchor)
    bus.register(bus.party("xa-police"), ["first-responder"])
    second = verify_directory(bus.client.get("/v1/directory").content, anchor, first.serial)
    assert second.serial == first.serial + 1
    assert second.agency("xa-police") is not None


def test_directory_etag(bus: Bus) -> None:
    r = bus.client.get("/v1/directory")
    again = bus.client.get("/v1/directory", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304


def test_health(bus: Bus) -> None:
    assert bus.client.get("/healthz").json() == {"status": "ok"}
    assert bus.client.get("/readyz").json()["status"] == "ready"


def test_duplicate_agency_is_409_and_stores_nothing(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    before = bus.stored()
    again = bus.party("xa-police")
    r = bus.client.post(
        "/v1/agencies",
        json=again.registration(["first-responder"]),
        headers=bus.operator.auth(),
    )
    assert "already registered" in assert_problem(r, "conflict").detail
    assert bus.stored() == before


def test_operator_id_cannot_be_registered(bus: Bus) -> None:
    fake = bus.party(bus.operator.id)
    r = bus.client.post(
        "/v1/agencies", json=fake.registration(["oversight"]), headers=bus.operator.auth()
    )
    assert r.status_code == 409


def _flip(b64: str, index: int = 5) -> bytes:
    raw = bytearray(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)))
    raw[index] ^= 0x01
    return bytes(raw)


ED_OFF_CURVE = bytes([2]) + bytes(31)
ED_SMALL_ORDER = bytes([1]) + bytes(31)
ED_NONCANONICAL = b"\xff" * 32


@pytest.mark.parametrize(
    ("mutate", "loc", "msg"),
    [
        (lambda r: r.update(roles=["first-responder", "wizard"]), ["roles", 1], "Input should be"),
        (lambda r: r.update(id="XA_Police"), ["id"], "pattern"),
        (lambda r: r.update(country="Xa"), ["country"], "pattern"),
        (lambda r: r.update(services=["teleport"]), ["services", 0], "Input should be"),
        (lambda r: r["keys"][0].update(public_key=b64url_encode(b"\x01" * 31)), None, "32 bytes"),
        (
            lambda r: r["keys"][0].update(public_key=b64url_encode(ED_OFF_CURVE)),
            ["keys", 0, "public_key"],
            "not a point on the curve",
        ),
        (
            lambda r: r["keys"][0].update(public_key=b64url_encode(ED_SMALL_ORDER)),
            ["keys", 0, "public_key"],
            "small-order",
        ),
        (
            lambda r: r["keys"][0].update(public_key=b64url_encode(ED_NONCANONICAL)),
            ["keys", 0, "public_key"],
            "not canonical",
        ),
        (lambda r: r["keys"][0].update(public_key="not base64!"), None, "base64url"),
        (
            lambda r: r["keys"][1].update(public_key=r["keys"][1]["public_key"][:-10]),
            ["keys", 1, "public_key"],
            "1216 bytes",
        ),
        (
            lambda r: r["keys"][1].update(
                public_key=b64url_encode(b"\xff" * 1184 + _flip(r["keys"][1]["public_key"])[-32:])
            ),
            ["keys", 1, "public_key"],
            "modulus check",
        ),
        (
            lambda r: r["keys"][1].update(
                public_key=b64url_encode(_flip(r["keys"][1]["public_key"])[:1184] + bytes(32))
            ),
            ["keys", 1, "public_key"],
            "small-order",
        ),
        (lambda r: r["keys"][0].update(alg="MLKEM768-X25519"), ["keys", 0, "alg"], "must use"),
        (lambda r: r.update(keys=r["keys"][:1]), ["keys"], "at least 2"),
        (lambda r: r["endpoints"].update(router_url="ftp://x"), ["endpoints", "router_url"], ""),
        (lambda r: r.update(extra="x"), ["extra"], "Extra inputs"),
    ],
)
def test_bad_registration_is_422_with_field_path_and_stores_nothing(
    bus: Bus, mutate, loc, msg
) -> None:
    body = bus.party("xa-shelter").registration(["service-provider"], ["shelter"])
    mutate(body)
    before = bus.stored()
    r = bus.client.post("/v1/agencies", json=body, headers=bus.operator.auth())
    errors = assert_problem(r, "schema-violation").errors
    assert errors, r.text
    if loc is not None:
        assert errors[0].loc == ["body", *loc], errors
    assert msg in errors[0].msg, errors
    assert bus.stored() == before


def test_malformed_json_is_400(bus: Bus) -> None:
    before = bus.stored()
    r = bus.client.post(
        "/v1/agencies",
        content=b"{not json",
        headers={**bus.operator.auth(), "Content-Type": "application/json"},
    )
    assert_problem(r, "malformed-json")
    assert bus.stored() == before


def test_writes_need_the_operator(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    before = bus.stored()
    other = bus.party("xa-shelter")
    for headers in ({}, other.auth(), {"Authorization": "Basic abc"}):
        r = bus.client.post(
            "/v1/agencies", json=other.registration(["service-provider"]), headers=headers
        )
        assert_problem(r, "unauthenticated")
    r = bus.client.post(
        "/v1/agencies", json=other.registration(["service-provider"]), headers=police.auth()
    )
    assert "operator" in assert_problem(r, "forbidden").detail
    assert bus.stored() == before


def test_reads_need_a_registered_agency(bus: Bus) -> None:
    assert bus.client.get("/v1/agencies").status_code == 401
    stranger = bus.party("xa-stranger")
    assert bus.client.get("/v1/agencies", headers=stranger.auth()).status_code == 401
    assert bus.client.get("/v1/agencies", headers=bus.operator.auth()).status_code == 200


def test_suspended_and_revoked_agencies_get_403_and_reactivation(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    path = "/v1/agencies/xa-police/status"
    r = bus.client.post(
        path, json={"status": "suspended", "reason": "audit"}, headers=bus.operator.auth()
    )
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    r = bus.client.get("/v1/agreement", headers=police.auth())
    assert "suspended" in assert_problem(r, "forbidden").detail
    r = bus.client.post(
        path, json={"status": "suspended", "reason": "again"}, headers=bus.operator.auth()
    )
    assert r.status_code == 409
    r = bus.client.post(
        path, json={"status": "active", "reason": "ok"}, headers=bus.operator.auth()
    )
    assert r.status_code == 200
    assert bus.client.get("/v1/agreement", headers=police.auth()).status_code == 200
    r = bus.client.post(
        path, json={"status": "revoked", "reason": "closed"}, headers=bus.operator.auth()
    )
    assert r.status_code == 200
    r = bus.client.get("/v1/agreement", headers=police.auth())
    assert "revoked" in assert_problem(r, "forbidden").detail
    before = bus.stored()
    r = bus.client.post(path, json={"status": "active", "reason": "x"}, headers=bus.operator.auth())
    assert "final" in assert_problem(r, "conflict").detail
    r = bus.client.post(path, json={"status": "paused", "reason": "x"}, headers=bus.operator.auth())
    errors = assert_problem(r, "schema-violation").errors
    assert errors and errors[0].loc == ["body", "status"]
    assert bus.stored() == before


def test_unknown_agency_is_404(bus: Bus) -> None:
    r = bus.client.post(
        "/v1/agencies/xa-nobody/status",
        json={"status": "suspended", "reason": "x"},
        headers=bus.operator.auth(),
    )
    assert_problem(r, "not-found")
    assert bus.client.get("/v1/agencies/xa-nobody", headers=bus.operator.auth()).status_code == 404
    assert bus.client.get("/v1/agencies/BAD_ID", headers=bus.operator.auth()).status_code == 422


def test_rotation_keeps_old_keys_retired(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    old_sig = police.keys.current(KeyUse.SIGNING)
    bus.clock.advance(30)
    police.rotate()
    body = {"keys": [key_input(police.keys, use) for use in KeyUse]}
    r = bus.client.post("/v1/agencies/xa-police/keys", json=body, headers=bus.operator.auth())
    assert r.status_code == 200, r.text
    keys = {k["key_id"]: k for k in r.json()["keys"]}
    assert len(keys) == 4
    assert keys[old_sig.key_id]["status"] == "retired"
    assert keys[old_sig.key_id]["valid_until"] is not None
    # the new key authenticates; the old one no longer does (outside its window now)
    assert bus.client.get("/v1/agreement", headers=police.auth()).status_code == 200
    d = bus.registry.directory()
    assert (
        d.current_signing_key("xa-police", bus.clock()).key_id
        == police.keys.current(KeyUse.SIGNING).key_id
    )
    # reusing a key id is a conflict, and nothing is stored
    before = bus.stored()
    r = bus.client.post("/v1/agencies/xa-police/keys", json=body, headers=bus.operator.auth())
    assert r.status_code == 409 and bus.stored() == before


def test_rotation_rejects_bad_keys(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    before = bus.stored()
    pair = generate_pair("sig-2", KeyUse.SIGNING)
    body = {
        "keys": [
            {
                "key_id": "sig-2",
                "use": "signing",
                "alg": "Ed25519",
                "public_key": b64url_encode(pair.public_key[:16]),
            }
        ]
    }
    r = bus.client.post("/v1/agencies/xa-police/keys", json=body, headers=bus.operator.auth())
    errors = assert_problem(r, "schema-violation").errors
    assert errors and errors[0].loc == ["body", "keys", 0, "public_key"]
    assert "32 bytes, got 16" in errors[0].msg
    assert bus.stored() == before


def test_endpoints_change(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    new = {"router_url": "https://new.example/r", "webhook_url": "https://new.example/w"}
    r = bus.client.put(
        "/v1/agencies/xa-police/endpoints", json={"endpoints": new}, headers=bus.operator.auth()
    )
    assert r.status_code == 200 and r.json()["endpoints"] == new
