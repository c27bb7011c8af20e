"""The log read from memory: the feed holds what the store committed, says when it does
not (a gap: another writer), wakes those waiting for an entry; the log API serves the
same page from it as from the store, and a long poll answers as soon as an entry comes.
A forwarding (R10) goes the same way to the relay, published once whichever way it is
read, and a rebuilt case file keeps it. The relay writes its position once the log falls
quiet after a publication, never for what the node received."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import pytest

from contracts.kafka_binding import FORWARDING_CONTENT_TYPE, content_type
from contracts.node_api import InboxPage
from contracts.sealing import Forwarding
from contracts.vocabulary import Role
from referral_router.sending.relay import RELAY_TRACKING, OutboxRelay
from referral_router.store.case_store import RECEIVED, SENT, CaseStore, Cursor
from referral_router.store.feed import FORWARDED, LogFeed
from referral_router.transport.base import Message, Position
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


def forward(store: CaseStore, case: str, to: str) -> Forwarding:
    """Record a forwarding of the case's first event to `to` (signature not checked here)."""
    file = store.case_file(case)
    assert file is not None
    (_, sent), *_ = store.envelopes(case)
    fw = Forwarding(
        id=uuid4(),
        time=sent.time,
        forwarder=sent.sender,
        recipient=to,
        original=sent,
        signature={"alg": "Ed25519", "kid": "k", "sig": "s"},
    )
    store.record_forwarded(file, [fw])
    return fw


class Published:
    """A transport that keeps what is published (the relay's side of it only)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def ensure_topics(self, names: Iterable[str], partitions: int) -> None:
        return None

    async def publish_many(self, messages: Sequence[Message]) -> list[Position]:
        self.messages += messages
        return []


class NoGrants:
    def grant_of(self, case: str, recipient: str, kid: str | None) -> bytes | None:
        return None

    def grant_for_forwarding(self, forwarding: Forwarding) -> bytes | None:
        return None


def test_a_forwarding_is_in_the_feed_for_the_relay_and_not_in_the_log_api(
    store: CaseStore,
) -> None:
    feed = LogFeed(store)
    case = record(store)
    fw = forward(store, case, "clinic")
    page = feed.after(0, 10)
    assert page is not None
    entries, _ = page
    assert [e.direction for e in entries] == [SENT, FORWARDED]
    assert entries[1].forwarding == fw and entries[1].item == b""
    stored = store.outbox_page(0, 10)
    assert stored is not None and [e.position for e in stored.entries] == [
        e.position for e in entries
    ]


@pytest.mark.parametrize("from_memory", [True, False])
async def test_the_relay_publishes_a_forwarding_once_from_memory_or_the_store(
    store: CaseStore, from_memory: bool
) -> None:
    feed = LogFeed(store) if from_memory else None
    case = record(store)
    fw = forward(store, case, "clinic")
    transport = Published()
    relay = OutboxRelay(store, transport, lambda _: "XA", NoGrants(), feed=feed)  # type: ignore[arg-type]
    assert await relay.publish_pending() == 2  # the envelope, then the forwarding
    assert not await relay.publish_pending()  # nothing twice
    kinds = [content_type(m.headers) for m in transport.messages]
    assert kinds.count(FORWARDING_CONTENT_TYPE) == 1
    (passed_on,) = [m for m in transport.messages if content_type(m.headers) == kinds[-1]]
    assert passed_on.value == fw.canonical_bytes() and passed_on.topic.endswith("clinic")


def test_a_rebuilt_case_file_keeps_its_forwardings(store: CaseStore) -> None:
    case = record(store)
    forward(store, case, "clinic")
    forward(store, case, "asylum-office")
    cached = store.case_file(case)
    assert cached is not None
    rebuilt = store.replay()[cached.id]
    assert rebuilt.version == cached.version
    assert rebuilt.forwardings == cached.forwardings and len(rebuilt.forwardings) == 2
    assert rebuilt.state.forwarded_to == {"clinic", "asylum-office"} == cached.state.forwarded_to


@dataclass(frozen=True)
class CountedCursor(Cursor):
    """The relay's real cursor, counting its writes."""

    writes: list[int] = field(default_factory=list)

    def advance(self, to: int, *written: object) -> bool:
        self.writes.append(to)
        return super().advance(to, *written)  # type: ignore[arg-type]


async def test_the_relay_writes_its_position_after_a_lull_never_for_what_was_received(
    store: CaseStore,
) -> None:
    feed = LogFeed(store)
    transport = Published()
    relay = OutboxRelay(
        store,
        transport,
        lambda _: "XA",
        NoGrants(),
        feed=feed,
        keep_interval=0.2,  # type: ignore[arg-type]
    )
    relay.cursor = cursor = CountedCursor(store, RELAY_TRACKING)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        for _ in range(8):  # a receiving node: its relay passes over, writes nothing
            record(store, RECEIVED)
            await asyncio.sleep(0.03)
        await asyncio.sleep(0.4)
        assert relay.position == store.max_position() and cursor.writes == []
        for _ in range(8):  # a light load: one write per lull, not one per event
            record(store)
            await asyncio.sleep(0.03)
        await asyncio.sleep(0.4)
        assert len(transport.messages) == 8
        assert 1 <= len(cursor.writes) <= 3, cursor.writes
        assert cursor.writes[-1] == store.max_position() == cursor.position
    finally:
        stop.set()
        await running
