"""How an agency proves who it is to any HTTP API of the bus: an Ed25519-signed JWT.

Why a JWT (RFC 7519, JWS alg "Ed25519" per RFC 9864) rather than RFC 9421 HTTP message
signatures: a maintained library (joserfc) does the encoding, the header passes
unchanged through proxies, gateways and TLS terminators that rewrite the very headers
9421 would sign, and agency systems in many languages already speak it.

Two kinds, both signed with the agency's registered signing key and naming one API as
audience:

- **Access tokens** (`Authorization: DPoP <token>`, `typ` "at+jwt"): reusable for up to
  15 minutes, bound to a client key by `cnf.jkt` (RFC 9449). Every request carries a
  fresh DPoP proof signed with that key (`contracts.dpop`), whose id is held in a replay
  cache: a stolen token without the key, or a replayed proof, is refused.
- **One-time tokens** (`Authorization: Bearer <token>`): at most 120 s, a `jti` held in
  a replay cache until expiry, so each works for exactly one request. For calls where a
  replay matters and no client key is at hand (the bus's own services use them).

A bound token is never accepted as a bearer token, nor a one-time token with DPoP.

A service that acts for agencies without being one (the notifier) has its own identity,
known to the APIs it calls as a `FixedParty` rather than a directory agency, and its
one-time tokens carry a `scope` (RFC 9068 style, space-separated) naming the little it may
do; agencies' own tokens carry none.
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

from contracts.directory import AgencyRecord, AgencyStatus, KeyStatus, PublicKeyRecord
from contracts.dpop import ALGORITHMS as PROOF_ALGORITHMS
from contracts.dpop import ProofError, check_proof
from contracts.envelope import AGENCY_ID_PATTERN

ALG = "Ed25519"
MAX_LIFETIME = timedelta(seconds=120)
DEFAULT_LIFETIME = timedelta(seconds=60)
#: DPoP-bound access tokens: reusable, so short-lived in minutes, not hours.
MAX_ACCESS_LIFETIME = timedelta(minutes=15)
DEFAULT_ACCESS_LIFETIME = timedelta(minutes=10)
ACCESS_TOKEN_TYPE = "at+jwt"
#: The schemes a 401 offers: DPoP-bound access tokens, and one-time bearer tokens.
CHALLENGE = f'DPoP algs="{" ".join(PROOF_ALGORITHMS)}", Bearer'
#: Tolerated clock skew for `iat`/`nbf` in the future (not for `exp`).
CLOCK_SKEW = timedelta(seconds=5)
MAX_TOKEN_LENGTH = 4096

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class AuthError(Exception):
    """Refused: `status` is 401 (unauthenticated) or 403 (authenticated, not allowed)."""

    def __init__(self, status: int, reason: str, *, bad_proof: bool = False) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.bad_proof = bad_proof

    def www_authenticate(self) -> str:
        """The 401 challenge (RFC 9449 §7.1): both schemes, and which part failed."""
        if self.bad_proof:
            return f'DPoP error="invalid_dpop_proof", algs="{" ".join(PROOF_ALGORITHMS)}"'
        return CHALLENGE

    @property
    def headers(self) -> dict[str, str]:
        """What an HTTP answer to this refusal carries (RFC 9110: a 401 names the schemes)."""
        return {"WWW-Authenticate": self.www_authenticate()} if self.status == 401 else {}


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
    scope: str | None = None,
) -> str:
    """A one-time bearer token (each `jti` is accepted once); `scope` for a service."""
    return _signed(
        agency_id, key_id, private_key, audience, lifetime, MAX_LIFETIME, now, jti, scope=scope
    )


def issue_access_token(
    agency_id: str,
    key_id: str,
    private_key: ed25519.Ed25519PrivateKey,
    audience: str,
    jkt: str,
    *,
    lifetime: timedelta = DEFAULT_ACCESS_LIFETIME,
    now: datetime | None = None,
) -> str:
    """A reusable access token bound to the client key whose thumbprint is `jkt`."""
    return _signed(
        agency_id, key_id, private_key, audience, lifetime, MAX_ACCESS_LIFETIME, now, None, jkt
    )


def _signed(
    agency_id: str,
    key_id: str,
    private_key: ed25519.Ed25519PrivateKey,
    audience: str,
    lifetime: timedelta,
    longest: timedelta,
    now: datetime | None,
    jti: str | None,
    jkt: str | None = None,
    scope: str | None = None,
) -> str:
    if lifetime > longest or lifetime <= timedelta(0):
        raise ValueError(f"token lifetime must be in (0, {int(longest.total_seconds())}] seconds")
    at = int((now or system_clock()).timestamp())
    claims: dict[str, Any] = {
        "iss": agency_id,
        "aud": audience,
        "iat": at,
        "exp": at + int(lifetime.total_seconds()),
        "jti": jti or uuid.uuid4().hex,
    }
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}
    if scope:
        claims["scope"] = scope
    header = {"alg": ALG, "kid": key_id, "typ": "JWT" if jkt is None else ACCESS_TOKEN_TYPE}
    return jwt.encode(header, claims, OKPKey.import_key(private_key), algorithms=[ALG])


def token_issuer(token: str) -> str | None:
    """The `iss` a token claims, unverified: only to pick whose keys verify it."""
    try:
        claims = json.loads(jws.extract_compact(token.encode("ascii")).payload)
    except (JoseError, ValueError, UnicodeError):
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss if isinstance(iss, str) else None


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

    def check_and_add(
        self, issuer: str, jti: str, exp: float, now: float, what: str = "token"
    ) -> None:
        with self._lock:
            key = (issuer, jti)
            held = self._seen.get(key)
            if held is not None and held > now:
                reason = f"{what} replayed (jti already used)"
                raise AuthError(401, reason, bad_proof=what != "token")
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
    bound_to: str | None = None  # the client key's thumbprint (DPoP), None: one-time
    scope: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FixedParty:
    """A party known by configuration, not by the directory (a service's identity)."""

    id: str
    keys: tuple[PublicKeyRecord, ...]
    status: AgencyStatus = AgencyStatus.ACTIVE


class FixedParties:
    """A KeyDirectory of a few configured parties: what a node knows of its notifier."""

    def __init__(self, *parties: FixedParty) -> None:
        self._parties = {p.id: p for p in parties}

    def agency(self, agency_id: str) -> Any:
        return self._parties.get(agency_id)

    def signing_key(self, agency_id: str, key_id: str, at_time: datetime) -> Any:
        party = self._parties.get(agency_id)
        if party is None:
            return None
        return next(
            (
                k
                for k in party.keys
                if k.key_id == key_id and k.use == "signing" and k.valid_at(at_time)
            ),
            None,
        )


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

    def authenticate(
        self,
        authorization: str | None,
        *,
        proof: str | None = None,
        method: str = "GET",
        url: str = "",
    ) -> VerifiedToken:
        """From an HTTP request: its Authorization header and, for the DPoP scheme, its
        `DPoP` header, method and URL (as the client addressed it)."""
        if not authorization:
            raise AuthError(401, "missing token: send 'Authorization: DPoP <token>' or Bearer")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() == "dpop" and token:
            return self.verify_bound(token, proof, method, url)
        if scheme.lower() != "bearer" or not token:
            raise AuthError(401, "authorization must be 'DPoP <token>' or 'Bearer <token>'")
        return self.verify(token)

    def verify(self, token: str) -> VerifiedToken:
        """A one-time bearer token."""
        header, claims, now = self._signed(token)
        if "cnf" in claims or header.get("typ") == ACCESS_TOKEN_TYPE:
            raise AuthError(401, "a DPoP-bound token needs 'Authorization: DPoP' and a proof")
        return self._check_claims(claims, header["kid"], now, MAX_LIFETIME, one_time=True)

    def verify_bound(self, token: str, proof: str | None, method: str, url: str) -> VerifiedToken:
        """A DPoP-bound access token with the proof of possession of its key."""
        header, claims, now = self._signed(token)
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if header.get("typ") != ACCESS_TOKEN_TYPE or not isinstance(jkt, str):
            raise AuthError(401, "not a DPoP-bound access token (typ at+jwt with cnf.jkt)")
        verified = self._check_claims(
            claims, header["kid"], now, MAX_ACCESS_LIFETIME, one_time=False
        )
        try:
            checked = check_proof(proof, method, url, token, now)
        except ProofError as exc:
            raise AuthError(401, str(exc), bad_proof=True) from None
        if checked.jkt != jkt:
            raise AuthError(
                401, "DPoP proof signed with a key the token is not bound to", bad_proof=True
            )
        self._replay.check_and_add(
            f"dpop:{jkt}", checked.jti, checked.replayable_until, now.timestamp(), "DPoP proof"
        )
        return VerifiedToken(
            verified.agency_id,
            verified.key_id,
            verified.jti,
            verified.expires_at,
            jkt,
            verified.scope,
        )

    def _signed(self, token: str) -> tuple[dict[str, Any], dict[str, Any], datetime]:
        """Header and claims of a token signed by its issuer's current key."""
        header, claims = self._unverified(token)
        now = self._clock().astimezone(UTC)
        issuer, key_id = claims["iss"], header["kid"]
        directory = self._directory()
        agency = directory.agency(issuer)
        if agency is None:
            raise AuthError(401, f"unknown agency {issuer!r}")
        key = directory.signing_key(issuer, key_id, now)
        if key is not None and key.status is not KeyStatus.ACTIVE:
            key = None  # a rotation's grace is for events in transit, not for new tokens
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
        return header, claims, now

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
        self,
        claims: dict[str, Any],
        key_id: str,
        now: datetime,
        max_lifetime: timedelta,
        *,
        one_time: bool,
    ) -> VerifiedToken:
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.audience not in audiences:
            raise AuthError(401, f"token audience is not {self.audience!r}")
        exp, iat = _int_claim(claims, "exp"), _int_claim(claims, "iat")
        nbf = _int_claim(claims, "nbf", required=False)
        assert exp is not None and iat is not None
        ts = now.timestamp()
        if exp - iat > max_lifetime.total_seconds():
            raise AuthError(401, f"token lifetime over {int(max_lifetime.total_seconds())} s")
        if exp <= ts:
            raise AuthError(401, "token expired")
        if iat > ts + CLOCK_SKEW.total_seconds() or (
            nbf is not None and nbf > ts + CLOCK_SKEW.total_seconds()
        ):
            raise AuthError(401, "token not yet valid")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
            raise AuthError(401, "claim 'jti' missing or not 8-128 characters")
        scope = claims.get("scope", "")
        if not isinstance(scope, str) or len(scope) > 256:
            raise AuthError(401, "claim 'scope' must be a short space-separated string")
        issuer = str(claims["iss"])
        if one_time:
            self._replay.check_and_add(issuer, jti, float(exp), ts)
        expires = datetime.fromtimestamp(exp, UTC)
        return VerifiedToken(issuer, key_id, jti, expires, scope=frozenset(scope.split()))
