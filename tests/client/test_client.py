"""The client library against a real running bus: the calls an agency system makes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from contracts.events import CaseScreened
from nrm_client import (
    AgencyClient,
    FileCursor,
    LocalBus,
    SignatureError,
    Unavailable,
    verify_webhook,
)
from referral_router.api import log_stream
from tests.bus.running import RunningBus
from tests.client.conftest import ADULT, CONSENT, REFERRAL, referred_case


def test_screen_refer_accept_and_read_back(
    bus: RunningBus, police: AgencyClient, shelter: AgencyClient
) -> None:
    receipt = police.screen(CaseScreened.model_validate(ADULT), recipients=["nrm-authority"])
    assert receipt.type == "case.screened" and receipt.case.startswith("case-")
    case = receipt.case
    police.append(case, "consent.recorded", CONSENT, recipients=["nrm-authority"])
    police.append(case, "referral.requested", REFERRAL, recipients=["safe-house"])
    bus.settle()
    accepted = shelter.append(
        case,
        "referral.accepted",
        {"referral_id": "ref-1", "shelter_address": "12 Hidden Lane", "placement": "room 3"},
        recipients=["border-police"],
    )
    assert accepted.type == "referral.accepted"
    bus.settle()
    seen = police.case(case)
    assert seen.referral("ref-1").status == "accepted"
    answer = next(e for e in seen.events if e.type == "referral.accepted")
    assert answer.direction == "received" and answer.sender == "safe-house"
    # R5: the shelter's address never reaches a first responder
    assert answer.withheld["shelter_address"] == "location"
    assert "12 Hidden Lane" not in json.dumps([e.fields for e in seen.events])


class LosingAnswers(httpx.BaseTransport):
    """The network between a system and its node: the node gets the request, but its
    answer is lost, and a load balancer answers 503 or 429 with Retry-After instead."""

    def __init__(self, losses: list[tuple[int, str]]) -> None:
        self.inner = httpx.HTTPTransport()
        self.losses = list(losses)
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.inner.handle_request(request)
        response.read()
        if request.method == "POST" and self.losses:
            status, retry_after = self.losses.pop(0)
            return httpx.Response(status, headers={"Retry-After": retry_after}, text="busy")
        return response


def test_a_write_whose_answer_is_lost_is_retried_once_in_effect(
    bus: RunningBus, local: LocalBus
) -> None:
    network = LosingAnswers([(503, "1"), (429, "Thu, 01 Jan 1970 00:00:00 GMT")])
    slept: list[float] = []
    with AgencyClient(
        local.url("border-police"),
        local.credentials("border-police"),
        transport=network,
        sleep=slept.append,
    ) as client:
        receipt = client.screen(ADULT, recipients=["nrm-authority"])
    posts = [r for r in network.requests if r.method == "POST"]
    assert len(posts) == 3
    keys = {r.headers["Idempotency-Key"] for r in posts}
    proofs = {r.headers["DPoP"] for r in posts}
    assert len(keys) == 1 and len(proofs) == 3  # one key, a fresh proof each attempt
    assert slept[0] >= 1.0  # the 503's Retry-After was honoured
    assert len(slept) == 2
    bus.settle()
    with local.client("nrm-authority") as authority:
        mine = [i for i in authority.inbox() if i.case == receipt.case]
    assert [i.event_id for i in mine] == [receipt.event_id]  # appended exactly once


def test_retries_end_when_the_server_asks_for_too_long_a_wait(local: LocalBus) -> None:
    network = LosingAnswers([(503, "3600")])
    with (
        AgencyClient(
            local.url("border-police"),
            local.credentials("border-police"),
            transport=network,
            sleep=lambda _: pytest.fail("must not wait an hour"),
        ) as client,
        pytest.raises(Unavailable) as lost,
    ):
        client.screen(ADULT, recipients=["nrm-authority"])
    assert lost.value.status == 503


def test_no_answer_at_all_is_retried_then_reported(local: LocalBus) -> None:
    slept: list[float] = []
    client = AgencyClient(
        "http://127.0.0.1:9",  # nothing listens on the discard port
        local.credentials("border-police"),
        sleep=slept.append,
    )
    with client, pytest.raises(Unavailable, match="no answer"):
        client.case("case-0123456789")
    assert len(slept) == client.retry.max_attempts - 1
    assert all(0 < wait <= client.retry.max_delay for wait in slept)


def test_inbox_pages_resume_from_a_durable_cursor(
    bus: RunningBus, police: AgencyClient, local: LocalBus, tmp_path: Path
) -> None:
    cursor = FileCursor(tmp_path / "safe-house.inbox")
    bus.settle()  # what earlier tests sent has arrived: the cursor starts after it
    with local.client("safe-house") as shelter:
        for item in shelter.inbox(after=cursor.position, page_size=2):
            cursor.save(item.position)
    before = cursor.position
    cases = [referred_case(police) for _ in range(3)]
    bus.settle()
    with local.client("safe-house") as restarted:  # a new process: only the cursor file
        seen = list(restarted.inbox(after=FileCursor(cursor.path).position, page_size=2))
    # exactly the new referrals (cases travel on different partitions: any order)
    assert sorted(i.case for i in seen) == sorted(cases), [(i.type, i.case) for i in seen]
    assert all(i.type == "referral.requested" and i.position > before for i in seen)
    cursor.save(seen[-1].position)
    assert FileCursor(cursor.path).position == seen[-1].position
    with pytest.raises(ValueError, match="move back"):
        cursor.save(before)


def test_following_the_log_as_it_is_recorded_across_streams(
    bus: RunningBus, police: AgencyClient, local: LocalBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node's log stream yields each referral as it is recorded. Streams here end
    after a second (as each does with its token): the next resumes after the last
    position, so nothing comes twice and nothing is missed."""
    monkeypatch.setattr(log_stream, "STREAM_MAX_S", 1.0)
    bus.settle()
    cases: list[str] = []

    def refer_twice() -> None:
        for _ in range(2):
            time.sleep(1.5)
            cases.append(referred_case(police))

    with local.client("safe-house") as shelter:
        start = max((i.position for i in shelter.inbox()), default=0)
        referring = threading.Thread(target=refer_twice)
        began = time.monotonic()
        referring.start()
        seen = []
        for item in shelter.follow_log(after=start, direction="received"):
            seen.append(item)
            if len(seen) == 2 or time.monotonic() - began > 30:
                break
        lasted = time.monotonic() - began
        referring.join()
    assert [(i.case, i.type) for i in seen] == [(c, "referral.requested") for c in cases]
    assert start < seen[0].position < seen[1].position
    assert lasted > 2.5  # both came on later streams than the first


def test_following_the_notifier_stream_and_resuming(
    bus: RunningBus, police: AgencyClient, shelter: AgencyClient
) -> None:
    first = referred_case(police)
    got: list[Any] = []
    deadline = time.monotonic() + 30
    for note in shelter.notifications():
        got.append(note)
        if note.data.get("case") == first or time.monotonic() > deadline:
            break
    assert got[-1].data["case"] == first and got[-1].data["type"] == "referral.requested"
    assert got[-1].event == "event" and got[-1].id is not None
    second = referred_case(police)
    resumed = next(
        n for n in shelter.notifications(last_event_id=got[-1].id) if n.data["case"] == second
    )
    assert resumed.id is not None and resumed.id > got[-1].id
    assert set(resumed.data) <= {
        "notification_id",
        "kind",
        "agency",
        "event_id",
        "type",
        "case",
        "time",
        "sender",
    }


def _until_the_notifier_knows(bus: RunningBus, local: LocalBus, agency: str, hook: str) -> None:
    """The notifier reloads subscriptions from the registry every second: wait for it."""
    notifier = local.endpoints.notifier
    assert notifier is not None
    credentials = local.credentials(agency)
    url = f"{notifier.url}/v1/subscriptions"
    for _ in range(100):
        listed = httpx.get(url, headers=credentials.headers("GET", url, notifier.audience))
        if any(s["webhook_url"] == hook for s in listed.json()["items"]):
            return
        time.sleep(0.1)
    pytest.fail("the notifier never loaded the subscription")


def test_webhooks_the_notifier_signs_verify_and_tampering_does_not(
    bus: RunningBus, police: AgencyClient, local: LocalBus
) -> None:
    arrived: list[tuple[bytes, dict[str, str]]] = []
    done = threading.Event()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, str]:
        arrived.append((await request.body(), dict(request.headers)))
        done.set()
        return {}

    url = bus.run(bus.bus.serve(app))
    secret = bus.run(bus.bus.subscribe("safe-house", f"{url}/hook", ["referral.requested"]))[
        "secret"
    ]
    _until_the_notifier_knows(bus, local, "safe-house", f"{url}/hook")
    case = referred_case(police)
    assert done.wait(30), "no webhook arrived"
    body, headers = next((b, h) for b, h in arrived if json.loads(b)["case"] == case)
    note = verify_webhook(secret, body, headers)
    assert note["type"] == "referral.requested" and note["agency"] == "safe-house"
    with pytest.raises(SignatureError, match="does not match"):
        verify_webhook(secret, body.replace(b"referral", b"REFERRAL"), headers)
    with pytest.raises(SignatureError, match="does not match"):
        verify_webhook("another-secret", body, headers)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_webhook(secret, body, headers, now=time.time() + 3600)
    with pytest.raises(SignatureError, match="missing"):
        verify_webhook(secret, body, {})


def test_pass_a_case_on_and_read_its_disclosure_record(
    bus: RunningBus, local: LocalBus, police: AgencyClient, shelter: AgencyClient
) -> None:
    case = referred_case(police)
    bus.settle()
    receipt = shelter.forward(
        case,
        "child-protection",
        officer="sh-0001",
        consent_override={"legal_basis": "child-protection", "authorised_by_officer": "sh-0001"},
    )
    assert receipt.to == "child-protection" and receipt.forwardings
    assert {f.type for f in receipt.forwardings} >= {"referral.requested"}
    bus.settle()
    with local.client("nrm-authority") as authority:
        rec = authority.disclosure_record(case)
    passed = [d for d in rec["disclosures"] if d["passed_on_by"] == "safe-house"]
    assert passed and {d["to"] for d in passed} == {"child-protection"}
    assert all(d["status"] == "received" for d in rec["disclosures"])
