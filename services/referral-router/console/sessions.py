"""Session cookies bound to one node, and the CSRF tokens of the console's forms.

Every node of a bus may run on one host, and browsers do not isolate cookies by port: a
cookie set by one node is sent to all of them. So each node names its cookie after its
agency and signs the session id with a key derived from its own master key; a cookie
from another node is neither read (other name) nor believed (other key), and the session
id behind it exists only in the other node's book. The server keeps the sessions; the
browser holds only the signed, random id (no personal datum in browser storage).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SESSION_INFO = b"nrm-console-session/v1"
_SIGN_IN_INFO = b"nrm-console-sign-in/v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_secret() -> str:
    """A fresh random token (session id, CSRF secret, sign-in nonce): 256 bits."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the server stores of a session id: a leaked table opens no session."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class CookieNames:
    session: str
    sign_in: str


class CookieSeal:
    """Signs and checks this node's console cookies (HMAC-SHA256, node-bound key)."""

    def __init__(self, agency_id: str, master_key: bytes) -> None:
        self.agency_id = agency_id
        self._session_key = self._derive(master_key, _SESSION_INFO)
        self._sign_in_key = self._derive(master_key, _SIGN_IN_INFO)

    def _derive(self, master_key: bytes, info: bytes) -> bytes:
        return HKDF(hashes.SHA256(), 32, salt=None, info=info + self.agency_id.encode()).derive(
            master_key
        )

    def names(self, secure: bool) -> CookieNames:
        """Per-node names; over TLS the `__Host-` prefix also pins them to this host."""
        prefix = "__Host-" if secure else ""
        base = f"{prefix}nrm-console-{self.agency_id}"
        return CookieNames(session=base, sign_in=f"{base}-sign-in")

    def _tag(self, key: bytes, purpose: bytes, value: str) -> str:
        mac = hmac.new(
            key, purpose + b"\n" + self.agency_id.encode() + b"\n" + value.encode(), "sha256"
        )
        return _b64(mac.digest())

    def seal_session(self, session_id: str) -> str:
        return f"{session_id}.{self._tag(self._session_key, b'session', session_id)}"

    def open_session(self, cookie: str | None) -> str | None:
        """The session id, if this node signed the cookie; else None."""
        if not cookie or cookie.count(".") != 1:
            return None
        session_id, tag = cookie.split(".")
        expected = self._tag(self._session_key, b"session", session_id)
        return session_id if hmac.compare_digest(tag, expected) else None

    def sign_in_token(self, nonce: str) -> str:
        """The sign-in form's CSRF token: bound to the nonce in the sign-in cookie."""
        return self._tag(self._sign_in_key, b"sign-in", nonce)

    def sign_in_token_ok(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(token, self.sign_in_token(nonce))


def same_token(expected: str, given: str | None) -> bool:
    """A form's CSRF token against the session's, in constant time."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
