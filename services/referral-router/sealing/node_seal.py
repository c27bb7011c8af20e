"""Need-to-know sealing as a node does it: its keys, its case key store, the directory.

The pure format lives in `contracts.sealing`; this adapter decides which case keys exist
(one per case and reader, made on first use), hands the relay a case-key grant for a
recipient's first event (grants travel beside the envelope, never in the log), takes
grants in at the receiving node, and destroys a case's keys on an erasure order. It
passes received events on (R10: re-wrapping data keys it holds, never re-encrypting) and
opens events passed on to it through the forwardings kept beside its store. A country's
gateway node uses the same keys and grants to forward across the border.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from cryptography.hazmat.primitives.asymmetric import ed25519

from contracts.directory import AgencyStatus, Directory, KeyUse, PublicKeyRecord
from contracts.envelope import Envelope
from contracts.events import EventPayload
from contracts.keystore import AgencyKeys
from contracts.need_to_know import origin_side
from contracts.sealing import (
    CaseKey,
    CaseKeyGrant,
    Forwarding,
    ForwardingBasis,
    GrantInvalid,
    HpkeKeyPair,
    KeyOutOfTime,
    PublicKeyLookup,
    SigningKey,
    UnknownSigningKey,
    Verified,
    accept_grant,
    forward,
    forwardable,
    grant_case_key,
    new_case_key,
    open_envelope,
    parse_forwarding,
    seal,
    verify,
)
from contracts.vocabulary import DataCategory
from referral_router.rules.roster import Roster
from referral_router.sealing.case_keys import SqliteCaseKeyStore
from referral_router.sealing.forwardings import ForwardingStore

#: A record may reach the transport this much before its key's `valid_from` (clocks of
#: the broker and the registry differ a little); a key's end is never stretched.
ARRIVAL_SKEW = timedelta(minutes=2)


def arrival_lookup(
    directory: Directory, arrived: datetime, skew: timedelta = ARRIVAL_SKEW
) -> PublicKeyLookup:
    """Signing keys of `directory` as valid when a record reached the transport: the time
    an envelope or grant claims is ignored (a sender chooses it)."""

    def lookup(agency_id: str, key_id: str, _claimed: datetime) -> ed25519.Ed25519PublicKey:
        record = directory.signing_key(agency_id, key_id, arrived, early=skew)
        if record is not None:
            return record.ed25519()
        listed = directory.listed_signing_key(agency_id, key_id)
        if listed is None:
            raise UnknownSigningKey(
                f"{directory.country}'s directory lists no {agency_id}/{key_id}"
            )
        raise KeyOutOfTime(
            f"{agency_id}/{key_id} ({listed.status}) was not valid when the record reached "
            f"the transport ({arrived.isoformat()})"
        )

    return lookup


def recorded_lookup(directory: Directory) -> PublicKeyLookup:
    """Signing keys of `directory` by id, whatever their window: for envelopes (and
    forwardings) a node recorded, whose keys were judged when they arrived."""

    def lookup(agency_id: str, key_id: str, _claimed: datetime) -> ed25519.Ed25519PublicKey:
        record = directory.listed_signing_key(agency_id, key_id)
        if record is None:
            raise UnknownSigningKey(
                f"{directory.country}'s directory lists no {agency_id}/{key_id}"
            )
        return record.ed25519()

    return lookup


class NodeSeal:
    """Seals what this node sends, opens what it may read, keeps the case keys."""

    def __init__(
        self,
        agency_id: str,
        keys: AgencyKeys,
        roster: Roster,
        case_keys: SqliteCaseKeyStore,
        forwardings: ForwardingStore | None = None,
    ) -> None:
        self.agency_id = agency_id
        self.keys = keys
        self.roster = roster
        self.case_keys = case_keys
        #: Forwardings this node received (R10): how it opens the events they carry.
        self.forwardings = forwardings
        signing = keys.current(KeyUse.SIGNING)
        self.signer = SigningKey(agency_id, signing.key_id, signing.ed25519())
        #: Clock skew tolerated between the transport and the registry at a key's start.
        self.skew = ARRIVAL_SKEW
        #: (case, recipient, case key id) granted by this process, most recent last; at
        #: most `GRANTS_REMEMBERED`: one forgotten is granted once more, which a receiver
        #: takes harmlessly (as after a restart).
        self._granted: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        #: (case, reader) -> the key in use, most recently used last; at most
        #: `KEYS_IN_MEMORY`, the rest are read back from the case key store.
        self._current: OrderedDict[tuple[str, str], CaseKey] = OrderedDict()
        #: Keys made but not yet durably kept (see `keep_new_keys`).
        self._unsaved: dict[tuple[str, str], CaseKey] = {}
        #: Keys granted to this node, verified but not yet durably kept.
        self._granted_to_me: list[CaseKey] = []
        self._lock = threading.Lock()

    #: How many (case, reader) keys stay in memory: memory stays flat as cases pile up.
    #: About the working set of the node's case-file cache (1,000 cases, a few readers
    #: each); 50,000 grew the growth bench's node by ~1 KB per case until 250,000 events.
    KEYS_IN_MEMORY = 4_000
    #: How many grants this process remembers having sent (see `_granted`).
    GRANTS_REMEMBERED = 10_000

    # --- sending -------------------------------------------------------------------

    def seal(
        self,
        envelope: Envelope,
        payload: EventPayload,
        entitlements: Mapping[str, frozenset[DataCategory]],
    ) -> Envelope:
        case = envelope.subject
        readers = [self.agency_id, *(r for r, cats in entitlements.items() if cats)]
        # A screening opens a case: no key of it can exist yet, so none is looked up.
        keys = self._case_keys(case, readers, fresh=envelope.type == "case.screened")
        return seal(
            envelope, payload, signer=self.signer, entitlements=entitlements, case_keys=keys
        )

    def case_key(self, case: str, reader: str) -> CaseKey:
        """The key this node seals or forwards under for one reader of a case, kept
        durably before it is returned."""
        key = self._case_keys(case, [reader])[reader]
        self.keep_new_keys()
        return key

    def _case_keys(self, case: str, readers: list[str], fresh: bool = False) -> dict[str, CaseKey]:
        """The keys this node seals under for (case, reader): from memory, else the store
        (unless the case is `fresh`), else new ones. New keys are kept durably by
        `keep_new_keys`, which the node calls before it appends anything sealed under
        them. The lock guards only the maps."""
        with self._lock:
            keys = {
                r: k
                for r in readers
                if (k := self._current.get((case, r)) or self._unsaved.get((case, r)))
            }
        for reader in readers:
            if reader in keys:
                continue
            key = None if fresh else self.case_keys.current(case, self.agency_id, reader)
            if key is None:
                key = new_case_key(case, self.agency_id, reader)
                with self._lock:
                    self._unsaved[(case, reader)] = key
            keys[reader] = key
        with self._lock:
            out = {}
            for r, k in keys.items():
                out[r] = self._current.setdefault((case, r), k)
                self._current.move_to_end((case, r))
            while len(self._current) > self.KEYS_IN_MEMORY:
                self._current.popitem(last=False)
            return out

    def keep_new_keys(self) -> None:
        """Durably keep, in one transaction, every key made since the last call: a key
        is never used in an appended envelope before it is kept."""
        with self._lock:
            new, self._unsaved = self._unsaved, {}
            granted, self._granted_to_me = self._granted_to_me, []
        if not new and not granted:
            return
        try:
            self.case_keys.put_many([*granted, *new.values()])  # fsynced
        except BaseException:
            with self._lock:
                for k, v in new.items():
                    self._unsaved.setdefault(k, v)
                self._granted_to_me[:0] = granted
            raise

    def grant_for(self, envelope: Envelope, recipient: str) -> bytes | None:
        """A grant of this recipient's case key, the first time this process sends it
        one (after a restart, once more: receivers take a repeated grant harmlessly)."""
        wrap = envelope.sealed.get("wraps", {}).get(recipient)
        return self.grant_of(envelope.subject, recipient, str(wrap["kid"]) if wrap else None)

    def grant_of(self, case: str, recipient: str, kid: str | None) -> bytes | None:
        """`grant_for`, from the case and the case key id the recipient's wrap names
        (None: the recipient has no wrap, so no grant)."""
        if kid is None:
            return None
        marker = (case, recipient, kid)
        if marker in self._granted:
            self._granted.move_to_end(marker)
            return None
        key = self._key_in_use(*marker) or self.case_keys.get(
            case, self.agency_id, recipient, marker[2]
        )
        if key is None:  # erased since: the envelope stays unopenable, as it should
            return None
        record = self.roster.directory.current_encryption_key(recipient)
        if record is None:
            return None
        grant = self.grant(key, record)
        self._granted[marker] = None
        while len(self._granted) > self.GRANTS_REMEMBERED:
            self._granted.popitem(last=False)
        return grant

    def _key_in_use(self, case: str, reader: str, kid: str) -> CaseKey | None:
        with self._lock:
            key = self._current.get((case, reader))
        return key if key is not None and key.key_id == kid else None

    def grant_for_forwarding(self, fw: Forwarding) -> bytes | None:
        """A grant of the case key a forwarding's wraps are under, the first time."""
        wrap = fw.wraps.get(fw.recipient)
        kid = str(wrap.get("kid")) if wrap is not None else None
        return self.grant_of(fw.original.subject, fw.recipient, kid)

    def grant(self, key: CaseKey, to: PublicKeyRecord) -> bytes:
        """`key` sealed to its reader's encryption key `to`, from whichever country's
        directory lists the reader, and signed by this node."""
        return grant_case_key(
            key,
            signer=self.signer,
            recipient_public_key=to.hpke(),
            recipient_key_id=to.key_id,
            time=datetime.now(UTC),
        ).to_bytes()

    # --- passing on (R10) -----------------------------------------------------------

    def held(self, envelope: Envelope) -> tuple[Verified, frozenset[DataCategory]]:
        """A recorded event, verified, and the categories this node holds wraps for: the
        most it can ever pass on."""
        verified = self.verify_recorded(envelope)
        return verified, forwardable(verified, self.agency_id)

    def forward(
        self,
        verified: Verified,
        to: str,
        entitled: frozenset[DataCategory],
        time: datetime,
        basis: ForwardingBasis | None = None,
    ) -> Forwarding:
        """Pass a verified event on to `to`: the data keys of `entitled` that this node
        holds, re-wrapped under the pairwise key (case, this node, `to`); signed."""
        return forward(
            verified,
            forwarder=self.signer,
            recipient=to,
            entitled=entitled,
            case_key_lookup=self.case_keys.get,
            new_case_key=self.case_key(verified.envelope.subject, to) if entitled else None,
            id=uuid4(),
            time=time,
            basis=basis,
        )

    def pass_on_order(
        self, source: Envelope | Forwarding, holders: Iterable[str]
    ) -> list[Forwarding]:
        """An erasure order this node applied (addressed to it, or passed on to it),
        passed on without any key to agencies it knows hold the case and the order did
        not name: those it passed the case on to, and the case's other parties it knows.
        Never to the country of origin's side (only the competent authority addresses
        it), nor to an unknown or inactive agency. Made after this node's keys are gone:
        nothing is wrapped."""
        directory = self.roster.directory
        verified = verify(source, self.recorded_signing_key)
        order = verified.envelope
        skip = {self.agency_id, order.sender, *order.recipients}
        if isinstance(source, Forwarding):
            skip.add(source.forwarder)
        out = []
        for agency in sorted(set(holders) - skip):
            record = directory.agency(agency)
            if record is None or record.status is not AgencyStatus.ACTIVE:
                continue
            if origin_side(record.roles):
                continue
            out.append(self.forward(verified, agency, frozenset(), datetime.now(UTC)))
        return out

    # --- receiving -----------------------------------------------------------------

    def verify(self, envelope: Envelope, arrived: datetime) -> Verified:
        """The sender's signature, against this country's directory, with a key that was
        valid when the record reached the transport (`arrived`), whatever the envelope
        claims (a key rotated out or reported compromised by then does not count)."""
        return verify(envelope, self.signing_keys_at(arrived))

    def verify_forwarding(self, fw: Forwarding, arrived: datetime) -> Verified:
        """A forwarding from an agency of this country (R10): the forwarder's signature by
        a key valid when the record reached the transport; the original sender's by a key
        valid when it signed the event (the forwarder received and checked it then)."""
        directory = self.roster.directory
        at_arrival = self.signing_keys_at(arrived)

        def lookup(agency_id: str, key_id: str, claimed: datetime) -> ed25519.Ed25519PublicKey:
            if agency_id == fw.forwarder:
                return at_arrival(agency_id, key_id, claimed)
            record = directory.signing_key(agency_id, key_id, claimed)
            if record is None:
                raise KeyOutOfTime(
                    f"{agency_id}/{key_id} was not valid when the event was signed "
                    f"({claimed.isoformat()})"
                )
            return record.ed25519()

        return verify(fw, lookup)

    def verify_recorded(self, envelope: Envelope) -> Verified:
        """An envelope this node recorded earlier: its key was judged when it arrived."""
        return verify(envelope, self.recorded_signing_key)

    def signing_keys_at(self, arrived: datetime) -> PublicKeyLookup:
        """Signing keys as valid at `arrived`, the time a record reached the transport."""
        return arrival_lookup(self.roster.directory, arrived, self.skew)

    def accept_grant(
        self,
        grant: bytes,
        case: str,
        sender: str,
        signing_keys: PublicKeyLookup | None = None,
    ) -> None:
        """Take the case key `sender` granted this node for `case`, once the grant is
        shown to be exactly that: signed by `sender` (a key of this country's directory,
        unless `signing_keys` names another's) and sealed to this node's own key. It is
        kept durably by the next `keep_new_keys` (reception calls it before it records
        the envelope that brought the grant)."""
        parsed = CaseKeyGrant.from_bytes(grant)
        if (parsed.case, parsed.sender) != (case, sender):
            raise GrantInvalid("the grant is for another case or sender than its envelope")
        pair = self.keys.pair(parsed.recipient_key_id)
        hpke_pair = HpkeKeyPair.from_private_bytes(self.agency_id, pair.key_id, pair.private)
        lookup = signing_keys or self.signing_keys_at(datetime.now(UTC))
        key = accept_grant(parsed, hpke_pair, lookup)
        with self._lock:
            self._granted_to_me.append(key)

    def recorded_signing_key(
        self, agency_id: str, key_id: str, at: datetime
    ) -> ed25519.Ed25519PublicKey:
        """A signing key by id, whatever its window: for envelopes this node recorded,
        whose key was judged when they arrived (or when this node signed them)."""
        return recorded_lookup(self.roster.directory)(agency_id, key_id, at)

    # --- reading and erasing -------------------------------------------------------

    def open(self, envelope: Envelope) -> dict[str, Any]:
        """Every field: opened, or {'withheld': category, ...} when this node may not. An
        event passed on to this node opens through the forwarding that brought it."""
        item: Envelope | Forwarding = envelope
        data = self.forwardings.get(str(envelope.id), self.agency_id) if self.forwardings else None
        if data is not None:
            item = parse_forwarding(data)
        opened = open_envelope(item, self.agency_id, self.case_keys.get, self.recorded_signing_key)
        return opened.to_json()

    def passed_on_by(self, envelope: Envelope) -> str | None:
        """The agency whose forwarding brought this event to this node, if any."""
        data = self.forwardings.get(str(envelope.id), self.agency_id) if self.forwardings else None
        return parse_forwarding(data).forwarder if data is not None else None

    def erase(self, case: str) -> int:
        """Crypto-shredding: destroy every case key this node holds for the case, and the
        forwardings kept beside its envelopes."""
        if self.forwardings is not None:
            self.forwardings.delete_case(case)
        with self._lock:
            for m in [m for m in self._granted if m[0] == case]:
                del self._granted[m]
            for k in [k for k in self._current if k[0] == case]:
                del self._current[k]
            self._unsaved = {k: v for k, v in self._unsaved.items() if k[0] != case}
            self._granted_to_me = [k for k in self._granted_to_me if k.case != case]
        return self.case_keys.delete_case(case)
