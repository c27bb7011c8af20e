"""How an agency proves who it is to any HTTP API of the bus: a short-lived Ed25519 JWT.

Why a JWT (RFC 7519, JWS alg "Ed25519" per RFC 9864) rather than RFC 9421 HTTP message
signatures: a maintained library (joserfc) does the encoding, a bearer header passes
unchanged through proxies, gateways and TLS terminators that rewrite the very headers
9421 would sign, and agency systems in many languages already speak it. The cost, no
binding to the request body, is bounded by a lifetime of at most 120 s, an audience
naming one API, and a one-time `jti` held in a replay cache until the token expires.
Request bodies that matter (case events) carry their own Ed25519 signatures anyway.

Keys come from the signed directory: `iss` is the agency id, `kid` its signing key id.
Failures are 401 (who are you?) except a known, correctly signed but suspended or
revoked agency, which is 403 (we know you; you may not). Pure apart from the clock.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from contracts.directory import AgencyRecord, AgencyStatus, PublicKeyRecord
from contracts.envelope import AGENCY_ID_PATTERN

ALG = "Ed25519"
MAX_LIFETIME = timedelta(seconds=120)
DEFAULT_LIFETIME = timedelta(seconds=60)
#: Tolerated clock skew for `iat`/`nbf` in the future (not for `exp`).
CLOCK_SKEW = timedelta(seconds=5)
MAX_TOKEN_LENGTH = 4096

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class AuthError(Exception):
    """Refused: `status` is 401 (unauthenticated) or 403 (authenticated, not allowed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class KeyDirectory(Protocol):
    """What a verifier needs from a directory (contracts.directory.Directory fits)."""

    def agency(self, agency_id: str) -> AgencyRecord | None: ...

    def signing_key(
        self, agency_id: str, key_id: str, at_time: datetime
    ) -> PublicKeyRecord | None: ...


def issue_token(
    agency_id: str,
    key_id: str,
    private_key: ed25519.Ed25519PrivateKey,
    audience: str,
    *,
    lifetime: timedelta = DEFAULT_LIFETIME,
    now: datetime | None = None,
    jti: str | None = None,
) -> str:
    if lifetime > MAX_LIFETIME or lifetime <= timedelta(0):
        raise ValueError(f"token lifetime must be in (0, {MAX_LIFETIME.seconds}] seconds")
    at = int((now or system_clock()).timestamp())
    claims = {
        "iss": agency_id,
        "aud": audience,
        "iat": at,
        "exp": at + int(lifetime.total_seconds()),
        "jti": jti or uuid.uuid4().hex,
    }
    header = {"alg": ALG, "kid": key_id, "typ": "JWT"}
    return jwt.encode(header, claims, OKPKey.import_key(private_key), algorithms=[ALG])


class ReplayCache:
    """One-time token ids, each held until its token expires. Bounded, and fails closed:
    when full of unexpired ids it refuses new tokens rather than forget old ones."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def _purge(self, now: float) -> None:
        for key in [k for k, exp in self._seen.items() if exp <= now]:
            del self._seen[key]

    def check_and_add(self, issuer: str, jti: str, exp: float, now: float) -> None:
        with self._lock:
            key = (issuer, jti)
            held = self._seen.get(key)
            if held is not None and held > now:
                raise AuthError(401, "token replayed (jti already used)")
            if held is None and len(self._seen) >= self._max:
                self._purge(now)
                if len(self._seen) >= self._max:
                    raise AuthError(401, "too many tokens in flight; retry shortly")
            self._seen[key] = exp


@dataclass(frozen=True)
class VerifiedToken:
    agency_id: str
    key_id: str
    jti: str
    expires_at: datetime


def _int_claim(claims: dict[str, Any], name: str, required: bool = True) -> int | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise AuthError(401, f"claim {name!r} missing or not an integer")
    return value


class TokenVerifier:
    """Verifies a bearer token for one API (`audience`) against the current directory."""

    def __init__(
        self,
        directory_getter: Callable[[], KeyDirectory],
        audience: str,
        clock: Clock = system_clock,
        replay_cache: ReplayCache | None = None,
    ) -> None:
        self._directory = directory_getter
        self.audience = audience
        self._clock = clock
        self._replay = replay_cache if replay_cache is not None else ReplayCache()

    def __call__(self, token: str) -> str:
        return self.verify(token).agency_id

    def authenticate(self, authorization: str | None) -> VerifiedToken:
        """From an HTTP Authorization header value."""
        if not authorization:
            raise AuthError(401, "missing bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "authorization must be 'Bearer <token>'")
        return self.verify(token.strip())

    def verify(self, token: str) -> VerifiedToken:
        header, claims = self._unverified(token)
        now = self._clock().astimezone(UTC)
        issuer, key_id = claims["iss"], header["kid"]
        directory = self._directory()
        agency = directory.agency(issuer)
        if agency is None:
            raise AuthError(401, f"unknown agency {issuer!r}")
        key = directory.signing_key(issuer, key_id, now)
        if key is None:
            known = any(k.key_id == key_id for k in agency.keys)
            raise AuthError(
                401,
                f"signing key {key_id!r} not valid now" if known else f"unknown key id {key_id!r}",
            )
        try:
            jwt.decode(token, OKPKey.import_key(key.ed25519()), algorithms=[ALG])
        except JoseError:
            raise AuthError(401, "bad token signature") from None
        if agency.status is not AgencyStatus.ACTIVE:
            raise AuthError(403, f"agency {issuer!r} is {agency.status}")
        return self._check_claims(claims, issuer, key_id, now)

    def _unverified(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise AuthError(401, "malformed token")
        try:
            obj = jws.extract_compact(token.encode("ascii"))
            claims = json.loads(obj.payload)
        except (JoseError, ValueError, UnicodeError):
            raise AuthError(401, "malformed token") from None
        header = obj.protected
        if header.get("alg") != ALG:
            raise AuthError(401, f"token alg must be {ALG}")
        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise AuthError(401, "token header needs a 'kid'")
        if not isinstance(claims, dict):
            raise AuthError(401, "malformed token claims")
        iss = claims.get("iss")
        if not isinstance(iss, str) or not re.match(AGENCY_ID_PATTERN, iss):
            raise AuthError(401, "claim 'iss' must be an agency id")
        return header, claims

    def _check_claims(
        self, claims: dict[str, Any], issuer: str, key_id: str, now: datetime
    ) -> VerifiedToken:
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.audience not in audiences:
            raise AuthError(401, f"token audience is not {self.audience!r}")
        exp, iat = _int_claim(claims, "exp"), _int_claim(claims, "iat")
        nbf = _int_claim(claims, "nbf", required=False)
        assert exp is not None and iat is not None
        ts = now.timestamp()
        if exp - iat > MAX_LIFETIME.total_seconds():
            raise AuthError(401, f"token lifetime over {int(MAX_LIFETIME.total_seconds())} s")
        if exp <= ts:
            raise AuthError(401, "token expired")
        if iat > ts + CLOCK_SKEW.total_seconds() or (
            nbf is not None and nbf > ts + CLOCK_SKEW.total_seconds()
        ):
            raise AuthError(401, "token not yet valid")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
            raise AuthError(401, "claim 'jti' missing or not 8-128 characters")
        self._replay.check_and_add(issuer, jti, float(exp), ts)
        return VerifiedToken(issuer, key_id, jti, datetime.fromtimestamp(exp, UTC))
