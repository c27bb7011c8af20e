"""How a node serves its web console (the runtime and `nrm` set it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from contracts.directory import TrustAnchor
from referral_router.console.officers import SignInPolicy

PREFIX = "/console"


@dataclass(frozen=True)
class ConsoleSettings:
    """`book_path` holds officers, sessions and (for an oversight body) verdict history;
    `peers` are the nodes an oversight body watches (default: every router URL of the
    country in the directory)."""

    book_path: Path
    peers: Callable[[], Mapping[str, str]] | None = None
    peer_audience: str = "nrm-router:{agency}"
    registry_url: str | None = None
    anchor: TrustAnchor | None = None
    verify_interval: float = 300.0
    secure_cookies: bool = False  # also set when a request arrives over https
    policy: SignInPolicy = field(default_factory=SignInPolicy)
