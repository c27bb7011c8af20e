"""How an agency's system proves who it is: DPoP-bound access tokens, minted here.

The agency's signing key (from its keystore) signs access tokens of a few minutes for
each API it calls (audience), bound to a proof key that this process makes at start and
never writes anywhere; every request then carries a fresh proof signed with it. A token
seen in a log or a proxy is useless without that key, and a proof is good for one
request only (`contracts.agency_token`, `contracts.dpop`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts import dpop
from contracts.agency_token import DEFAULT_ACCESS_LIFETIME, issue_access_token
from contracts.directory import KeyUse
from contracts.keystore import AgencyKeys, open_keystore

Clock = Callable[[], datetime]
#: A token is renewed this long before it expires, so none expires in flight.
RENEW_BEFORE = timedelta(seconds=30)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Credentials:
    """An agency's identity for its systems: access tokens per audience, and proofs."""

    def __init__(
        self,
        keys: AgencyKeys,
        *,
        lifetime: timedelta = DEFAULT_ACCESS_LIFETIME,
        proof_key: dpop.ProofKey | None = None,
        clock: Clock = _utc_now,
    ) -> None:
        self._keys = keys
        self._lifetime = lifetime
        self._proof_key = proof_key or dpop.generate_key()
        self._clock = clock
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_keystore(cls, path: str | Path, passphrase: str) -> Credentials:
        """From the agency's passphrase-sealed keystore file (`nrm agency init`)."""
        return cls(open_keystore(Path(path).read_bytes(), passphrase))

    @property
    def agency_id(self) -> str:
        return self._keys.agency_id

    def token(self, audience: str) -> str:
        """A bound access token for `audience`, reused until shortly before it expires."""
        now = self._clock()
        with self._lock:
            held = self._tokens.get(audience)
            if held is not None and held[1] - RENEW_BEFORE > now:
                return held[0]
            pair = self._keys.current(KeyUse.SIGNING)
            token = issue_access_token(
                self.agency_id,
                pair.key_id,
                pair.ed25519(),
                audience,
                dpop.thumbprint(self._proof_key),
                lifetime=self._lifetime,
                now=now,
            )
            self._tokens[audience] = (token, now + self._lifetime)
            return token

    def forget(self, audience: str) -> None:
        """Drop the token held for `audience` (the server refused it): the next request
        gets a new one."""
        with self._lock:
            self._tokens.pop(audience, None)

    def headers(self, method: str, url: str, audience: str) -> dict[str, str]:
        """`Authorization` and `DPoP` for one request."""
        token = self.token(audience)
        proof = dpop.make_proof(self._proof_key, method, url, access_token=token, now=self._clock())
        return {"Authorization": f"DPoP {token}", dpop.HEADER: proof}
