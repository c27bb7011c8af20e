"""One running gateway: wires `Gateway` to HTTP and to its country's bus, and runs its pump.

The gateway is the gateway agency's own node (`NodeRuntime`, which receives the return
events its country's agencies address to it) plus the border: the pump reads that node's
store and posts forwardings to the peer's gateway; the door checks what the peer posts
and publishes it on the counterpart's inbox topic with the node's transport, so the
counterpart node (a process of its own, or in the same process in the embedded bus)
takes it through its inbox like any record. It never calls into another node.

Between the two gateways: mutual TLS with `tls` (this gateway's key and certificate, from
its country's CA), each side trusting exactly the certificate its federation agreement
names for the other (`peer_gateway_certificate`), as client (`_send`) and as server (the
border door, served by the caller with `pinned_peer_certificate()`). A federation with no
certificate named is refused: the border never speaks to an unpinned peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from contracts.connections import CLIENT_IDLE_S
from contracts.directory import TrustAnchor
from contracts.federation import BorderRefused
from referral_router.api.errors import install_error_handlers
from referral_router.federation.api import create_border_app, create_gateway_app
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
        tls: Path,
        poll_interval: float = 0.1,
        delivery_timeout: float = 30.0,
        registry_verify: ssl.SSLContext | bool = True,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.poll_interval = poll_interval
        self.delivery_timeout = delivery_timeout
        self.node = gateway_node
        self.tls = tls
        self._fetch = RegistryFetch(verify=registry_verify)
        self._peers: dict[str, httpx.Client] = {}  # pinned clients, by peer certificate
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
        self.border_app: FastAPI = create_border_app(self.gateway)
        self.app: FastAPI = create_gateway_app(
            self.gateway,
            self.ledger,
            gateway_node.verifier.authenticate,
            lambda: gateway_node.roster.directory,
        )
        for app in (self.border_app, self.app):
            install_error_handlers(app)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def pinned_peer_certificate(self) -> str:
        """The peer gateway's certificate as our registry's federation agreement names it:
        the only one the border door (and `_send`) accepts."""
        pem = self.trust.federation(self.gateway.peer).peer_gateway_certificate
        if not pem:
            raise BorderRefused(
                "FEDERATION",
                f"the federation with {self.gateway.peer} names no certificate for its "
                "gateway: mutual TLS cannot pin it",
            )
        return pem

    def _peer_client(self) -> httpx.Client:
        """Mutual TLS to the peer gateway: our certificate, and trust in its alone."""
        pem = self.pinned_peer_certificate()
        client = self._peers.get(pem)
        if client is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no system CAs: this one only
            ctx.load_verify_locations(cadata=pem)
            ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(str(self.tls))
            idle = httpx.Limits(keepalive_expiry=CLIENT_IDLE_S)
            client = self._peers[pem] = httpx.Client(timeout=10, verify=ctx, limits=idle)
        return client

    def _send(self, base_url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            client = self._peer_client()
        except BorderRefused as r:
            log.warning("gateway %s: %s", self.gateway.country, r.reason)
            raise PeerUnreachable(r.reason) from None
        try:
            resp = client.post(f"{base_url.rstrip('/')}/v1/federation/inbound", json=body)
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
        self._fetch.close()
        for client in self._peers.values():
            client.close()
        self.ledger.close()
