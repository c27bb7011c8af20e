"""Need-to-know sealing of case events (R5, R6, R10) and erasure by crypto-shredding.

Pure (no I/O), built only on `cryptography`, usable alone by an outside auditor.

Keys, from longest-lived to shortest:
  * long-term, registered in the registry: an Ed25519 signing key and an HPKE
    (ML-KEM-768+X25519 / HKDF-SHA256 / AES-256-GCM) key pair per agency;
  * pairwise case keys: one random 256-bit key per (case, sender, recipient), plus
    one (case, sender, sender) self key; kept in each node's deletable case key store;
  * data keys: one random 256-bit key per (event, category), never stored in clear.

Flow: the sender creates a case key for a recipient once and delivers it with a
`CaseKeyGrant` (HPKE to the recipient's long-term key, signed by the sender); the
recipient checks it (`accept_grant`) and keeps the key in its store. Each event is then
sealed with symmetric work only (`seal`): fields under data keys (AES-256-GCM), data
keys wrapped under the case keys of entitled readers (AES-256-GCM), the whole signed
(Ed25519 over RFC 8785). Receivers `verify` then `open_envelope`: unentitled categories
come back as `Withheld(category)`.

Grant authenticity: HPKE base mode is unauthenticated, so (1) grants are signed by the
sender's registered key, and (2) a case key's id is an HMAC commitment to the key, and
every signed envelope names the key id of each wrap: a forged grant carries a key that
cannot match any key id the real sender signed, so it can never open a genuine envelope.

Erasure argument. What reaches the append-only log: signed envelopes and forwardings,
i.e. field ciphertexts under data keys, data keys wrapped under pairwise case keys, key
ids (HMAC commitments, which reveal nothing of the key), and signatures. What is
wrapped to a long-term private key: only grants, which travel but are never logged
(the router keeps them in transit, receivers unwrap them into the case key store). So
the only path from any long-term key to a field passes through a grant, and no grant
exists once delivered. After every node deletes the case's pairwise keys from its key
store (`erase_case`), opening a logged field needs a case key, which exists nowhere and
is not derivable from any long-term HPKE or signing private key, any node master key or
any log content: recovering it means breaking AES-256-GCM (or HMAC-SHA256 as a PRF).
`prove_unopenable` checks this for an envelope against every remaining key source.
Limits: a node that copied a case key or plaintext elsewhere before erasure, or an
attacker who recorded grants in transit AND later obtains the recipient's long-term
HPKE private key, defeats erasure; grant transit must therefore be confidential too
and HPKE keys rotated (old private keys destroyed) on a schedule.
"""

from contracts.sealing.canonical import canonical_bytes, canonical_json, signing_bytes
from contracts.sealing.core import (
    OpenedEvent,
    Verified,
    decrypt_fields,
    open_category,
    open_envelope,
    parse_envelope,
    parse_forwarding,
    seal,
    sign,
    unwrap_data_key,
    verify,
)
from contracts.sealing.erasure import ErasureProof, erase_case, prove_unopenable
from contracts.sealing.errors import (
    CaseKeyUnavailable,
    CiphertextTampered,
    ErasureIncomplete,
    GrantInvalid,
    KeyCommitmentMismatch,
    KeyOutOfTime,
    MalformedEnvelope,
    NotEntitled,
    SealingError,
    SignatureInvalid,
    UnknownSigningKey,
    WrappedKeyTampered,
)
from contracts.sealing.forwarding import forward, forwardable
from contracts.sealing.grants import CaseKeyGrant, accept_grant, grant_case_key
from contracts.sealing.keys import (
    HPKE_SUITE,
    CaseKey,
    CaseKeyLookup,
    CaseKeyStore,
    HpkeKeyPair,
    MemoryCaseKeyStore,
    PublicKeyLookup,
    SigningKey,
    case_key_id,
    hpke_public_key_from_bytes,
    new_case_key,
)
from contracts.sealing.models import Forwarding, ForwardingBasis, Withheld

__all__ = [
    "HPKE_SUITE",
    "CaseKey",
    "CaseKeyGrant",
    "CaseKeyLookup",
    "CaseKeyStore",
    "CaseKeyUnavailable",
    "CiphertextTampered",
    "ErasureIncomplete",
    "ErasureProof",
    "Forwarding",
    "ForwardingBasis",
    "GrantInvalid",
    "HpkeKeyPair",
    "KeyCommitmentMismatch",
    "KeyOutOfTime",
    "MalformedEnvelope",
    "MemoryCaseKeyStore",
    "NotEntitled",
    "OpenedEvent",
    "PublicKeyLookup",
    "SealingError",
    "SignatureInvalid",
    "SigningKey",
    "UnknownSigningKey",
    "Verified",
    "Withheld",
    "WrappedKeyTampered",
    "accept_grant",
    "canonical_bytes",
    "canonical_json",
    "case_key_id",
    "decrypt_fields",
    "erase_case",
    "forward",
    "forwardable",
    "grant_case_key",
    "hpke_public_key_from_bytes",
    "new_case_key",
    "open_category",
    "open_envelope",
    "parse_envelope",
    "parse_forwarding",
    "prove_unopenable",
    "seal",
    "sign",
    "signing_bytes",
    "unwrap_data_key",
    "verify",
]
