"""Opening events that arrived across the border: through the forwarding this node got."""

from __future__ import annotations

import logging
from typing import Any

from contracts.directory import Directory
from contracts.envelope import Envelope
from contracts.events import categories_of
from contracts.federation import BorderRefused
from contracts.sealing import (
    SealingError,
    Withheld,
    open_envelope,
    parse_forwarding,
)
from contracts.sealing.core import payload_model
from contracts.vocabulary import DataCategory
from referral_router.federation.trust import PeerTrust, PeerUnreachable
from referral_router.sealing.forwardings import ForwardingStore
from referral_router.sealing.node_seal import NodeSeal, recorded_lookup

log = logging.getLogger("nrm.gateway")


class FederatedSeal:
    """A node's sealer that also opens events received across the border.

    Installed as `AgencyNode.sealer` on the nodes of a federated country: events that
    arrived by forwarding from a peer country are opened through their forwarding (the
    wraps this node got, believed through the peer's directory), everything else goes to
    the node's own `NodeSeal` unchanged."""

    def __init__(self, inner: NodeSeal, forwardings: ForwardingStore, trust: PeerTrust) -> None:
        self.inner = inner
        self.forwardings = forwardings
        self.trust = trust

    def seal(self, envelope: Envelope, payload: Any, entitlements: Any) -> Envelope:
        return self.inner.seal(envelope, payload, entitlements)

    def keep_new_keys(self) -> None:
        self.inner.keep_new_keys()

    def erase(self, case: str) -> int:
        """The case keys, and the forwardings kept beside the case's envelopes."""
        self.forwardings.delete_case(case)
        return self.inner.erase(case)

    def passed_on_by(self, envelope: Envelope) -> str | None:
        return self.inner.passed_on_by(envelope)

    def open(self, envelope: Envelope) -> dict[str, Any]:
        data = self.forwardings.get(str(envelope.id), self.inner.agency_id)
        if data is None or envelope.country == self.inner.roster.directory.country:
            return self.inner.open(envelope)  # its own, or passed on within the country
        fw = parse_forwarding(data)
        directory = self._directory(fw.original.country)
        if directory is not None:
            try:
                opened = open_envelope(
                    fw, self.inner.agency_id, self.inner.case_keys.get, recorded_lookup(directory)
                )
                return opened.to_json()
            except SealingError as exc:
                log.warning("cannot open forwarded event %s: %s", envelope.id, exc)
        return _all_withheld(envelope)

    def _directory(self, country: str) -> Directory | None:
        """The peer's last verified directory; after a restart, asked afresh (through the
        federation our registry publishes), or None while it cannot be had."""
        known = self.trust.last_directory(country)
        if known is not None:
            return known
        try:
            return self.trust.peer_directory(self.trust.federation(country))
        except (BorderRefused, PeerUnreachable) as exc:
            log.warning("no directory of %s to open forwarded events: %s", country, exc)
            return None


def _all_withheld(envelope: Envelope) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, cat in categories_of(payload_model(envelope)).items():
        if cat is DataCategory.OPERATIONAL:
            out[name] = envelope.operational.get(name)
        else:
            out[name] = Withheld(cat, "key-unavailable").to_json()
    return out
