"""One lane of the loader's traffic: a kept-open HTTP/1.1 connection to the node, h11
over an asyncio (TLS) stream.

Why not httpx, as agency systems use (`nrm_client`): the loader plays hundreds of agency
clients on the same two cores as the bus it measures, and every CPU-second it spends is
taken from the bus. Profiled at saturation, httpx's layers above the HTTP/1.1 state
machine (client, pool, anyio streams, response streams, cookies, URL merging) took
two thirds of the loader's CPU, ~1.4 ms per request. h11 is the state machine httpx
itself runs on; what it leaves out (redirects, cookies, pools, chunked uploads) a lane
never needs.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

import h11

from contracts.connections import CLIENT_IDLE_S

#: Bytes read from the stream at a time.
_READ = 65536


class LaneClosed(Exception):
    """The node closed the connection, or it broke, before answering."""


class Lane:
    """A connection to `base_url`, opened on first use, and again after the node closed it
    or it sat idle `CLIENT_IDLE_S` (before the node would close it: `contracts.connections`);
    one request at a time, as on any HTTP/1.1 connection."""

    def __init__(self, base_url: str, tls: ssl.SSLContext | None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = tls if parts.scheme == "https" else None
        self._authority = parts.netloc.encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._http = h11.Connection(h11.CLIENT)
        self._used = 0.0

    async def open(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._writer is not None and now - self._used > CLIENT_IDLE_S:
            self.close()
        self._used = now
        if self._writer is not None:
            return
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.tls, server_hostname=self.host if self.tls else None
        )
        self._http = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(
        self,
        method: str,
        target: str,
        body: Any = None,
        headers: tuple[tuple[str, str], ...] = (),
        timeout: float = 60.0,
    ) -> tuple[int, dict[str, str], Any]:
        """Status, headers (lower-case names) and body of one exchange: the body parsed
        when it is JSON, else its text (a proxy's or a server's error page). No answer
        within `timeout` seconds (connecting included) is `LaneClosed`, as a hang-up is."""
        try:
            async with asyncio.timeout(timeout):
                return await self._exchange(method, target, body, headers)
        except TimeoutError:
            self.close()
            raise LaneClosed(f"no answer within {timeout} s") from None

    async def _exchange(
        self, method: str, target: str, body: Any, headers: tuple[tuple[str, str], ...]
    ) -> tuple[int, dict[str, str], Any]:
        await self.open()
        assert self._reader is not None and self._writer is not None
        content = b"" if body is None else json.dumps(body).encode()
        head = [("host", self._authority), ("content-length", str(len(content))), *headers]
        if body is not None:
            head.append(("content-type", "application/json"))
        http = self._http
        status, answer, parts = 0, {}, []
        try:
            out = http.send(h11.Request(method=method, target=target, headers=head)) or b""
            if content:
                out += http.send(h11.Data(data=content)) or b""
            out += http.send(h11.EndOfMessage()) or b""
            self._writer.write(out)
            while True:
                event = http.next_event()
                if event is h11.NEED_DATA:
                    http.receive_data(await self._reader.read(_READ))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    answer = {k.decode().lower(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    parts.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise ConnectionResetError("end of stream")
        except (OSError, h11.ProtocolError) as exc:
            self.close()
            why = "cut off its answer" if status else "closed the connection before answering"
            raise LaneClosed(f"the node {why}: {exc or type(exc).__name__}") from exc
        if http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()
        else:  # the node asked to close (or did): the next request opens anew
            self.close()
        raw = b"".join(parts)
        if answer.get("content-type", "").endswith("json") and raw:
            return status, answer, json.loads(raw)
        return status, answer, raw.decode(errors="replace")
