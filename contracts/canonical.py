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
from typing import Any

import rfc8785

_MAX_SAFE = 2**53 - 1
_encode = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


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
    if _fast_ok(value):
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogate: let the reference encoder decide
            pass
    return rfc8785.dumps(value)
