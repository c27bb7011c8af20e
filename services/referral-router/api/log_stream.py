"""Following the node's log as a stream: one request, then every entry as it commits.

A long poll (`GET /v1/log?wait=`) costs a request per answer: a TLS exchange, a token
the reader mints and the node verifies, the framework's parsing. A reader that follows
the log for good (the node's notifier, an agency's own systems, the benchmark) pays that
once per event at a light load, on every receiving node. `GET /v1/log/stream` checks
the caller once, then writes each entry, one line of JSON (NDJSON, the item of
`GET /v1/log`), as soon as the store commits it; an empty line keeps an idle
connection alive.

A stream never outlives the token that opened it, nor `STREAM_MAX_S`: a revoked key or a
narrowed scope takes effect when the reader opens the next one, with a new token, from
the last position it saw, as it would after a broken connection. It also ends when the
node stops, and after `idle_timeout` seconds with nothing new when the reader asks. A
node holds at most `MAX_STREAMS` open: each holds a connection and a waiter, and a
careless or compromised agency system opening more gets 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from contracts.connections import LOG_STREAM_KEEP_ALIVE_S
from contracts.node_api import InboxItem
from contracts.problems import openapi_responses
from referral_router.api.auth import LogReader, Node
from referral_router.api.cases import After, Direction, Taking, item_json
from referral_router.api.errors import ERROR_RESPONSES
from referral_router.sending.intake import Intake, Overloaded
from referral_router.sending.node import AgencyNode
from referral_router.store.feed import LogFeed

NDJSON = "application/x-ndjson"
#: The longest a stream stays open, whatever its token's lifetime (a one-time token's
#: longest, `contracts.agency_token.MAX_LIFETIME`; DPoP access tokens live longer).
STREAM_MAX_S = 120.0
#: Streams a node holds open at once (its notifier takes one; an agency's systems a few).
MAX_STREAMS = 32
#: The wait a refused stream is told to take.
_RETRY_AFTER_S = 5
#: Entries read at once, from memory or the store.
_PAGE = 500
#: How long a stream without the in-memory feed waits before reading the store again.
_STORE_POLL_S = 0.5

log_stream = APIRouter(prefix="/v1", tags=["cases"], responses=ERROR_RESPONSES)

IdleTimeout = Annotated[
    float | None,
    Query(
        ge=0,
        le=3600,
        description="End the stream after this many seconds with no new entry (0: send "
        "what there is, then end). Without it the stream ends with its token.",
    ),
]


@dataclass(frozen=True)
class Until:
    """When a stream ends, on the event loop's clock."""

    closes_at: float
    idle_timeout: float | None

    def over(self, now: float, quiet_since: float) -> bool:
        idle = self.idle_timeout is not None and now - quiet_since >= self.idle_timeout
        return idle or now >= self.closes_at


@log_stream.get(
    "/log/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One log item (as in `GET /v1/log`) per line, as each is "
            "committed; an empty line keeps an idle connection alive.",
            "content": {NDJSON: {"schema": {"type": "string"}}},
        },
        **openapi_responses(503),
    },
)
async def follow_log(
    request: Request,
    node: Node,
    intake: Taking,
    reader: LogReader,
    after: After = 0,
    direction: Direction = None,
    idle_timeout: IdleTimeout = None,
) -> StreamingResponse:
    """Every event this node records after `after`, as it is recorded (the items of
    `GET /v1/log`, one per line). Open it again from the last `position` seen when it
    ends: it ends with the caller's token (two minutes at most), when the node stops,
    and after `idle_timeout`."""
    streams: OpenStreams = request.app.state.log_streams
    loop = asyncio.get_running_loop()
    lasts = STREAM_MAX_S
    if reader.expires_at is not None:
        lasts = min(lasts, (reader.expires_at - datetime.now(UTC)).total_seconds())
    until = Until(loop.time() + lasts, idle_timeout)
    lines = stream_lines(node, intake, request.app.state.feed, after, direction, until)
    return CountedStream(streams, lines)


@dataclass
class OpenStreams:
    """How many log streams the node holds, each counted from its request's check."""

    count: int = 0

    def take(self) -> None:
        """A place for one more stream, or `Overloaded` (no await between the check and
        the count, so a burst of requests cannot all pass the check first)."""
        if self.count >= MAX_STREAMS:
            raise Overloaded(_RETRY_AFTER_S, f"this node holds {self.count} log streams open")
        self.count += 1

    def give_back(self) -> None:
        self.count -= 1


class CountedStream(StreamingResponse):
    """A log stream that takes its place when made and gives it back when it ends,
    however it ends: written to its end, its reader gone, or never started (a body
    that never ran has no `finally` to count on, its response's call does)."""

    def __init__(self, streams: OpenStreams, lines: AsyncIterator[bytes]) -> None:
        streams.take()
        super().__init__(lines, media_type=NDJSON, headers={"Cache-Control": "no-store"})
        self.streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.streams.give_back()


async def stream_lines(
    node: AgencyNode,
    intake: Intake,
    feed: LogFeed | None,
    after: int,
    direction: str | None,
    until: Until,
) -> AsyncIterator[bytes]:
    """The stream's body: what is there, then each commit's entries as one write."""
    clock = asyncio.get_running_loop().time
    quiet_since = alive_at = clock()
    while feed is None or not feed.closed:
        page = None if feed is None else feed.after(after, _PAGE)
        if page is None:  # older than the feed holds (or no feed): the store
            items, read_to = await intake.thread.run(node.log_items, after, _PAGE, direction)
            chunk = b"".join(_json_line(InboxItem.model_validate(i)) for i in items)
        else:
            entries, read_to = page
            wanted = [
                e
                for e in entries
                if e.forwarding is None and (direction is None or e.direction == direction)
            ]
            chunk = b"".join(item_json(node.agency_id, e) + b"\n" for e in wanted)
        now = clock()
        if chunk:
            yield chunk
            quiet_since = alive_at = now
        if read_to > after:
            after = read_to
            continue  # more may be there already
        if until.over(now, quiet_since):
            return
        if now - alive_at >= LOG_STREAM_KEEP_ALIVE_S:
            yield b"\n"
            alive_at = now
        wait = min(until.closes_at, alive_at + LOG_STREAM_KEEP_ALIVE_S) - now
        if until.idle_timeout is not None:
            wait = min(wait, quiet_since + until.idle_timeout - now)
        if feed is None:
            await asyncio.sleep(min(wait, _STORE_POLL_S))
        else:
            await feed.wait_beyond(after, max(wait, 0.0))


def _json_line(item: InboxItem) -> bytes:
    return item.model_dump_json().encode() + b"\n"
