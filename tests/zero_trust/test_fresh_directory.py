"""A node cut off from its registry for longer than the maximum age acts on nothing: it
refuses to send (503), pauses its inbox (records wait on the bus), and says why on
/readyz; once the registry confirms its directory again, it catches up."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from contracts.directory_client import DirectoryClient
from contracts.vocabulary import Role
from nrm.embedded import AgencySpec
from tests.bus.running import RunningBus
from tests.problems import assert_problem
from tests.zero_trust.test_hostile_agency import ADULT


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningBus, str, str]]:
    tag = secrets.token_hex(3)
    police, authority = f"police-{tag}", f"authority-{tag}"
    agencies = (
        AgencySpec(police, "Police", (Role.FIRST_RESPONDER,)),
        AgencySpec(authority, "Authority", (Role.COMPETENT_AUTHORITY,)),
    )
    running = RunningBus(tmp_path_factory.mktemp("fresh"), agencies=agencies)
    try:
        yield running, police, authority
    finally:
        running.stop()


def _client(running: RunningBus, agency: str) -> DirectoryClient:
    source = running.bus.nodes[agency].roster.source
    assert isinstance(source, DirectoryClient)
    return source


def _cut_off(client: DirectoryClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable() -> bytes:
        raise OSError("registry unreachable")

    monkeypatch.setattr(client, "_fetch", unreachable)
    monkeypatch.setattr(client, "max_age", timedelta(seconds=1))
    monkeypatch.setattr(client, "refresh_every", timedelta(milliseconds=200))


def _eventually(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.2)


def test_a_sender_with_a_stale_directory_refuses_to_send(
    bus: tuple[RunningBus, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    running, police, authority = bus
    client = _client(running, police)
    _cut_off(client, monkeypatch)
    time.sleep(1.5)
    with running.client(police) as c:
        ready = c.get("/readyz")
        assert_problem(ready, "directory-too-old", rule="DIRECTORY")
        assert "registry unreachable" in ready.json()["detail"]
        sent = c.post("/v1/cases", json={"recipients": [authority], "payload": ADULT})
        assert_problem(sent, "directory-too-old", rule="DIRECTORY")
    assert running.bus.nodes[police].store.log() == []  # nothing appended
    monkeypatch.undo()
    with running.client(police) as c:
        _eventually(lambda: c.get("/readyz").status_code == 200)
        assert c.get("/readyz").json()["directory_age_seconds"] < 10


def test_a_receiver_with_a_stale_directory_applies_nothing_until_fresh(
    bus: tuple[RunningBus, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    running, police, authority = bus
    node = running.bus.nodes[authority]
    _cut_off(_client(running, authority), monkeypatch)
    _eventually(lambda: node.inbox.paused is not None)
    with running.client(police) as c:
        sent = c.post("/v1/cases", json={"recipients": [authority], "payload": ADULT})
    assert sent.status_code == 201, sent.text
    case = sent.json()["case"]
    time.sleep(2.0)  # published long since; the authority's inbox is paused
    assert node.store.case_file(case) is None
    assert node.store.dead_letters() == []  # waiting on the bus, not refused
    monkeypatch.undo()
    _eventually(lambda: node.store.case_file(case) is not None)
    assert node.inbox.paused is None


def _set_status(running: RunningBus, agency: str, status: str) -> None:
    r = httpx.post(
        f"{running.bus.registry_url}/v1/agencies/{agency}/status",
        json={"status": status, "reason": "drill"},
        headers={"Authorization": f"Bearer {running.bus.operator_token()}"},
        verify=running.bus.verify,
        timeout=30,
    )
    assert r.status_code == 200, r.text


def test_a_recipient_suspended_at_the_registry_is_refused_once_the_sender_refreshes(
    bus: tuple[RunningBus, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory is refreshed on the node's worker, never while deciding; a request
    that finds a refresh due still decides on the refreshed directory: a suspension the
    registry signed is in force for the very next event (R6)."""
    running, police, authority = bus
    client = _client(running, police)
    _set_status(running, authority, "suspended")
    try:
        monkeypatch.setattr(client, "refresh_every", timedelta(0))  # due at every request
        with running.client(police) as c:
            sent = c.post("/v1/cases", json={"recipients": [authority], "payload": ADULT})
            assert_problem(sent, "unknown-agency", rule="R6")
            assert "suspended" in sent.json()["detail"]
    finally:
        _set_status(running, authority, "active")
    with running.client(police) as c:
        _eventually(
            lambda: (
                c.post("/v1/cases", json={"recipients": [authority], "payload": ADULT}).status_code
                == 201
            )
        )
