"""Real agencies for tests: generated keys, an in-memory directory of one country, clear
envelopes as a node builds them before sealing, and a node's lower layers (store, case
keys, roster, sealing) in a folder."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from uuid import uuid4

from contracts.directory import AgencyRecord, AgencyStatus, Directory, Endpoints
from contracts.envelope import Envelope, dataschema_for, source_for
from contracts.events import EventPayload, split_by_category
from contracts.keystore import AgencyKeys, generate_agency_keys
from contracts.vocabulary import DataCategory, Role, ServiceKind
from referral_router.rules.roster import Pinned, Roster
from referral_router.sealing.case_keys import SqliteCaseKeyStore
from referral_router.sealing.node_seal import NodeSeal
from referral_router.store.case_store import CaseStore


def new_case() -> str:
    return "case-" + secrets.token_hex(8)


def clear_part(payload: EventPayload) -> dict[str, Any]:
    return split_by_category(payload).get(DataCategory.OPERATIONAL, {})


def clear_envelope(
    sender: str,
    recipients: Sequence[str],
    case: str,
    event_type: str = "case.screened",
    operational: Mapping[str, Any] | None = None,
    *,
    country: str = "XA",
    time: datetime | None = None,
    **fields: Any,
) -> Envelope:
    """An envelope's clear part as the sender's node builds it, unsealed and unsigned
    unless `fields` say otherwise."""
    return Envelope(
        id=uuid4(),
        source=source_for(country, sender),
        type=event_type,
        subject=case,
        time=time or datetime.now(UTC),
        dataschema=dataschema_for(event_type),
        sender=sender,
        recipients=tuple(recipients),
        operational=dict(operational or {}),
        **fields,
    )


@dataclass
class Country:
    """One country's registered agencies: their keys and the directory listing them."""

    code: str
    keys: dict[str, AgencyKeys]
    directory: Directory

    def roster(self) -> Roster:
        return Roster(Pinned(lambda: self.directory))


def country(
    code: str,
    roles: Mapping[str, Role],
    *,
    services: Mapping[str, tuple[ServiceKind, ...]] | None = None,
    suspended: frozenset[str] = frozenset(),
    serial: int = 1,
) -> Country:
    """Keys valid from a day ago, so that every envelope made now falls inside them."""
    since = datetime.now(UTC) - timedelta(days=1)
    keys = {a: generate_agency_keys(a, since) for a in roles}
    agreement = json.loads(
        resources.files("contracts").joinpath("agreements/default.json").read_text()
    )
    records = [
        AgencyRecord(
            id=a,
            name=f"Agency {a}",
            country=code,
            roles=[role],
            services=list((services or {}).get(a, ())),
            endpoints=Endpoints(
                router_url=f"https://{a}.example/router", webhook_url=f"https://{a}.example/h"
            ),
            status=AgencyStatus.SUSPENDED if a in suspended else AgencyStatus.ACTIVE,
            keys=[p.public_record() for p in keys[a].pairs],
        )
        for a, role in roles.items()
    ]
    directory = Directory(
        country=code,
        serial=serial,
        issued_at=since,
        agencies=records,
        agreement=agreement,
        registry_key_id=f"{code.lower()}-registry-1",
    )
    return Country(code, keys, directory)


@dataclass
class NodeParts:
    """A node's store and sealing, as the runtime builds them, without any loop."""

    agency_id: str
    folder: Path
    store: CaseStore
    seal: NodeSeal

    def close(self) -> None:
        self.seal.case_keys.close()
        self.store.close()


def node_parts(folder: Path, where: Country, agency_id: str) -> NodeParts:
    folder.mkdir(parents=True, exist_ok=True)
    store = CaseStore(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "s.db")}
    )
    case_keys = SqliteCaseKeyStore(folder / "case-keys.db", secrets.token_bytes(32))
    seal = NodeSeal(agency_id, where.keys[agency_id], where.roster(), case_keys)
    return NodeParts(agency_id, folder, store, seal)
