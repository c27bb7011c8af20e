"""An HTTP request from the bus's own async clients (the notifier following every node's
log, nodes asking the registry, the bench's loader) imports nothing: httpcore asks which
async library runs on every pool request, and without sniffio installed each ask was a
failing import, a search of the whole path (~110 µs), several times per request."""

from __future__ import annotations

import asyncio
import importlib.abc
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import httpx

from tests.network.served import served


class _ImportsSeen(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        self.names.append(fullname)
        return None


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def test_a_request_imports_nothing() -> None:
    seen = _ImportsSeen()
    async with (
        served(_ok) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        assert (await client.get("/")).status_code == 200  # whatever loads once, now
        sys.meta_path.insert(0, seen)
        try:
            answers = await asyncio.gather(*(client.get("/") for _ in range(20)))
        finally:
            sys.meta_path.remove(seen)
    assert [a.status_code for a in answers] == [200] * 20
    assert seen.names == [], f"{len(seen.names)} imports attempted: {sorted(set(seen.names))}"
