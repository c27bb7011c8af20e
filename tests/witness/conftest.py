"""A real registry (SQLite event store, ASGI app) and node logs signed with real keys."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.directory import KeyUse
from contracts.transparency import (
    Checkpoint,
    MemoryLevelStore,
    MerkleTree,
    NoteSigner,
    hash_leaf,
    sign_checkpoint,
)
from tests.registry.conftest import (  # noqa: F401  (fixtures)
    COUNTRY,
    Bus,
    Party,
    bus,
    clock,
)

DOMAIN = "nrm.example"


def origin_of(agency_id: str) -> str:
    return f"{DOMAIN}/{COUNTRY}/{agency_id}"


@dataclass
class NodeLog:
    """A node's Merkle log, signing checkpoints with the node's directory signing key."""

    party: Party
    seed: str = "a"
    tree: MerkleTree = field(default_factory=lambda: MerkleTree(MemoryLevelStore()))

    @property
    def origin(self) -> str:
        return origin_of(self.party.id)

    def grow(self, to: int) -> NodeLog:
        leaves = [
            hash_leaf(hashlib.sha256(f"{self.seed}{i}".encode()).digest())
            for i in range(self.tree.size, to)
        ]
        self.tree.extend_hashes(leaves)
        return self

    def note(self, size: int | None = None, signer: NoteSigner | None = None) -> str:
        n = self.tree.size if size is None else size
        key = self.party.keys.current(KeyUse.SIGNING).ed25519()
        signer = signer or NoteSigner(self.origin, key)
        return sign_checkpoint(Checkpoint(self.origin, n, self.tree.root(n)), signer)

    def proof(self, old: int, new: int | None = None) -> list[str]:
        n = self.tree.size if new is None else new
        return [base64.b64encode(h).decode() for h in self.tree.consistency_proof(old, n)]


def submit(
    client: TestClient, party: Party, note: str, old: int = 0, proof: list[str] | None = None
) -> Any:
    body = {"note": note, "old_size": old, "consistency_proof": proof or []}
    return client.post(f"/v1/witness/{party.id}", json=body, headers=party.auth())


def submit_log(client: TestClient, log: NodeLog, size: int | None = None) -> Any:
    """What an honest node does: ask the witnessed size, prove from it."""
    held = client.get(f"/v1/witness/{log.party.id}", headers=log.party.auth()).json()["size"]
    old = held or 0
    return submit(client, log.party, log.note(size), old, log.proof(old, size) if held else [])


@pytest.fixture
def node(bus: Bus) -> NodeLog:  # noqa: F811
    party = bus.party("xa-police")
    bus.register(party, ["first-responder"])
    return NodeLog(party)
