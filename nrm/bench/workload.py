"""The benchmark's workload: agencies, ~1 KiB events, and case-shaped traffic.

Events are ~1 KiB of personal fields (what an agency really sends: names, accounts,
notes). Traffic is shaped like cases, not like a single hot stream: a case opens with
`case.screened` and takes `EVENTS_PER_CASE - 1` follow-ups, so per-case state (which the
node replays on every append) stays at a realistic size however long the run is.
Recipients all have the child-protection role, which may open every category: the worst
case for sealing, since every field is wrapped for every reader.
"""

from __future__ import annotations

from typing import Any

from contracts.vocabulary import Role, ServiceKind
from nrm.embedded import AgencySpec

SENDER = "bench-authority"
MAX_RECIPIENTS = 10
RECIPIENTS = tuple(f"bench-r{i:02d}" for i in range(1, MAX_RECIPIENTS + 1))
EVENTS_PER_CASE = 20
COUNTRY = "XA"


def agencies() -> tuple[AgencySpec, ...]:
    """One sender (competent authority) and ten recipients entitled to every category."""
    sender = AgencySpec(SENDER, "Bench: identification authority", (Role.COMPETENT_AUTHORITY,))
    readers = tuple(
        AgencySpec(
            r, f"Bench: child protection {r}", (Role.CHILD_PROTECTION,), (ServiceKind.SHELTER,)
        )
        for r in RECIPIENTS
    )
    return (sender, *readers)


def _text(tag: str, n: int, seq: int) -> str:
    """`n` characters of plain text, different per event so nothing compresses away."""
    base = f"{tag}-{seq:08d} "
    return (base * (n // len(base) + 1))[:n]


def screened_payload(seq: int) -> dict[str, Any]:
    """case.screened with ~1 KiB of personal fields in 5 categories."""
    return {
        "forms_of_exploitation": ["forced-labour"],
        "age_status": "adult",
        "screened_by_officer": "ia-0001",
        "full_name": _text("name", 60, seq),
        "nationality": "XB",
        "languages": ["xb-lang", "en"],
        "found_at": _text("place", 150, seq),
        "indicators": [
            {"form": "forced-labour", "strength": "strong", "observation": _text("obs", 250, seq)}
        ],
        "account": _text("account", 350, seq),
        "migration_status": "irregular",
        "immediate_needs": _text("needs", 150, seq),
    }


def follow_up(seq: int) -> tuple[str, dict[str, Any]]:
    """A follow-up event of ~1 KiB, alternating two types with no ordering rules that the
    sender, a competent authority, may emit (`contracts.authority`)."""
    if seq % 2:
        return "risk.assessed", {
            "serious_risk": False,
            "assessed_by_officer": "ia-0001",
            "findings": _text("findings", 1000, seq),
        }
    return "consent.recorded", {
        "consent_id": f"consent-{seq}",
        "recipients": [RECIPIENTS[0]],
        "categories": ["identity", "health"],
        "recorded_by_officer": "ia-0001",
        "statement": _text("statement", 1000, seq),
    }


def sealed_envelopes(n: int, recipients: int) -> list[Any]:
    """`n` signed, sealed envelopes of this workload (cases of EVENTS_PER_CASE), made with
    the same sealing code the nodes use, for stages that bypass HTTP (store, transport)."""
    import uuid
    from datetime import UTC, datetime

    from contracts.envelope import Envelope, dataschema_for, source_for
    from contracts.events import CATALOGUE, split_by_category
    from contracts.sealing import SigningKey, new_case_key, seal
    from contracts.vocabulary import PERSONAL_CATEGORIES, DataCategory

    signer = SigningKey.generate(SENDER, f"{SENDER}-sig-1")
    readers = RECIPIENTS[:recipients]
    every = frozenset(PERSONAL_CATEGORIES)
    out = []
    keys: dict[str, Any] = {}
    case = ""
    for seq in range(n):
        if seq % EVENTS_PER_CASE == 0:
            case = f"case-{uuid.uuid4().hex[:20]}"
            keys = {r: new_case_key(case, SENDER, r) for r in (SENDER, *readers)}
            event_type, data = "case.screened", screened_payload(seq)
        else:
            event_type, data = follow_up(seq)
        payload = CATALOGUE[event_type].model_validate(data)
        clear = split_by_category(payload).get(DataCategory.OPERATIONAL, {})
        env = Envelope(
            id=uuid.uuid4(),
            source=source_for(COUNTRY, SENDER),
            type=event_type,
            subject=case,
            time=datetime.now(UTC),
            dataschema=dataschema_for(event_type),
            sender=SENDER,
            recipients=tuple(readers),
            operational=clear,
        )
        out.append(
            seal(
                env,
                payload,
                signer=signer,
                entitlements={r: every for r in readers},
                case_keys=keys,
            )
        )
    return out
