"""The registry's side of federation: imported peer anchors and published counterparts.

One aggregate holds every federation of this country, so each change (a peer imported,
its counterparts changed, a peer removed) is an audited registry event with the operator
and the reason (R7 applied to the registry). The document gateways believe is projected
from it and signed with the registry's directory key (see contracts.federation).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.directory import AgencyStatus, TrustAnchor
from contracts.federation import (
    CounterpartGrant,
    FederationDocument,
    PeerFederation,
    SignedFederation,
    sign_federation,
)
from contracts.vocabulary import Role
from registry.application import Registry, RegistryConflict, RegistryError

FEDERATION_ID = uuid5(NAMESPACE_URL, "nrm:registry:federation")


class FederationNotFound(RegistryError):
    code = "not-found"


class FederationRecord(Aggregate):
    """Every federation of this country's bus, keyed by peer country."""

    @staticmethod
    def create_id() -> UUID:
        return FEDERATION_ID

    @event("Opened")
    def __init__(self, by: str) -> None:
        self.peers: dict[str, dict[str, Any]] = {}

    @event("PeerImported")
    def import_peer(self, federation: dict[str, Any], reason: str, by: str) -> None:
        self.peers[federation["peer"]] = dict(federation)

    @event("PeerRemoved")
    def remove_peer(self, peer: str, reason: str, by: str) -> None:
        self.peers.pop(peer, None)


class PeerInput(BaseModel):
    """What the operator imports: the peer's anchor and addresses, and our counterparts."""

    model_config = ConfigDict(extra="forbid")

    anchor: TrustAnchor
    registry_url: str = Field(max_length=2048)
    gateway_url: str = Field(max_length=2048)
    peer_gateway: str
    gateway: str
    counterparts: list[CounterpartGrant] = Field(default_factory=list)
    peer_gateway_certificate: str | None = Field(
        default=None,
        max_length=16384,
        description="The peer gateway's TLS certificate (PEM), pinned by our gateway.",
    )
    reason: str = Field(default="federation agreed", min_length=1, max_length=1000)


class FederationBook:
    """Commands and the signed projection, over the registry's own event store."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _record(self) -> FederationRecord | None:
        try:
            agg = self.registry.repository.get(FEDERATION_ID)
        except AggregateNotFoundError:
            return None
        assert isinstance(agg, FederationRecord)
        return agg

    def _save(self, record: FederationRecord) -> None:
        try:
            self.registry.save(record)
        except IntegrityError:
            raise RegistryConflict("concurrent change to the federation; retry") from None

    def import_peer(self, peer: str, body: PeerInput, by: str) -> PeerFederation:
        """Check our side of the agreement against our own directory, then record it."""
        country = self.registry.config.country
        if peer == country:
            raise RegistryConflict("a country does not federate with itself")
        try:
            federation = PeerFederation(peer=peer, **body.model_dump(exclude={"reason"}))
        except ValidationError as exc:
            raise RegistryError(f"federation with {peer}: {exc.errors()[0]['msg']}") from None
        directory = self.registry.directory()
        for agency in (federation.gateway, *(c.agency for c in federation.counterparts)):
            record = directory.agency(agency)
            if record is None or record.status is not AgencyStatus.ACTIVE:
                raise RegistryConflict(f"{agency!r} is not an active agency of {country}")
        gateway = directory.agency(federation.gateway)
        if gateway is not None and Role.COUNTERPART not in gateway.roles:
            # The gateway opens return events under our own agreement as a counterpart.
            raise RegistryConflict(f"gateway {federation.gateway!r} needs the counterpart role")
        record = self._record()
        if record is None:
            record = FederationRecord(by=by)
        data = federation.model_dump(mode="json")
        if record.peers.get(peer) == data:
            raise RegistryConflict(f"federation with {peer} unchanged")
        record.import_peer(federation=data, reason=body.reason, by=by)
        self._save(record)
        return federation

    def remove_peer(self, peer: str, reason: str, by: str) -> None:
        """End the federation: the anchor goes, and both gateways refuse from now on."""
        record = self._record()
        if record is None or peer not in record.peers:
            raise FederationNotFound(f"no federation with {peer}")
        record.remove_peer(peer=peer, reason=reason, by=by)
        self._save(record)

    def document(self) -> FederationDocument:
        record = self._record()
        config = self.registry.config
        peers: tuple[PeerFederation, ...] = ()
        serial, issued = 0, datetime.fromtimestamp(0, UTC)
        if record is not None:
            peers = tuple(PeerFederation.model_validate(p) for _, p in sorted(record.peers.items()))
            serial, issued = record.version, record.modified_on
        return FederationDocument(
            country=config.country,
            serial=serial,
            issued_at=issued,
            registry_key_id=config.signing_key_id,
            peers=peers,
        )

    def signed(self) -> SignedFederation:
        return sign_federation(self.document(), self.registry.config.signing_key)
