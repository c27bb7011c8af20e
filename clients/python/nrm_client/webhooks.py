"""Checking a webhook the notifier delivered: signed by it, for your subscription, fresh.

Verify the raw body bytes exactly as received, before parsing them; then drop a
delivery whose `Idempotency-Key` you have already handled (retries repeat it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from contracts.webhook_signature import DEFAULT_TOLERANCE_SECONDS, HEADER, SignatureError, verify


def verify_webhook(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """The notification, if the `Nrm-Signature` header proves it; SignatureError if not."""
    lowered = {k.lower(): v for k, v in headers.items()}
    verify(secret, body, lowered.get(HEADER.lower()), now=now, tolerance=tolerance)
    notification = json.loads(body)
    if not isinstance(notification, dict):
        raise SignatureError("a notification is a JSON object")
    return notification
