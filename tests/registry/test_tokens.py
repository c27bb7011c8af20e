"""Agency tokens: 401 for who-are-you failures, 403 for known-but-barred agencies."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey

from contracts.agency_token import AuthError, ReplayCache, TokenVerifier, issue_token
from contracts.directory import KeyUse
from contracts.keystore import generate_agency_keys
from contracts.problems import problem
from tests.problems import assert_problem
from tests.registry.conftest import AUDIENCE, Bus, key_input


def _get(bus: Bus, headers: dict[str, str]) -> tuple[int, str]:
    """The status, and for a refusal its detail (checked to be a whole problem)."""
    r = bus.client.get("/v1/agreement", headers=headers)
    if r.status_code == 200:
        return 200, ""
    return r.status_code, assert_problem(r, "unauthenticated").detail


def said(reason: str) -> str:
    """The detail a 401 for `reason` carries: the reason, then what to do next."""
    return problem("unauthenticated", reason).detail


def test_expired_not_yet_valid_too_long(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    old = police.token(now=bus.clock() - timedelta(seconds=61))
    assert _get(bus, {"Authorization": f"Bearer {old}"}) == (401, said("token expired"))
    future = police.token(now=bus.clock() + timedelta(seconds=30))
    assert _get(bus, {"Authorization": f"Bearer {future}"}) == (401, said("token not yet valid"))
    with pytest.raises(ValueError):
        police.token(lifetime=timedelta(seconds=121))
    pair = police.keys.current(KeyUse.SIGNING)
    now = int(bus.clock().timestamp())
    long = jwt.encode(
        {"alg": "Ed25519", "kid": pair.key_id},
        {"iss": police.id, "aud": AUDIENCE, "iat": now, "exp": now + 3600, "jti": "x" * 16},
        OKPKey.import_key(pair.ed25519()),
        algorithms=["Ed25519"],
    )
    assert _get(bus, {"Authorization": f"Bearer {long}"}) == (
        401,
        said("token lifetime over 120 s"),
    )


def test_replayed_token(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    headers = police.auth()
    assert _get(bus, headers)[0] == 200
    assert _get(bus, headers) == (401, said("token replayed (jti already used)"))


def test_unknown_agency_unknown_key_bad_signature_wrong_audience(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    stranger = bus.party("xa-stranger")
    assert _get(bus, stranger.auth()) == (401, said("unknown agency 'xa-stranger'"))
    impostor = generate_agency_keys("xa-police", bus.clock())  # same id, other keys
    pair = impostor.current(KeyUse.SIGNING)
    t = issue_token("xa-police", pair.key_id, pair.ed25519(), AUDIENCE, now=bus.clock())
    assert _get(bus, {"Authorization": f"Bearer {t}"}) == (
        401,
        said(f"unknown key id {pair.key_id!r}"),
    )
    real = police.keys.current(KeyUse.SIGNING)
    t = issue_token("xa-police", real.key_id, pair.ed25519(), AUDIENCE, now=bus.clock())
    assert _get(bus, {"Authorization": f"Bearer {t}"}) == (401, said("bad token signature"))
    assert _get(bus, police.auth(audience="nrm-registry:XB"))[0] == 401
    for junk in ("Bearer ", "Bearer a.b.c", "Bearer " + "x" * 5000, "Token abc"):
        assert _get(bus, {"Authorization": junk})[0] == 401


def test_alg_none_and_hs256_are_refused(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    token = police.token()
    _, payload, _ = token.split(".")

    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    none = b64({"alg": "none", "kid": police.keys.current(KeyUse.SIGNING).key_id})
    assert _get(bus, {"Authorization": f"Bearer {none}.{payload}."}) == (
        401,
        said("token alg must be Ed25519"),
    )


def test_old_key_rejected_for_tokens_after_rotation(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    old_headers_party_keys = police.keys
    bus.clock.advance(10)
    police.rotate()
    body = {"keys": [key_input(police.keys, u) for u in KeyUse]}
    assert (
        bus.client.post(
            "/v1/agencies/xa-police/keys", json=body, headers=bus.operator.auth()
        ).status_code
        == 200
    )
    bus.clock.advance(1)
    old = old_headers_party_keys.current(KeyUse.SIGNING)
    t = issue_token(police.id, old.key_id, old.ed25519(), AUDIENCE, now=bus.clock())
    assert _get(bus, {"Authorization": f"Bearer {t}"}) == (
        401,
        said(f"signing key {old.key_id!r} not valid now"),
    )
    assert _get(bus, police.auth())[0] == 200


def test_replay_cache_is_bounded_and_fails_closed() -> None:
    cache = ReplayCache(max_entries=2)
    cache.check_and_add("a", "j1", exp=100, now=0)
    cache.check_and_add("a", "j2", exp=200, now=0)
    with pytest.raises(AuthError) as e:
        cache.check_and_add("a", "j3", exp=100, now=50)
    assert e.value.status == 401
    cache.check_and_add("a", "j3", exp=300, now=150)  # j1 expired and purged
    assert len(cache) == 2
    cache.check_and_add("a", "j1", exp=400, now=250)  # expired jti may come back
    with pytest.raises(AuthError, match="replayed"):
        cache.check_and_add("a", "j3", exp=300, now=260)


def test_verifier_alone_with_a_directory(bus: Bus) -> None:
    police = bus.party("xa-police")
    bus.register(police, ["first-responder"])
    verifier = TokenVerifier(bus.registry.directory, "router:xa-shelter", bus.clock)
    assert verifier(police.token(audience="router:xa-shelter")) == "xa-police"
    with pytest.raises(AuthError) as e:
        verifier(police.token())
    assert e.value.status == 401 and "audience" in e.value.reason
