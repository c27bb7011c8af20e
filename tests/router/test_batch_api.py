"""`POST /v1/events:batch` over real HTTP: the same doors as a single request (a token of
the node's own agency, the body limit), each event answered on its own with the status
it would have had alone, a key per event answered again rather than appended twice."""

from __future__ import annotations

from typing import Any

import httpx

from nrm.serving import DEFAULT_MAX_BODY
from tests.bus.running import RunningBus
from tests.problems import assert_problem
from tests.router.test_http_api import ADULT, CHILD

BATCH = "/v1/events:batch"


def consent(n: int, **where: Any) -> dict[str, Any]:
    payload = {
        "consent_id": f"bc-{n}",
        "recipients": ["safe-house"],
        "categories": ["identity"],
        "recorded_by_officer": "bp-1",
    }
    to = ["nrm-authority"]
    return {"type": "consent.recorded", "recipients": to, "payload": payload, **where}


def opening(payload: dict[str, Any] = ADULT, **more: Any) -> dict[str, Any]:
    return {"type": "case.screened", "recipients": ["nrm-authority"], "payload": payload, **more}


def test_each_event_is_answered_as_it_would_be_alone(bus: RunningBus) -> None:
    events = [
        opening(idempotency_key="legacy-7"),
        consent(1, case_of=0),
        opening(CHILD),  # R2: a presumed child needs child protection among the recipients
        consent(2, case_of=2),  # continues the refused case: refused too
        {"type": "case.teleported", "recipients": ["nrm-authority"], "payload": {}},
        opening(recipients=["nobody-here"]),  # R6
        consent(3),  # neither case nor case_of
    ]
    with bus.client("border-police") as c:
        r = c.post(BATCH, json={"events": events})
        assert r.status_code == 200, r.text
        answer = r.json()
        statuses = [x["status"] for x in answer["results"]]
        assert [x["index"] for x in answer["results"]] == list(range(len(events)))
        assert statuses[:2] == [201, 201] and 201 not in statuses[2:], answer
        assert (answer["accepted"], answer["refused"]) == (2, 5)
        problems = {i: answer["results"][i]["problem"] for i in range(2, len(events))}
        assert (problems[2]["error"], problems[2]["rule"]) == ("rule-violation", "R2")
        assert problems[4]["error"] == "schema-violation"
        assert (problems[5]["error"], problems[5]["rule"]) == ("unknown-agency", "R6")
        assert problems[6]["error"] == "invalid-request"
        for i, found in problems.items():
            assert found["status"] == statuses[i]
        case = answer["results"][0]["case"]
        assert answer["results"][1]["case"] == case
        kept = [e["type"] for e in c.get(f"/v1/cases/{case}").json()["events"]]
        assert kept == ["case.screened", "consent.recorded"]

        again = c.post(BATCH, json={"events": [opening(idempotency_key="legacy-7")]}).json()
        assert again["results"][0] == answer["results"][0]  # the first answer, not a new case
        assert [e["type"] for e in c.get(f"/v1/cases/{case}").json()["events"]] == kept


def test_a_batch_passes_the_same_doors_as_a_single_request(bus: RunningBus) -> None:
    url = bus.bus.urls["border-police"] + BATCH
    body = {"events": [opening()]}
    assert_problem(httpx.post(url, json=body), "unauthenticated")
    other = bus.bus.token("safe-house")  # a real token, for another node
    assert_problem(
        httpx.post(url, json=body, headers={"Authorization": f"Bearer {other}"}),
        "unauthenticated",
    )
    with bus.client("border-police") as c:
        big = {"events": [opening({**ADULT, "found_at": "x" * DEFAULT_MAX_BODY})]}
        assert_problem(c.post(BATCH, json=big), "payload-too-large")
        assert_problem(c.post(BATCH, json={"events": []}), "schema-violation")
        many = {"events": [opening()] * 501}
        assert_problem(c.post(BATCH, json=many), "schema-violation")
