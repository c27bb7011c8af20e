"""R10 forwarding: pass a received event on without re-encrypting and without widening.

Shape: a `Forwarding` record signed by the forwarder embeds the original signed envelope
byte-for-byte (so its ciphertexts and its sender's signature still verify) and adds one
wrap set for the new recipient under the pairwise case key (case, forwarder, recipient).
Only categories that are BOTH in the new recipient's entitlement AND unwrappable by the
forwarder itself are re-wrapped: the forwarder cannot hand on a key it never had, so
nothing the original sender withheld from it can ever reach the new recipient.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any
from uuid import UUID

from contracts.envelope import Envelope
from contracts.sealing.core import Verified, unwrap_data_key, verify, wrap_aad
from contracts.sealing.errors import NotEntitled
from contracts.sealing.keys import CaseKey, CaseKeyLookup, PublicKeyLookup, SigningKey, b64e
from contracts.sealing.models import Forwarding, ForwardingBasis
from contracts.vocabulary import DataCategory


def forwardable(verified: Verified, forwarder: str) -> frozenset[DataCategory]:
    """The categories `forwarder` holds wraps for: the ceiling of anything it forwards."""
    w = verified.wraps.get(forwarder)
    return frozenset(DataCategory(c) for c in w["keys"]) if w else frozenset()


def forward(
    source: Envelope | Forwarding | Verified,
    *,
    forwarder: SigningKey,
    recipient: str,
    entitled: frozenset[DataCategory],
    case_key_lookup: CaseKeyLookup,
    new_case_key: CaseKey | None,
    id: UUID,
    time: datetime,
    public_key_lookup: PublicKeyLookup | None = None,
    basis: ForwardingBasis | None = None,
) -> Forwarding:
    """Re-wrap, for `recipient`, the data keys of `entitled ∩ forwardable`; sign.

    `entitled` is what the agreement lets the new recipient read (the caller computes it
    with `CaseContext(forwarding_limit=...)`); `case_key_lookup` is the forwarder's own
    store; `new_case_key` is the pairwise key (case, forwarder, recipient), needed only
    when a category is re-wrapped (an erasure order passed on carries no key).
    """
    if isinstance(source, Verified):
        v = source
    elif public_key_lookup is None:
        raise TypeError("public_key_lookup is required to forward an unverified event")
    else:
        v = verify(source, public_key_lookup)
    me = forwarder.agency_id
    env = v.envelope
    if v.forwarding is not None and v.forwarding.recipient != me:
        raise NotEntitled(f"{me} is not the recipient of forwarding {v.forwarding.id}")
    if v.forwarding is None and me != env.sender and me not in env.recipients:
        raise NotEntitled(f"{me} did not receive event {env.id}")
    if recipient == me:
        raise ValueError("cannot forward to oneself")
    cats = sorted(frozenset(entitled) & forwardable(v, me))
    wraps: dict[str, Any] = {}
    if cats:
        key = new_case_key
        if key is None or (key.case, key.sender, key.recipient) != (env.subject, me, recipient):
            raise ValueError("re-wrapping needs the pairwise key (case, forwarder, recipient)")
        keys: dict[str, str] = {}
        for cat in cats:
            dk = unwrap_data_key(v, cat, me, case_key_lookup)
            n = os.urandom(12)
            aad = wrap_aad(str(env.id), env.subject, me, recipient, key.key_id, str(cat))
            keys[str(cat)] = b64e(n + key.aead.encrypt(n, dk, aad))
        wraps = {recipient: {"kid": key.key_id, "keys": keys}}
    unsigned = Forwarding(
        id=id,
        time=time,
        forwarder=me,
        recipient=recipient,
        parent=v.forwarding.id if v.forwarding else None,
        basis=basis,
        original=env,
        wraps=wraps,
    )
    sig = forwarder.private_key.sign(unsigned.signing_bytes())
    return unsigned.model_copy(
        update={"signature": {"alg": "Ed25519", "kid": forwarder.key_id, "sig": b64e(sig)}}
    )
