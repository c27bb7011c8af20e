"""Keys in time: a planned rotation keeps a grace period, a compromise cuts at once; and a
node's directory has an age, a maximum, and a serial it never goes back from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from contracts.directory import (
    DirectoryStale,
    KeyStatus,
    KeyUse,
    verify_directory,
)
from contracts.directory_client import DirectoryClient, DirectoryTooOld
from contracts.need_to_know import CaseContext
from contracts.vocabulary import DataCategory
from referral_router.runtime.directory_memory import SerialMemory
from registry.application import KeyNotFound, RegistryConflict, RegistryError
from registry.models import KeyInput
from tests.problems import assert_problem
from tests.registry.conftest import Bus, key_input


def _directory(bus: Bus):  # type: ignore[no-untyped-def]
    return verify_directory(bus.registry.signed_directory(), bus.config.anchor())


def _rotate(bus: Bus, agency: str, keys, **kw):  # type: ignore[no-untyped-def]
    inputs = [KeyInput(**key_input(keys, use)) for use in KeyUse]
    return bus.registry.rotate_keys(agency, inputs, "op", **kw)


def test_a_planned_rotation_keeps_the_old_key_for_the_grace_period(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    old = police.keys.current(KeyUse.SIGNING).key_id
    police.rotate()
    _rotate(bus, "xa-police", police.keys, grace=timedelta(hours=2))
    rotated = bus.clock()
    d = _directory(bus)
    record = d.listed_signing_key("xa-police", old)
    assert record is not None and record.status is KeyStatus.RETIRED
    assert record.valid_until == rotated + timedelta(hours=2)
    assert d.signing_key("xa-police", old, rotated + timedelta(minutes=119)) is not None
    assert d.signing_key("xa-police", old, rotated + timedelta(hours=2)) is None
    # a new signing key is current at once
    current = d.current_signing_key("xa-police", rotated)
    assert current is not None and current.key_id != old


def test_the_grace_period_is_bounded(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    police.rotate()
    with pytest.raises(RegistryError, match="grace period"):
        _rotate(bus, "xa-police", police.keys, grace=timedelta(days=30))
    with pytest.raises(RegistryError, match="grace period"):
        _rotate(bus, "xa-police", police.keys, grace=timedelta(hours=-1))


def test_a_compromise_cuts_the_key_from_the_time_misuse_began(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    key = police.keys.current(KeyUse.SIGNING).key_id
    registered = bus.clock()
    bus.clock.advance(3600)
    began = registered + timedelta(minutes=30)
    record = bus.registry.report_compromise("xa-police", key, "laptop stolen", "op", at=began)
    listed = next(k for k in record.keys if k.key_id == key)
    assert listed.status is KeyStatus.COMPROMISED and listed.compromised_at == began
    d = _directory(bus)
    assert d.signing_key("xa-police", key, began - timedelta(seconds=1)) is not None
    assert d.signing_key("xa-police", key, began) is None
    assert d.current_signing_key("xa-police", bus.clock()) is None  # must rotate now
    # history says who reported it and why
    events = [e for e in bus.registry.history() if e["event"] == "agency.key-compromised"]
    assert events and events[-1]["by"] == "op" and events[-1]["data"]["reason"] == "laptop stolen"


def test_a_compromise_report_is_checked(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    key = police.keys.current(KeyUse.SIGNING).key_id
    with pytest.raises(KeyNotFound):
        bus.registry.report_compromise("xa-police", "no-such-key", "x", "op")
    with pytest.raises(RegistryError, match="still to come"):
        bus.registry.report_compromise(
            "xa-police", key, "x", "op", at=bus.clock() + timedelta(hours=1)
        )
    bus.registry.report_compromise("xa-police", key, "x", "op")
    with pytest.raises(RegistryConflict, match="already"):
        bus.registry.report_compromise("xa-police", key, "x", "op")


def test_an_agency_with_an_origin_role_is_barred_by_it_after_asylum(bus: Bus) -> None:
    """Several roles: the union of what they may read, unless one of them is barred."""
    liaison = bus.party("xa-liaison")
    bus.register(liaison, ["immigration", "counterpart"])
    d = _directory(bus)
    planning = CaseContext(event_type="return.planning-started")
    assert DataCategory.IDENTITY in d.entitled("xa-liaison", planning)
    barred = CaseContext(event_type="return.planning-started", no_origin_contact=True)
    assert d.entitled("xa-liaison", barred) == frozenset()


def _hourly_client(bus: Bus, fetch: Callable[[], bytes]) -> DirectoryClient:
    """A node's directory client: refreshed every 5 minutes, too old after an hour."""
    return DirectoryClient(
        fetch,
        bus.config.anchor(),
        refresh_every=timedelta(minutes=5),
        max_age=timedelta(hours=1),
        clock=bus.clock,
    )


def test_the_directory_ages_and_is_refused_past_its_maximum(bus: Bus) -> None:
    served = [bus.registry.signed_directory().to_bytes()]
    up = [True]

    def fetch() -> bytes:
        if not up[0]:
            raise OSError("registry unreachable")
        return served[-1]

    client = _hourly_client(bus, fetch)
    client.check_fresh()
    assert client.age() == timedelta(0)
    up[0] = False
    bus.clock.advance(59 * 60)
    assert client.check_fresh().serial == client.serial  # the last good one, still young
    bus.clock.advance(2 * 60)
    with pytest.raises(DirectoryTooOld, match="registry unreachable"):
        client.check_fresh()
    assert client.current() is not None  # still readable, not to act on
    up[0] = True
    bus.clock.advance(5 * 60)
    client.check_fresh()  # confirmed again: fresh
    assert client.age() == timedelta(0)


def test_judging_the_held_directory_never_asks_the_registry(bus: Bus) -> None:
    """What an event loop calls (`refresh=False`) judges the directory held: no fetch
    even when a refresh is due (a blocking fetch there stalled a node, and deadlocked one
    serving its registry on the same loop), and still refused past the maximum age."""
    fetched: list[int] = []

    def fetch() -> bytes:
        fetched.append(1)
        return bus.registry.signed_directory().to_bytes()

    client = _hourly_client(bus, fetch)
    client.check_fresh()
    assert len(fetched) == 1
    bus.clock.advance(30 * 60)
    assert client.refresh_due()
    assert client.check_fresh(refresh=False).serial == client.serial
    assert len(fetched) == 1  # due, but not fetched on this call
    bus.clock.advance(31 * 60)
    with pytest.raises(DirectoryTooOld):
        client.check_fresh(refresh=False)
    assert len(fetched) == 1
    client.check_fresh()  # the worker's call refreshes
    assert len(fetched) == 2 and client.age() == timedelta(0)


def test_the_last_serial_survives_a_restart(bus: Bus, tmp_path: Path) -> None:
    memory = SerialMemory(tmp_path / "node" / "directory.json")
    old_wire = bus.registry.signed_directory().to_bytes()
    bus.register(bus.party("xa-police"), ["first-responder"])
    new_wire = bus.registry.signed_directory().to_bytes()
    first = DirectoryClient(
        lambda: new_wire, bus.config.anchor(), remember=memory.remember, last_seen=memory.load()
    )
    newest = first.refresh().serial
    assert memory.load() is not None and memory.load()[0] == newest  # type: ignore[index]
    # restarted, and served the older directory first: refused
    again = DirectoryClient(
        lambda: old_wire, bus.config.anchor(), remember=memory.remember, last_seen=memory.load()
    )
    with pytest.raises(DirectoryStale):
        again.refresh()
    assert again.serial == newest


def test_rotation_and_compromise_over_http(bus: Bus) -> None:
    """The operator's two commands, as `nrm agency rotate-keys` and `compromise` send them."""
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    old = police.keys.current(KeyUse.SIGNING).key_id
    police.rotate()
    body = {"keys": [key_input(police.keys, u) for u in KeyUse], "grace_hours": 2}
    r = bus.client.post("/v1/agencies/xa-police/keys", json=body, headers=bus.operator.auth())
    assert r.status_code == 200, r.text
    listed = {k["key_id"]: k for k in r.json()["keys"]}
    until = datetime.fromisoformat(listed[old]["valid_until"])
    assert until == bus.clock() + timedelta(hours=2)
    too_long = {**body, "grace_hours": 24 * 30}
    r = bus.client.post("/v1/agencies/xa-police/keys", json=too_long, headers=bus.operator.auth())
    assert_problem(r, "schema-violation")
    new = police.keys.current(KeyUse.SIGNING).key_id
    url = f"/v1/agencies/xa-police/keys/{new}/compromise"
    began = (bus.clock() - timedelta(minutes=5)).isoformat()
    report = {"reason": "token laptop lost", "compromised_at": began}
    assert bus.client.post(url, json=report, headers=police.auth()).status_code == 403
    r = bus.client.post(url, json=report, headers=bus.operator.auth())
    assert r.status_code == 200, r.text
    key = next(k for k in r.json()["keys"] if k["key_id"] == new)
    assert key["status"] == "compromised" and key["compromised_at"].startswith(began[:19])
    assert_problem(bus.client.post(url, json=report, headers=bus.operator.auth()), "conflict")
    unknown = "/v1/agencies/xa-police/keys/no-such-key/compromise"
    assert_problem(bus.client.post(unknown, json=report, headers=bus.operator.auth()), "not-found")
    future = {"reason": "x", "compromised_at": (bus.clock() + timedelta(days=1)).isoformat()}
    other = f"/v1/agencies/xa-police/keys/{old}/compromise"
    assert_problem(bus.client.post(other, json=future, headers=bus.operator.auth()), "bad-request")
