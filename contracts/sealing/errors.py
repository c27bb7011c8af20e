"""One exception family for everything that can go wrong while sealing or opening.

Every failure has its own class so a receiver (and a test) can tell a forged signature
from a moved ciphertext from a key that was erased; all derive from `SealingError` so a
router can reject an event with one `except`.
"""

from __future__ import annotations


class SealingError(Exception):
    """Base of every sealing, signing, opening, forwarding and erasure failure."""


class MalformedEnvelope(SealingError):
    """The bytes or the `sealed`/`signature` structure do not follow the format."""


class UnknownSigningKey(SealingError):
    """The key lookup does not know (or no longer accepts) the named signing key."""


class KeyOutOfTime(UnknownSigningKey):
    """A listed signing key that did not count when the record reached the transport:
    rotated out beyond its grace period, reported compromised, or not yet valid (R6)."""


class SignatureInvalid(SealingError):
    """The Ed25519 signature does not verify over the canonical bytes."""


class CiphertextTampered(SealingError):
    """A field's ciphertext, nonce or tag (or its binding to event/field) fails AES-GCM."""


class WrappedKeyTampered(SealingError):
    """A wrapped data key fails AES-GCM under the right case key (or was moved)."""


class KeyCommitmentMismatch(SealingError):
    """A case key does not match the key id (commitment) named in a signed envelope."""


class NotEntitled(SealingError):
    """The reader holds no wrap for this category: need-to-know says no (R5)."""


class CaseKeyUnavailable(SealingError):
    """A wrap exists for the reader but its pairwise case key is not in the key store
    (grant not yet accepted, or the case was erased)."""


class GrantInvalid(SealingError):
    """A case key grant is not for this recipient, is badly signed, or does not open."""


class ErasureIncomplete(SealingError):
    """Some key material still opens a part of an envelope that should be erased."""
