"""The registry's aggregates: agencies and the data-sharing agreement.

Every change is an event with the operator who made it and why, so the registry's own
history is an audit trail (R7 applied to the registry). Event attributes are plain JSON
values (the wire form of contracts.directory records) so the stored events read the
same in SQLite and PostgreSQL and never depend on Python class layouts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from contracts.directory import AgencyRecord, AgencyStatus, KeyStatus


def agency_aggregate_id(agency_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"nrm:registry:agency:{agency_id}")


AGREEMENT_ID = uuid5(NAMESPACE_URL, "nrm:registry:agreement")


class Agency(Aggregate):
    """One agency on the bus. Keys are never removed: rotation retires them."""

    @staticmethod
    def create_id(agency_id: str) -> UUID:
        return agency_aggregate_id(agency_id)

    @event("Registered")
    def __init__(
        self,
        agency_id: str,
        name: str,
        country: str,
        roles: list[str],
        services: list[str],
        endpoints: dict[str, str],
        keys: list[dict[str, Any]],
        by: str,
    ) -> None:
        self.agency_id = agency_id
        self.name = name
        self.country = country
        self.roles = list(roles)
        self.services = list(services)
        self.endpoints = dict(endpoints)
        self.keys = [dict(k) for k in keys]
        self.status = str(AgencyStatus.ACTIVE)

    @event("KeysRotated")
    def rotate_keys(
        self, keys: list[dict[str, Any]], at: str, by: str, grace_until: str | None = None
    ) -> None:
        """A planned rotation: new keys become active at `at`; active keys of the same use
        retire, and keep verifying records that reach the transport before `grace_until`
        (events already signed and waiting in an outbox). Without a grace (events stored
        before it existed) they stop at `at`."""
        uses = {k["use"] for k in keys}
        end = grace_until or at
        for old in self.keys:
            if old["use"] in uses and old["status"] == KeyStatus.ACTIVE:
                old["status"] = str(KeyStatus.RETIRED)
                until = old.get("valid_until")
                if until is None or datetime.fromisoformat(until) > datetime.fromisoformat(end):
                    old["valid_until"] = end
        self.keys.extend(dict(k) for k in keys)

    @event("KeyCompromised")
    def report_compromise(self, key_id: str, compromised_at: str, reason: str, by: str) -> None:
        """Nothing signed with the key counts if it reached the transport after
        `compromised_at` (which may lie in the past: the time it was first misused)."""
        for key in self.keys:
            if key["key_id"] == key_id:
                key["status"] = str(KeyStatus.COMPROMISED)
                key["compromised_at"] = compromised_at

    @event("Suspended")
    def suspend(self, reason: str, by: str) -> None:
        self.status = str(AgencyStatus.SUSPENDED)

    @event("Revoked")
    def revoke(self, reason: str, by: str) -> None:
        self.status = str(AgencyStatus.REVOKED)

    @event("Reactivated")
    def reactivate(self, reason: str, by: str) -> None:
        self.status = str(AgencyStatus.ACTIVE)

    @event("EndpointsChanged")
    def change_endpoints(self, endpoints: dict[str, str], by: str) -> None:
        self.endpoints = dict(endpoints)

    def record(self) -> AgencyRecord:
        return AgencyRecord.model_validate(
            {
                "id": self.agency_id,
                "name": self.name,
                "country": self.country,
                "roles": self.roles,
                "services": self.services,
                "endpoints": self.endpoints,
                "status": self.status,
                "keys": self.keys,
            }
        )


class AgreementRecord(Aggregate):
    """The one data-sharing agreement in force; each change is audited."""

    @staticmethod
    def create_id() -> UUID:
        return AGREEMENT_ID

    @event("Adopted")
    def __init__(self, agreement: dict[str, Any], reason: str, by: str) -> None:
        self.agreement = agreement

    @event("Changed")
    def change(self, agreement: dict[str, Any], reason: str, by: str) -> None:
        self.agreement = agreement


def subscription_aggregate_id(agency_id: str, subscription_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"nrm:registry:subscription:{agency_id}:{subscription_id}")


class Subscription(Aggregate):
    """An agency system's wish to be notified. The HMAC secret is never stored
    in clear: only sealed (HPKE) to the agency's encryption key, which its notifier
    holds, plus a fingerprint the operator can compare with what it handed out."""

    @staticmethod
    def create_id(agency_id: str, subscription_id: str) -> UUID:
        return subscription_aggregate_id(agency_id, subscription_id)

    @event("Created")
    def __init__(
        self,
        agency_id: str,
        subscription_id: str,
        webhook_url: str,
        event_types: list[str],
        secret_sealed: dict[str, str],
        secret_fingerprint: str,
        created_at: str,
        by: str,
    ) -> None:
        self.agency_id = agency_id
        self.subscription_id = subscription_id
        self.webhook_url = webhook_url
        self.event_types = list(event_types)
        self.secret_sealed = dict(secret_sealed)
        self.secret_fingerprint = secret_fingerprint
        self.created_at = created_at
        self.status = "active"

    @event("Deleted")
    def delete(self, reason: str, by: str) -> None:
        self.status = "deleted"

    def view(self) -> dict[str, Any]:
        """What is ever listed: never the secret, only its sealed form and fingerprint."""
        return {
            "id": self.subscription_id,
            "agency_id": self.agency_id,
            "webhook_url": self.webhook_url,
            "event_types": list(self.event_types),
            "status": self.status,
            "created_at": self.created_at,
            "secret_fingerprint": self.secret_fingerprint,
            "secret_sealed": dict(self.secret_sealed),
        }
