"""Subscriptions as the registry lists them, and the opening of their secrets.

The registry shows a subscription's HMAC secret in clear once, to the operator, at
creation; afterwards it lists only `secret_sealed`: the secret under HPKE
(ML-KEM-768+X25519, HKDF-SHA256, AES-256-GCM) to the agency's registered encryption
key of the notifier (its own identity; with no notifier configured, the agency's key),
with `info` binding it to the agency and subscription. The registry's
`seal_subscription_secret` is the other half; both follow the format constant below (a
candidate for contracts/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.directory import b64url_decode
from contracts.keystore import AgencyKeys
from contracts.sealing.keys import HPKE_SUITE, HPKE_SUITE_NAME

SECRET_INFO = b"nrm-subscription-secret/1"


class SecretUnavailable(ValueError):
    """The sealed secret cannot be opened with this agency's keys."""


def open_secret(
    sealed: dict[str, Any], keys: AgencyKeys, agency_id: str, subscription_id: str
) -> str:
    """With the keys it was sealed to (`keys`), for `agency_id`'s subscription."""
    if sealed.get("suite") != HPKE_SUITE_NAME:
        raise SecretUnavailable(f"unsupported suite {sealed.get('suite')!r}")
    try:
        pair = keys.pair(str(sealed["key_id"]))
        info = b"\x00".join((SECRET_INFO, agency_id.encode(), subscription_id.encode()))
        clear = HPKE_SUITE.decrypt(b64url_decode(sealed["ciphertext"]), pair.hpke(), info=info)
    except Exception as exc:  # wrong key, tampered, or a key this keystore lost
        raise SecretUnavailable(f"cannot open the secret of {subscription_id}: {exc}") from None
    return clear.decode()


@dataclass(frozen=True)
class StaticSubscription:
    """A subscription given in configuration (embedded bus, no registry), secret in hand."""

    id: str
    webhook_url: str
    event_types: tuple[str, ...]
    secret: str

    def listing(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "webhook_url": self.webhook_url,
            "event_types": list(self.event_types),
            "status": "active",
            "secret_sealed": None,
        }
