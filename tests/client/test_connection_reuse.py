"""An agency that sends a referral every few seconds keeps one connection to its node:
with httpx's default idle expiry (5 s) nearly every such request would pay a new TLS
handshake, on the agency's side and on the node's."""

from __future__ import annotations

import asyncio
from typing import Any

from contracts.connections import CLIENT_IDLE_S, SERVER_IDLE_S
from contracts.keystore import generate_agency_keys
from nrm_client import AgencyClient, Credentials
from tests.network.served import HTTPX_IDLE_S, served


def test_clients_close_before_servers_and_outlast_httpx_default() -> None:
    assert HTTPX_IDLE_S < CLIENT_IDLE_S < SERVER_IDLE_S


async def test_the_client_library_reuses_its_connection_after_a_quiet_gap() -> None:
    peers: list[Any] = []

    async def node(scope: dict[str, Any], receive: Any, send: Any) -> None:
        peers.append(scope["client"])  # (host, port) of the connection the request came on
        body = b"{}"
        headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async with served(node) as port:
        client = AgencyClient(
            f"http://127.0.0.1:{port}", Credentials(generate_agency_keys("border-police"))
        )
        try:
            await asyncio.to_thread(client.request, "GET", "/v1/health")
            await asyncio.sleep(HTTPX_IDLE_S + 0.5)
            await asyncio.to_thread(client.request, "GET", "/v1/health")
        finally:
            client.close()
    assert len(peers) == 2
    assert peers[0] == peers[1], "a new connection (and TLS handshake) after a 5.5 s gap"
