"""Webhook signatures: HMAC-SHA256 with the subscription's secret, over timestamp and body.

Header sent with every delivery (the format Stripe and Svix made familiar, so receivers
have examples in every language)::

    Nrm-Signature: t=1718000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
    Idempotency-Key: 0b6f6c3e-...   (the notification id: the same on every retry)

How a receiver verifies a delivery:
  1. take the raw request body bytes, exactly as received (before any JSON parsing);
  2. read `t` and every `v1` from `Nrm-Signature`;
  3. compute HMAC-SHA256(key = the subscription secret as UTF-8 bytes,
     message = ASCII(t) + b"." + body) and hex-encode it;
  4. accept if it equals one of the `v1` values (constant-time compare) and `t` is
     within the tolerance (default 5 minutes) of the receiver's clock, which bounds
     replays; then drop any Idempotency-Key already processed (retries repeat it).

`verify` below does steps 2-4 for Python receivers (the client library, `nrm_client`,
wraps it). A wire format shared by the notifier and every receiver, hence in the
contracts. Pure: no I/O, clock injectable.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Nrm-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The delivery is not authentic, or too old to be trusted."""


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `Nrm-Signature` header value for `body`, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={_mac(secret, t, body)}"


def parse(header: str) -> tuple[int, list[str]]:
    """`t` and the `v1` signatures (several during a secret rotation)."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed signature header")
        if name == "t":
            if not value.isdigit():
                raise SignatureError("signature timestamp is not an integer")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("signature header needs t= and at least one v1=")
    return timestamp, signatures


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Check a delivery; returns its signed timestamp, raises SignatureError otherwise."""
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    timestamp, signatures = parse(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("signature timestamp outside the tolerance")
    expected = _mac(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise SignatureError("signature does not match")
    return timestamp
