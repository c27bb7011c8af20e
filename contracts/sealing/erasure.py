"""Erasure by crypto-shredding: what a node deletes, and a check that it worked.

Each node deletes the case's rows from its case key store (`erase_case`): the pairwise
case keys it holds as sender (including its own self key) and as recipient. Nothing
else: the envelopes and the log stay whole. `prove_unopenable` is the auditor's check
that, given every key source that remains, no wrap and no ciphertext of an envelope
opens any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.envelope import Envelope
from contracts.sealing.core import _parse_sealed, _parse_wraps, field_aad, wrap_aad
from contracts.sealing.errors import ErasureIncomplete
from contracts.sealing.keys import CaseKeyLookup, CaseKeyStore, b64d
from contracts.sealing.models import Forwarding


def erase_case(case: str, *stores: CaseKeyStore) -> int:
    """Delete every pairwise key of `case` from each store; returns rows deleted."""
    return sum(store.delete_case(case) for store in stores)


@dataclass(frozen=True)
class ErasureProof:
    """What `prove_unopenable` tried, for the audit record."""

    event_id: str
    case: str
    wraps_checked: int
    fields_checked: int
    key_sources: int
    candidate_keys: int


def prove_unopenable(
    item: Envelope | Forwarding,
    key_sources: Iterable[CaseKeyLookup] = (),
    candidate_keys: Iterable[bytes] = (),
) -> ErasureProof:
    """Show that no remaining key opens any part of `item`, or raise `ErasureIncomplete`.

    `key_sources`: the case key lookups of every node that remains (e.g. `store.get`).
    `candidate_keys`: any other 32-byte secrets to try, each as a case key against every
    wrap and as a data key against every field ciphertext. Signatures are not needed.
    """
    env = item.original if isinstance(item, Forwarding) else item
    _, fields_in, root_wraps = _parse_sealed(env)
    layers = [(env.sender, root_wraps)]
    if isinstance(item, Forwarding):
        layers.append((item.forwarder, _parse_wraps(item.wraps, fields_in)))
    eid, case = str(env.id), env.subject
    sources = list(key_sources)
    candidates = [AESGCM(k) for k in candidate_keys if len(k) == 32]
    still: list[str] = []
    n_wraps = 0
    for wrapper, wraps in layers:
        for reader, w in wraps.items():
            kid = w["kid"]
            for source in sources:
                if source(case, wrapper, reader, kid) is not None:
                    still.append(f"a key source still holds ({case}, {wrapper}→{reader}, {kid})")
            for cat, text in w["keys"].items():
                n_wraps += 1
                blob = b64d(text)
                aad = wrap_aad(eid, case, wrapper, reader, kid, cat)
                for aead in candidates:
                    try:
                        aead.decrypt(blob[:12], blob[12:], aad)
                    except InvalidTag:
                        continue
                    still.append(f"a candidate key unwraps {wrapper}→{reader}/{cat}")
    n_fields = 0
    for cat, values in fields_in.items():
        for name, text in values.items():
            n_fields += 1
            blob = b64d(text)
            aad = field_aad(eid, env.type, case, cat, name)
            for aead in candidates:
                try:
                    aead.decrypt(blob[:12], blob[12:], aad)
                except InvalidTag:
                    continue
                still.append(f"a candidate key decrypts {cat}/{name}")
    if still:
        raise ErasureIncomplete("; ".join(still))
    return ErasureProof(eid, case, n_wraps, n_fields, len(sources), len(candidates))
