"""Canonical bytes of envelopes, for sealing: RFC 8785 via the fast encoder in
`contracts.canonical` (the envelope's own methods use it too)."""

from __future__ import annotations

from contracts.canonical import canonical_json
from contracts.envelope import Envelope

__all__ = ["canonical_bytes", "canonical_json", "signing_bytes"]


def signing_bytes(envelope: Envelope) -> bytes:
    """What the sender signs: everything but the signature."""
    return envelope.signing_bytes()


def canonical_bytes(envelope: Envelope) -> bytes:
    """What the verifiable log hashes: the whole envelope."""
    return envelope.canonical_bytes()
