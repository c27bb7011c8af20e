"""A registered agency whose node ignores its own rules.

It holds the agency's real keys (so every signature verifies) but skips `check_send`
and everything else its router would do: it seals for whomever it likes, sets any
restrictions, deadlines and time, and publishes straight to the recipients' inbox
topics. What stops it is each receiving node alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from contracts.directory import Directory, KeyUse
from contracts.envelope import Envelope, dataschema_for, source_for
from contracts.events import CATALOGUE, DataCategory, split_by_category
from contracts.kafka_binding import encode
from contracts.keystore import AgencyKeys
from contracts.policy import load_policy
from contracts.restrictions import Restrictions
from contracts.sealing import CaseKey, SigningKey, grant_case_key, new_case_key, seal
from contracts.versions import model_for
from contracts.vocabulary import PERSONAL_CATEGORIES
from referral_router.rules.lifecycle import CaseState, Proposal, derive_deadlines
from referral_router.transport.base import Message, Transport
from referral_router.transport.topics import inbox_topic

EVERYTHING = frozenset(PERSONAL_CATEGORIES)


class RogueSender:
    """Seals and signs as `agency_id` with its real keys; checks nothing."""

    def __init__(self, agency_id: str, country: str, keys: AgencyKeys) -> None:
        self.agency_id = agency_id
        self.country = country
        self.keys = keys
        self._case_keys: dict[tuple[str, str], CaseKey] = {}
        self.sent: list[Envelope] = []

    def signer(self, key_id: str | None = None) -> SigningKey:
        pair = (
            self.keys.current(KeyUse.SIGNING)
            if key_id is None
            else next(p for p in self.keys.pairs if p.key_id == key_id)
        )
        return SigningKey(self.agency_id, pair.key_id, pair.ed25519())

    def envelope(
        self,
        event_type: str,
        case: str,
        recipients: Sequence[str],
        payload: Mapping[str, Any],
        directory: Directory,
        *,
        restrictions: Restrictions | None = None,
        deadlines: Mapping[str, datetime] | None = None,
        time: datetime | None = None,
        event_id: uuid.UUID | None = None,
        entitled: frozenset[DataCategory] = EVERYTHING,
        key_id: str | None = None,
        version: int | None = None,
    ) -> tuple[Envelope, dict[str, bytes]]:
        """A signed envelope and a case-key grant per recipient. Deadlines default to the
        honest ones (so that only what a test changes is wrong); `version`: an older
        payload version (default: the latest)."""
        model = model_for(event_type, version or CATALOGUE[event_type].version).model_validate(
            payload
        )
        when = time or datetime.now(UTC)
        clear = split_by_category(model).get(DataCategory.OPERATIONAL, {})
        env = Envelope(
            id=event_id or uuid.uuid4(),
            source=source_for(self.country, self.agency_id),
            type=event_type,
            subject=case,
            time=when,
            dataschema=dataschema_for(event_type, version),
            sender=self.agency_id,
            recipients=tuple(recipients),
            restrictions=restrictions or Restrictions(),
            operational=clear,
        )
        if deadlines is None:
            proposal = Proposal(
                str(env.id), event_type, self.agency_id, frozenset(), {}, when, clear
            )
            deadlines = derive_deadlines(
                CaseState(pseudonym=case), proposal, load_policy(self.country)
            )
        env = env.model_copy(update={"deadlines": dict(deadlines)})
        signer = self.signer(key_id)
        readers = [self.agency_id, *recipients]
        keys = {r: self._key(case, r) for r in readers}
        sealed = seal(
            env,
            model,
            signer=signer,
            entitlements={r: entitled for r in recipients},
            case_keys=keys,
        )
        grants = {}
        for r in recipients:
            record = directory.current_encryption_key(r)
            assert record is not None, r
            grants[r] = grant_case_key(
                keys[r],
                signer=signer,
                recipient_public_key=record.hpke(),
                recipient_key_id=record.key_id,
                time=when,
            ).to_bytes()
        return sealed, grants

    def _key(self, case: str, reader: str) -> CaseKey:
        key = self._case_keys.get((case, reader))
        if key is None:
            key = self._case_keys[(case, reader)] = new_case_key(case, self.agency_id, reader)
        return key

    async def publish(
        self,
        transport: Transport,
        envelope: Envelope,
        grants: Mapping[str, bytes],
        to: Sequence[str] | None = None,
    ) -> None:
        """Straight onto the inbox topics: no outbox, no relay, no rules."""
        messages = []
        for r in to if to is not None else envelope.recipients:
            key, value, headers = encode(envelope, grants.get(r))
            messages.append(Message(inbox_topic(self.country, r), key, value, headers))
        await transport.publish_many(messages)
        self.sent.append(envelope)

    async def republish(
        self, transport: Transport, key: bytes, value: bytes, headers: Any, to: str
    ) -> None:
        """A captured record, put back on the bus as it was (a replay)."""
        await transport.publish(inbox_topic(self.country, to), key, value, tuple(headers))
