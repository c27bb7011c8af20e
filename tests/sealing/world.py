"""A small bus of real agencies with real keys, for the sealing tests (no mocks)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from contracts.envelope import Envelope, dataschema_for, source_for
from contracts.events import CaseScreened, EventPayload, Indicator, ReferralRequested
from contracts.need_to_know import (
    CaseContext,
    Recipient,
    entitled_categories,
    load_default_agreement,
)
from contracts.sealing import (
    CaseKey,
    CaseKeyGrant,
    HpkeKeyPair,
    MemoryCaseKeyStore,
    SigningKey,
    accept_grant,
    grant_case_key,
    new_case_key,
    seal,
)
from contracts.vocabulary import DataCategory, Role, ServiceKind

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
CASE = "case-0123456789abcdef"


@dataclass
class Agency:
    recipient: Recipient
    signing: SigningKey
    hpke: HpkeKeyPair
    store: MemoryCaseKeyStore = field(default_factory=MemoryCaseKeyStore)

    @property
    def id(self) -> str:
        return self.recipient.agency_id


@dataclass
class KeyRecord:
    public: ed25519.Ed25519PublicKey
    valid_from: datetime
    valid_until: datetime | None = None


class World:
    """Agencies, a registry of signing keys with validity periods, and grant delivery."""

    def __init__(self) -> None:
        self.agreement = load_default_agreement()
        self.registry: dict[tuple[str, str], KeyRecord] = {}
        self.agencies: dict[str, Agency] = {}
        self.grants_in_transit: list[bytes] = []
        for agency_id, role, services in [
            ("police-a", Role.FIRST_RESPONDER, ()),
            ("shelter-b", Role.SERVICE_PROVIDER, (ServiceKind.SHELTER,)),
            ("clinic-c", Role.SERVICE_PROVIDER, (ServiceKind.MEDICAL,)),
            ("authority-d", Role.COMPETENT_AUTHORITY, ()),
            ("consulate-e", Role.CONSULATE, ()),
            ("lawyer-f", Role.SERVICE_PROVIDER, (ServiceKind.LEGAL_AID,)),
            ("oversight-g", Role.OVERSIGHT, ()),
        ]:
            self.add(Recipient(agency_id, role, frozenset(services), "XA"))

    def add(self, recipient: Recipient) -> Agency:
        a = Agency(
            recipient,
            SigningKey.generate(recipient.agency_id, f"{recipient.agency_id}-sig-1"),
            HpkeKeyPair.generate(recipient.agency_id, f"{recipient.agency_id}-kem-1"),
        )
        self.registry[(a.id, a.signing.key_id)] = KeyRecord(
            a.signing.public_key(), T0 - timedelta(1)
        )
        self.agencies[a.id] = a
        return a

    def __getitem__(self, agency_id: str) -> Agency:
        return self.agencies[agency_id]

    def lookup(self, agency_id: str, key_id: str, time: datetime) -> ed25519.Ed25519PublicKey:
        rec = self.registry[(agency_id, key_id)]
        if time < rec.valid_from or (rec.valid_until is not None and time >= rec.valid_until):
            raise LookupError(f"{agency_id}/{key_id} not valid at {time}")
        return rec.public

    def rotate_signing(self, agency_id: str, at: datetime, key_id: str) -> SigningKey:
        a = self[agency_id]
        self.registry[(a.id, a.signing.key_id)].valid_until = at
        a.signing = SigningKey.generate(a.id, key_id)
        self.registry[(a.id, key_id)] = KeyRecord(a.signing.public_key(), at)
        return a.signing

    def deliver(self, case: str, sender: str, recipient: str) -> CaseKey:
        """Create, grant (HPKE, in transit only) and accept a pairwise case key."""
        s, r = self[sender], self[recipient]
        if s.store.current(case, sender, sender) is None:
            s.store.put(new_case_key(case, sender, sender))
        ck = new_case_key(case, sender, recipient)
        s.store.put(ck)
        grant = grant_case_key(
            ck,
            signer=s.signing,
            recipient_public_key=r.hpke.public_key,
            recipient_key_id=r.hpke.key_id,
            time=T0,
        )
        wire = grant.to_bytes()
        self.grants_in_transit.append(wire)
        r.store.put(accept_grant(CaseKeyGrant.from_bytes(wire), r.hpke, self.lookup))
        return ck

    def entitlements(
        self, event_type: str, recipients: list[str], **ctx: Any
    ) -> dict[str, frozenset[DataCategory]]:
        c = CaseContext(event_type=event_type, **ctx)
        return {r: entitled_categories(self.agreement, self[r].recipient, c) for r in recipients}

    def send(
        self,
        sender: str,
        recipients: list[str],
        payload: EventPayload,
        event_type: str,
        *,
        case: str = CASE,
        time: datetime = T0,
        entitlements: dict[str, frozenset[DataCategory]] | None = None,
        **ctx: Any,
    ) -> Envelope:
        ctx.setdefault("case_originator", "police-a")
        ctx.setdefault("service_providers", frozenset({"shelter-b"}))
        ent = (
            entitlements
            if entitlements is not None
            else self.entitlements(event_type, recipients, **ctx)
        )
        s = self[sender]
        keys: dict[str, CaseKey] = {}
        for r in [sender, *recipients]:
            if r != sender and not ent.get(r):
                continue
            ck = s.store.current(case, sender, r)
            if ck is None:
                if r == sender:
                    ck = new_case_key(case, sender, sender)
                    s.store.put(ck)
                else:
                    ck = self.deliver(case, sender, r)
            keys[r] = ck
        env = Envelope(
            id=uuid.uuid4(),
            source=source_for("XA", sender),
            type=event_type,
            subject=case,
            time=time,
            dataschema=dataschema_for(event_type),
            sender=sender,
            recipients=tuple(recipients),
        )
        return seal(env, payload, signer=s.signing, entitlements=ent, case_keys=keys)


def screened() -> CaseScreened:
    return CaseScreened(
        forms_of_exploitation=["forced-labour"],
        age_status="adult",
        screened_by_officer="PA-1043",
        full_name="Ana Example",
        date_of_birth="1999-04-02",
        nationality="MD",
        languages=["ro", "ru"],
        found_at="Warehouse 7, Harbour Road",
        indicators=[Indicator(form="forced-labour", strength="strong", observation="no pay")],
        account="Recruited with a false job offer; passport kept by the employer.",
        migration_status="overstayed visa",
        immediate_needs="insulin",
    )


def requested(to: str = "shelter-b") -> ReferralRequested:
    return ReferralRequested(
        referral_id="ref-1",
        to_agency=to,
        service=ServiceKind.SHELTER,
        consent_id="consent-1",
        full_name="Ana Example",
        needs="safe bed, interpreter (ro)",
        medical_notes="type 1 diabetes, insulin twice daily",
        pickup_location="Police station, 3 Quay Street, back door",
    )
