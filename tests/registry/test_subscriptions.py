"""Webhook subscriptions in the registry: the operator writes, the agency
itself or the operator reads, and the HMAC secret is shown in clear exactly once."""

from __future__ import annotations

from contracts.directory import b64url_decode
from contracts.sealing.keys import HPKE_SUITE
from registry.application import SUBSCRIPTION_SECRET_INFO, subscription_fingerprint
from tests.registry.conftest import Bus, Party

HOOK = {"webhook_url": "https://shelter.example/hooks/nrm", "event_types": ["referral.requested"]}


def _setup(bus: Bus) -> tuple[Party, Party]:
    shelter, police = bus.party("xa-shelter"), bus.party("xa-police")
    bus.register(shelter, ["service-provider"], ["shelter"])
    bus.register(police, ["first-responder"])
    return shelter, police


def test_created_by_the_operator_with_the_secret_shown_once(bus: Bus) -> None:
    shelter, _ = _setup(bus)
    serial = bus.registry.directory().serial
    url = "/v1/agencies/xa-shelter/subscriptions"
    r = bus.client.post(url, json=HOOK, headers=bus.operator.auth())
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["secret"]
    assert secret.startswith("nrmwh_") and len(secret) > 40
    assert created["secret_fingerprint"] == subscription_fingerprint(secret)
    assert created["status"] == "active" and created["event_types"] == ["referral.requested"]
    # never listed again, to the operator or the agency, nor in the audit history
    for headers in (bus.operator.auth(), shelter.auth()):
        listed = bus.client.get(url, headers=headers)
        assert listed.status_code == 200
        assert secret not in listed.text and "secret" not in listed.json()["items"][0]
    history = bus.client.get("/v1/history", headers=bus.operator.auth()).text
    assert secret not in history and "subscription.created" in history
    assert "secret_sealed" not in history
    # a subscription does not re-sign the directory
    assert bus.registry.directory().serial == serial


def test_sealed_secret_opens_only_with_the_agencys_encryption_key(bus: Bus) -> None:
    shelter, _ = _setup(bus)
    url = "/v1/agencies/xa-shelter/subscriptions"
    created = bus.client.post(url, json=HOOK, headers=bus.operator.auth()).json()
    [item] = bus.client.get(url, headers=shelter.auth()).json()["items"]
    sealed = item["secret_sealed"]
    pair = shelter.keys.pair(sealed["key_id"])
    info = b"\x00".join((SUBSCRIPTION_SECRET_INFO, b"xa-shelter", item["id"].encode()))
    clear = HPKE_SUITE.decrypt(b64url_decode(sealed["ciphertext"]), pair.hpke(), info=info)
    assert clear.decode() == created["secret"]


def test_only_the_operator_writes_and_only_the_agency_or_operator_reads(bus: Bus) -> None:
    shelter, police = _setup(bus)
    url = "/v1/agencies/xa-shelter/subscriptions"
    stored = bus.stored()
    assert bus.client.post(url, json=HOOK).status_code == 401
    assert bus.client.post(url, json=HOOK, headers=shelter.auth()).status_code == 403
    assert bus.stored() == stored
    created = bus.client.post(url, json=HOOK, headers=bus.operator.auth()).json()
    assert bus.client.get(url, headers=police.auth()).status_code == 403
    one = f"{url}/{created['id']}"
    assert bus.client.get(one, headers=shelter.auth()).json()["id"] == created["id"]
    assert bus.client.delete(one, headers=shelter.auth()).status_code == 403


def test_event_types_are_validated_against_the_catalogue(bus: Bus) -> None:
    _setup(bus)
    url = "/v1/agencies/xa-shelter/subscriptions"
    stored = bus.stored()
    for bad in (
        {**HOOK, "event_types": ["referral.requested", "case.teleported"]},
        {**HOOK, "event_types": []},
        {**HOOK, "event_types": ["case.closed", "case.closed"]},
        {**HOOK, "webhook_url": "ftp://x"},
        {**HOOK, "secret": "chosen-by-me"},
    ):
        r = bus.client.post(url, json=bad, headers=bus.operator.auth())
        assert r.status_code == 422, bad
    assert bus.stored() == stored
    missing = bus.client.post(
        "/v1/agencies/xa-nobody/subscriptions", json=HOOK, headers=bus.operator.auth()
    )
    assert missing.status_code == 404


def test_delete_keeps_the_record_for_audit(bus: Bus) -> None:
    shelter, _ = _setup(bus)
    url = "/v1/agencies/xa-shelter/subscriptions"
    created = bus.client.post(url, json=HOOK, headers=bus.operator.auth()).json()
    one = f"{url}/{created['id']}"
    r = bus.client.delete(one, headers=bus.operator.auth())
    assert r.status_code == 200 and r.json()["status"] == "deleted"
    assert bus.client.delete(one, headers=bus.operator.auth()).status_code == 409
    assert bus.client.get(url, headers=shelter.auth()).json()["items"] == []
    listed = bus.client.get(f"{url}?include_deleted=true", headers=bus.operator.auth()).json()
    assert [s["status"] for s in listed["items"]] == ["deleted"]
    reopened = bus.reopen()  # survives a restart: it is events in the store
    assert reopened.subscription("xa-shelter", created["id"])["status"] == "deleted"


def test_several_agencies_in_one_answer_for_the_operator_only(bus: Bus) -> None:
    """`GET /v1/subscriptions` (the notifier's read, tested with it in
    `tests/notifier`): each agency asked, its own list; an unknown one named apart."""
    shelter, police = _setup(bus)
    url = "/v1/agencies/xa-shelter/subscriptions"
    created = bus.client.post(url, json=HOOK, headers=bus.operator.auth()).json()
    asked = {"agency_id": ["xa-shelter", "xa-police", "xa-nobody", "xa-shelter"]}
    r = bus.client.get("/v1/subscriptions", params=asked, headers=bus.operator.auth())
    assert r.status_code == 200, r.text
    answer = r.json()
    assert [s["id"] for s in answer["agencies"]["xa-shelter"]] == [created["id"]]
    assert answer["agencies"]["xa-police"] == [] and answer["unknown"] == ["xa-nobody"]
    assert "secret" not in answer["agencies"]["xa-shelter"][0]
    for who, status in ((None, 401), (shelter, 403), (police, 403)):
        headers = who.auth() if who is not None else {}
        refused = bus.client.get("/v1/subscriptions", params=asked, headers=headers)
        assert refused.status_code == status, (who, refused.text)
    for bad in ({}, {"agency_id": "Not An Id!"}, {"agency_id": [f"xa-a{i}" for i in range(501)]}):
        refused = bus.client.get("/v1/subscriptions", params=bad, headers=bus.operator.auth())
        assert refused.status_code == 422, (bad, refused.text)
