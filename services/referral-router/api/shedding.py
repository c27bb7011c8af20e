"""Refusing what the node cannot take, before it costs anything.

When the node's intake is saturated (`Intake.saturated`), or its event loop runs behind
(`LoopLag`), a request that would append is answered at once with 503 `overloaded` and
`Retry-After`, before its token is checked or its body parsed: under an overload the
node spends its time on what it accepted, and a client learns at once when to come back
instead of waiting in an unbounded queue or losing its connection. Reads are never shed,
nor is an append while no other is in work (a loop made late by other processes on the
machine is no backlog of this node's).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from contracts.problems import MEDIA_TYPE, problem
from referral_router.sending.intake import Intake

_APPENDS = re.compile(r"^/v1/(cases|cases/[^/]+/events|events:batch)$")


class LoopLag:
    """How late the node's event loop runs a timer, sampled while appends arrive.

    The intake counts only the requests it holds. Those the node has not read yet wait
    where no counter sees them (in the kernel, in TLS, in the HTTP parser) whenever more
    arrive than the process can read, as when it shares its cores with other busy
    processes; the lateness of a timer on the same loop is how long they wait. Two late
    samples in a row make a backlog (one is a stall: a collection, a slow call). Sampling
    stops `idle_after` seconds after the last append: an idle node does not wake for it."""

    def __init__(self, every: float = 0.05, limit: float = 0.25, idle_after: float = 1.0):
        self.every, self.limit, self.idle_after = every, limit, idle_after
        #: The lateness of the last two timers, in seconds (0 while not sampling).
        self.lags = (0.0, 0.0)
        self._last_append = 0.0
        self._sampling: asyncio.Task[None] | None = None

    def append_seen(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_append = loop.time()
        if self._sampling is None or self._sampling.done():
            self._sampling = loop.create_task(self._sample(), name="loop-lag")

    def behind(self) -> bool:
        return min(self.lags) > self.limit

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while loop.time() - self._last_append < self.idle_after:
                due = loop.time() + self.every
                await asyncio.sleep(self.every)
                self.lags = (self.lags[1], max(0.0, loop.time() - due))
        finally:
            self.lags = (0.0, 0.0)


class Shedding:
    """Pure ASGI middleware in front of a node's app."""

    def __init__(self, app: Any, intake: Intake, lag: LoopLag | None = None) -> None:
        self.app = app
        self.intake = intake
        self.lag = lag or LoopLag(limit=intake.max_wait_s / 2)
        #: Appends passed on to the app and not answered yet.
        self.appending = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        post = scope["type"] == "http" and scope["method"] == "POST"
        if not (post and _APPENDS.match(scope["path"])):
            await self.app(scope, receive, send)
            return
        self.lag.append_seen()
        # A late loop with no other append in work is not this node's backlog (other
        # processes took the cores): a request alone is taken, as the intake takes it.
        if self.intake.saturated() or (self.appending and self.lag.behind()):
            await self._refuse(send)
            return
        self.appending += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.appending -= 1

    async def _refuse(self, send: Any) -> None:
        wait = self.intake.retry_after()
        found = problem("overloaded", f"the node is at capacity; retry after {wait} s")
        body = json.dumps(found.body()).encode()
        headers = [
            (b"content-type", MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(wait).encode()),
        ]
        await send({"type": "http.response.start", "status": found.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
