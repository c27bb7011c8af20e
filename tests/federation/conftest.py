"""Two federated countries running in a background thread, shared by a module's tests."""

from __future__ import annotations

import asyncio
import io
import os
import ssl
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from contracts.directory import KeyUse
from contracts.federation import stamp_delivery
from contracts.sealing.keys import b64d
from nrm.federation_demo import GATEWAY, FederatedBuses, play
from nrm.pki import leaf_pem

T = TypeVar("T")


class RunningPair:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.pair = FederatedBuses(data_dir)
        self.run(self.pair.start(), timeout=180)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def play(self, steps: Any = None, case: str = "") -> str:
        return self.run(play(self.pair, io.StringIO(), steps, case), timeout=180)

    def client(self, country: str, agency: str) -> httpx.Client:
        bus = self.pair.buses[country]

        def auth(request: httpx.Request) -> None:
            request.headers["Authorization"] = f"Bearer {bus.token(agency)}"

        return httpx.Client(base_url=bus.urls[agency], timeout=30, event_hooks={"request": [auth]})

    def case(self, country: str, agency: str, case: str) -> httpx.Response:
        with self.client(country, agency) as c:
            return c.get(f"/v1/cases/{case}")

    def dead_letters(self, country: str, agency: str) -> list[dict[str, Any]]:
        with self.client(country, agency) as c:
            return list(c.get("/v1/dead-letters").json()["items"])

    def settle(self) -> None:
        self.run(self.pair.settle(), timeout=60)

    def tls_as(self, country: str | None, door: str) -> ssl.SSLContext:
        """A TLS context for `door`'s border: trusting its certificate alone, and
        presenting `country`'s gateway certificate (None: no client certificate)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=leaf_pem(self.pair.gateway_tls[door]))
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        if country is not None:
            ctx.load_cert_chain(str(self.pair.gateway_tls[country]))
        return ctx

    def border(self, door: str, as_country: str | None) -> httpx.Client:
        """A client of `door`'s border door, as `as_country`'s gateway would connect."""
        return httpx.Client(
            base_url=self.pair.gateway_urls[door],
            timeout=30,
            verify=self.tls_as(as_country, door),
        )

    def stamped(self, body: dict[str, Any], by: str, at: datetime | None = None) -> dict[str, Any]:
        """`body` with a stamp signed by `by`'s gateway key (its real, registered key)."""
        keys = self.pair.buses[by].agency_keys[GATEWAY[by]].current(KeyUse.SIGNING)
        stamp = stamp_delivery(
            b64d(body["forwarding"]),
            GATEWAY[by],
            keys.key_id,
            keys.ed25519(),
            at or datetime.now(UTC),
            os.urandom(16),
        )
        return {**body, "stamp": stamp.model_dump(mode="json")}

    def stop(self) -> None:
        try:
            self.run(self.pair.stop(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPair]:
    running = RunningPair(tmp_path_factory.mktemp("federation"))
    try:
        yield running
    finally:
        running.stop()
