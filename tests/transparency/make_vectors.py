"""Generate the JSON test vectors under tests/transparency/vectors/ (deterministic).

Run: .venv/bin/python -m tests.transparency.make_vectors
Vectors come from the naive reference only (tests/transparency/naive.py), never from the
library, so they check the library instead of echoing it. Each proof vector comes with
its mutations, the transparency-dev way: every single-bit flip of every hash (leaf,
proof, roots) must fail, and so must every flip of the 64-bit index or sizes, except the
flips listed under `*_accepted_bits`: those give a claim of the very same shape, which
no verifier can tell apart without a signed size (see naive.inclusion_shape).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.transparency import naive

VECTORS = Path(__file__).parent / "vectors"
LEAF_FORMAT = "nrm-vector-leaf-%d"
MAX_LEAVES = 1024
BITS = 64

INCLUSION = [
    (0, 1), (0, 2), (1, 2), (2, 3), (0, 8), (5, 8), (6, 7), (12, 13), (0, 64),
    (63, 64), (40, 64), (17, 33), (511, 513), (100, 1000), (999, 1000), (0, 1024),
]  # fmt: skip
CONSISTENCY = [
    (1, 2), (1, 8), (2, 8), (3, 7), (4, 6), (6, 8), (7, 8), (13, 29), (32, 64),
    (63, 64), (5, 1000), (512, 1000), (999, 1000), (1, 1024), (1023, 1024),
]  # fmt: skip
ROOT_SIZES = [*range(0, 65), 100, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1000, 1024]


def leaf_hashes() -> list[bytes]:
    return [naive.leaf((LEAF_FORMAT % i).encode()) for i in range(MAX_LEAVES)]


def _accepted(shape_of: object, base: object, value: int) -> list[int]:
    return [b for b in range(BITS) if shape_of(value ^ (1 << b)) == base]  # type: ignore[operator]


def inclusion_vectors() -> dict[str, object]:
    hashes = leaf_hashes()
    out = []
    for index, size in INCLUSION:
        proof = naive.inclusion_proof(hashes[:size], index)
        base = naive.inclusion_shape(index, size)
        out.append(
            {
                "index": index,
                "size": size,
                "leaf_hash": hashes[index].hex(),
                "root": naive.mth(hashes[:size]).hex(),
                "proof": [p.hex() for p in proof],
                "hash_bit_flips": 256 * (len(proof) + 2),
                "index_flips_accepted_bits": _accepted(
                    lambda i, s=size: naive.inclusion_shape(i, s), base, index
                ),
                "size_flips_accepted_bits": _accepted(
                    lambda s, i=index: naive.inclusion_shape(i, s), base, size
                ),
            }
        )
    return {
        "description": "RFC 9162 inclusion proofs; leaf i is SHA-256(0x00 || leaf_format % i)",
        "leaf_format": LEAF_FORMAT,
        "vectors": out,
    }


def consistency_vectors() -> dict[str, object]:
    hashes = leaf_hashes()
    out = []
    for old, new in CONSISTENCY:
        proof = naive.consistency_proof(hashes[:new], old)
        base = naive.consistency_shape(old, new)
        out.append(
            {
                "old_size": old,
                "new_size": new,
                "old_root": naive.mth(hashes[:old]).hex(),
                "new_root": naive.mth(hashes[:new]).hex(),
                "proof": [p.hex() for p in proof],
                "hash_bit_flips": 256 * (len(proof) + 2),
                "old_size_flips_accepted_bits": _accepted(
                    lambda m, n=new: naive.consistency_shape(m, n), base, old
                ),
                "new_size_flips_accepted_bits": _accepted(
                    lambda n, m=old: naive.consistency_shape(m, n), base, new
                ),
            }
        )
    return {
        "description": "RFC 9162 consistency proofs over the inclusion vectors' leaves",
        "leaf_format": LEAF_FORMAT,
        "vectors": out,
    }


def root_vectors() -> dict[str, object]:
    hashes = leaf_hashes()
    return {
        "description": "RFC 9162 roots of the first `size` leaves",
        "leaf_format": LEAF_FORMAT,
        "roots": [{"size": n, "root": naive.mth(hashes[:n]).hex()} for n in ROOT_SIZES],
    }


def render() -> dict[str, str]:
    """File name -> exact file content."""
    files = {
        "inclusion.json": inclusion_vectors(),
        "consistency.json": consistency_vectors(),
        "roots.json": root_vectors(),
    }
    return {name: json.dumps(data, indent=1) + "\n" for name, data in files.items()}


def main() -> None:
    VECTORS.mkdir(exist_ok=True)
    for name, text in render().items():
        (VECTORS / name).write_text(text)


if __name__ == "__main__":
    main()
