"""Forms for lifecycle events, built from the contracts' published JSON Schemas.

The console has no form of its own design: each event's form is read from
`contracts/schemas/<type>.v<version>.json`, so a field added to the contract appears in
the console without a code change, with its description and data category (an officer
sees which fields travel in clear and which are sealed for need-to-know). What the browser
posts is turned back into the payload the API would receive and validated by the same
pydantic model, so both doors give the same answer.

Officer fields (`*_by_officer`) are never rendered: the console fills them from the
signed-in session (R7), so no form field can put a decision under someone else's name.
Pure: no I/O beyond reading the packaged schema files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import ValidationError

from contracts.events import CATALOGUE, EventPayload, latest_version
from contracts.vocabulary import DataCategory

Kind = Literal[
    "text", "textarea", "integer", "checkbox", "select", "choices", "lines", "date", "group", "rows"
]
OFFICER_SUFFIX = "_by_officer"
TEXTAREA_FROM = 501  # longer strings get a text area
BLANK_ROWS = 3  # empty rows offered for a list of objects (e.g. indicators)


@dataclass(frozen=True)
class FormField:
    """One input, or a group of inputs, of an event's form."""

    name: str  # dotted path in the payload: "consent_override.legal_basis", "indicators.0.form"
    label: str
    description: str
    category: str | None
    kind: Kind
    required: bool = False
    options: tuple[str, ...] = ()
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    default: Any = None
    agency: bool = False  # an agency id: offered as a choice of agencies
    children: tuple[FormField, ...] = ()
    rows: int = 0

    @property
    def html_id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")

    @property
    def sealed(self) -> bool:
        return self.category is not None and self.category != DataCategory.OPERATIONAL

    def members(self) -> tuple[FormField, ...]:
        """The children of a `group` field, with their full names."""
        return tuple(_renamed(c, f"{self.name}.{c.name}") for c in self.children)

    def row(self, index: int) -> tuple[FormField, ...]:
        """The children of row `index` of a `rows` field, with their names."""
        return tuple(_renamed(c, f"{self.name}.{index}.{c.name}") for c in self.children)


def _renamed(f: FormField, name: str) -> FormField:
    return FormField(**{**f.__dict__, "name": name})


@dataclass(frozen=True)
class EventForm:
    event_type: str
    title: str
    description: str
    fields: tuple[FormField, ...]
    officer_fields: tuple[str, ...]  # top-level names filled from the session
    labels: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldError:
    name: str  # the form field's dotted name ("" for the whole form)
    message: str

    @property
    def html_id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-") if self.name else "form"


# --- schema -> form ------------------------------------------------------------------


@cache
def schema_of(event_type: str) -> dict[str, Any]:
    """The published JSON Schema of the event type's latest version."""
    name = f"{event_type}.v{latest_version(event_type)}.json"
    text = resources.files("contracts").joinpath("schemas", name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """The node with a `$ref` replaced by its definition (keeping the node's own keys)."""
    out = dict(node)
    ref = out.pop("$ref", None)
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out = {**defs[ref.removeprefix("#/$defs/")], **out}
    return out


def _nullable(node: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """`anyOf: [X, null]` -> (X, True); anything else -> (node, False)."""
    variants = node.get("anyOf")
    if isinstance(variants, list):
        real = [v for v in variants if v.get("type") != "null"]
        if len(real) == 1 and len(real) < len(variants):
            inner = {**_resolve(real[0], defs), **{k: v for k, v in node.items() if k != "anyOf"}}
            return _resolve(inner, defs), True
    return _resolve(node, defs), False


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _field(
    name: str, raw: Mapping[str, Any], defs: Mapping[str, Any], required: bool, category: str | None
) -> FormField:
    node, nullable = _nullable(raw, defs)
    category = node.get("x-category", category)
    common: dict[str, Any] = {
        "name": name,
        "label": _label(name),
        "description": str(raw.get("description") or node.get("description") or ""),
        "category": category,
        "required": required and not nullable,
        "default": node.get("default", raw.get("default")),
    }
    kind = node.get("type")
    if "enum" in node:
        return FormField(kind="select", options=tuple(map(str, node["enum"])), **common)
    if kind == "boolean":
        return FormField(kind="checkbox", **common)
    if kind == "integer":
        return FormField(
            kind="integer", minimum=node.get("minimum"), maximum=node.get("maximum"), **common
        )
    if kind == "array":
        items = _resolve(node.get("items", {}), defs)
        if "enum" in items:
            return FormField(kind="choices", options=tuple(map(str, items["enum"])), **common)
        if items.get("type") == "object":
            children = _fields(items, defs, category)
            return FormField(kind="rows", children=children, rows=BLANK_ROWS, **common)
        return FormField(kind="lines", **common)
    if kind == "object":
        return FormField(kind="group", children=_fields(node, defs, category), **common)
    if node.get("format") == "date":
        return FormField(kind="date", **common)
    max_length = node.get("maxLength")
    text_kind: Kind = "textarea" if (max_length or 0) >= TEXTAREA_FROM else "text"
    return FormField(
        kind=text_kind, max_length=max_length, agency=name.endswith("_agency"), **common
    )


def _fields(
    schema: Mapping[str, Any], defs: Mapping[str, Any], category: str | None = None
) -> tuple[FormField, ...]:
    required = set(schema.get("required", ()))
    return tuple(
        _field(name, node, defs, name in required, category)
        for name, node in schema.get("properties", {}).items()
        if not name.endswith(OFFICER_SUFFIX)
    )


@cache
def form_for(event_type: str) -> EventForm:
    if event_type not in CATALOGUE:
        raise KeyError(event_type)
    schema = schema_of(event_type)
    defs = schema.get("$defs", {})
    props = schema.get("properties", {})
    fields = _order(_fields(schema, defs), list(CATALOGUE[event_type].model_fields))
    labels = {
        name: (_label(name), _nullable(node, defs)[0].get("x-category"))
        for name, node in props.items()
    }
    return EventForm(
        event_type=event_type,
        title=event_type,
        description=str(schema.get("description") or CATALOGUE[event_type].__doc__ or ""),
        fields=fields,
        officer_fields=tuple(n for n in props if n.endswith(OFFICER_SUFFIX)),
        labels=labels,
    )


def _order(fields: Sequence[FormField], model_order: Sequence[str]) -> tuple[FormField, ...]:
    """Clear fields first (what routing and rules read), then sealed ones, each in the
    order the contract's model declares them (the schema file sorts them by name)."""
    rank = {name: i for i, name in enumerate(model_order)}
    return tuple(sorted(fields, key=lambda f: (f.sealed, rank.get(f.name, len(rank)))))


# --- posted form -> payload ----------------------------------------------------------

FormData = Mapping[str, Sequence[str]]


def payload_of(
    form: EventForm, data: FormData, officer: str, fixed: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], list[FieldError]]:
    """The payload the posted form describes, officer fields set to `officer`, `fixed`
    values (e.g. the referral answered) taking precedence; and the errors found while
    reading it (a number that is not a number). Schema rules are `validate`'s job."""
    errors: list[FieldError] = []
    payload: dict[str, Any] = {}
    for f in form.fields:
        value = _read(f, data, errors)
        if value is not _ABSENT:
            payload[f.name.rpartition(".")[2]] = value
    for name in form.officer_fields:
        payload[name] = officer
    override = payload.get("consent_override")
    if isinstance(override, dict):
        override["authorised_by_officer"] = officer
    payload.update(fixed or {})
    return payload, errors


_ABSENT: Any = object()


def _first(data: FormData, name: str) -> str:
    values = data.get(name) or [""]
    return values[0].strip()


def _read(f: FormField, data: FormData, errors: list[FieldError]) -> Any:
    match f.kind:
        case "checkbox":
            return bool(data.get(f.name))
        case "choices":
            return [v for v in data.get(f.name, []) if v] or _ABSENT
        case "lines":
            lines = [v.strip() for v in _first(data, f.name).splitlines() if v.strip()]
            return lines or _ABSENT
        case "integer":
            text = _first(data, f.name)
            if not text:
                return _ABSENT
            try:
                return int(text)
            except ValueError:
                errors.append(FieldError(f.name, "Input should be a whole number"))
                return _ABSENT
        case "group":
            group: dict[str, Any] = {}
            for member in f.members():
                value = _read(member, data, errors)
                if value is not _ABSENT:
                    group[member.name.rpartition(".")[2]] = value
            return group if any(v not in ("", False) for v in group.values()) else _ABSENT
        case "rows":
            rows = []
            for i in range(_row_count(f, data)):
                row = {}
                for child in f.row(i):
                    value = _read(child, data, errors)
                    if value is not _ABSENT:
                        row[child.name.rpartition(".")[2]] = value
                if row:
                    rows.append(row)
            return rows or _ABSENT
        case _:
            text = _first(data, f.name)
            return text if text else _ABSENT


def _row_count(f: FormField, data: FormData) -> int:
    prefix = f.name + "."
    indices = [
        int(k[len(prefix) :].split(".")[0])
        for k in data
        if k.startswith(prefix) and k[len(prefix) :].split(".")[0].isdigit()
    ]
    return min(max(indices, default=-1) + 1, 50)


def validate(
    event_type: str, payload: Mapping[str, Any]
) -> tuple[EventPayload | None, list[FieldError]]:
    """The payload as the contract's model, or the errors it reports, by field."""
    try:
        return CATALOGUE[event_type].model_validate(dict(payload)), []
    except ValidationError as exc:
        return None, [
            FieldError(".".join(str(p) for p in e.get("loc", ())), str(e.get("msg", "")))
            for e in exc.errors()
        ]


def field_names(form: EventForm) -> set[str]:
    """Every rendered input's name (rows expanded), to place errors next to inputs."""
    out: set[str] = set()
    for f in form.fields:
        if f.kind == "group":
            out.update(m.name for m in f.members())
        elif f.kind == "rows":
            out.update(c.name for i in range(max(f.rows, 1)) for c in f.row(i))
        out.add(f.name)
    return out
