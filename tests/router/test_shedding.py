"""Shedding in front of a node's app: appends are refused at once with 503 and
Retry-After while the node's event loop runs behind, reads never are, and appends pass
again once the loop has caught up. The intake is real (store, sealing, directory); the
app behind the middleware answers 201 to whatever reaches it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.policy import load_policy
from referral_router.api.shedding import LoopLag, Shedding
from referral_router.sending.intake import Intake
from referral_router.sending.node import AgencyNode
from referral_router.store.thread import StoreThread
from tests.agencies import node_parts
from tests.router.test_intake import XA

#: Appends to the case "held" wait for this before they are answered.
HELD = "/v1/cases/held/events"


async def reached(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == HELD:
        await scope["state"]["gate"].wait()
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, LoopLag]]:
    p = node_parts(tmp_path / "authority", XA, "authority")
    node = AgencyNode("authority", "XA", p.store, XA.roster(), p.seal, load_policy("XA"))
    thread = StoreThread("authority")
    lag = LoopLag(every=0.05, limit=0.1, idle_after=0.5)
    shedding = Shedding(reached, Intake(node, thread), lag)
    gate = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await shedding({**scope, "state": {"gate": gate}}, receive, send)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://node"
    ) as c:
        yield c, lag
    gate.set()
    thread.close()
    p.close()


async def test_appends_are_shed_while_the_loop_runs_behind(
    client: tuple[httpx.AsyncClient, LoopLag],
) -> None:
    c, lag = client
    assert (await c.post("/v1/cases", json={})).status_code == 201  # starts the sampling
    await asyncio.sleep(0.05)
    assert not lag.behind()
    time.sleep(0.3)  # one stall (a collection, a slow call) is not a backlog
    await asyncio.sleep(0.001)  # the sampler's timer runs, 0.3 s late
    assert not lag.behind(), lag.lagss
    assert (await c.post("/v1/cases", json={})).status_code == 201
    held = asyncio.create_task(c.post(HELD, json={}))  # an append in work
    await asyncio.sleep(0.01)
    time.sleep(0.3)  # late again: requests wait unread
    await asyncio.sleep(0.001)
    assert lag.behind(), lag.lags
    shed = await c.post("/v1/cases/c-1/events", json={})
    assert shed.status_code == 503
    assert shed.headers["retry-after"].isdigit()
    assert shed.json()["type"].endswith("overloaded")
    assert (await c.get("/v1/log")).status_code == 201  # reads are never shed
    await asyncio.sleep(0.15)  # the loop caught up
    assert not lag.behind(), lag.lags
    assert (await c.post("/v1/events:batch", json={})).status_code == 201
    held.cancel()


async def test_an_append_alone_is_taken_however_late_the_loop(
    client: tuple[httpx.AsyncClient, LoopLag],
) -> None:
    """Other processes took the cores (a busy machine, a demo's lone client): nothing of
    this node's waits, so nothing is shed."""
    c, lag = client
    assert (await c.post("/v1/cases", json={})).status_code == 201  # starts the sampling
    await asyncio.sleep(0.05)
    for _ in range(2):  # late twice in a row, an append between (it keeps the sampling)
        time.sleep(0.3)
        await asyncio.sleep(0.001)
        assert (await c.post("/v1/cases", json={})).status_code == 201
    assert lag.behind(), lag.lags
    assert (await c.post("/v1/cases", json={})).status_code == 201


async def test_an_idle_node_stops_sampling(client: tuple[httpx.AsyncClient, LoopLag]) -> None:
    c, lag = client
    await c.post("/v1/cases", json={})
    sampling = lag._sampling
    assert sampling is not None and not sampling.done()
    await asyncio.sleep(0.7)  # idle_after 0.5 s
    assert sampling.done() and lag.lags == (0.0, 0.0)
