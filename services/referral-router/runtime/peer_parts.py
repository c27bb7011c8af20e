"""A competent authority's node asking the other nodes of its country for their part of
a disclosure record, each with a one-time token its own agency signs for that node."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from contracts.agency_token import issue_token
from contracts.directory import KeyUse
from contracts.endpoints import router_audience
from contracts.keystore import AgencyKeys


class PeerParts:
    """`(agency, case) -> part`: GET that agency's /v1/cases/{case}/disclosures."""

    def __init__(
        self,
        agency_id: str,
        keys: AgencyKeys,
        peers: Callable[[], Mapping[str, str]],
        timeout: float = 10.0,
    ) -> None:
        self.agency_id = agency_id
        self.keys = keys
        self.peers = peers
        self.timeout = timeout

    def __call__(self, agency: str, case: str) -> Mapping[str, Any]:
        url = self.peers().get(agency)
        if url is None:
            raise LookupError(f"no router URL for {agency}")
        pair = self.keys.current(KeyUse.SIGNING)
        token = issue_token(self.agency_id, pair.key_id, pair.ed25519(), router_audience(agency))
        r = httpx.get(
            f"{url.rstrip('/')}/v1/cases/{case}/disclosures",
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.timeout,
        )
        r.raise_for_status()
        part: Mapping[str, Any] = r.json()
        if part.get("agency") != agency or part.get("case") != case:
            raise ValueError(f"the node at {url} answered for another agency or case")
        return part
