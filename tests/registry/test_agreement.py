"""The agreement: audited changes, precise rejection of unknown names, and queries."""

from __future__ import annotations

from contracts.need_to_know import load_default_agreement
from tests.problems import assert_problem
from tests.registry.conftest import Bus


def test_default_agreement_is_served(bus: Bus) -> None:
    r = bus.client.get("/v1/agreement", headers=bus.operator.auth())
    assert r.status_code == 200
    assert r.json()["agreement"] == load_default_agreement().to_dict()


def _default_body() -> dict:
    d = load_default_agreement().to_dict()
    return {"name": "tightened", "grants": d["grants"], "reason": "ombudsman review"}


def test_change_is_audited_in_history(bus: Bus) -> None:
    body = _default_body()
    del body["grants"]["location"]["law-enforcement"]
    r = bus.client.put("/v1/agreement", json=body, headers=bus.operator.auth())
    assert r.status_code == 200, r.text
    assert "law-enforcement" not in r.json()["agreement"]["grants"]["location"]
    history = bus.client.get("/v1/history", headers=bus.operator.auth()).json()["items"]
    assert [h["event"] for h in history] == ["agreement.adopted", "agreement.changed"]
    assert history[-1]["by"] == bus.operator.id
    assert history[-1]["data"]["reason"] == "ombudsman review"
    # same content again is a conflict, not a new serial
    before = bus.stored()
    r = bus.client.put("/v1/agreement", json=body, headers=bus.operator.auth())
    assert r.status_code == 409 and bus.stored() == before


def test_unknown_names_are_422_with_the_field_path(bus: Bus) -> None:
    agency_headers = bus.register_token()
    before = bus.stored()
    cases = [
        ({"shoe-size": {"oversight": "always"}}, ["body", "grants", "shoe-size", "[key]"]),
        ({"identity": {"wizard": "always"}}, ["body", "grants", "identity", "wizard", "[key]"]),
        ({"identity": {"oversight": "sometimes"}}, ["body", "grants", "identity", "oversight"]),
        ({"operational": {"oversight": "always"}}, ["body"]),
    ]
    for grants, loc in cases:
        body = {"name": "bad", "grants": grants}
        r = bus.client.put("/v1/agreement", json=body, headers=bus.operator.auth())
        found = assert_problem(r, "schema-violation")
        assert found.errors and found.errors[0].loc == loc, r.json()
    r = bus.client.put("/v1/agreement", json=_default_body(), headers=agency_headers)
    assert_problem(r, "forbidden")
    assert bus.stored() == before


def test_query(bus: Bus) -> None:
    shelter = bus.party("xa-shelter")
    bus.register(shelter, ["service-provider"], ["shelter"])
    consulate = bus.party("xa-consulate")
    bus.register(consulate, ["consulate"])

    def ask(**params: object) -> dict:
        r = bus.client.get("/v1/agreement/query", params=params, headers=shelter.auth())
        assert r.status_code == 200, r.text
        return r.json()

    assert (
        ask(agency="xa-shelter", category="location", event_type="referral.requested")["may_read"]
        is False
    )
    own = ask(
        agency="xa-shelter",
        category="location",
        event_type="referral.requested",
        service_provider="xa-shelter",
    )
    assert own["may_read"] is True and own["conditions"] == {"service-provider": "own-service"}
    assert ask(agency="xa-consulate", category="identity", event_type="return.plan-agreed")[
        "may_read"
    ]
    assert not ask(
        agency="xa-consulate",
        category="identity",
        event_type="return.plan-agreed",
        no_origin_contact="true",
    )["may_read"]
    assert ask(agency="xa-shelter", category="operational", event_type="case.screened")["may_read"]


def test_query_bad_input(bus: Bus) -> None:
    h = bus.operator.auth
    q = "/v1/agreement/query"
    params = {"agency": "xa-x", "category": "shoe", "event_type": "case.closed"}
    r = bus.client.get(q, params=params, headers=h())
    found = assert_problem(r, "schema-violation")
    assert found.errors and found.errors[0].loc == ["query", "category"]
    r = bus.client.get(
        q, params={"agency": "xa-x", "category": "identity", "event_type": "nope"}, headers=h()
    )
    found = assert_problem(r, "schema-violation")
    assert found.errors and found.errors[0].loc == ["query", "event_type"]
    r = bus.client.get(
        q,
        params={"agency": "xa-x", "category": "identity", "event_type": "case.closed"},
        headers=h(),
    )
    assert_problem(r, "not-found")
