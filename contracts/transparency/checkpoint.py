"""C2SP signed notes, tlog checkpoints and Ed25519 witness cosignatures.

Formats (https://c2sp.org/signed-note, /tlog-checkpoint, /tlog-cosignature):

    <origin>\\n<tree size>\\n<base64 root hash>\\n[<extension line>\\n ...]
    \\n
    — <key name> <base64(key ID || signature)>\\n ...

The key ID is SHA-256(name || 0x0A || type || public key)[:4]; type 0x01 is a log's
Ed25519 signature over the note text, type 0x04 a witness's Ed25519 cosignature over
"cosignature/v1\\ntime <t>\\n" + note text, stored as 8-byte big-endian t || signature.
Interoperable formats let oversight bodies and other countries' witnesses check this
bus's logs with their own tools. Pure functions: timestamps are passed in, no clock.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from hashlib import sha256

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts.transparency.errors import (
    BadSignatureError,
    MalformedCheckpointError,
    MalformedNoteError,
    OriginMismatchError,
    UnknownKeyError,
)
from contracts.transparency.hasher import HASH_SIZE

SIG_TYPE_ED25519 = 0x01
SIG_TYPE_COSIGNATURE_V1 = 0x04
SIGNATURE_PREFIX = "— "  # em dash U+2014, space
MAX_SIGNATURES = 64
"""The spec asks verifiers to accept at least 16 signatures and to bound the count."""

_ED25519_SIG_SIZE = 64
_MAX_TIMESTAMP = 2**63 - 1
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


# -- keys -------------------------------------------------------------------------------


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_key_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise MalformedNoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    if _CONTROL.search(name):
        raise MalformedNoteError(f"key name {name!r} contains control characters")


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || type || public key)[:4]."""
    _check_key_name(name)
    return sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted (name, Ed25519 public key, signature type) tuple."""

    name: str
    public_key: Ed25519PublicKey
    sig_type: int = SIG_TYPE_ED25519

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.sig_type, _raw_public(self.public_key))

    def vkey(self) -> str:
        """The signed-note verifier key string: <name>+<hex key ID>+<base64(type||key)>."""
        material = bytes([self.sig_type]) + _raw_public(self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(material).decode()}"

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key string, checking its embedded key ID."""
        parts = vkey.split("+", 2)  # the base64 key may itself contain "+"
        if len(parts) != 3:
            raise MalformedNoteError(f"verifier key must be name+id+key, got {vkey!r}")
        name, hex_id, b64 = parts
        try:
            material = base64.b64decode(b64, validate=True)
            kid = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError) as e:
            raise MalformedNoteError(f"verifier key {vkey!r} is not valid encoding: {e}") from e
        if len(material) != 33 or material[0] not in (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1):
            raise MalformedNoteError(f"verifier key {vkey!r} is not an Ed25519 key (type 1 or 4)")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(material[1:]), material[0])
        if verifier.key_id != kid:
            raise MalformedNoteError(f"verifier key {vkey!r} has a wrong key ID")
        return verifier


@dataclass(frozen=True)
class NoteSigner:
    """A named Ed25519 private key: a log (type 0x01) or a witness (type 0x04)."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)
    sig_type: int = SIG_TYPE_ED25519

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.private_key.public_key(), self.sig_type)


# -- notes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID, and the algorithm's signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class Note:
    """A signed note: `text` (ending in a newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __str__(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signature(self, signature: NoteSignature) -> Note:
        return Note(self.text, (*self.signatures, signature))


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into text and signature lines, enforcing the C2SP grammar."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedNoteError(f"note is not valid UTF-8: {e}") from e
    if _CONTROL.search(note):
        raise MalformedNoteError("note contains control characters other than newline")
    if not note.endswith("\n"):
        raise MalformedNoteError("note does not end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line between text and signatures")
    text, block = note[: split + 1], note[split + 2 :]
    lines = block.split("\n")[:-1]
    if not lines:
        raise MalformedNoteError("note has no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"note has {len(lines)} signatures, more than {MAX_SIGNATURES}")
    signatures = []
    for n, line in enumerate(lines, 1):
        if not line.startswith(SIGNATURE_PREFIX):
            raise MalformedNoteError(f"signature line {n} does not start with '— '")
        parts = line[len(SIGNATURE_PREFIX) :].split(" ")
        if len(parts) != 2:
            raise MalformedNoteError(f"signature line {n} is not '— <name> <signature>'")
        name, b64 = parts
        _check_key_name(name)
        try:
            blob = base64.b64decode(b64, validate=True)
        except binascii.Error as e:
            raise MalformedNoteError(f"signature line {n} is not valid base64: {e}") from e
        if len(blob) < 5:
            raise MalformedNoteError(f"signature line {n} is too short for a key ID and signature")
        signatures.append(NoteSignature(name, blob[:4], blob[4:]))
    return Note(text, tuple(signatures))


def _matching(note: Note, verifier: NoteVerifier) -> list[NoteSignature]:
    """Lines from this exact key; others are ignored, as the spec requires."""
    kid = verifier.key_id
    found = [s for s in note.signatures if s.name == verifier.name and s.key_id == kid]
    if not found:
        raise UnknownKeyError(
            f"no signature from key {verifier.name!r} (ID {kid.hex()}, type "
            f"0x{verifier.sig_type:02x}) among {[s.name for s in note.signatures]}"
        )
    return found


def sign_note(text: str, signer: NoteSigner) -> NoteSignature:
    """An Ed25519 (type 0x01) signature over the note text."""
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    pub = _raw_public(signer.private_key.public_key())
    sig = signer.private_key.sign(text.encode())
    return NoteSignature(signer.name, key_id(signer.name, SIG_TYPE_ED25519, pub), sig)


def verify_note(note: str | bytes | Note, verifier: NoteVerifier) -> Note:
    """Check the note's Ed25519 signature by `verifier`; every line from that key must
    verify. Returns the parsed note."""
    parsed = note if isinstance(note, Note) else parse_note(note)
    if verifier.sig_type != SIG_TYPE_ED25519:
        raise UnknownKeyError(f"key {verifier.name!r} is not an Ed25519 note key (type 0x01)")
    for s in _matching(parsed, verifier):
        try:
            verifier.public_key.verify(s.signature, parsed.text.encode())
        except InvalidSignature as e:
            raise BadSignatureError(
                f"signature by {verifier.name!r} does not verify over the note text"
            ) from e
    return parsed


# -- checkpoints ------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed tree head: origin, size, root hash and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _CONTROL.search(self.origin):
            raise MalformedCheckpointError(f"origin {self.origin!r} must be one non-empty line")
        if self.size < 0:
            raise MalformedCheckpointError(f"tree size {self.size} is negative")
        if len(self.root) != HASH_SIZE:
            raise MalformedCheckpointError(
                f"root hash is {len(self.root)} bytes, expected {HASH_SIZE}"
            )
        for ext in self.extensions:
            if not ext or "\n" in ext or _CONTROL.search(ext):
                raise MalformedCheckpointError(f"extension line {ext!r} must be non-empty")

    def body(self) -> str:
        """The note text, the exact bytes that are signed."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "".join(line + "\n" for line in (*lines, *self.extensions))

    @classmethod
    def from_body(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text strictly: canonical decimal and base64 only."""
        if not text.endswith("\n"):
            raise MalformedCheckpointError("checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpointError(f"checkpoint has {len(lines)} lines, needs 3")
        origin, size_line, root_line, *extensions = lines
        if not origin:
            raise MalformedCheckpointError("checkpoint origin line is empty")
        if not _DECIMAL.fullmatch(size_line):
            raise MalformedCheckpointError(
                f"tree size {size_line!r} is not a decimal without leading zeros"
            )
        try:
            root = base64.b64decode(root_line, validate=True)
        except binascii.Error as e:
            raise MalformedCheckpointError(f"root hash {root_line!r} is not base64: {e}") from e
        if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_line:
            raise MalformedCheckpointError(
                f"root hash {root_line!r} is not the base64 of {HASH_SIZE} bytes"
            )
        if any(not e for e in extensions):
            raise MalformedCheckpointError("checkpoint has an empty extension line")
        return cls(origin, int(size_line), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The signed note of a checkpoint, signed by the log's key."""
    text = checkpoint.body()
    return str(Note(text, (sign_note(text, signer),)))


def open_checkpoint(
    note: str | bytes | Note, verifier: NoteVerifier, origin: str | None = None
) -> Checkpoint:
    """Verify the log's signature, then parse the checkpoint; optionally pin its origin.

    The text is parsed only after the signature verifies: unsigned text must be ignored.
    """
    parsed = verify_note(note, verifier)
    checkpoint = Checkpoint.from_body(parsed.text)
    if origin is not None and checkpoint.origin != origin:
        raise OriginMismatchError(
            f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}"
        )
    return checkpoint


# -- cosignatures -----------------------------------------------------------------------


def cosigned_message(text: str, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 signs: header, time line, then the whole note text."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(note: str | bytes | Note, witness: NoteSigner, timestamp: int) -> NoteSignature:
    """A witness's cosignature/v1 line over the note's checkpoint at `timestamp` (POSIX
    seconds). Call only after checking consistency: the line asserts it."""
    parsed = note if isinstance(note, Note) else parse_note(note)
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise MalformedNoteError(f"cosignature timestamp {timestamp} is out of range")
    Checkpoint.from_body(parsed.text)  # cosign only well-formed checkpoints
    pub = _raw_public(witness.private_key.public_key())
    sig = witness.private_key.sign(cosigned_message(parsed.text, timestamp))
    return NoteSignature(
        witness.name,
        key_id(witness.name, SIG_TYPE_COSIGNATURE_V1, pub),
        timestamp.to_bytes(8, "big") + sig,
    )


def add_cosignature(note: str | bytes | Note, witness: NoteSigner, timestamp: int) -> str:
    """The note with the witness's cosignature line appended."""
    parsed = note if isinstance(note, Note) else parse_note(note)
    return str(parsed.with_signature(cosign(parsed, witness, timestamp)))


def verify_cosignature(note: str | bytes | Note, witness: NoteVerifier) -> int:
    """Check the witness's cosignature/v1 on the note; returns its timestamp (the newest
    if the witness cosigned more than once). The key ID is always computed with type
    0x04, whatever `witness.sig_type` says, since a cosignature can have no other."""
    parsed = note if isinstance(note, Note) else parse_note(note)
    if witness.sig_type != SIG_TYPE_COSIGNATURE_V1:
        witness = NoteVerifier(witness.name, witness.public_key, SIG_TYPE_COSIGNATURE_V1)
    newest = -1
    for s in _matching(parsed, witness):
        if len(s.signature) != 8 + _ED25519_SIG_SIZE:
            raise BadSignatureError(
                f"cosignature by {witness.name!r} is {len(s.signature)} bytes, expected 72"
            )
        timestamp = int.from_bytes(s.signature[:8], "big")
        if timestamp > _MAX_TIMESTAMP:
            raise BadSignatureError(f"cosignature by {witness.name!r} has timestamp > 2^63-1")
        try:
            witness.public_key.verify(s.signature[8:], cosigned_message(parsed.text, timestamp))
        except InvalidSignature as e:
            raise BadSignatureError(
                f"cosignature by {witness.name!r} at time {timestamp} does not verify"
            ) from e
        newest = max(newest, timestamp)
    return newest
