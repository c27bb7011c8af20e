"""RFC 8785 (JCS) canonical JSON, fast for the values envelopes actually carry.

`rfc8785.dumps` is pure Python and costs ~60-300 µs per envelope, more than all the
cryptography of a seal. For JSON made of dicts with ASCII keys, lists, strings, bools,
None and integers within ±(2**53 - 1), the C `json` encoder with sorted keys, no spaces
and `ensure_ascii=False` produces exactly the JCS bytes (same escapes: short forms for
\\b \\f \\n \\r \\t, lowercase ``\\u00xx`` for other controls, everything else literal
UTF-8; ASCII keys sort the same by code point as by UTF-16 unit). Anything else (floats,
big integers, non-ASCII keys, lone surrogates) goes to `rfc8785.dumps`, so the result is
always byte-identical to `rfc8785.dumps` (a property test checks it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import rfc8785

_MAX_SAFE = 2**53 - 1
_encoder = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)
# The escaper the encoder applies to every string (the C one when available).
_encode_str = json.encoder.encode_basestring
_encode = _encoder.encode


def _c_encode() -> Any:
    """`_encoder.encode` without its per-call set-up: the C encoder `JSONEncoder` builds
    on every call, built once (no circular check: `_fast_ok` recurses first). Used only
    if this interpreter has it with the expected signature and it agrees with `_encode`."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        c = make(None, _encoder.default, _encode_str, None, ":", ",", True, False, False)
        probe = {"b": [1, -2, True, None, "\u00e9\n\x1f"], "a": {"d": "x", "c": {}}, "": []}
        if "".join(c(probe, 0)) != _encode(probe):
            return None
    except Exception:
        return None

    def encode(value: Any) -> str:
        return "".join(c(value, 0))

    return encode


_encode = _c_encode() or _encode


def _fast_ok(value: Any) -> bool:
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or not k.isascii():
                return False
            if type(v) is not str and not _fast_ok(v):
                return False
        return True
    if t is list or t is tuple:
        return all(type(v) is str or _fast_ok(v) for v in value)
    if t is int:
        return -_MAX_SAFE <= value <= _MAX_SAFE
    return False


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON-ready value."""
    if type(value) is str:  # the commonest value of a sealed field
        try:
            return _encode_str(value).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogate: let the reference encoder decide
            return rfc8785.dumps(value)
    if _fast_ok(value):
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass
    return rfc8785.dumps(value)


def canonical_json_with(checked: Mapping[str, Any], key: str, value: Any, value_json: str) -> bytes:
    """`canonical_json({**checked, key: value})`, given `value_json`, the canonical JSON
    text of `value`, which the caller built itself (so it is not walked or re-encoded).

    The members of `checked` are examined and encoded as usual, in two runs (those
    sorting before `key` and those after) between which `value_json` is spliced. If
    `checked` falls outside the fast encoder's domain, the merged object goes to the
    reference encoder: the bytes are always those of `canonical_json` of the merge.
    """
    if type(key) is not str or not key.isascii():
        return canonical_json({**checked, key: value})
    head: dict[str, Any] = {}
    tail: dict[str, Any] = {}
    for k, v in checked.items():
        if k == key:
            continue
        if type(k) is not str or not k.isascii() or (type(v) is not str and not _fast_ok(v)):
            return rfc8785.dumps({**checked, key: value})
        if k < key:  # ASCII: code point order is RFC 8785's UTF-16 order
            head[k] = v
        else:
            tail[k] = v
    members = _encode_str(key) + ":" + value_json
    if head:
        members = _encode(head)[1:-1] + "," + members
    if tail:
        members = members + "," + _encode(tail)[1:-1]
    try:
        return ("{" + members + "}").encode("utf-8")
    except UnicodeEncodeError:  # lone surrogate in `checked`
        return rfc8785.dumps({**checked, key: value})


def canonical_json_pair(value: Mapping[str, Any], key: str) -> tuple[bytes, bytes]:
    """(canonical JSON of `value` without `key`, canonical JSON of `value`) from one pass:
    the members before and after `key` are encoded once and serve both (an envelope's
    signed bytes, and the bytes its log leaf hashes). `key` must be in `value`."""
    member = value[key]
    head: dict[str, Any] = {}
    tail: dict[str, Any] = {}
    fast = type(key) is str and key.isascii() and (type(member) is str or _fast_ok(member))
    if fast:
        for k, v in value.items():
            if k == key:
                continue
            if type(k) is not str or not k.isascii() or (type(v) is not str and not _fast_ok(v)):
                fast = False
                break
            if k < key:  # ASCII: code point order is RFC 8785's UTF-16 order
                head[k] = v
            else:
                tail[k] = v
    if fast:
        try:
            h = _encode(head)[1:-1] if head else ""
            t = _encode(tail)[1:-1] if tail else ""
            m = _encode_str(key) + ":" + _encode(member)
            without = "{" + ",".join(p for p in (h, t) if p) + "}"
            whole = "{" + ",".join(p for p in (h, m, t) if p) + "}"
            return without.encode("utf-8"), whole.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogate: the reference encoder decides
            pass
    rest = {k: v for k, v in value.items() if k != key}
    return canonical_json(rest), canonical_json(value)


def canonical_json_insert(
    canonical: bytes, key: str, value_json: str, after: Mapping[str, Any]
) -> bytes | None:
    """`canonical` (the canonical JSON of an object without `key`) with the member `key`
    (whose canonical JSON text is `value_json`) added, given `after`: every member of the
    object whose name sorts after `key`. None when that cannot be done by splicing (the
    caller then encodes the whole object)."""
    if not after or type(key) is not str or not key.isascii() or not _fast_ok(dict(after)):
        return None
    if any(k <= key for k in after):
        return None
    try:
        tail = ("," + _encode(dict(after))[1:]).encode("utf-8")
    except UnicodeEncodeError:
        return None
    if not canonical.endswith(tail):
        return None
    member = ("," + _encode_str(key) + ":" + value_json).encode("utf-8")
    return canonical[: -len(tail)] + member + tail
