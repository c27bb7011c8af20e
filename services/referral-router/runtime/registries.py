"""Asking registries over HTTP, as the federation's beliefs need: our own registry's
federation document, the peer registry's document and directory."""

from __future__ import annotations

import ssl

import httpx

from referral_router.federation.trust import PeerUnreachable


class RegistryFetch:
    """`PeerTrust`'s fetch: a GET whose failure is `PeerUnreachable` (retry later, nothing
    refused), over one connection pool shared by a node's or a gateway's threads."""

    def __init__(self, verify: ssl.SSLContext | str | bool = True, timeout: float = 10.0) -> None:
        self._http = httpx.Client(timeout=timeout, verify=verify)

    def __call__(self, url: str) -> bytes:
        try:
            resp = self._http.get(url)
        except httpx.HTTPError as exc:
            raise PeerUnreachable(f"{url}: {type(exc).__name__}") from exc
        if resp.status_code >= 400:
            raise PeerUnreachable(f"{url}: HTTP {resp.status_code}")
        return resp.content

    def close(self) -> None:
        self._http.close()
