"""Every JSON Schema of the contracts declares its dialect and compiles under a strict
validator (Ajv 8 in strict mode, from npm), with our one custom keyword made legitimate:
registered with its own published meta-schema rather than strictness switched off."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from contracts.schema_export import DIALECT, KEYWORD_DIR, SCHEMA_DIR, keyword_definitions, render

AJV = Path(__file__).resolve().parents[2] / "deploy" / "ajv"


@pytest.fixture(scope="module")
def ajv() -> Path:
    """Ajv installed from the npm registry (`make test` does it; so does this, once)."""
    if not (AJV / "node_modules" / "ajv").exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install Ajv (deploy/ajv/package.json)"
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=AJV, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return AJV


def check(ajv: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is needed to run Ajv"
    return subprocess.run(
        [node, str(ajv / "check-schemas.mjs"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


KEYWORDS = [arg for f in sorted(KEYWORD_DIR.glob("*.json")) for arg in ("--keyword", f)]


def test_every_schema_compiles_in_strict_mode(ajv: Path) -> None:
    schemas = sorted(SCHEMA_DIR.glob("*.json"))
    assert len(schemas) >= 26
    done = check(ajv, *KEYWORDS, *schemas)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok ") == len(schemas)
    assert all(json.loads(p.read_text())["$schema"] == DIALECT for p in schemas)


def test_strictness_is_on_and_the_keyword_is_checked(ajv: Path, tmp_path: Path) -> None:
    screened = SCHEMA_DIR / "case.screened.v1.json"
    unregistered = check(ajv, screened)
    assert unregistered.returncode == 1 and 'unknown keyword: "x-category"' in unregistered.stdout
    schema = json.loads(screened.read_text())
    schema["properties"]["full_name"]["x-category"] = "gossip"
    bogus = tmp_path / "bogus.json"
    bogus.write_text(json.dumps(schema))
    wrong = check(ajv, *KEYWORDS, bogus)
    assert wrong.returncode == 1 and "must be equal to one of the allowed values" in wrong.stdout


def test_committed_keyword_definitions_match_the_code() -> None:
    for name, keyword in keyword_definitions().items():
        assert (KEYWORD_DIR / name).read_text() == render(keyword), "run contracts.schema_export"
