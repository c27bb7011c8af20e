"""What a gateway believes: its own registry's federation document and the peer's
directory, verified through the trust anchor our registry imported."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from contracts.directory import Directory, DirectoryError, TrustAnchor
from contracts.directory_client import DirectoryClient
from contracts.federation import (
    BorderRefused,
    FederationDocument,
    FederationError,
    PeerFederation,
    verify_federation,
)

log = logging.getLogger("nrm.gateway")

Fetch = Callable[[str], bytes]


class PeerUnreachable(Exception):
    """A registry or gateway did not answer: retry later, nothing is lost or refused."""


class Trust(Protocol):
    """What the gateway and the nodes behind it ask of a country's beliefs."""

    def federation(self, peer: str) -> PeerFederation: ...

    def peer_document(self, fed: PeerFederation) -> FederationDocument: ...

    def peer_directory(self, fed: PeerFederation) -> Directory: ...


class PeerTrust:
    """The gateway's beliefs: its own registry's federation document (own anchor, read
    fresh for every event, so ending a federation takes effect at once), the peer's
    document and directory (verified with the anchor our registry imported)."""

    def __init__(
        self,
        country: str,
        own_anchor: TrustAnchor,
        own_registry_url: str,
        fetch: Fetch,
        directory_max_age: timedelta = timedelta(seconds=5),
    ) -> None:
        self.country = country
        self.own_anchor = own_anchor
        self.own_registry_url = own_registry_url.rstrip("/")
        self.fetch = fetch
        self.directory_max_age = directory_max_age
        self._clients: dict[tuple[str, str], DirectoryClient] = {}
        self._last: dict[str, Directory] = {}
        self._lock = threading.Lock()

    def own_document(self) -> FederationDocument:
        raw = self.fetch(f"{self.own_registry_url}/v1/federation")
        return verify_federation(raw, self.own_anchor)

    def federation(self, peer: str) -> PeerFederation:
        """Our registry's federation with `peer`, or BorderRefused if there is none."""
        fed = self.own_document().peer(peer)
        if fed is None:
            raise BorderRefused(
                "FEDERATION",
                f"{self.country}'s registry holds no trust anchor for {peer}: there is no "
                f"federation with {peer} (never agreed, or ended)",
            )
        return fed

    def peer_document(self, fed: PeerFederation) -> FederationDocument:
        raw = self.fetch(f"{fed.registry_url.rstrip('/')}/v1/federation")
        try:
            return verify_federation(raw, fed.anchor)
        except FederationError as exc:
            raise BorderRefused("FEDERATION", f"{fed.peer}'s federation document: {exc}") from None

    def peer_directory(self, fed: PeerFederation) -> Directory:
        key = (fed.peer, fed.anchor.public_key)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                url = f"{fed.registry_url.rstrip('/')}/v1/directory"
                client = DirectoryClient(
                    lambda: self.fetch(url), fed.anchor, refresh_every=self.directory_max_age
                )
                self._clients[key] = client
        try:
            directory = client.current()
        except DirectoryError as exc:
            raise PeerUnreachable(f"{fed.peer}'s directory: {exc}") from exc
        self._last[fed.peer] = directory
        return directory

    def last_directory(self, country: str) -> Directory | None:
        """The last verified directory of `country`: opens what was received before."""
        return self._last.get(country)
