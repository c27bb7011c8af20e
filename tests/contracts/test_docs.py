"""The repository's own documents say what the code does: the rules, the default
agreement and the error codes in `docs/` and the README match the contracts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contracts.need_to_know import Condition, load_default_agreement
from contracts.problems import CODES
from contracts.vocabulary import PERSONAL_CATEGORIES, DataCategory, Role

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = (ROOT / "docs" / "domain.md").read_text()
ERRORS = (ROOT / "docs" / "errors.md").read_text()
README = (ROOT / "README.md").read_text()
RULES = [f"R{n}" for n in range(1, 11)]
WORDS = {
    Condition.ALWAYS: "yes",
    Condition.OWN_CASES: "own cases",
    Condition.OWN_SERVICE: "own service",
    Condition.RETURN_ONLY: "return only",
    Condition.MEDICAL_ONLY: "medical only",
    Condition.PROTECTION_UNIT: "protection unit",
}


def _table(text: str, after: str) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table after the heading `after`."""
    section = text.split(after, 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    start = section.splitlines().index(lines[0])
    rows = []
    for line in section.splitlines()[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return [rows[0], *rows[2:]]  # without the |---| line


def test_who_reads_what_is_the_shipped_agreement() -> None:
    header, *rows = _table(DOMAIN, "## Who reads what")
    roles = [Role(r) for r in header[1:]]
    table = {DataCategory(row[0]): dict(zip(roles, row[1:], strict=True)) for row in rows}
    assert set(table) == set(PERSONAL_CATEGORIES)
    grants = load_default_agreement().grants
    for category in PERSONAL_CATEGORIES:
        expected = {r: WORDS[c] for r, c in grants.get(category, {}).items()}
        assert set(expected) <= set(roles), f"add a column for {set(expected) - set(roles)}"
        shown = {r: w for r, w in table[category].items() if w != "no"}
        assert shown == expected, category


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_is_stated_once_in_the_domain_and_in_one_readme_line(rule: str) -> None:
    assert len(re.findall(rf"^- \*\*{rule} [A-Z]", DOMAIN, re.M)) == 1, rule
    stated = [line for line in README.splitlines() if re.match(rf"^- \*\*{rule}\*\* ", line)]
    assert len(stated) == 1 and len(stated[0]) <= 140, stated
    trust = DOMAIN.split("## Trust model", 1)[1]
    assert len(re.findall(rf"^\| {rule} \|", trust, re.M)) == 1, f"{rule}: where enforced"


def test_every_error_code_is_documented_with_its_status_title_and_next_step() -> None:
    header, *rows = _table(ERRORS, "## The codes")
    assert header[:3] == ["error", "status", "title"] and header[-1] == "what to do next"
    documented = {row[0].strip("`"): (int(row[1]), row[2], row[-1]) for row in rows}
    assert documented == {c: (k.status, k.title, k.next_step) for c, k in CODES.items()}


def test_the_readme_links_the_documents() -> None:
    assert "docs/domain.md" in README and "docs/errors.md" in README
