"""DPoP proofs (RFC 9449): a client proves, request by request, that it holds the key an
access token is bound to, so a token copied from a log, a proxy or a screen is useless.

Why DPoP rather than mutual TLS for agency systems: the bus's nodes sit behind whatever
each agency runs (reverse proxies, TLS terminators, API gateways) and agency systems are
written in many languages; a DPoP proof is one header made with any JOSE library and
survives TLS termination, while certificate-bound tokens (RFC 8705) need client
certificates to reach the node intact. The access token names the key by its RFC 7638
thumbprint (`cnf.jkt`); each proof is a one-time JWS over the method, the URL and the
token's hash, signed with that key.

Pure apart from the clock: `make_proof` for clients, `check_proof` for servers (the
replay cache of proof ids is the caller's, see `contracts.agency_token.ReplayCache`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey

#: The proof's JOSE type (RFC 9449 §4.2).
PROOF_TYPE = "dpop+jwt"
#: Signature algorithms accepted for proofs; each with the key type and curve it needs.
ALGORITHMS: dict[str, tuple[str, str]] = {"Ed25519": ("OKP", "Ed25519"), "ES256": ("EC", "P-256")}
#: How old a proof may be, and how far ahead of the server's clock.
MAX_PROOF_AGE = timedelta(seconds=60)
PROOF_CLOCK_SKEW = timedelta(seconds=10)
MAX_PROOF_LENGTH = 4096
HEADER = "DPoP"

ProofKey = OKPKey | ECKey


class ProofError(ValueError):
    """The DPoP proof is missing, malformed, stale or does not fit the request."""


def generate_key(alg: str = "Ed25519") -> ProofKey:
    """A fresh private key for proofs (kept by the client; never sent)."""
    kty, crv = ALGORITHMS[alg]
    return OKPKey.generate_key(crv) if kty == "OKP" else ECKey.generate_key(crv)


def key_algorithm(key: ProofKey) -> str:
    crv = key.as_dict(private=False).get("crv")
    for alg, (_, curve) in ALGORITHMS.items():
        if curve == crv:
            return alg
    raise ProofError(f"no DPoP algorithm for curve {crv!r}")


def thumbprint(key: ProofKey) -> str:
    """RFC 7638 SHA-256 thumbprint: what an access token's `cnf.jkt` names."""
    return str(key.thumbprint())


def token_hash(access_token: str) -> str:
    """The proof's `ath`: base64url(SHA-256(token)) without padding."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def normalize_url(url: str) -> str:
    """`htu` as compared (RFC 9449 §4.3): scheme and host lower-case, default port
    dropped, no query or fragment."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ProofError(f"htu {url!r} is not an absolute http(s) URL")
    try:
        port = parts.port
    except ValueError:
        raise ProofError(f"htu {url!r} has a bad port") from None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[scheme]
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def make_proof(
    key: ProofKey,
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    now: datetime,
    jti: str | None = None,
) -> str:
    """The `DPoP` header value for one request (a new `jti` each time)."""
    alg = key_algorithm(key)
    header = {"typ": PROOF_TYPE, "alg": alg, "jwk": key.as_dict(private=False)}
    claims: dict[str, Any] = {
        "jti": jti or uuid.uuid4().hex,
        "htm": method.upper(),
        "htu": normalize_url(url),
        "iat": int(now.timestamp()),
    }
    if access_token is not None:
        claims["ath"] = token_hash(access_token)
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jws.serialize_compact(header, payload, key, algorithms=[alg])


@dataclass(frozen=True)
class CheckedProof:
    """A proof that fits the request; the caller still refuses a replayed `jti`."""

    jkt: str
    jti: str
    issued_at: float

    @property
    def replayable_until(self) -> float:
        """Until when this proof would pass the freshness check: hold its jti that long."""
        return self.issued_at + (MAX_PROOF_AGE + PROOF_CLOCK_SKEW).total_seconds()


def check_proof(
    proof: str | None, method: str, url: str, access_token: str, now: datetime
) -> CheckedProof:
    """Checks everything about a proof that needs no memory: its signature by the key in
    its own header, its type, method, URL, age and the token it accompanies."""
    if not proof:
        raise ProofError("DPoP proof header missing")
    if len(proof) > MAX_PROOF_LENGTH:
        raise ProofError("DPoP proof too long")
    try:
        header = jws.extract_compact(proof.encode("ascii")).protected
    except (JoseError, ValueError, UnicodeError):
        raise ProofError("DPoP proof is not a compact JWS") from None
    if header.get("typ") != PROOF_TYPE:
        raise ProofError(f"DPoP proof typ must be {PROOF_TYPE!r}")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise ProofError(f"DPoP proof alg must be one of {', '.join(ALGORITHMS)}")
    key = _public_key(header.get("jwk"), alg)
    try:
        claims = json.loads(jws.deserialize_compact(proof, key, algorithms=[alg]).payload)
    except (JoseError, ValueError):
        raise ProofError("DPoP proof signature does not verify") from None
    if not isinstance(claims, dict):
        raise ProofError("DPoP proof claims are not an object")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
        raise ProofError("DPoP proof needs a jti of 8-128 characters")
    if claims.get("htm") != method.upper():
        raise ProofError(f"DPoP proof is for method {claims.get('htm')!r}, not {method.upper()}")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalize_url(htu) != normalize_url(url):
        raise ProofError(f"DPoP proof is for {htu!r}, not {normalize_url(url)}")
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise ProofError("DPoP proof iat missing or not an integer")
    ts = now.timestamp()
    if iat < ts - MAX_PROOF_AGE.total_seconds():
        raise ProofError("DPoP proof too old: make a new one for each request")
    if iat > ts + PROOF_CLOCK_SKEW.total_seconds():
        raise ProofError("DPoP proof issued in the future: check the client's clock")
    if claims.get("ath") != token_hash(access_token):
        raise ProofError("DPoP proof ath does not match the access token")
    return CheckedProof(thumbprint(key), jti, float(iat))


def _public_key(jwk: Any, alg: str) -> ProofKey:
    if not isinstance(jwk, dict):
        raise ProofError("DPoP proof header needs the public key as 'jwk'")
    kty, crv = ALGORITHMS[alg]
    if jwk.get("kty") != kty or jwk.get("crv") != crv:
        raise ProofError(f"DPoP proof key must be {kty} {crv} for alg {alg}")
    if "d" in jwk:
        raise ProofError("DPoP proof header carries a private key: never send it")
    try:
        key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError):
        raise ProofError("DPoP proof jwk is not a valid key") from None
    if not isinstance(key, OKPKey | ECKey):
        raise ProofError("DPoP proof jwk is not a signing key")
    return key
