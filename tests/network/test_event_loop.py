"""Every service process runs on uvloop (`serving.run`), the standard loop when
`NRM_EVENT_LOOP=asyncio` says so, and refuses a loop it does not know before it starts
anything. What runs on it is the whole stack: HTTPS with the country's CA, a request
answered, a body refused (the topology tests run every piece this way)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop

from nrm import pki, serving
from tests.network.served import body_of, served


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_a_service_runs_on_uvloop_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(serving.EVENT_LOOP_ENV, raising=False)
    assert serving.run(_loop_type()) is uvloop.Loop
    monkeypatch.setenv(serving.EVENT_LOOP_ENV, "asyncio")
    standard = serving.run(_loop_type())
    assert not issubclass(standard, uvloop.Loop)
    assert issubclass(standard, asyncio.BaseEventLoop)


def test_an_unknown_loop_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[bool] = []

    async def main() -> None:
        ran.append(True)

    monkeypatch.setenv(serving.EVENT_LOOP_ENV, "tokio")
    with pytest.raises(ValueError, match="NRM_EVENT_LOOP='tokio': one of uvloop, asyncio"):
        serving.run(main())
    assert ran == []


async def _echo_length(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = await body_of(receive)
    answer = str(len(body)).encode()
    headers = [(b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


async def _serve_and_ask(ca: pki.LocalCA, cert: Path) -> tuple[int, str, int]:
    async with served(_echo_length, serving.ServerTls(cert), max_body=1000) as port:
        verify = serving.verify_context(ca.ca_file)
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=verify) as c:
            small = await c.post("/", content=b"x" * 600)
            large = await c.post("/", content=b"x" * 1001)
        return small.status_code, small.text, large.status_code


def test_https_on_uvloop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(serving.EVENT_LOOP_ENV, raising=False)
    ca = pki.LocalCA.init(tmp_path / "ca", "XA")
    cert = ca.issue(pki.service("probe"))
    assert serving.run(_serve_and_ask(ca, cert)) == (200, "600", 413)
