"""A typed Python client for agency systems on the NRM referral bus.

    from nrm_client import AgencyClient, Credentials

    credentials = Credentials.from_keystore("police.keystore", passphrase)
    with AgencyClient("https://node.police.example", credentials) as node:
        receipt = node.screen(payload, recipients=["nrm-authority"])
        case = node.case(receipt.case)

Depends on httpx and the bus's `contracts` (tokens, proofs, webhook signatures, and the
node API's models it answers with: `contracts.node_api`). The README's "Connect your
system" walks through it against `nrm up`.
"""

from nrm_client.client import AgencyClient
from nrm_client.credentials import Credentials
from nrm_client.cursor import FileCursor
from nrm_client.errors import (
    BadRequest,
    ConcurrentWrite,
    Forbidden,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    NrmError,
    RuleViolation,
    SchemaViolation,
    Unauthenticated,
    Unavailable,
    UnknownAgency,
)
from nrm_client.local import LocalBus
from nrm_client.retries import RetryPolicy
from nrm_client.sse import Notification
from nrm_client.webhooks import SignatureError, verify_webhook

__all__ = [
    "AgencyClient",
    "BadRequest",
    "ConcurrentWrite",
    "Credentials",
    "FileCursor",
    "Forbidden",
    "IdempotencyKeyReused",
    "InvalidRequest",
    "LocalBus",
    "NotFound",
    "Notification",
    "NrmError",
    "RetryPolicy",
    "RuleViolation",
    "SchemaViolation",
    "SignatureError",
    "Unauthenticated",
    "Unavailable",
    "UnknownAgency",
    "verify_webhook",
]
