"""The log read from memory: the feed holds what the store committed, says when it does
not (a gap: another writer), wakes those waiting for an entry; the log API serves the
same page from it as from the store, and a long poll answers as soon as an entry comes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.node_api import InboxPage
from contracts.vocabulary import Role
from referral_router.store.case_store import RECEIVED, SENT, CaseStore
from referral_router.store.feed import LogFeed
from tests.agencies import clear_envelope, new_case
from tests.bus.running import RunningBus
from tests.router.test_http_api import screen

ROLES = {"police": frozenset({Role.FIRST_RESPONDER}), "shelter": frozenset({Role.SERVICE_PROVIDER})}


def env_path(tmp_path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CaseStore]:
    s = CaseStore(env=env_path(tmp_path))
    yield s
    s.close()


def record(store: CaseStore, direction: str = SENT) -> str:
    case = new_case()
    sender, to = ("police", ("shelter",)) if direction == SENT else ("shelter", ("police",))
    file = store.case_file_or_new(case)
    file.record(clear_envelope(sender, to, case), direction, ROLES)
    store.save(file)
    return case


def test_the_feed_holds_what_was_committed_in_log_order(store: CaseStore) -> None:
    feed = LogFeed(store)
    cases = [record(store), record(store, RECEIVED), record(store)]
    page = feed.after(0, 10)
    assert page is not None
    entries, end = page
    assert [e.direction for e in entries] == [SENT, RECEIVED, SENT]
    assert end == feed.last == store.max_position()
    assert [e.outgoing is not None for e in entries] == [True, False, True]
    assert entries[0].outgoing is not None and entries[0].outgoing.case == cases[0]
    assert feed.after(entries[0].position, 1) == ([entries[1]], entries[1].position)
    assert feed.after(end, 10) == ([], end)


def test_a_commit_the_feed_did_not_see_sends_readers_to_the_store(
    store: CaseStore, tmp_path: Path
) -> None:
    feed = LogFeed(store)
    record(store)
    other = CaseStore(env=env_path(tmp_path))  # another writer on the same store
    try:
        record(other)
    finally:
        other.close()
    record(store)  # the feed notices the gap here
    assert feed.after(0, 10) is None  # older than it holds: read the store
    newest = store.max_position()
    page = feed.after(newest - 1, 10)
    assert page is not None and [e.position for e in page[0]] == [newest]


async def test_a_waiting_reader_wakes_when_an_entry_is_committed(store: CaseStore) -> None:
    feed = LogFeed(store)
    last = feed.last
    assert not await feed.wait_beyond(last, 0.05)  # nothing: the wait times out
    waiting = asyncio.create_task(feed.wait_beyond(last, 10))
    await asyncio.sleep(0.05)
    await asyncio.to_thread(record, store)  # committed on another thread, as the store does
    started = time.monotonic()
    assert await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - started < 2


def test_the_log_api_serves_the_same_page_from_memory_as_from_the_store(
    bus: RunningBus,
) -> None:
    case = screen(bus, to=["nrm-authority", "safe-house"])
    bus.settle()
    for agency in ("border-police", "safe-house"):
        node = bus.bus.nodes[agency].node
        with bus.client(agency) as c:
            for direction in (None, "received", "sent"):
                params = {"after": 0, "limit": 500}
                if direction:
                    params["direction"] = direction
                served = c.get("/v1/log", params=params).json()
                stored = InboxPage.model_validate(node.inbox(0, 500, direction))
                assert served == stored.model_dump(mode="json"), (agency, direction)
                if direction is None:
                    assert case in {i["case"] for i in served["items"]}


def test_a_long_poll_answers_when_an_entry_is_recorded(bus: RunningBus) -> None:
    with bus.client("nrm-authority") as c:
        end = c.get("/v1/log", params={"limit": 500}).json()["items"]
        after = max((i["position"] for i in end), default=0)
        started = time.monotonic()
        nothing = c.get("/v1/log", params={"after": after, "wait": 0.5}).json()
        assert nothing == {"items": [], "next_after": None}
        assert 0.4 < time.monotonic() - started < 5  # it waited, then answered empty

        async def later() -> str:
            await asyncio.sleep(0.3)
            return await asyncio.to_thread(screen, bus, None, ["nrm-authority"])

        future = asyncio.run_coroutine_threadsafe(later(), bus.loop)
        started = time.monotonic()
        page = c.get("/v1/log", params={"after": after, "wait": 20, "direction": "received"})
        waited = time.monotonic() - started
        case = future.result(30)
    assert [i["case"] for i in page.json()["items"]] == [case]
    assert waited < 10  # answered when the event arrived, not at the end of the wait
