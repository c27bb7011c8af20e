"""JSON Schemas of every event payload version and of the envelope, from the models.

The committed files under contracts/schemas/ are the published contract; a test fails
when the models drift from them. Regenerate with `python -m contracts.schema_export`.

Every schema declares its dialect (JSON Schema 2020-12). The keywords of our own,
`x-category` (each field's data category, rule R5) and `x-why` (why a clear field is
clear, `contracts.justification`), are published with their own meta-schemas in
`schemas/keywords/`, so a strict validator (Ajv in strict mode, in the test suite)
registers them and checks their values instead of refusing an unknown keyword.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts.envelope import Envelope, dataschema_for
from contracts.events import CATALOGUE, CATEGORY_KEY, OLDER_VERSIONS, EventPayload
from contracts.justification import MIN_WHY, WHY_KEY
from contracts.vocabulary import DataCategory

SCHEMA_DIR = Path(__file__).parent / "schemas"
KEYWORD_DIR = SCHEMA_DIR / "keywords"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def keyword_definitions() -> dict[str, dict[str, Any]]:
    """file name -> a custom keyword with the meta-schema its values must match."""
    return {
        f"{CATEGORY_KEY}.json": {
            "keyword": CATEGORY_KEY,
            "description": "The field's data category (rule R5): who may read it is decided "
            "per category by the registry's data-sharing agreement. An annotation: it does "
            "not constrain instances.",
            "metaSchema": {"enum": [str(c) for c in DataCategory]},
        },
        f"{WHY_KEY}.json": {
            "keyword": WHY_KEY,
            "description": "Why the field travels in clear: who needs it in clear to decide "
            "what. Every clear payload field and envelope attribute carries one. An "
            "annotation: it does not constrain instances.",
            "metaSchema": {"type": "string", "minLength": MIN_WHY},
        },
    }


def payload_schema(event_type: str, model: type[EventPayload]) -> dict[str, Any]:
    schema = {"$schema": DIALECT, **model.model_json_schema()}
    schema["$id"] = dataschema_for(event_type, model.version)
    schema["title"] = f"{event_type} v{model.version}"
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    """file name -> schema, for every payload version and the envelope."""
    out: dict[str, dict[str, Any]] = {}
    versions = [(t, m) for t, m in CATALOGUE.items()] + [
        (t, m) for (t, _), m in OLDER_VERSIONS.items()
    ]
    for event_type, model in versions:
        out[f"{event_type}.v{model.version}.json"] = payload_schema(event_type, model)
    envelope = {"$schema": DIALECT, **Envelope.model_json_schema()}
    envelope["$id"] = "urn:nrm:schema:envelope:v2"
    out["envelope.v2.json"] = envelope
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = directory / name
        path.write_text(render(schema))
        written.append(path)
    (directory / "keywords").mkdir(exist_ok=True)
    for name, keyword in keyword_definitions().items():
        path = directory / "keywords" / name
        path.write_text(render(keyword))
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write():
        print(p)
