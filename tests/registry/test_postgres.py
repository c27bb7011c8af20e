"""The same registry on PostgreSQL (eventsourcing's postgres module): rebuild, same hash."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.directory import verify_directory
from registry import Registry, create_app
from tests.registry.conftest import Bus

pytestmark = pytest.mark.postgres


def test_registry_on_postgres_rebuilds_to_the_same_directory(
    bus: Bus, postgres_server: Any
) -> None:
    # a fresh application name gives fresh tables in the shared test database
    name = f"Registry{uuid.uuid4().hex[:8]}"
    pg_registry = type(name, (Registry,), {"name": name})
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **postgres_server.env()}
    first = pg_registry(bus.config, env=env, clock=bus.clock)
    with TestClient(create_app(first)) as client:
        police = bus.party("xa-police")
        r = client.post(
            "/v1/agencies",
            json=police.registration(["first-responder"]),
            headers=bus.operator.auth(),
        )
        assert r.status_code == 201, r.text
        again = client.post(
            "/v1/agencies",
            json=police.registration(["first-responder"]),
            headers=bus.operator.auth(),
        )
        assert again.status_code == 409
        r = client.post(
            "/v1/agencies/xa-police/status",
            json={"status": "suspended", "reason": "audit"},
            headers=bus.operator.auth(),
        )
        assert r.status_code == 200
        wire = client.get("/v1/directory").content
    rebuilt = pg_registry(bus.config, env=env, clock=bus.clock)
    d = verify_directory(rebuilt.signed_directory(), bus.config.anchor())
    assert rebuilt.signed_directory().to_bytes() == wire
    # PostgreSQL's sequence may skip the id of the refused duplicate: serials only grow
    assert d.serial >= 3 and d.agency("xa-police").status == "suspended"
    first.close()
    rebuilt.close()
