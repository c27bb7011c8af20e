"""Real stores (SQLite, PostgreSQL), real keys, a signed directory, envelopes of real cases.

Envelopes are built by hand and left unsigned: the log hashes whatever was stored, and
envelope signatures are tested with sealing (tests/sealing).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.agency_token import issue_token
from contracts.directory import (
    Directory,
    KeyUse,
    SignedDirectory,
    TrustAnchor,
    sign_directory,
)
from contracts.envelope import Envelope
from contracts.keystore import AgencyKeys
from contracts.vocabulary import Role
from referral_router.audit.log import AuditLog
from referral_router.store.case_store import RECEIVED, CaseFile, CaseStore
from tests.agencies import clear_envelope, country

COUNTRY = "XA"
DOMAIN = "nrm.example"
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
ROLES: dict[str, Role] = {
    "xa-police": Role.FIRST_RESPONDER,
    "xa-ca": Role.COMPETENT_AUTHORITY,
    "xa-shelter": Role.SERVICE_PROVIDER,
    "xa-immigration": Role.IMMIGRATION,
    "xa-rapporteur": Role.OVERSIGHT,
}


def origin_of(agency: str, country: str = COUNTRY) -> str:
    return f"{DOMAIN}/{country}/{agency}"


def sqlite_env(path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}


def envelope(
    event_type: str,
    sender: str,
    recipients: Sequence[str],
    case: str,
    time: datetime,
    operational: dict[str, Any] | None = None,
    sealed: dict[str, Any] | None = None,
) -> Envelope:
    sealed = sealed if sealed is not None else {"identity": {"ct": uuid.uuid4().hex}}
    return clear_envelope(
        sender, recipients, case, event_type, operational, time=time, sealed=sealed
    )


def case_story(case: str, t: datetime, *, sender: str = "xa-police") -> list[Envelope]:
    """One case as its first responder's node sees it: screened, referred, decided."""
    return [
        envelope(
            "case.screened",
            sender,
            ["xa-ca"],
            case,
            t,
            {
                "forms_of_exploitation": ["forced-labour"],
                "age_status": "adult",
                "screened_by_officer": "p-17",
            },
        ),
        envelope(
            "referral.requested",
            sender,
            ["xa-shelter"],
            case,
            t + timedelta(hours=1),
            {"referral_id": "r1", "to_agency": "xa-shelter", "service": "shelter"},
        ),
        envelope(
            "identification.decided",
            "xa-ca",
            [sender],
            case,
            t + timedelta(days=3),
            {"stage": "reasonable-grounds", "decided_by_officer": "ca-4"},
        ),
    ]


def record(store: CaseStore, envelopes: Sequence[Envelope], me: str) -> None:
    """Record as node `me` would: its own envelopes as sent, the others as received."""
    files: dict[str, CaseFile] = {}
    for env in envelopes:
        roles = {
            a: frozenset({ROLES.get(a, Role.FIRST_RESPONDER)})
            for a in (env.sender, *env.recipients)
        }
        if env.sender == me:
            case = files.get(env.subject) or store.case_file_or_new(env.subject)
            store.record_sent(case, env, roles)
            files[env.subject] = case
        else:
            files.pop(env.subject, None)  # reload after a received event
            case = store.case_file_or_new(env.subject)
            case.record(env, RECEIVED, roles)
            inbox = store.cursor("test-inbox")
            assert inbox.advance(inbox.position + 1, case)


@dataclass
class Agencies:
    """Keys of every agency, the registry key, and the signed directory."""

    keys: dict[str, AgencyKeys]
    registry_key: Ed25519PrivateKey
    directory: Directory
    signed: SignedDirectory
    anchor: TrustAnchor
    extra_roles: dict[str, list[Role]] = field(default_factory=dict)

    def signer(self, agency: str) -> Ed25519PrivateKey:
        return self.keys[agency].current(KeyUse.SIGNING).ed25519()

    def token(self, agency: str, audience: str) -> str:
        pair = self.keys[agency].current(KeyUse.SIGNING)
        return issue_token(agency, pair.key_id, pair.ed25519(), audience)


def build_agencies(ids: Sequence[str] = tuple(ROLES), serial: int = 1) -> Agencies:
    where = country(COUNTRY, {a: ROLES.get(a, Role.FIRST_RESPONDER) for a in ids}, serial=serial)
    registry_key = Ed25519PrivateKey.generate()
    signed = sign_directory(where.directory, registry_key)
    key_id = where.directory.registry_key_id
    anchor = TrustAnchor.for_key(COUNTRY, key_id, registry_key.public_key())
    return Agencies(where.keys, registry_key, where.directory, signed, anchor)


@pytest.fixture(scope="session")
def agencies() -> Agencies:
    return build_agencies()


@dataclass
class Node:
    """One agency's store and audit log."""

    agency: str
    store: CaseStore
    audit: AuditLog
    db: Path | None


def open_node(
    tmp_path: Path, agency: str, agencies: Agencies, env: dict[str, str] | None = None
) -> Node:
    db = tmp_path / f"{agency}.sqlite"
    store = CaseStore(env=env or sqlite_env(db))
    audit = AuditLog(
        store, tmp_path / f"{agency}.audit", origin_of(agency), agencies.signer(agency)
    )
    return Node(agency, store, audit, None if env else db)


@pytest.fixture
def police(tmp_path: Path, agencies: Agencies) -> Iterator[Node]:
    node = open_node(tmp_path, "xa-police", agencies)
    yield node
    node.audit.close()
    node.store.close()


def served(audit: AuditLog, seen: Any = None) -> tuple[list[str], list[Any], dict[Any, Any]]:
    """What the oversight API would serve, fetched the way `nrm audit verify` fetches:
    (checkpoint notes in issue order, leaves of the latest size, planned proofs)."""
    from contracts.audit_verification import LeafEntry, sizes_to_prove
    from referral_router.audit.log import AuditLogError

    notes = [c.note for c in audit.checkpoints(0, 10_000)]
    proofs = {}
    for old, new in sizes_to_prove(notes, seen):
        try:
            proofs[(old, new)] = audit.consistency_proof(old, new)
        except AuditLogError:
            continue
    size = audit.latest_checkpoint().size if notes else 0
    leaves = [LeafEntry.from_json(v.as_json()) for v in audit.leaves(0, size)] if size else []
    return notes, leaves, proofs
