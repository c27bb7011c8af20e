"""`canonical_json_with` (the sealing hot path splices its own JSON text into the
envelope's) always gives the bytes of the reference encoder on the merged object."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.canonical import canonical_json, canonical_json_with

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["sealed", "a", "z", "", "sealee", "sealedx", "é", "\U0001f600"]) | st.text()


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, json_values, max_size=6), keys, json_values)
def test_splice_equals_reference(checked, key, value) -> None:
    try:
        expected = rfc8785.dumps({**checked, key: value})
    except Exception:
        return  # values RFC 8785 rejects are out of scope
    assert canonical_json_with(checked, key, value, canonical_json(value).decode()) == expected
