"""Following the log as a stream (`GET /v1/log/stream`), on a running embedded bus.

One request, then each entry as it is committed: the same items as `GET /v1/log`, from
memory or from the store. The stream is a read of the log and nothing more: the caller
is checked as for the log (the agency itself, or its notifier with `log:read`), and it
ends with the token that opened it, so a key revoked or a scope narrowed since takes
effect at the next one. It ends when the node stops, and after an idle timeout. A node
holds only so many open."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.requests import ClientDisconnect

from contracts.agency_token import issue_token
from contracts.directory import KeyUse
from contracts.keystore import AgencyKeys
from nrm.embedded import DEMO_AGENCIES, router_audience
from referral_router.api import log_stream
from referral_router.api.log_stream import Until, stream_lines
from referral_router.store.feed import LogFeed
from tests.bus.running import RunningBus, running_bus
from tests.faults.conftest import ADULT

AUTHORITY = "nrm-authority"


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBus]:
    agencies = tuple(a for a in DEMO_AGENCIES if a.id in ("border-police", AUTHORITY))
    with running_bus(tmp_path_factory.mktemp("log-stream"), agencies=agencies) as rb:
        yield rb


def screen(bus: RunningBus) -> str:
    with bus.client("border-police") as police:
        r = police.post("/v1/cases", json={"recipients": [AUTHORITY], "payload": ADULT})
    assert r.status_code == 201, r.text
    return str(r.json()["case"])


def bearer(keys: AgencyKeys, node: str, scope: str | None = None, seconds: int = 60) -> str:
    pair = keys.current(KeyUse.SIGNING)
    token = issue_token(
        keys.agency_id,
        pair.key_id,
        pair.ed25519(),
        router_audience(node),
        scope=scope,
        lifetime=timedelta(seconds=seconds),
    )
    return f"Bearer {token}"


def own(bus: RunningBus, agency: str, seconds: int = 60) -> dict[str, str]:
    return {"Authorization": bearer(bus.bus.agency_keys[agency], agency, seconds=seconds)}


def logged(bus: RunningBus, agency: str, **params: Any) -> list[dict[str, Any]]:
    with bus.client(agency) as c:
        page = c.get("/v1/log", params={"limit": 500, **params})
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def streamed(bus: RunningBus, agency: str, headers: dict[str, str], **params: Any) -> list[Any]:
    """The whole stream, once it ends (blank keep-alive lines kept as None)."""
    with (
        httpx.Client(base_url=bus.bus.urls[agency], timeout=30) as c,
        c.stream("GET", "/v1/log/stream", params=params, headers=headers) as r,
    ):
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) if line else None for line in r.iter_lines()]


def test_what_is_there_comes_as_the_log_pages_it(bus: RunningBus) -> None:
    screen(bus)
    screen(bus)
    for agency in ("border-police", AUTHORITY):
        for direction in (None, "sent", "received"):
            params: dict[str, Any] = {"idle_timeout": 0}
            if direction:
                params["direction"] = direction
            got = streamed(bus, agency, own(bus, agency), **params)
            paged = logged(bus, agency, **({"direction": direction} if direction else {}))
            assert got == paged, (agency, direction)
            assert paged or direction, agency  # each has a log: the test compares items
    later = streamed(bus, AUTHORITY, own(bus, AUTHORITY), idle_timeout=0, after=1)
    assert later and all(i["position"] > 1 for i in later)


def test_an_entry_comes_on_the_open_stream_as_it_is_recorded(bus: RunningBus) -> None:
    end = max((i["position"] for i in logged(bus, AUTHORITY)), default=0)
    case: dict[str, str] = {}

    def later() -> None:
        time.sleep(0.5)
        case["id"] = screen(bus)

    screening = threading.Thread(target=later)
    url = bus.bus.urls[AUTHORITY]
    with (
        httpx.Client(base_url=url, timeout=30) as c,
        c.stream(
            "GET",
            "/v1/log/stream",
            params={"after": end, "direction": "received"},
            headers=own(bus, AUTHORITY),
        ) as r,
    ):
        assert r.status_code == 200
        started = time.monotonic()
        screening.start()
        first = next(line for line in r.iter_lines() if line)
        waited = time.monotonic() - started
    screening.join()
    item = json.loads(first)
    assert item["case"] == case["id"] and item["direction"] == "received"
    assert item["position"] > end and "payload" not in item and "sealed" not in item
    assert waited < 10  # on the open stream, as it was recorded


def test_a_stream_ends_with_its_token(bus: RunningBus) -> None:
    end = max((i["position"] for i in logged(bus, AUTHORITY)), default=0)
    started = time.monotonic()
    got = streamed(bus, AUTHORITY, own(bus, AUTHORITY, seconds=2), after=end)
    lasted = time.monotonic() - started
    assert got == []  # nothing recorded meanwhile; and no keep-alive within 2 s
    assert 1.0 < lasted < 8  # it stayed open, then ended when the token did


def test_the_callers_are_those_of_the_log(bus: RunningBus) -> None:
    url = bus.bus.urls["border-police"]
    notifier = bus.bus.notifier_keys
    police, authority = bus.bus.agency_keys["border-police"], bus.bus.agency_keys[AUTHORITY]
    refused = {
        "no token": ({}, 401),
        "another agency": ({"Authorization": bearer(authority, "border-police")}, 403),
        "its token for another node": ({"Authorization": bearer(police, AUTHORITY)}, 401),
        "the notifier without log:read": (
            {"Authorization": bearer(notifier, "border-police", "escalate")},
            403,
        ),
    }
    with httpx.Client(base_url=url, timeout=30) as c:
        for why, (headers, status) in refused.items():
            r = c.get("/v1/log/stream", params={"idle_timeout": 0}, headers=headers)
            assert r.status_code == status, (why, r.text)
            assert r.headers["content-type"] == "application/problem+json", why
    as_notifier = {"Authorization": bearer(notifier, "border-police", "log:read")}
    got = streamed(bus, "border-police", as_notifier, idle_timeout=0)
    assert got == logged(bus, "border-police")
    assert all({"payload", "sealed", "full_name"}.isdisjoint(i) for i in got)


def test_a_node_holds_few_streams_open_and_refuses_more(
    bus: RunningBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stream holds a connection and a waiter: a reader opening more than the node
    holds gets 503 with Retry-After, and a stream closed frees its place."""
    streams = bus.bus.nodes[AUTHORITY].app.state.log_streams
    held = streams.count  # the notifier's
    monkeypatch.setattr(log_stream, "MAX_STREAMS", held + 2)
    waiting = {"after": 2**40}  # past the end: they wait
    with httpx.Client(base_url=bus.bus.urls[AUTHORITY], timeout=30) as c:
        with (
            c.stream("GET", "/v1/log/stream", params=waiting, headers=own(bus, AUTHORITY)) as a,
            c.stream("GET", "/v1/log/stream", params=waiting, headers=own(bus, AUTHORITY)) as b,
        ):
            assert a.status_code == b.status_code == 200
            assert until(lambda: streams.count == held + 2)
            refused = c.get("/v1/log/stream", params=waiting, headers=own(bus, AUTHORITY))
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "overloaded"
            assert int(refused.headers["retry-after"]) > 0
        assert until(lambda: streams.count == held)  # the node saw both readers leave
        again = streamed(bus, AUTHORITY, own(bus, AUTHORITY), idle_timeout=0)
        assert again == logged(bus, AUTHORITY)


def test_a_burst_of_readers_cannot_overshoot_the_cap(
    bus: RunningBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve streams asked for at once, two places: two are served, ten refused (a
    stream is counted at its check, not at its first write, which comes later)."""
    streams = bus.bus.nodes[AUTHORITY].app.state.log_streams
    held = streams.count
    monkeypatch.setattr(log_stream, "MAX_STREAMS", held + 2)
    tokens = [own(bus, AUTHORITY) for _ in range(12)]  # one-time tokens: one each

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=bus.bus.urls[AUTHORITY], timeout=30) as c:

            async def one(headers: dict[str, str]) -> int:
                params = {"after": 2**40, "idle_timeout": 1}  # past the end: each waits 1 s
                async with c.stream("GET", "/v1/log/stream", params=params, headers=headers) as r:
                    await r.aread()
                    return r.status_code

            return await asyncio.gather(*(one(h) for h in tokens))

    statuses = asyncio.run(burst())
    assert sorted(statuses) == [200, 200] + [503] * 10, statuses
    assert until(lambda: streams.count == held)


def test_a_stream_that_never_started_gives_its_place_back() -> None:
    """A reader gone before the body's first write: the body never runs (so it has no
    `finally`), and the place is given back all the same."""
    streams = log_stream.OpenStreams()
    started = []

    async def lines() -> AsyncIterator[bytes]:
        started.append(True)
        yield b"{}\n"

    async def gone(message: Any) -> None:
        raise OSError("the reader hung up")

    async def disconnected() -> dict[str, str]:
        return {"type": "http.disconnect"}

    response = log_stream.CountedStream(streams, lines())
    assert streams.count == 1
    with pytest.raises(ClientDisconnect):  # starlette's word for the OSError
        asyncio.run(response({"type": "http", "asgi": {"spec_version": "2.4"}}, disconnected, gone))
    assert streams.count == 0
    assert not started


def until(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_store_serves_a_reader_the_feed_no_longer_holds(bus: RunningBus) -> None:
    """The same lines from the store (no feed) as from memory; a stopping node's feed
    ends the stream at once."""
    runtime = bus.bus.nodes[AUTHORITY]

    async def read(feed: Any, until: Until) -> list[bytes]:
        return [c async for c in stream_lines(runtime.node, runtime.intake, feed, 0, None, until)]

    async def both() -> tuple[list[bytes], list[bytes]]:
        at_once = Until(asyncio.get_running_loop().time() + 30, idle_timeout=0)
        return await read(None, at_once), await read(runtime.feed, at_once)

    stored, remembered = (
        [json.loads(line) for line in b"".join(chunks).splitlines()] for chunks in bus.run(both())
    )
    assert stored == remembered == logged(bus, AUTHORITY) != []

    async def stopped() -> float:
        loop = asyncio.get_running_loop()
        feed = LogFeed(runtime.store)  # its own: the bus serves the module's other tests
        started = loop.time()
        loop.call_later(0.3, feed.close)
        await read(feed, Until(started + 30, idle_timeout=None))
        return loop.time() - started

    assert bus.run(stopped()) < 5
