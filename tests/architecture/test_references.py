"""The code cites only what is in the repository: its own documents in `docs/`, never a
file from outside it, and never the tracker's issue numbers (they mean nothing to a
reader of the code)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("contracts", "services", "nrm", "deploy", "tests")
SOURCES = {
    p: p.read_text(errors="replace")
    for folder in FOLDERS
    for p in sorted((ROOT / folder).rglob("*"))
    if p.suffix in {".py", ".json", ".yaml", ".sh"}
    and p.is_file()
    and ".cache" not in p.parts
    and p != Path(__file__)
}
ISSUE = re.compile(r"\bissues?\s+#?\d+|(?<![\w&])#\d{1,3}\b(?![0-9a-fA-F])", re.IGNORECASE)
DOC = re.compile(r"\bdocs/[\w-]+\.md\b")


def _offenders(found: dict[Path, list[str]]) -> dict[str, list[str]]:
    return {str(p.relative_to(ROOT)): hits for p, hits in found.items() if hits}


def test_the_patterns_catch_what_they_are_for() -> None:
    assert len(SOURCES) > 100
    assert ISSUE.findall("(issue 7) see #12; Issue #3") == ["issue 7", "#12", "Issue #3"]
    assert not ISSUE.findall("issue_token(), issued, colour #fff, &#39;")


def test_no_issue_numbers() -> None:
    assert not _offenders({p: ISSUE.findall(t) for p, t in SOURCES.items()})


def test_documents_cited_are_the_repositorys_own() -> None:
    outside = {p: re.findall(r"\b(?:DOMAIN|ARCHITECTURE)\.md\b", t) for p, t in SOURCES.items()}
    assert not _offenders(outside)
    missing = {
        p: sorted({d for d in DOC.findall(t) if not (ROOT / d).exists()})
        for p, t in SOURCES.items()
    }
    assert not _offenders(missing)
