"""C2SP checkpoints: round trip, log signatures, witness cosignatures, malformed notes."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.transparency import (
    SIG_TYPE_COSIGNATURE_V1,
    BadSignatureError,
    Checkpoint,
    MalformedCheckpointError,
    MalformedNoteError,
    MerkleTree,
    NoteSigner,
    NoteVerifier,
    OriginMismatchError,
    UnknownKeyError,
    add_cosignature,
    cosigned_message,
    key_id,
    open_checkpoint,
    parse_note,
    sign_checkpoint,
    verify_cosignature,
    verify_note,
)

ORIGIN = "nrm.example/xa/police-node"


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


LOG = NoteSigner(ORIGIN, _key(1))
WITNESS = NoteSigner("registry.example/xa/witness", _key(2), SIG_TYPE_COSIGNATURE_V1)


@pytest.fixture
def checkpoint() -> Checkpoint:
    tree = MerkleTree()
    tree.extend(b"event-%d" % i for i in range(20852163 % 1000))
    return Checkpoint(ORIGIN, tree.size, tree.root())


def test_body_format_and_round_trip(checkpoint: Checkpoint) -> None:
    note = sign_checkpoint(checkpoint, LOG)
    lines = note.split("\n")
    assert lines[:4] == [ORIGIN, "163", base64.b64encode(checkpoint.root).decode(), ""]
    assert lines[4].startswith(f"— {ORIGIN} ") and lines[5] == ""
    blob = base64.b64decode(lines[4].split(" ")[2])
    assert len(blob) == 4 + 64
    assert blob[:4] == key_id(ORIGIN, 0x01, LOG.verifier().public_key.public_bytes_raw())
    assert open_checkpoint(note, LOG.verifier(), origin=ORIGIN) == checkpoint
    with_ext = Checkpoint(ORIGIN, 5, checkpoint.root, ("ext one", "ext-2"))
    opened = open_checkpoint(sign_checkpoint(with_ext, LOG), LOG.verifier())
    assert opened == with_ext and opened.body().endswith("ext one\next-2\n")


def test_key_id_is_the_c2sp_recipe() -> None:
    from hashlib import sha256

    pub = bytes(range(32))
    assert key_id("a.example/k", 1, pub) == sha256(b"a.example/k\n\x01" + pub).digest()[:4]
    assert key_id("a.example/k", 4, pub) == sha256(b"a.example/k\n\x04" + pub).digest()[:4]


def test_vkey_round_trip() -> None:
    vkey = LOG.verifier().vkey()
    assert vkey.startswith(ORIGIN + "+")
    parsed = NoteVerifier.from_vkey(vkey)
    assert parsed.key_id == LOG.verifier().key_id and parsed.name == ORIGIN
    with pytest.raises(MalformedNoteError, match="wrong key ID"):
        name, _, material = vkey.split("+")
        NoteVerifier.from_vkey(f"{name}+00000000+{material}")


def test_unknown_key_and_bad_signature(checkpoint: Checkpoint) -> None:
    note = sign_checkpoint(checkpoint, LOG)
    other = NoteSigner(ORIGIN, _key(3)).verifier()  # same name, different key ID
    with pytest.raises(UnknownKeyError, match="no signature from key"):
        open_checkpoint(note, other)
    with pytest.raises(UnknownKeyError):
        open_checkpoint(note, NoteSigner("someone.else", _key(1)).verifier())
    tampered = note.replace("\n163\n", "\n164\n")
    with pytest.raises(BadSignatureError, match="does not verify over the note text"):
        open_checkpoint(tampered, LOG.verifier())
    with pytest.raises(OriginMismatchError, match=r"expected 'nrm\.example/xb'"):
        open_checkpoint(note, LOG.verifier(), origin="nrm.example/xb")


def test_unknown_signatures_are_ignored(checkpoint: Checkpoint) -> None:
    note = sign_checkpoint(checkpoint, LOG)
    stranger = "— stranger.example/k " + base64.b64encode(b"\x01\x02\x03\x04" + b"x" * 64).decode()
    assert open_checkpoint(note + stranger + "\n", LOG.verifier()) == checkpoint


def test_cosignature_round_trip(checkpoint: Checkpoint) -> None:
    note = sign_checkpoint(checkpoint, LOG)
    cosigned = add_cosignature(note, WITNESS, timestamp=1_700_000_000)
    assert open_checkpoint(cosigned, LOG.verifier()) == checkpoint
    assert verify_cosignature(cosigned, WITNESS.verifier()) == 1_700_000_000
    line = cosigned.split("\n")[-2]
    blob = base64.b64decode(line.split(" ")[2])
    assert len(blob) == 4 + 8 + 64 and int.from_bytes(blob[4:12], "big") == 1_700_000_000
    msg = cosigned_message(checkpoint.body(), 1_700_000_000)
    assert msg.startswith(b"cosignature/v1\ntime 1700000000\n" + ORIGIN.encode())
    WITNESS.private_key.public_key().verify(blob[12:], msg)
    with pytest.raises(UnknownKeyError):  # a log signature is not a cosignature
        verify_cosignature(note, WITNESS.verifier())
    with pytest.raises(UnknownKeyError):  # nor is a cosignature a log signature
        verify_note(cosigned, NoteVerifier(WITNESS.name, WITNESS.private_key.public_key()))


def test_bad_cosignatures(checkpoint: Checkpoint) -> None:
    cosigned = add_cosignature(sign_checkpoint(checkpoint, LOG), WITNESS, timestamp=100)
    note = parse_note(cosigned)
    sig = note.signatures[1]
    later = sig.signature[:7] + b"\x65" + sig.signature[8:]  # claims another time
    forged = type(note)(note.text, (note.signatures[0], type(sig)(sig.name, sig.key_id, later)))
    with pytest.raises(BadSignatureError, match="at time 101 does not verify"):
        verify_cosignature(str(forged), WITNESS.verifier())
    short = type(note)(note.text, (type(sig)(sig.name, sig.key_id, sig.signature[:70]),))
    with pytest.raises(BadSignatureError, match="expected 72"):
        verify_cosignature(short, WITNESS.verifier())
    with pytest.raises(MalformedNoteError, match="out of range"):
        add_cosignature(cosigned, WITNESS, timestamp=-1)


GOOD = "o.example/log\n1\n" + base64.b64encode(bytes(32)).decode() + "\n"
SIG = "— o.example/log " + base64.b64encode(bytes(68)).decode() + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + "\n" + SIG.rstrip("\n"), "does not end with a newline"),
        (GOOD + SIG, "no blank line"),
        (GOOD + "\n", "no signature lines"),
        (GOOD + "\n" + "- o.example/log AAAA\n", "does not start with"),
        (GOOD + "\n" + "— o.example/log\n", "not '— <name> <signature>'"),
        (GOOD + "\n" + "— o.example/log AA AA\n", "not '— <name> <signature>'"),
        (GOOD + "\n" + "— a+b " + base64.b64encode(bytes(68)).decode() + "\n", "key name"),
        (GOOD + "\n" + "— o.example/log !!!!\n", "not valid base64"),
        (GOOD + "\n" + "— o.example/log AAAA\n", "too short"),
        (GOOD.replace("1", "\t1") + "\n" + SIG, "control characters"),
        (GOOD + "\n" + SIG * 65, "more than 64"),
    ],
)
def test_malformed_notes(text: str, message: str) -> None:
    with pytest.raises(MalformedNoteError, match=message):
        parse_note(text)


def test_note_bytes_must_be_utf8() -> None:
    with pytest.raises(MalformedNoteError, match="UTF-8"):
        parse_note(b"\xff\n\n" + SIG.encode())


ROOT = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("o\n1\n", "needs 3"),
        ("\n1\n" + ROOT + "\n", "origin line is empty"),
        ("o\n01\n" + ROOT + "\n", "without leading zeros"),
        ("o\n-1\n" + ROOT + "\n", "without leading zeros"),
        ("o\n1 \n" + ROOT + "\n", "without leading zeros"),
        ("o\n1\n" + ROOT[:-1] + "\n", "not base64"),
        ("o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n", "base64 of 32 bytes"),
        ("o\n1\n" + ROOT + "\n\next\n", "empty extension line"),
        ("o\n1\n" + ROOT, "does not end with a newline"),
    ],
)
def test_malformed_checkpoint_bodies(body: str, message: str) -> None:
    with pytest.raises(MalformedCheckpointError, match=message):
        Checkpoint.from_body(body)


def test_signed_but_malformed_checkpoint_is_refused() -> None:
    from contracts.transparency import Note, sign_note

    text = "o.example/log\n007\n" + ROOT + "\n"
    signer = NoteSigner("o.example/log", _key(4))
    note = str(Note(text, (sign_note(text, signer),)))
    with pytest.raises(MalformedCheckpointError):
        open_checkpoint(note, signer.verifier())
    with pytest.raises(MalformedCheckpointError, match="expected 32"):
        Checkpoint("o", 1, b"short")
