"""A node's sealing holds a bounded number of case keys and grant markers in memory, so
its memory levels off as cases pile up; what it forgets it reads back (a key) or sends
once more (a grant, which a receiver takes harmlessly)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.vocabulary import Role
from tests.agencies import NodeParts, country, node_parts

XA = country("XA", {"authority": Role.COMPETENT_AUTHORITY, "shelter": Role.SERVICE_PROVIDER})


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[NodeParts]:
    p = node_parts(tmp_path / "authority", XA, "authority")
    yield p
    p.close()


def test_keys_and_grant_markers_in_memory_are_bounded(
    parts: NodeParts, monkeypatch: pytest.MonkeyPatch
) -> None:
    seal = parts.seal
    monkeypatch.setattr(seal, "KEYS_IN_MEMORY", 5)
    monkeypatch.setattr(seal, "GRANTS_REMEMBERED", 5)
    kids = {}
    for i in range(20):
        case = f"case-{i:08d}"
        kids[case] = seal.case_key(case, "shelter").key_id
        assert seal.grant_of(case, "shelter", kids[case]) is not None
        assert seal.grant_of(case, "shelter", kids[case]) is None  # remembered: not again
    assert len(seal._current) == 5
    assert len(seal._granted) == 5
    # The first case's key left memory: read back from the store, the same key.
    assert seal.case_key("case-00000000", "shelter").key_id == kids["case-00000000"]
    # Its grant marker too: granted once more.
    assert seal.grant_of("case-00000000", "shelter", kids["case-00000000"]) is not None
    assert seal.grant_of("case-00000019", "shelter", kids["case-00000019"]) is None
