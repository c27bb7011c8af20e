"""One running gateway: wires `Gateway` to HTTP, to the country's nodes, and runs its pump.

The gateway is its own small component beside a country's nodes: it reads its gateway
node's store, talks HTTP to its own registry, the peer's registry and the peer's gateway,
and delivers into the counterpart nodes' stores (same host in the embedded bus).

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from contracts.directory import TrustAnchor
from contracts.federation import BorderRefused
from referral_router.api.errors import install_error_handlers
from referral_router.federation.api import create_border_app, create_gateway_app
from referral_router.federation.gateway import Gateway
from referral_router.federation.inbound import CrossBorder, FederatedInbox
from referral_router.federation.ledgers import CrossingLedger
from referral_router.federation.seal import FederatedSeal
from referral_router.federation.trust import PeerTrust, PeerUnreachable
from referral_router.runtime.node import NodeRuntime

log = logging.getLogger("nrm.gateway")


class GatewayRuntime:
    """Gateway of `country` towards `peer`, over the nodes of `country`."""

    def __init__(
        self,
        country: str,
        peer: str,
        folder: Path,
        registry_url: str,
        anchor: TrustAnchor,
        gateway_node: NodeRuntime,
        nodes: Mapping[str, NodeRuntime],
        tls: Path,
        poll_interval: float = 0.1,
        registry_verify: ssl.SSLContext | bool = True,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.poll_interval = poll_interval
        self.tls = tls
        self._http = httpx.Client(timeout=10, verify=registry_verify)
        self._peers: dict[str, httpx.Client] = {}  # pinned clients, by peer certificate
        self.trust = PeerTrust(country, anchor, registry_url, self._fetch)
        self.ledger = CrossingLedger(folder / "crossings.db")
        inboxes: dict[str, FederatedInbox] = {}
        for agency, rt in nodes.items():
            if rt is gateway_node:
                continue
            # forwardings from the peer go where the node keeps those of its own country
            rt.passed_on.foreign = CrossBorder(agency, self.trust, rt.forwardings)
            inboxes[agency] = FederatedInbox(rt.reception)
            rt.node.sealer = FederatedSeal(rt.seal, rt.forwardings, self.trust)
        self.gateway = Gateway(
            country,
            peer,
            gateway_node.store,
            gateway_node.seal,
            self.trust,
            self._send,
            inboxes,
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

    def _fetch(self, url: str) -> bytes:
        try:
            resp = self._http.get(url)
        except httpx.HTTPError as exc:
            raise PeerUnreachable(f"{url}: {type(exc).__name__}") from exc
        if resp.status_code >= 400:
            raise PeerUnreachable(f"{url}: HTTP {resp.status_code}")
        return resp.content

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
            client = self._peers[pem] = httpx.Client(timeout=10, verify=ctx)
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

    def start(self) -> None:
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
        for client in self._peers.values():
            client.close()
        self.ledger.close()
