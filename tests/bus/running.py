"""A real embedded bus in a background thread, for tests that speak HTTP to it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from contracts.sealing import prove_unopenable
from nrm.embedded import DEMO_AGENCIES, AgencySpec, CountryBus

T = TypeVar("T")


class RunningBus:
    """Owns an event loop thread running a CountryBus; sync helpers for tests."""

    def __init__(
        self, data_dir: Path, agencies: tuple[AgencySpec, ...] = DEMO_AGENCIES, **kw: Any
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.bus = CountryBus("XA", data_dir, agencies=agencies, **kw)
        self.run(self.bus.start(), timeout=120)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def client(self, agency: str) -> httpx.Client:
        bus = self.bus

        def auth(request: httpx.Request) -> None:
            request.headers["Authorization"] = f"Bearer {bus.token(agency)}"

        return httpx.Client(base_url=bus.urls[agency], timeout=30, event_hooks={"request": [auth]})

    def prove_nothing_opens(self, envelopes: list[Any]) -> None:
        """Every key material left anywhere (case key stores, long-term keys, master
        keys) fails to open any of `envelopes`."""
        nodes = self.bus.nodes
        sources = [n.case_keys.get for n in nodes.values()]
        candidates: list[bytes] = []
        for agency, node in nodes.items():
            for pair in node.seal.keys.pairs:
                raw = pair.private
                candidates += [raw[i : i + 32] for i in range(0, len(raw), 32)]
            candidates.append(self.bus.keychain.master_key(agency))
        for env in envelopes:
            prove_unopenable(env, key_sources=sources, candidate_keys=candidates)

    def settle(self) -> None:
        self.run(self.bus.settle(timeout=20), timeout=30)

    def stop(self) -> None:
        try:
            self.run(self.bus.stop(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@contextmanager
def running_bus(data_dir: Path, **kw: Any) -> Iterator[RunningBus]:
    bus = RunningBus(data_dir, **kw)
    try:
        yield bus
    finally:
        bus.stop()
