"""An ASGI app served by `serving.server` (the services' own server: TLS, body limit,
keep-alive) on a free port of 127.0.0.1, for as long as a test needs it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from nrm import serving

#: httpx's own idle expiry: how long a client without `CLIENT_IDLE_S` keeps a connection.
HTTPX_IDLE_S = httpx.Limits().keepalive_expiry or 5.0


@asynccontextmanager
async def served(app: Any, tls: serving.ServerTls | None = None, **kw: Any) -> AsyncIterator[int]:
    """The port `app` answers on, until the block ends (then the server stops)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serving.server(app, "127.0.0.1", port, tls, **kw)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        await task


async def body_of(receive: Any) -> bytes:
    """The whole body of the request an ASGI app is answering."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body
