"""Console cookies are bound to one node: another node's key, another agency's name, or
one changed character, and the cookie opens nothing."""

from __future__ import annotations

import secrets

import pytest

from referral_router.console.sessions import CookieSeal, new_secret

KEY = secrets.token_bytes(32)


def test_a_sealed_session_opens_only_on_the_node_that_sealed_it() -> None:
    mine = CookieSeal("safe-house", KEY)
    session = new_secret()
    cookie = mine.seal_session(session)
    assert mine.open_session(cookie) == session
    # the same master key, another agency (a copy-pasted deployment) ...
    assert CookieSeal("child-protection", KEY).open_session(cookie) is None
    # ... and the same agency with another node's key
    assert CookieSeal("safe-house", secrets.token_bytes(32)).open_session(cookie) is None


@pytest.mark.parametrize("bad", [None, "", "no-dot", "a.b.c", ".", "x.y"])
def test_malformed_cookies_open_nothing(bad: str | None) -> None:
    assert CookieSeal("safe-house", KEY).open_session(bad) is None


def test_one_changed_character_opens_nothing() -> None:
    seal = CookieSeal("safe-house", KEY)
    cookie = seal.seal_session(new_secret())
    for i, ch in enumerate(cookie):
        if ch == ".":
            continue
        other = "A" if ch != "A" else "B"
        assert seal.open_session(cookie[:i] + other + cookie[i + 1 :]) is None


def test_the_sign_in_token_is_bound_to_its_nonce() -> None:
    seal = CookieSeal("safe-house", KEY)
    nonce = new_secret()
    token = seal.sign_in_token(nonce)
    assert seal.sign_in_token_ok(nonce, token)
    assert not seal.sign_in_token_ok(new_secret(), token)
    assert not seal.sign_in_token_ok(nonce, None)
    assert not seal.sign_in_token_ok(None, token)
    assert not CookieSeal("immigration", KEY).sign_in_token_ok(nonce, token)


def test_cookie_names_are_per_node_and_host_bound_over_tls() -> None:
    seal = CookieSeal("safe-house", KEY)
    assert seal.names(secure=False).session == "nrm-console-safe-house"
    assert seal.names(secure=True).session == "__Host-nrm-console-safe-house"
    assert CookieSeal("immigration", KEY).names(False).session != seal.names(False).session
