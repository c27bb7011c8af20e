"""Real keys, a real (SQLite) event store, real HTTP requests through the ASGI app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.agency_token import issue_token
from contracts.directory import KeyUse
from contracts.keystore import AgencyKeys, generate_agency_keys, rotated
from registry import Registry, RegistryConfig, create_app

COUNTRY = "XA"
AUDIENCE = f"nrm-registry:{COUNTRY}"


class FrozenClock:
    """A clock the tests move by hand (tokens, key validity windows)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Party:
    """An agency (or the operator) with its private keys, able to sign tokens."""

    keys: AgencyKeys
    clock: FrozenClock

    @property
    def id(self) -> str:
        return self.keys.agency_id

    def token(self, audience: str = AUDIENCE, **kwargs: Any) -> str:
        pair = self.keys.current(KeyUse.SIGNING)
        kwargs.setdefault("now", self.clock())
        return issue_token(self.id, pair.key_id, pair.ed25519(), audience, **kwargs)

    def auth(self, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}

    def rotate(self) -> None:
        self.keys, _ = rotated(self.keys, now=self.clock())

    def registration(self, roles: list[str], services: list[str] | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": f"Agency {self.id}",
            "country": COUNTRY,
            "roles": roles,
            "services": services or [],
            "endpoints": {
                "router_url": f"https://{self.id}.example/router",
                "webhook_url": f"https://{self.id}.example/hooks",
            },
            "keys": [key_input(self.keys, use) for use in KeyUse],
        }


def key_input(keys: AgencyKeys, use: KeyUse) -> dict[str, str]:
    rec = keys.current(use).public_record()
    return {"key_id": rec.key_id, "use": rec.use, "alg": rec.alg, "public_key": rec.public_key}


@dataclass
class Bus:
    registry: Registry
    client: TestClient
    operator: Party
    clock: FrozenClock
    registry_keys: AgencyKeys
    db: Path
    config: RegistryConfig

    def party(self, agency_id: str) -> Party:
        return Party(generate_agency_keys(agency_id, self.clock()), self.clock)

    def register(self, party: Party, roles: list[str], services: list[str] | None = None) -> Any:
        r = self.client.post(
            "/v1/agencies", json=party.registration(roles, services), headers=self.operator.auth()
        )
        assert r.status_code == 201, r.text
        return r.json()

    def register_token(self) -> dict[str, str]:
        """Auth headers of a freshly registered ordinary agency (not the operator)."""
        party = self.party(f"xa-agency-{self.stored() + 1}")
        self.register(party, ["oversight"])
        return party.auth()

    def stored(self) -> int:
        """How many events are in the store (to prove bad input stored nothing)."""
        return self.registry.recorder.max_notification_id() or 0

    def reopen(self) -> Registry:
        return Registry(self.config, env=_env(self.db), clock=self.clock)


def _env(db: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def bus(tmp_path: Path, clock: FrozenClock) -> Iterator[Bus]:
    registry_keys = generate_agency_keys("xa-registry", clock())
    operator = Party(generate_agency_keys("xa-coordinator", clock()), clock)
    signing = registry_keys.current(KeyUse.SIGNING)
    config = RegistryConfig(
        country=COUNTRY,
        signing_key=signing.ed25519(),
        signing_key_id=signing.key_id,
        operator_id=operator.id,
        operator_keys=tuple(p.public_record() for p in operator.keys.pairs),
    )
    db = tmp_path / "registry.sqlite"
    registry = Registry(config, env=_env(db), clock=clock)
    with TestClient(create_app(registry)) as client:
        yield Bus(registry, client, operator, clock, registry_keys, db, config)


@pytest.fixture
def make_party(bus: Bus) -> Callable[[str], Party]:
    return bus.party
