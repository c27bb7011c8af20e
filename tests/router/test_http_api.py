"""The router's HTTP error contract and behaviour, with real requests to a running bus."""

from __future__ import annotations

from typing import Any

import httpx

from tests.bus.running import RunningBus
from tests.problems import assert_problem

CHILD = {
    "forms_of_exploitation": ["forced-labour"],
    "age_status": "unknown",
    "screened_by_officer": "bp-1",
    "full_name": "Test Person",
    "nationality": "XB",
    "found_at": "a farm",
    "indicators": [{"form": "forced-labour", "strength": "medium", "observation": "no pay"}],
}
ADULT = {**CHILD, "age_status": "adult"}


def screen(
    bus: RunningBus, payload: dict[str, Any] | None = None, to: list[str] | None = None
) -> str:
    with bus.client("border-police") as c:
        r = c.post(
            "/v1/cases", json={"recipients": to or ["nrm-authority"], "payload": payload or ADULT}
        )
    assert r.status_code == 201, r.text
    return str(r.json()["case"])


def append(
    bus: RunningBus,
    agency: str,
    case: str,
    etype: str,
    to: list[str],
    payload: dict[str, Any],
    key: str | None = None,
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    with bus.client(agency) as c:
        return c.post(
            f"/v1/cases/{case}/events",
            json={"type": etype, "recipients": to, "payload": payload},
            headers=headers,
        )


def test_screen_then_read_back_with_deadline_from_policy(bus: RunningBus) -> None:
    case = screen(bus)
    with bus.client("border-police") as c:
        view = c.get(f"/v1/cases/{case}").json()
    assert view["case"] == case and view["events"][0]["type"] == "case.screened"
    assert view["events"][0]["fields"]["full_name"] == "Test Person"  # the sender reads its own
    assert "reasonable-grounds" in view["events"][0]["deadlines"]


def test_schema_violation_is_422_with_the_field_path(bus: RunningBus) -> None:
    bad = {**ADULT, "nationality": "xb-lower"}
    with bus.client("border-police") as c:
        r = c.post("/v1/cases", json={"recipients": ["nrm-authority"], "payload": bad})
    errors = assert_problem(r, "schema-violation").errors or []
    assert ["body", "payload", "nationality"] in [e.loc for e in errors]


def test_malformed_json_is_400(bus: RunningBus) -> None:
    with bus.client("border-police") as c:
        r = c.post(
            "/v1/cases", content=b'{"recipients": [', headers={"Content-Type": "application/json"}
        )
    assert_problem(r, "malformed-json")


def test_unknown_event_type_is_422(bus: RunningBus) -> None:
    case = screen(bus)
    r = append(bus, "border-police", case, "case.teleported", ["nrm-authority"], {})
    assert "case.teleported" in assert_problem(r, "schema-violation").detail


def test_unknown_case_is_404(bus: RunningBus) -> None:
    r = append(
        bus,
        "border-police",
        "case-doesnotexist00",
        "case.closed",
        ["nrm-authority"],
        {"reason_code": "other", "decided_by_officer": "bp-0042"},
    )
    assert_problem(r, "unknown-case")
    with bus.client("border-police") as c:
        assert_problem(c.get("/v1/cases/case-doesnotexist00"), "unknown-case")
        assert_problem(c.get("/v1/cases/not-a-pseudonym"), "schema-violation")


def test_illegal_transition_is_409_with_rule(bus: RunningBus) -> None:
    with bus.client("border-police") as c:
        r = c.post("/v1/cases", json={"recipients": ["nrm-authority"], "payload": CHILD})
    assert_problem(r, "rule-violation", rule="R2")
    case = screen(bus, CHILD, ["child-protection", "nrm-authority"])
    r = append(
        bus,
        "border-police",
        case,
        "referral.requested",
        ["safe-house"],
        {"referral_id": "r1", "to_agency": "safe-house", "service": "shelter"},
    )
    assert_problem(r, "rule-violation", rule="R9")


def test_unknown_recipient_is_422_r6(bus: RunningBus) -> None:
    with bus.client("border-police") as c:
        r = c.post("/v1/cases", json={"recipients": ["nobody-here"], "payload": ADULT})
    assert_problem(r, "unknown-agency", rule="R6")


def test_authentication_401_and_403(bus: RunningBus) -> None:
    url = bus.bus.urls["border-police"]
    assert_problem(httpx.get(f"{url}/v1/inbox"), "unauthenticated")
    junk = httpx.get(f"{url}/v1/inbox", headers={"Authorization": "Bearer junk"})
    assert_problem(junk, "unauthenticated")
    other = bus.bus.token("safe-house")  # a real token, for another agency's router
    r = httpx.get(f"{url}/v1/inbox", headers={"Authorization": f"Bearer {other}"})
    assert_problem(r, "unauthenticated")  # audience is the safe house's router, not this one
    token = bus.bus.token("border-police")
    assert (
        httpx.get(f"{url}/v1/inbox", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    replay = httpx.get(f"{url}/v1/inbox", headers={"Authorization": f"Bearer {token}"})
    assert "replay" in assert_problem(replay, "unauthenticated").detail


def test_idempotency_key_returns_first_answer_and_appends_once(bus: RunningBus) -> None:
    case = screen(bus)
    payload = {
        "consent_id": "c1",
        "recipients": ["safe-house"],
        "categories": ["identity"],
        "recorded_by_officer": "bp-1",
    }
    first = append(
        bus, "border-police", case, "consent.recorded", ["nrm-authority"], payload, key="k-1"
    )
    again = append(
        bus, "border-police", case, "consent.recorded", ["nrm-authority"], payload, key="k-1"
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    with bus.client("border-police") as c:
        events = c.get(f"/v1/cases/{case}").json()["events"]
    assert [e["type"] for e in events].count("consent.recorded") == 1
    other = append(
        bus,
        "border-police",
        case,
        "consent.recorded",
        ["nrm-authority"],
        {**payload, "consent_id": "c2"},
        key="k-1",
    )
    assert_problem(other, "idempotency-key-reused")


def test_inbox_pagination_and_delivery(bus: RunningBus) -> None:
    cases = [screen(bus) for _ in range(3)]
    bus.settle()
    seen: list[str] = []
    ids: list[str] = []
    after = 0
    with bus.client("nrm-authority") as c:
        while True:
            page = c.get("/v1/inbox", params={"after": after, "limit": 2}).json()
            seen += [i["case"] for i in page["items"]]
            ids += [i["event_id"] for i in page["items"]]
            if page["next_after"] is None:
                break
            after = page["next_after"]
        assert_problem(c.get("/v1/inbox", params={"limit": 0}), "schema-violation")
    assert set(cases) <= set(seen)
    assert len(ids) == len(set(ids))  # each event once across pages


def test_r4_consulate_refused_after_asylum_over_http(bus: RunningBus) -> None:
    case = screen(bus, to=["nrm-authority", "asylum-office"])
    bus.settle()
    ok = append(
        bus, "asylum-office", case, "asylum.lodged", ["nrm-authority"], {"claim_reference": "A1"}
    )
    assert ok.status_code == 201
    bus.settle()
    r = append(
        bus,
        "nrm-authority",
        case,
        "case.closed",
        ["consulate-xb"],
        {"reason_code": "other", "decided_by_officer": "ia-0007"},
    )
    assert_problem(r, "rule-violation", rule="R4")


def test_unentitled_reader_sees_withheld_categories(bus: RunningBus) -> None:
    case = screen(bus)
    bus.settle()
    with bus.client("nrm-authority") as c:
        fields = c.get(f"/v1/cases/{case}").json()["events"][0]["fields"]
    assert fields["found_at"] == {"withheld": "location", "reason": "not-entitled"}
    assert fields["full_name"] == "Test Person"


def test_health_and_readiness(bus: RunningBus) -> None:
    url = bus.bus.urls["safe-house"]
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz").json()
    assert ready["status"] == "ready" and ready["agency"] == "safe-house"


def test_consented_referral_shares_no_more_than_the_consent_covers(bus: RunningBus) -> None:
    """R9: the referred agency opens only the categories the person agreed to share."""
    case = screen(bus)
    consent = {
        "consent_id": "c-id",
        "recipients": ["safe-house"],
        "categories": ["identity"],
        "recorded_by_officer": "bp-1",
    }
    assert (
        append(
            bus, "border-police", case, "consent.recorded", ["nrm-authority"], consent
        ).status_code
        == 201
    )
    r = append(
        bus,
        "border-police",
        case,
        "referral.requested",
        ["safe-house"],
        {
            "referral_id": "r-c",
            "to_agency": "safe-house",
            "service": "shelter",
            "consent_id": "c-id",
            "full_name": "Test Person",
            "needs": "a bed",
        },
    )
    assert r.status_code == 201, r.text
    bus.settle()
    with bus.client("safe-house") as c:
        fields = c.get(f"/v1/cases/{case}").json()["events"][0]["fields"]
    assert fields["full_name"] == "Test Person"  # identity: consented
    assert fields["needs"] == {"withheld": "service", "reason": "not-entitled"}  # not consented
