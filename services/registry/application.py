"""The registry application: commands that append audited events, and the signed
directory projected from them.

The directory is a pure fold of the registry's event log in notification order: its
serial is the last notification id and its `issued_at` the last event's time, so a
registry rebuilt from the same store signs the very same bytes (same directory hash).
Serials always grow but may skip numbers on PostgreSQL (a refused insert uses up a
sequence value); nodes only ever compare them.
Persistence is chosen by environment as for any eventsourcing application (SQLite by
default; `PERSISTENCE_MODULE=eventsourcing.postgres` for PostgreSQL, or the
`REGISTRY_`-prefixed variables when several applications share a process).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric import ed25519
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import Environment

from contracts.agency_token import (
    FixedParties,
    FixedParty,
    ReplayCache,
    TokenVerifier,
    system_clock,
)
from contracts.directory import (
    AgencyRecord,
    AgencyStatus,
    Directory,
    KeyStatus,
    PublicKeyRecord,
    SignedDirectory,
    TrustAnchor,
    b64url_decode,
    b64url_encode,
    sign_directory,
)
from contracts.need_to_know import Agreement, load_default_agreement
from contracts.sealing.keys import HPKE_SUITE, HPKE_SUITE_NAME, hpke_public_key_from_bytes
from registry.domain import (
    AGREEMENT_ID,
    Agency,
    AgreementRecord,
    Subscription,
    agency_aggregate_id,
    subscription_aggregate_id,
)
from registry.models import (
    AgencyRegistration,
    AgreementInput,
    KeyInput,
    StatusChange,
    SubscriptionInput,
)

DEFAULT_SQLITE_PATH = ".nrm-data/registry.sqlite"
SYSTEM_ACTOR = "registry"


class RegistryError(Exception):
    """A refusal, answered as the problem `code` (contracts.problems), naming `rule`."""

    code = "bad-request"
    rule: str | None = None


class AgencyNotFound(RegistryError):
    code = "not-found"


class RegistryConflict(RegistryError):
    code = "conflict"


class SubscriptionNotFound(RegistryError):
    code = "not-found"


class KeyNotFound(RegistryError):
    code = "not-found"


#: A planned rotation's default grace: records signed with the old key and still in an
#: outbox (a node offline for the night) reach the transport within it.
ROTATION_GRACE = timedelta(hours=24)
MAX_ROTATION_GRACE = timedelta(days=7)


#: HPKE `info` of a sealed subscription secret: binds it to its agency and subscription.
SUBSCRIPTION_SECRET_INFO = b"nrm-subscription-secret/1"


def seal_subscription_secret(
    secret: str, public_key: bytes, key_id: str, agency_id: str, subscription_id: str
) -> dict[str, str]:
    """The secret, readable only with the agency's encryption private key (its notifier).
    The notifier's `notifier.subscriptions.open_secret` is the inverse."""
    info = b"\x00".join((SUBSCRIPTION_SECRET_INFO, agency_id.encode(), subscription_id.encode()))
    sealed = HPKE_SUITE.encrypt(secret.encode(), hpke_public_key_from_bytes(public_key), info=info)
    return {"suite": HPKE_SUITE_NAME, "key_id": key_id, "ciphertext": b64url_encode(sealed)}


@dataclass(frozen=True)
class RegistryConfig:
    """The operator's trust roots: the directory-signing key and the operator's keys."""

    country: str
    signing_key: ed25519.Ed25519PrivateKey = field(repr=False)
    signing_key_id: str
    operator_id: str
    operator_keys: tuple[PublicKeyRecord, ...]
    audience: str = ""
    #: The notifier's own identity: it may read subscriptions (scope subscriptions:read)
    #: and their secrets are sealed to its encryption key, never to an agency's.
    notifier: FixedParty | None = None

    @property
    def token_audience(self) -> str:
        return self.audience or f"nrm-registry:{self.country}"

    def anchor(self) -> TrustAnchor:
        return TrustAnchor.for_key(self.country, self.signing_key_id, self.signing_key.public_key())


@dataclass(frozen=True)
class KnownParty:
    """The operator as the token verifier sees it (no directory entry of its own)."""

    status: AgencyStatus
    keys: list[PublicKeyRecord]


class PartyView:
    """Agencies of a directory plus, optionally, the operator and the notifier: a
    KeyDirectory."""

    def __init__(
        self,
        operator_id: str,
        operator: KnownParty,
        directory: Directory | None,
        services: FixedParties | None = None,
    ) -> None:
        self._operator_id, self._operator, self._directory = operator_id, operator, directory
        self._services = services or FixedParties()

    def agency(self, agency_id: str) -> Any:
        if agency_id == self._operator_id:
            return self._operator
        if (service := self._services.agency(agency_id)) is not None:
            return service
        return self._directory.agency(agency_id) if self._directory else None

    def signing_key(self, agency_id: str, key_id: str, at_time: datetime) -> Any:
        if self._services.agency(agency_id) is not None:
            return self._services.signing_key(agency_id, key_id, at_time)
        if agency_id == self._operator_id:
            return next(
                (
                    k
                    for k in self._operator.keys
                    if k.key_id == key_id and k.use == "signing" and k.valid_at(at_time)
                ),
                None,
            )
        if self._directory is None:
            return None
        return self._directory.signing_key(agency_id, key_id, at_time)


_EVENT_NAMES = {
    "Agency.Registered": "agency.registered",
    "Agency.KeysRotated": "agency.keys-rotated",
    "Agency.KeyCompromised": "agency.key-compromised",
    "Agency.Suspended": "agency.suspended",
    "Agency.Revoked": "agency.revoked",
    "Agency.Reactivated": "agency.reactivated",
    "Agency.EndpointsChanged": "agency.endpoints-changed",
    "AgreementRecord.Adopted": "agreement.adopted",
    "AgreementRecord.Changed": "agreement.changed",
    "Subscription.Created": "subscription.created",
    "Subscription.Deleted": "subscription.deleted",
}
_INTERNAL = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def subscription_fingerprint(secret: str) -> str:
    """Lets an operator match a secret it handed out without the registry keeping it."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:16]


class Registry(Application[UUID]):
    name = "Registry"

    def __init__(
        self,
        config: RegistryConfig,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = system_clock,
    ) -> None:
        super().__init__(env)
        self.config = config
        self.clock = clock
        self._lock = threading.RLock()
        self._position = 0
        self._directory_position = 0
        self._last_time: datetime | None = None
        self._aggregates: dict[UUID, Aggregate] = {}
        self._signed: tuple[int, Directory, SignedDirectory] | None = None
        self.replay_cache = ReplayCache()
        operator = KnownParty(AgencyStatus.ACTIVE, list(config.operator_keys))
        audience = config.token_audience
        services = FixedParties(*([config.notifier] if config.notifier else []))
        self.token_verifier = TokenVerifier(
            lambda: PartyView(config.operator_id, operator, self.directory(), services),
            audience,
            clock,
            self.replay_cache,
        )
        self._adopt_default_agreement()

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        """SQLite unless configured otherwise; a file under .nrm-data/ by default."""
        e = super().construct_env(name, env)
        if e.get("PERSISTENCE_MODULE") is None:
            e["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
        if e.get("PERSISTENCE_MODULE", "").startswith("eventsourcing.sqlite") and not e.get(
            "SQLITE_DBNAME"
        ):
            Path(DEFAULT_SQLITE_PATH).parent.mkdir(parents=True, exist_ok=True)
            e["SQLITE_DBNAME"] = DEFAULT_SQLITE_PATH
        return e

    def _adopt_default_agreement(self) -> None:
        try:
            self.repository.get(AGREEMENT_ID)
        except AggregateNotFoundError:
            agreement = load_default_agreement().to_dict()
            # IntegrityError: another registry process adopted it first.
            with contextlib.suppress(IntegrityError):
                self.save(AgreementRecord(agreement=agreement, reason="default", by=SYSTEM_ACTOR))

    # -- the projection -----------------------------------------------------------------

    def _catch_up(self) -> None:
        with self._lock:
            while True:
                batch = self.recorder.select_notifications(start=self._position + 1, limit=500)
                if not batch:
                    return
                for notification in batch:
                    ev = self.mapper.to_domain_event(notification)
                    current = self._aggregates.get(ev.originator_id)
                    self._aggregates[ev.originator_id] = ev.mutate(current)  # type: ignore[arg-type]
                    self._position = notification.id
                    aggregate = self._aggregates[ev.originator_id]
                    if not isinstance(aggregate, Subscription) and getattr(
                        aggregate, "in_directory", True
                    ):
                        # subscriptions and witness records are not in the directory:
                        # they do not re-sign it
                        self._directory_position = notification.id
                        self._last_time = ev.timestamp

    def directory(self) -> Directory:
        with self._lock:
            self._catch_up()
            if self._signed is not None and self._signed[0] == self._directory_position:
                return self._signed[1]
            agencies = sorted(
                (a.record() for a in self._aggregates.values() if isinstance(a, Agency)),
                key=lambda r: r.id,
            )
            agreement = self._aggregates[AGREEMENT_ID]
            assert isinstance(agreement, AgreementRecord)
            directory = Directory(
                country=self.config.country,
                serial=self._directory_position,
                issued_at=self._last_time or datetime.fromtimestamp(0, UTC),
                agencies=agencies,
                agreement=agreement.agreement,
                registry_key_id=self.config.signing_key_id,
            )
            signed = sign_directory(directory, self.config.signing_key)
            self._signed = (self._directory_position, directory, signed)
            return directory

    def signed_directory(self) -> SignedDirectory:
        with self._lock:
            self.directory()
            assert self._signed is not None
            return self._signed[2]

    def anchor(self) -> TrustAnchor:
        return self.config.anchor()

    def agreement(self) -> Agreement:
        return self.directory().parsed_agreement

    def agency(self, agency_id: str) -> AgencyRecord:
        record = self.directory().agency(agency_id)
        if record is None:
            raise AgencyNotFound(f"no agency {agency_id!r}")
        return record

    # -- commands -----------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def _records(self, keys: list[KeyInput], at: datetime) -> list[dict[str, Any]]:
        return [
            PublicKeyRecord(
                key_id=k.key_id,
                use=k.use,
                alg=k.alg,
                public_key=k.public_key,
                valid_from=at,
                status=KeyStatus.ACTIVE,
            ).model_dump(mode="json")
            for k in keys
        ]

    def _save(self, aggregate: Aggregate) -> None:
        try:
            self.save(aggregate)
        except IntegrityError:
            raise RegistryConflict("concurrent change to the same record; retry") from None

    def _load(self, agency_id: str) -> Agency:
        try:
            aggregate = self.repository.get(agency_aggregate_id(agency_id))
        except AggregateNotFoundError:
            raise AgencyNotFound(f"no agency {agency_id!r}") from None
        assert isinstance(aggregate, Agency)
        return aggregate

    def register(self, reg: AgencyRegistration, by: str) -> AgencyRecord:
        if reg.id == self.config.operator_id:
            raise RegistryConflict(f"agency id {reg.id!r} is the registry operator's")
        if self.config.notifier is not None and reg.id == self.config.notifier.id:
            raise RegistryConflict(f"agency id {reg.id!r} is the notifier's")
        agency = Agency(
            agency_id=reg.id,
            name=reg.name,
            country=reg.country,
            roles=[str(r) for r in reg.roles],
            services=[str(s) for s in reg.services],
            endpoints=reg.endpoints.model_dump(mode="json"),
            keys=self._records(reg.keys, self._now()),
            by=by,
        )
        record = agency.record()  # validates the whole record before anything is stored
        try:
            self.save(agency)
        except IntegrityError:
            raise RegistryConflict(f"agency {reg.id!r} is already registered") from None
        return record

    def rotate_keys(
        self,
        agency_id: str,
        keys: list[KeyInput],
        by: str,
        grace: timedelta = ROTATION_GRACE,
    ) -> AgencyRecord:
        """A planned rotation: the old keys of the same use keep verifying records that
        reach the transport within `grace` (what the agency's outbox still holds)."""
        if not timedelta(0) <= grace <= MAX_ROTATION_GRACE:
            raise RegistryError(f"the grace period must lie within 0 and {MAX_ROTATION_GRACE}")
        agency = self._load(agency_id)
        if agency.status == AgencyStatus.REVOKED:
            raise RegistryConflict(f"agency {agency_id!r} is revoked")
        known = {k["key_id"] for k in agency.keys}
        for k in keys:
            if k.key_id in known:
                raise RegistryConflict(f"key id {k.key_id!r} was already used by {agency_id!r}")
        now = self._now()
        records = self._records(keys, now)
        agency.rotate_keys(
            keys=records,
            at=records[0]["valid_from"],
            by=by,
            grace_until=(now + grace).isoformat() if grace else None,
        )
        record = agency.record()
        self._save(agency)
        return record

    def report_compromise(
        self, agency_id: str, key_id: str, reason: str, by: str, at: datetime | None = None
    ) -> AgencyRecord:
        """A key known or feared stolen: from `at` (default now; it may lie in the past,
        when misuse began) nothing that reaches the transport signed with it counts."""
        agency = self._load(agency_id)
        key = next((k for k in agency.keys if k["key_id"] == key_id), None)
        if key is None:
            raise KeyNotFound(f"{agency_id!r} has no key {key_id!r}")
        if key["status"] == KeyStatus.COMPROMISED:
            raise RegistryConflict(f"key {key_id!r} was already reported compromised")
        now = self._now()
        when = now if at is None else at.astimezone(UTC)
        if when > now:
            raise RegistryError("a compromise cannot be reported for a time still to come")
        agency.report_compromise(
            key_id=key_id, compromised_at=when.isoformat(), reason=reason, by=by
        )
        record = agency.record()
        self._save(agency)
        return record

    def set_status(self, agency_id: str, change: StatusChange, by: str) -> AgencyRecord:
        agency = self._load(agency_id)
        current, target = AgencyStatus(agency.status), change.status
        if current is target:
            raise RegistryConflict(f"agency {agency_id!r} is already {target}")
        if current is AgencyStatus.REVOKED:
            raise RegistryConflict(f"agency {agency_id!r} is revoked; revocation is final")
        if target is AgencyStatus.SUSPENDED:
            agency.suspend(reason=change.reason, by=by)
        elif target is AgencyStatus.REVOKED:
            agency.revoke(reason=change.reason, by=by)
        else:
            agency.reactivate(reason=change.reason, by=by)
        self._save(agency)
        return agency.record()

    def change_endpoints(self, agency_id: str, endpoints: dict[str, str], by: str) -> AgencyRecord:
        agency = self._load(agency_id)
        if agency.endpoints == endpoints:
            raise RegistryConflict("endpoints unchanged")
        agency.change_endpoints(endpoints=endpoints, by=by)
        self._save(agency)
        return agency.record()

    def set_agreement(self, new: AgreementInput, by: str) -> Agreement:
        agreement = Agreement.from_dict(new.as_agreement_dict())  # normal form
        record = self.repository.get(AGREEMENT_ID)
        assert isinstance(record, AgreementRecord)
        if record.agreement == agreement.to_dict():
            raise RegistryConflict("agreement unchanged")
        record.change(agreement=agreement.to_dict(), reason=new.reason, by=by)
        self._save(record)
        return agreement

    # -- subscriptions ------------------------------------------------------------------

    def add_subscription(
        self, agency_id: str, sub: SubscriptionInput, by: str
    ) -> tuple[dict[str, Any], str]:
        """A new subscription and its HMAC secret: the only time the secret is shown."""
        record = self.agency(agency_id)
        if record.status is not AgencyStatus.ACTIVE:
            raise RegistryConflict(f"agency {agency_id!r} is {record.status}")
        key = self._secret_key(agency_id)
        subscription_id = f"sub-{os.urandom(8).hex()}"
        secret = f"nrmwh_{b64url_encode(os.urandom(32))}"
        sealed = seal_subscription_secret(
            secret, b64url_decode(key.public_key), key.key_id, agency_id, subscription_id
        )
        aggregate = Subscription(
            agency_id=agency_id,
            subscription_id=subscription_id,
            webhook_url=sub.webhook_url,
            event_types=list(sub.event_types),
            secret_sealed=sealed,
            secret_fingerprint=subscription_fingerprint(secret),
            created_at=self._now().isoformat(),
            by=by,
        )
        self._save(aggregate)
        return aggregate.view(), secret

    def _secret_key(self, agency_id: str) -> PublicKeyRecord:
        """Who can open a subscription's secret: the notifier that signs its webhooks
        (its own key), else, with no notifier configured, the agency itself."""
        notifier = self.config.notifier
        if notifier is not None:
            keys = [k for k in notifier.keys if k.use == "encryption"]
            if keys:
                return keys[-1]
        key = self.directory().current_encryption_key(agency_id, self._now())
        if key is None:
            raise RegistryConflict(f"agency {agency_id!r} has no current encryption key")
        return key

    def subscriptions(self, agency_id: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        self.agency(agency_id)  # 404 for an unknown agency
        return self.subscriptions_of([agency_id], include_deleted)[agency_id]

    def subscriptions_of(
        self, agency_ids: Sequence[str], include_deleted: bool = False
    ) -> dict[str, list[dict[str, Any]]]:
        """Each agency's subscriptions, in one pass: a notifier serving several agencies
        reads them all in one request, on its schedule (once per agency cost the
        registry and the notifier a request each, every second on the demo topology)."""
        found: dict[str, list[dict[str, Any]]] = {a: [] for a in agency_ids}
        with self._lock:
            self._catch_up()
            for a in self._aggregates.values():
                if (
                    isinstance(a, Subscription)
                    and a.agency_id in found
                    and (include_deleted or a.status == "active")
                ):
                    found[a.agency_id].append(a.view())
        return {
            agency: sorted(subs, key=lambda v: (v["created_at"], v["id"]))
            for agency, subs in found.items()
        }

    def _load_subscription(self, agency_id: str, subscription_id: str) -> Subscription:
        try:
            aggregate = self.repository.get(subscription_aggregate_id(agency_id, subscription_id))
        except AggregateNotFoundError:
            raise SubscriptionNotFound(
                f"no subscription {subscription_id!r} of {agency_id!r}"
            ) from None
        assert isinstance(aggregate, Subscription)
        return aggregate

    def subscription(self, agency_id: str, subscription_id: str) -> dict[str, Any]:
        return self._load_subscription(agency_id, subscription_id).view()

    def delete_subscription(
        self, agency_id: str, subscription_id: str, reason: str, by: str
    ) -> dict[str, Any]:
        aggregate = self._load_subscription(agency_id, subscription_id)
        if aggregate.status == "deleted":
            raise RegistryConflict(f"subscription {subscription_id!r} is already deleted")
        aggregate.delete(reason=reason, by=by)
        self._save(aggregate)
        return aggregate.view()

    # -- audit --------------------------------------------------------------------------

    def history(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Registry events after notification `after`, oldest first."""
        self._catch_up()
        out = []
        for n in self.recorder.select_notifications(start=after + 1, limit=limit):
            ev = self.mapper.to_domain_event(n)
            aggregate = self._aggregates.get(ev.originator_id)
            data = {k: v for k, v in ev.__dict__.items() if k not in _INTERNAL}
            data.pop("secret_sealed", None)
            out.append(
                {
                    "serial": n.id,
                    "event": _EVENT_NAMES.get(type(ev).__qualname__, type(ev).__qualname__),
                    "agency_id": getattr(aggregate, "agency_id", None),
                    "version": ev.originator_version,
                    "at": ev.timestamp.astimezone(UTC).isoformat(),
                    "by": data.pop("by", None),
                    "data": data,
                }
            )
        return out
