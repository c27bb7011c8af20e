"""DPoP proofs and bound access tokens, checked without a network: every way a proof or a
token can be wrong is refused with a reason, by the same code every service runs."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jws, jwt
from joserfc.jwk import OKPKey

from contracts import dpop
from contracts.agency_token import (
    AuthError,
    ReplayCache,
    TokenVerifier,
    issue_access_token,
    issue_token,
)
from contracts.directory import KeyUse
from contracts.vocabulary import Role
from tests.agencies import country
from tests.registry.conftest import FrozenClock

URL = "http://127.0.0.1:8401/v1/cases"
AUDIENCE = "nrm-router:border-police"
NOW = datetime.now(UTC).replace(microsecond=0)  # the test directory's keys are valid now


def test_url_normalisation_follows_rfc_9449() -> None:
    assert dpop.normalize_url("HTTP://Node.Example:80/v1/cases?x=1#f") == (
        "http://node.example/v1/cases"
    )
    assert dpop.normalize_url("https://n.example:443") == "https://n.example/"
    assert dpop.normalize_url("https://n.example:8443/a") == "https://n.example:8443/a"
    for bad in ("ftp://n.example/a", "/v1/cases", "http://n.example:99999/a"):
        with pytest.raises(dpop.ProofError):
            dpop.normalize_url(bad)


@pytest.mark.parametrize("alg", sorted(dpop.ALGORITHMS))
def test_a_proof_checks_with_each_algorithm(alg: str) -> None:
    key = dpop.generate_key(alg)
    proof = dpop.make_proof(key, "post", URL + "?q=1", access_token="tok", now=NOW)
    checked = dpop.check_proof(proof, "POST", URL, "tok", NOW + timedelta(seconds=5))
    assert checked.jkt == dpop.thumbprint(key)
    assert checked.replayable_until == NOW.timestamp() + 70


def _forged(header: dict[str, object], claims: dict[str, object], key: OKPKey) -> str:
    payload = json.dumps(claims).encode()
    return jws.serialize_compact(header, payload, key, algorithms=[str(header["alg"])])


def _unsigned(header: dict[str, object], claims: dict[str, object]) -> str:
    def b64(data: dict[str, object]) -> str:
        raw = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")
        return raw.decode()

    return f"{b64(header)}.{b64(claims)}."


def _claims(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "jti": "j" * 16,
        "htm": "POST",
        "htu": URL,
        "iat": int(NOW.timestamp()),
        "ath": dpop.token_hash("tok"),
    }
    return {**base, **over}


WRONG_PROOFS: dict[str, Callable[[OKPKey], str]] = {
    "DPoP proof header missing": lambda k: "",
    "not a compact JWS": lambda k: "a.b",
    "typ must be": lambda k: _forged(
        {"alg": "Ed25519", "typ": "JWT", "jwk": k.as_dict(private=False)}, _claims(), k
    ),
    "alg must be one of": lambda k: _unsigned({"alg": "none", "typ": "dpop+jwt"}, _claims()),
    "carries a private key": lambda k: _forged(
        {"alg": "Ed25519", "typ": "dpop+jwt", "jwk": k.as_dict(private=True)}, _claims(), k
    ),
    "signature does not verify": lambda k: _forged(
        {
            "alg": "Ed25519",
            "typ": "dpop+jwt",
            "jwk": OKPKey.generate_key("Ed25519").as_dict(private=False),
        },
        _claims(),
        k,
    ),
    "needs a jti": lambda k: dpop.make_proof(k, "POST", URL, access_token="tok", now=NOW, jti="x"),
    "for method 'GET'": lambda k: dpop.make_proof(k, "GET", URL, access_token="tok", now=NOW),
    "not http://127.0.0.1:8401/v1/cases": lambda k: dpop.make_proof(
        k, "POST", "http://127.0.0.1:8402/v1/cases", access_token="tok", now=NOW
    ),
    "too old": lambda k: dpop.make_proof(
        k, "POST", URL, access_token="tok", now=NOW - timedelta(seconds=61)
    ),
    "in the future": lambda k: dpop.make_proof(
        k, "POST", URL, access_token="tok", now=NOW + timedelta(seconds=11)
    ),
    "ath does not match": lambda k: dpop.make_proof(k, "POST", URL, access_token="other", now=NOW),
    "key must be OKP Ed25519": lambda k: _forged(
        {"alg": "Ed25519", "typ": "dpop+jwt", "jwk": {"kty": "EC", "crv": "P-256"}}, _claims(), k
    ),
}


@pytest.mark.parametrize("reason", sorted(WRONG_PROOFS))
def test_every_wrong_proof_is_refused_with_its_reason(reason: str) -> None:
    key = OKPKey.generate_key("Ed25519")
    proof = WRONG_PROOFS[reason](key)
    with pytest.raises(dpop.ProofError, match=reason.replace("(", r"\(")):
        dpop.check_proof(proof, "POST", URL, "tok", NOW)


class _World:
    """A real directory of one agency, a verifier for its node, and a fixed clock."""

    def __init__(self) -> None:
        xa = country("XA", {"border-police": Role.FIRST_RESPONDER})
        self.keys = xa.keys["border-police"]
        self.clock = FrozenClock(NOW)
        self.verifier = TokenVerifier(
            lambda: xa.directory, AUDIENCE, clock=self.clock, replay_cache=ReplayCache()
        )
        self.client_key = dpop.generate_key()

    def token(self, **kw: object) -> str:
        pair = self.keys.current(KeyUse.SIGNING)
        jkt = str(kw.pop("jkt", dpop.thumbprint(self.client_key)))
        return issue_access_token(
            "border-police", pair.key_id, pair.ed25519(), AUDIENCE, jkt, now=self.clock(), **kw
        )

    def call(self, token: str, proof: str | None, method: str = "POST", url: str = URL) -> str:
        return self.verifier.authenticate(
            f"DPoP {token}", proof=proof, method=method, url=url
        ).agency_id

    def proof(self, token: str, key: dpop.ProofKey | None = None) -> str:
        return dpop.make_proof(key or self.client_key, "POST", URL, access_token=token, now=NOW)


def test_a_bound_token_is_reused_with_a_fresh_proof_each_time() -> None:
    w = _World()
    token = w.token()
    for _ in range(3):
        assert w.call(token, w.proof(token)) == "border-police"
    w.clock.advance(599)
    assert (
        w.call(token, dpop.make_proof(w.client_key, "POST", URL, access_token=token, now=w.clock()))
        == "border-police"
    )
    w.clock.advance(2)
    with pytest.raises(AuthError, match="token expired"):
        w.call(token, dpop.make_proof(w.client_key, "POST", URL, access_token=token, now=w.clock()))


def test_a_stolen_token_without_the_key_is_refused() -> None:
    w = _World()
    token = w.token()
    with pytest.raises(AuthError, match="proof header missing") as missing:
        w.call(token, None)
    assert missing.value.bad_proof and "invalid_dpop_proof" in missing.value.www_authenticate()
    thief = dpop.generate_key()
    with pytest.raises(AuthError, match="key the token is not bound to"):
        w.call(token, w.proof(token, thief))
    with pytest.raises(AuthError, match="needs 'Authorization: DPoP'"):
        w.verifier.authenticate(f"Bearer {token}")


def test_a_replayed_proof_is_refused() -> None:
    w = _World()
    token = w.token()
    proof = w.proof(token)
    w.call(token, proof)
    with pytest.raises(AuthError, match="DPoP proof replayed"):
        w.call(token, proof)


def test_token_kinds_are_not_interchangeable_and_lifetimes_are_bounded() -> None:
    w = _World()
    pair = w.keys.current(KeyUse.SIGNING)
    one_time = issue_token("border-police", pair.key_id, pair.ed25519(), AUDIENCE, now=NOW)
    with pytest.raises(AuthError, match="not a DPoP-bound access token"):
        w.call(one_time, w.proof(one_time))
    assert w.verifier.authenticate(f"Bearer {one_time}").bound_to is None
    with pytest.raises(ValueError):
        w.token(lifetime=timedelta(minutes=16))
    now = int(NOW.timestamp())
    long_lived = jwt.encode(
        {"alg": "Ed25519", "kid": pair.key_id, "typ": "at+jwt"},
        {
            "iss": "border-police",
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "jti": "k" * 16,
            "cnf": {"jkt": dpop.thumbprint(w.client_key)},
        },
        OKPKey.import_key(pair.ed25519()),
        algorithms=["Ed25519"],
    )
    with pytest.raises(AuthError, match="lifetime over 900 s"):
        w.call(long_lived, w.proof(long_lived))
    for header in (None, "", "Basic abc", "DPoP", "Token x"):
        with pytest.raises(AuthError) as refused:
            w.verifier.authenticate(header)
        assert refused.value.status == 401
