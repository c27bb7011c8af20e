"""A server keeps an idle connection open longer than a client's own idle expiry, so
the client is the one that closes it: with equal timeouts (uvicorn's 5 s, httpx's 5 s) a
request sent as the server closes is lost ("Server disconnected without sending a
response"), as the bench's overload row once saw."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from contracts.connections import SERVER_IDLE_S
from tests.network.served import HTTPX_IDLE_S, served


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def _get(conn: socket.socket) -> bytes:
    """One request on a kept-alive connection; its whole response (b"" if closed)."""
    conn.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    data = b""
    while not data.endswith(b"\r\n\r\nok"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


async def test_an_idle_connection_outlives_the_clients_expiry() -> None:
    assert HTTPX_IDLE_S < SERVER_IDLE_S
    async with served(_hello) as port:
        conn = socket.create_connection(("127.0.0.1", port))
        try:
            first = await asyncio.to_thread(_get, conn)
            assert first.startswith(b"HTTP/1.1 200")
            await asyncio.sleep(HTTPX_IDLE_S + 0.5)  # idle past the client's own expiry
            second = await asyncio.to_thread(_get, conn)
            assert second.startswith(b"HTTP/1.1 200"), "the server closed the idle connection"
        finally:
            conn.close()
