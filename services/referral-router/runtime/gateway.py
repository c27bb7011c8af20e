"""One running gateway: wires `Gateway` to HTTP and to its country's bus, and runs its pump.

The gateway is the gateway agency's own node (`NodeRuntime`, which receives the return
events its country's agencies address to it) plus the border: the pump reads that node's
store and posts forwardings to the peer's gateway; the door checks what the peer posts
and publishes it on the counterpart's inbox topic with the node's transport, so the
counterpart node (a process of its own, or in the same process in the embedded bus)
takes it through its inbox like any record. It never calls into another node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from contracts.directory import TrustAnchor
from referral_router.api.errors import install_error_handlers
from referral_router.federation.api import create_gateway_app
from referral_router.federation.gateway import Gateway
from referral_router.federation.ledgers import CrossingLedger
from referral_router.federation.trust import PeerTrust, PeerUnreachable
from referral_router.runtime.node import NodeRuntime
from referral_router.runtime.registries import RegistryFetch
from referral_router.transport.base import DeliveryTimeoutError, Message, Position

log = logging.getLogger("nrm.gateway")


class GatewayRuntime:
    """Gateway of `country` towards `peer`, on the gateway agency's node."""

    def __init__(
        self,
        country: str,
        peer: str,
        folder: Path,
        registry_url: str,
        anchor: TrustAnchor,
        gateway_node: NodeRuntime,
        poll_interval: float = 0.1,
        delivery_timeout: float = 30.0,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.poll_interval = poll_interval
        self.delivery_timeout = delivery_timeout
        self.node = gateway_node
        self._http = httpx.Client(timeout=10)
        self._fetch = RegistryFetch()
        self.trust = PeerTrust(country, anchor, registry_url, self._fetch)
        self.ledger = CrossingLedger(folder / "crossings.db")
        self.gateway = Gateway(
            country,
            peer,
            gateway_node.store,
            gateway_node.seal,
            self.trust,
            self._send,
            self._deliver,
            self.ledger,
        )
        self.app: FastAPI = create_gateway_app(self.gateway, self.ledger)
        install_error_handlers(self.app)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _send(self, base_url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            resp = self._http.post(f"{base_url.rstrip('/')}/v1/federation/inbound", json=body)
        except httpx.HTTPError as exc:
            raise PeerUnreachable(f"{base_url}: {type(exc).__name__}") from exc
        try:
            answer = resp.json()
        except ValueError:
            answer = {"reason": resp.text[:200]}
        return resp.status_code, answer if isinstance(answer, dict) else {"reason": str(answer)}

    def _deliver(self, message: Message) -> Position:
        """Publish from the door's worker thread on the gateway node's transport, whose
        loop is the one the gateway started on."""
        if self._loop is None:
            raise RuntimeError("the gateway is not started")
        future = asyncio.run_coroutine_threadsafe(
            self.node.transport.publish_many([message]), self._loop
        )
        try:
            (position,) = future.result(self.delivery_timeout)
        except TimeoutError:
            future.cancel()
            raise DeliveryTimeoutError(f"not acknowledged in {self.delivery_timeout}s") from None
        return position

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self.run(), name=f"gateway-{self.gateway.country}")

    async def run(self) -> None:
        """The pump until stop(): failures are logged and retried, never fatal."""
        while not self._stopping.is_set():
            carried = 0
            try:
                carried = await asyncio.to_thread(self.gateway.pump)
            except Exception:
                log.exception("gateway %s pump failed; retrying", self.gateway.country)
                await asyncio.sleep(0.5)
            if not carried:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_interval)

    def pending(self) -> int:
        return self.gateway.pending()

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=10)
        self._http.close()
        self._fetch.close()
        self.ledger.close()
