"""What the registry's API accepts. Validation here is the only gate before an event is
stored, so every rule fails with the path of the offending field (422) and nothing else
(the registry turns conflicts with stored state into 409s)."""

from __future__ import annotations

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts.directory import (
    ALG_FOR_USE,
    COUNTRY_PATTERN,
    KEY_ID_PATTERN,
    AgencyStatus,
    Endpoints,
    KeyAlg,
    KeyUse,
    b64url_decode,
    validate_ed25519_public,
    validate_hybrid_public,
)
from contracts.envelope import AGENCY_ID_PATTERN
from contracts.events import CATALOGUE
from contracts.need_to_know import Condition
from contracts.vocabulary import DataCategory, Role, ServiceKind


class KeyInput(BaseModel):
    """A public key to register; the registry sets its validity window and status."""

    model_config = ConfigDict(extra="forbid")

    key_id: str = Field(pattern=KEY_ID_PATTERN)
    use: KeyUse
    alg: KeyAlg
    public_key: str = Field(max_length=4096, description="Raw public key, unpadded base64url.")

    @field_validator("alg")
    @classmethod
    def _alg_fits_use(cls, v: KeyAlg, info: ValidationInfo) -> KeyAlg:
        use = info.data.get("use")
        if use is not None and ALG_FOR_USE[use] is not v:
            raise ValueError(f"a {use} key must use {ALG_FOR_USE[use]}, not {v}")
        return v

    @field_validator("public_key")
    @classmethod
    def _valid_key(cls, v: str, info: ValidationInfo) -> str:
        raw = b64url_decode(v)
        alg = info.data.get("alg")
        if alg is KeyAlg.ED25519:
            validate_ed25519_public(raw)
        elif alg is KeyAlg.MLKEM768_X25519:
            validate_hybrid_public(raw)
        return v


class AgencyRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=AGENCY_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    country: str = Field(pattern=COUNTRY_PATTERN)
    roles: list[Role] = Field(min_length=1, max_length=len(Role))
    services: list[ServiceKind] = Field(default_factory=list, max_length=len(ServiceKind))
    endpoints: Endpoints
    keys: list[KeyInput] = Field(min_length=2, max_length=2)

    @field_validator("roles", "services")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("entries must be distinct")
        return v

    @field_validator("keys")
    @classmethod
    def _one_per_use(cls, v: list[KeyInput]) -> list[KeyInput]:
        if {k.use for k in v} != set(KeyUse):
            raise ValueError("give exactly one signing and one encryption key")
        if len({k.key_id for k in v}) != len(v):
            raise ValueError("key ids must be distinct")
        return v


class KeyRotation(BaseModel):
    """A planned rotation; the old keys keep verifying records that reach the transport
    within the grace period (what the agency's outbox still holds)."""

    model_config = ConfigDict(extra="forbid")

    keys: list[KeyInput] = Field(min_length=1, max_length=2)
    grace_hours: float = Field(
        default=24, ge=0, le=168, description="How long the old keys still count (hours)."
    )

    @field_validator("keys")
    @classmethod
    def _one_per_use(cls, v: list[KeyInput]) -> list[KeyInput]:
        if len({k.use for k in v}) != len(v):
            raise ValueError("at most one new key per use")
        if len({k.key_id for k in v}) != len(v):
            raise ValueError("key ids must be distinct")
        return v


class KeyCompromise(BaseModel):
    """A key known or feared stolen: nothing signed with it counts from `compromised_at`
    (default: now; earlier if misuse is known to have begun before)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)
    compromised_at: AwareDatetime | None = Field(
        default=None, description="When misuse began, if known (RFC 3339, not in the future)."
    )


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: AgencyStatus
    reason: str = Field(min_length=1, max_length=1000)


class EndpointsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoints: Endpoints


class AgreementInput(BaseModel):
    """Typed grants, so an unknown category, role or condition fails at its own path."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    grants: dict[DataCategory, dict[Role, Condition]]
    reason: str = Field(default="agreement changed", min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _no_operational(self) -> AgreementInput:
        if DataCategory.OPERATIONAL in self.grants:
            raise ValueError("grants.operational: readable by all; do not grant it")
        return self

    def as_agreement_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "grants": {
                str(c): {str(r): str(cond) for r, cond in by_role.items()}
                for c, by_role in self.grants.items()
            },
        }


class SubscriptionInput(BaseModel):
    """A webhook subscription of an agency's system; types from the event catalogue."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: str = Field(pattern=r"^https?://[^\s/?#]+[^\s]*$", max_length=2048)
    event_types: list[str] = Field(min_length=1, max_length=len(CATALOGUE))

    @field_validator("event_types")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [t for t in v if t not in CATALOGUE]
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(sorted(unknown))}")
        if len(set(v)) != len(v):
            raise ValueError("entries must be distinct")
        return v
