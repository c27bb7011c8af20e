"""The loader's lane (h11 over a kept-open TLS stream): what it reports is what the node
answered, it keeps one connection while the node lets it, opens a new one when the node
closes, and a node that hangs up without answering is an error, never a made-up status."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from nrm import pki, serving
from nrm.bench.lane import Lane, LaneClosed
from tests.network.served import body_of, served


async def _node(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes the request: its body, its connection's port, and one header; answers 503
    with Retry-After on /busy, closes after answering on /last, hangs up on /drop, says
    nothing for 3 s on /silent and fails on /fail."""
    body = await body_of(receive)
    if scope["path"] == "/drop":  # a promised body never sent: the connection is cut
        start = {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-length", b"99")],
        }
        await send(start)
        raise RuntimeError("hang up")
    if scope["path"] == "/silent":
        await asyncio.sleep(3)  # answers nothing within the client's patience
    if scope["path"] == "/fail":
        raise RuntimeError("a bug")  # uvicorn answers 500 in text
    echo = {
        "port": scope["client"][1],
        "body": json.loads(body) if body else None,
        "authorization": dict(scope["headers"]).get(b"authorization", b"").decode(),
    }
    data = json.dumps(echo).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    status = 201
    if scope["path"] == "/busy":
        status, headers = 503, [*headers, (b"retry-after", b"2")]
    if scope["path"] == "/last":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[pki.LocalCA, Path]:
    ca = pki.LocalCA.init(tmp_path_factory.mktemp("ca"), "XA")
    return ca, ca.issue(pki.service("probe"))


async def test_a_lane_reports_the_answer_and_keeps_its_connection(tls: Any) -> None:
    ca, cert = tls
    async with served(_node, serving.ServerTls(cert)) as port:
        lane = Lane(f"https://127.0.0.1:{port}", serving.verify_context(ca.ca_file))
        try:
            status, _, first = await lane.request(
                "POST", "/v1/cases", {"a": 1}, (("authorization", "Bearer t"),)
            )
            assert status == 201
            assert first["body"] == {"a": 1} and first["authorization"] == "Bearer t"
            status, headers, second = await lane.request("POST", "/busy", {"b": 2})
            assert status == 503 and headers["retry-after"] == "2"
            assert second["port"] == first["port"], "a new connection for the second request"
            # the node closes after this answer: the next request opens a new connection
            _, _, last = await lane.request("POST", "/last", {})
            _, _, after = await lane.request("POST", "/v1/cases", {})
            assert last["port"] == first["port"] and after["port"] != first["port"]
        finally:
            lane.close()


async def test_a_node_that_hangs_up_is_an_error(tls: Any) -> None:
    ca, cert = tls
    async with served(_node, serving.ServerTls(cert)) as port:
        lane = Lane(f"https://127.0.0.1:{port}", serving.verify_context(ca.ca_file))
        try:
            with pytest.raises(LaneClosed, match="cut off its answer"):
                await lane.request("POST", "/drop", {})
            status, _, _ = await lane.request("POST", "/v1/cases", {})
            assert status == 201  # the lane opened a new connection
            status, _, text = await lane.request("POST", "/fail", {})
            assert status == 500 and text == "Internal Server Error"
            with pytest.raises(LaneClosed, match=r"no answer within 0\.5 s"):
                await lane.request("POST", "/silent", {}, timeout=0.5)
        finally:
            lane.close()


async def test_a_lane_refuses_a_node_it_does_not_trust(tls: Any, tmp_path: Path) -> None:
    _, cert = tls
    other = pki.LocalCA.init(tmp_path / "other", "XA")
    async with served(_node, serving.ServerTls(cert)) as port:
        lane = Lane(f"https://127.0.0.1:{port}", serving.verify_context(other.ca_file))
        with pytest.raises(OSError):
            await lane.request("POST", "/v1/cases", {})


async def test_a_connection_closed_before_any_answer_is_an_error_and_reopened() -> None:
    accepted = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await reader.read(1)  # the request has begun: close without a byte of answer
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    lane = Lane(f"http://127.0.0.1:{port}", None)
    try:
        for _ in range(2):
            with pytest.raises(LaneClosed, match="closed the connection before answering"):
                await lane.request("POST", "/v1/cases", {})
        assert accepted == 2  # the second request came on a new connection
    finally:
        lane.close()
        server.close()
        await server.wait_closed()
