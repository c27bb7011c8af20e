"""Case key grants: delivering a pairwise case key once, with HPKE, outside the log.

A grant is the ONLY thing ever encrypted to a long-term (HPKE) private key. It is
therefore never part of an envelope, never signed into the append-only log and never
stored by the router: it lives in transit only, and the receiver turns it into a row
of its deletable case key store (`accept_grant`). That is what makes erasure hold.

HPKE base mode does not authenticate the sender, so a grant is authenticated twice:
  * the sender signs it with its registered Ed25519 key (checked in `accept_grant`), and
  * its key id is a commitment (HMAC) to the key, and the same key id is in every
    signed envelope's wraps: a key delivered by a forged grant cannot match the key id
    of a genuine signed envelope, so it can never open one (`KeyCommitmentMismatch`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hpke
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.envelope import AGENCY_ID_PATTERN, CASE_PSEUDONYM_PATTERN
from contracts.sealing.canonical import canonical_json
from contracts.sealing.errors import (
    GrantInvalid,
    KeyCommitmentMismatch,
    SealingError,
    UnknownSigningKey,
)
from contracts.sealing.keys import (
    HPKE_SUITE,
    HPKE_SUITE_NAME,
    CaseKey,
    HpkeKeyPair,
    PublicKeyLookup,
    SigningKey,
    ad,
    b64d,
    b64e,
)

GRANT_FORMAT = "nrm-case-key-grant/1"


class CaseKeyGrant(BaseModel):
    """A pairwise case key sealed with HPKE to the recipient's long-term key.

    Transit only: the router passes it on and forgets it; it must never be logged.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["nrm-case-key-grant/1"] = GRANT_FORMAT
    suite: Literal["MLKEM768-X25519/HKDF-SHA256/AES-256-GCM"] = HPKE_SUITE_NAME
    case: str = Field(pattern=CASE_PSEUDONYM_PATTERN)
    sender: str = Field(pattern=AGENCY_ID_PATTERN)
    recipient: str = Field(pattern=AGENCY_ID_PATTERN)
    recipient_key_id: str = Field(min_length=1, max_length=200)
    key_id: str = Field(min_length=43, max_length=43)
    time: datetime
    sealed_key: str
    signature: dict[str, Any] | None = None

    def signing_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json", exclude={"signature"}))

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, data: bytes) -> CaseKeyGrant:
        try:
            return cls.model_validate_json(data)
        except ValidationError as e:
            raise GrantInvalid(f"malformed grant: {e.error_count()} error(s)") from None


def _info(case: str, sender: str, recipient: str, key_id: str) -> bytes:
    return ad("nrm/case-key-grant/v1", case, sender, recipient, key_id)


def grant_case_key(
    case_key: CaseKey,
    *,
    signer: SigningKey,
    recipient_public_key: hpke.MLKEM768X25519PublicKey,
    recipient_key_id: str,
    time: datetime,
) -> CaseKeyGrant:
    """Seal `case_key` to its recipient's HPKE key and sign the grant as its sender."""
    if signer.agency_id != case_key.sender:
        raise GrantInvalid("only the case key's sender may grant it")
    if case_key.recipient == case_key.sender:
        raise GrantInvalid("a sender's own case key is never granted")
    info = _info(case_key.case, case_key.sender, case_key.recipient, case_key.key_id)
    enc = HPKE_SUITE.encrypt(case_key.key, recipient_public_key, info=info)
    unsigned = CaseKeyGrant(
        case=case_key.case,
        sender=case_key.sender,
        recipient=case_key.recipient,
        recipient_key_id=recipient_key_id,
        key_id=case_key.key_id,
        time=time,
        sealed_key=b64e(enc),
    )
    sig = signer.private_key.sign(unsigned.signing_bytes())
    return unsigned.model_copy(
        update={"signature": {"alg": "Ed25519", "kid": signer.key_id, "sig": b64e(sig)}}
    )


def accept_grant(
    grant: CaseKeyGrant,
    recipient_key: HpkeKeyPair,
    public_key_lookup: PublicKeyLookup,
) -> CaseKey:
    """Check and open a grant addressed to `recipient_key`'s agency; put the result in
    the node's case key store and drop the grant."""
    if grant.recipient != recipient_key.agency_id:
        raise GrantInvalid(f"grant is for {grant.recipient}, not {recipient_key.agency_id}")
    if grant.recipient_key_id != recipient_key.key_id:
        raise GrantInvalid(f"grant is sealed to key {grant.recipient_key_id}")
    sig = grant.signature
    if (
        not isinstance(sig, dict)
        or sig.get("alg") != "Ed25519"
        or set(sig)
        != {
            "alg",
            "kid",
            "sig",
        }
    ):
        raise GrantInvalid("grant is unsigned or its signature is malformed")
    try:
        public = public_key_lookup(grant.sender, str(sig["kid"]), grant.time)
    except Exception as e:
        raise UnknownSigningKey(f"{grant.sender}/{sig['kid']}: {e}") from None
    try:
        public.verify(b64d(sig["sig"]), grant.signing_bytes())
    except (InvalidSignature, ValueError):
        raise GrantInvalid("grant signature does not verify") from None
    try:
        key = HPKE_SUITE.decrypt(
            b64d(grant.sealed_key),
            recipient_key.private_key,
            info=_info(grant.case, grant.sender, grant.recipient, grant.key_id),
        )
    except Exception:
        raise GrantInvalid("grant does not open with this recipient key") from None
    try:
        return CaseKey(grant.case, grant.sender, grant.recipient, grant.key_id, key)
    except KeyCommitmentMismatch:
        raise
    except (ValueError, SealingError) as e:
        raise GrantInvalid(str(e)) from None
