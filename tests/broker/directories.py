"""Signed-directory contents for broker access tests, built without a registry."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from contracts.directory import AgencyRecord, AgencyStatus, Directory
from contracts.keystore import generate_agency_keys
from contracts.need_to_know import load_default_agreement
from contracts.vocabulary import Role

#: Broker access does not depend on keys; every record carries the same valid pair.
KEYS = generate_agency_keys("template").current_public_records()


def agency(
    agency_id: str,
    country: str = "XA",
    role: Role = Role.FIRST_RESPONDER,
    status: AgencyStatus = AgencyStatus.ACTIVE,
) -> AgencyRecord:
    return AgencyRecord(
        id=agency_id,
        name=agency_id,
        country=country,
        roles=[role],
        endpoints={"router_url": "https://127.0.0.1/x", "webhook_url": "https://127.0.0.1/y"},
        status=status,
        keys=KEYS,
    )


def directory(agencies: Iterable[AgencyRecord], country: str = "XA", serial: int = 1) -> Directory:
    return Directory(
        country=country,
        serial=serial,
        issued_at=datetime.now(UTC),
        agencies=list(agencies),
        agreement=load_default_agreement().to_dict(),
        registry_key_id="registry-1",
    )
