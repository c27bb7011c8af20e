"""Seal, sign, verify and open envelopes (need-to-know, rule R5).

Format of `Envelope.sealed` ("nrm-seal/1"; all binary values base64url, no padding)::

    {"format": "nrm-seal/1",
     "fields": {category: {field: b64(nonce12 ‖ AES-256-GCM ciphertext ‖ tag)}},
     "wraps":  {reader: {"kid": case key id,
                         "keys": {category: b64(nonce12 ‖ AES-256-GCM(data key) ‖ tag)}}}}

* Each category present gets a fresh 256-bit data key; each field is encrypted under it
  with associated data (event id, event type, case, category, field), so a ciphertext
  moved to another event, category or field fails.
* Each data key is wrapped, with AES-256-GCM under the pairwise case key (case, sender,
  reader), for every reader entitled to the category and for the sender itself; the
  associated data binds (event id, case, wrapping agency, reader, key id, category).
* `signature` = {"alg": "Ed25519", "kid": signing key id, "sig": b64(signature)} over
  `Envelope.signing_bytes()` (RFC 8785), made with the sender's registered key.
"""

from __future__ import annotations

import hmac as _std_hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ValidationError

from contracts.envelope import Envelope, parse_dataschema
from contracts.events import (
    CATALOGUE,
    OLDER_VERSIONS,
    EventPayload,
    categories_of,
)
from contracts.sealing.canonical import canonical_bytes, canonical_json, signing_bytes
from contracts.sealing.errors import (
    CaseKeyUnavailable,
    CiphertextTampered,
    KeyCommitmentMismatch,
    MalformedEnvelope,
    NotEntitled,
    SignatureInvalid,
    UnknownSigningKey,
    WrappedKeyTampered,
)
from contracts.sealing.keys import (
    CaseKey,
    CaseKeyLookup,
    PublicKeyLookup,
    SigningKey,
    ad,
    b64d,
    b64e,
)
from contracts.sealing.models import SEAL_FORMAT, Forwarding, Withheld
from contracts.vocabulary import DataCategory

SIGNATURE_ALG = "Ed25519"
_NONCE = 12
_CATEGORY_NAMES = frozenset(str(c) for c in DataCategory)
_AD_CAT = {str(c): ad(str(c)) for c in DataCategory}


@cache
def _schema(model: type[EventPayload]) -> tuple[tuple[str, str], ...]:
    return tuple((name, str(cat)) for name, cat in categories_of(model).items())


def _split(payload: EventPayload) -> dict[str, dict[str, Any]]:
    """`split_by_category` with plain-str keys and the field tags read once per model."""
    data = payload.model_dump(mode="json")
    grouped: dict[str, dict[str, Any]] = {}
    for name, cat in _schema(type(payload)):
        grouped.setdefault(cat, {})[name] = data[name]
    return grouped


_TAG = 16


def field_aad(event_id: str, event_type: str, case: str, category: str, name: str) -> bytes:
    return ad("nrm/field/v1", event_id, event_type, case, category, name)


def wrap_aad(
    event_id: str, case: str, wrapper: str, reader: str, key_id: str, category: str
) -> bytes:
    return ad("nrm/wrap/v1", event_id, case, wrapper, reader, key_id, category)


def payload_model(envelope: Envelope) -> type[EventPayload]:
    """The payload model of the envelope's type and schema version."""
    event_type, version = parse_dataschema(envelope.dataschema)
    if event_type != envelope.type:
        raise MalformedEnvelope(f"dataschema {envelope.dataschema} is not of {envelope.type}")
    model = CATALOGUE[event_type]
    return model if model.version == version else OLDER_VERSIONS[(event_type, version)]


# ---------------------------------------------------------------------------- seal, sign


def _sig_dict(key: SigningKey, data: bytes) -> dict[str, str]:
    return {"alg": SIGNATURE_ALG, "kid": key.key_id, "sig": b64e(key.private_key.sign(data))}


def sign(envelope: Envelope, signer: SigningKey) -> Envelope:
    """Sign `envelope.signing_bytes()` with the sender's registered Ed25519 key."""
    if signer.agency_id != envelope.sender:
        raise ValueError(f"{signer.agency_id} cannot sign for sender {envelope.sender}")
    return envelope.model_copy(update={"signature": _sig_dict(signer, signing_bytes(envelope))})


def seal(
    envelope: Envelope,
    payload: EventPayload,
    *,
    signer: SigningKey,
    entitlements: Mapping[str, frozenset[DataCategory]],
    case_keys: Mapping[str, CaseKey],
) -> Envelope:
    """Encrypt `payload` into `envelope` (clear attributes already set) and sign it.

    `entitlements`: recipient -> categories it may open (computed by the caller with
    `contracts.need_to_know.entitled_categories`); a recipient absent or with an empty
    set gets only the clear part. The sender always gets a wrap of every category.
    `case_keys`: reader -> the pairwise case key (case, sender, reader), including the
    sender's own (reader == sender); needed only for readers with a wrap.
    """
    sender = envelope.sender
    if signer.agency_id != sender:
        raise ValueError(f"{signer.agency_id} cannot seal for sender {sender}")
    if not isinstance(payload, payload_model(envelope)):
        raise ValueError(f"payload {type(payload).__name__} is not a {envelope.dataschema}")
    groups = _split(payload)
    ops = groups.pop(str(DataCategory.OPERATIONAL), {})
    if envelope.operational and envelope.operational != ops:
        raise ValueError("envelope.operational differs from the payload's operational fields")
    allowed = set(envelope.recipients)
    for reader in entitlements:
        if reader != sender and reader not in allowed:
            raise ValueError(f"{reader} is entitled but not a recipient of the envelope")

    eid, case = str(envelope.id), envelope.subject
    field_prefix = ad("nrm/field/v1", eid, envelope.type, case)
    wrap_prefix = ad("nrm/wrap/v1", eid, case, sender)
    fields_out: dict[str, dict[str, str]] = {}
    data_keys: dict[str, bytes] = {}
    urandom = os.urandom
    for cat, values in groups.items():
        dk = AESGCM.generate_key(256)
        encrypt = AESGCM(dk).encrypt
        cat_prefix = field_prefix + ad(cat)
        out: dict[str, str] = {}
        for name, value in values.items():
            n = urandom(_NONCE)
            out[name] = b64e(n + encrypt(n, canonical_json(value), cat_prefix + ad(name)))
        fields_out[cat] = out
        data_keys[cat] = dk

    present = frozenset(data_keys)
    readers = {r: frozenset(map(str, c)) & present for r, c in entitlements.items()}
    readers[sender] = present
    wraps: dict[str, dict[str, Any]] = {}
    for reader, cats in readers.items():
        if not cats:
            continue
        ck = case_keys.get(reader)
        if ck is None:
            raise CaseKeyUnavailable(f"no case key ({case}, {sender}→{reader}): grant one first")
        if (ck.case, ck.sender, ck.recipient) != (case, sender, reader):
            raise ValueError(f"case key is for ({ck.case}, {ck.sender}→{ck.recipient})")
        kid, encrypt = ck.key_id, ck.aead.encrypt
        reader_prefix = wrap_prefix + ad(reader, kid)
        keys: dict[str, str] = {}
        for cat in cats:
            n = urandom(_NONCE)
            keys[cat] = b64e(n + encrypt(n, data_keys[cat], reader_prefix + _AD_CAT[cat]))
        wraps[reader] = {"kid": kid, "keys": keys}

    sealed = {"format": SEAL_FORMAT, "fields": fields_out, "wraps": wraps}
    # The signing bytes are assembled from the clear attributes' dump plus the parts
    # built here (JSON-ready already); a test checks they equal `signing_bytes()`.
    body = envelope.model_dump(mode="json", exclude={"signature", "sealed", "operational"})
    body["operational"] = ops
    body["sealed"] = sealed
    signature = _sig_dict(signer, canonical_json(body))
    return envelope.model_copy(
        update={"operational": ops, "sealed": sealed, "signature": signature}
    )


# ---------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Verified:
    """An envelope (or forwarding) whose signatures were checked and whose sealed
    structure is well formed: the only thing `open_envelope` opens without re-checking."""

    envelope: Envelope
    wrapper: str
    fields: Mapping[str, Mapping[str, str]]
    wraps: Mapping[str, Mapping[str, Any]]
    model: type[EventPayload]
    forwarding: Forwarding | None = None
    signer_key_ids: tuple[str, ...] = field(default=())


def _check_signature(
    signature: Any, who: str, time: datetime, data: bytes, lookup: PublicKeyLookup
) -> str:
    if signature is None:
        raise SignatureInvalid(f"unsigned: nothing from {who} is accepted unsigned (R6)")
    if not isinstance(signature, dict) or set(signature) != {"alg", "kid", "sig"}:
        raise MalformedEnvelope("signature must be {alg, kid, sig}")
    if signature["alg"] != SIGNATURE_ALG:
        raise SignatureInvalid(f"unsupported signature algorithm {signature['alg']!r}")
    kid = signature["kid"]
    if not isinstance(kid, str):
        raise MalformedEnvelope("signature kid must be text")
    try:
        sig = b64d(signature["sig"])
    except (ValueError, TypeError):
        raise MalformedEnvelope("signature is not base64url") from None
    try:
        public = lookup(who, kid, time)
    except Exception as e:
        raise UnknownSigningKey(f"no accepted key {who}/{kid} at {time.isoformat()}: {e}") from e
    try:
        public.verify(sig, data)
    except InvalidSignature:
        raise SignatureInvalid(f"signature of {who}/{kid} does not verify") from None
    return kid


def _parse_wraps(wraps: Any, categories: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    if not isinstance(wraps, dict):
        raise MalformedEnvelope("wraps must be an object")
    for reader, w in wraps.items():
        if not isinstance(w, dict) or set(w) != {"kid", "keys"}:
            raise MalformedEnvelope(f"wrap of {reader} must be {{kid, keys}}")
        if not isinstance(w["kid"], str) or not isinstance(w["keys"], dict) or not w["keys"]:
            raise MalformedEnvelope(f"wrap of {reader} is malformed")
        for cat, blob in w["keys"].items():
            if cat not in categories:
                raise MalformedEnvelope(f"wrap of {reader} names absent category {cat!r}")
            if not isinstance(blob, str):
                raise MalformedEnvelope(f"wrapped key {reader}/{cat} must be text")
    return wraps


def _parse_sealed(
    envelope: Envelope,
) -> tuple[type[EventPayload], dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
    """Check the sealed structure against the event's schema: every sealed field must
    exist in the schema under exactly the category it is sealed under."""
    model = payload_model(envelope)
    sealed = envelope.sealed
    if set(sealed) != {"format", "fields", "wraps"} or sealed["format"] != SEAL_FORMAT:
        raise MalformedEnvelope(f"sealed must be a {SEAL_FORMAT} object")
    fields_in = sealed["fields"]
    if not isinstance(fields_in, dict):
        raise MalformedEnvelope("sealed.fields must be an object")
    schema = categories_of(model)
    for cat, values in fields_in.items():
        if cat == DataCategory.OPERATIONAL or cat not in _CATEGORY_NAMES:
            raise MalformedEnvelope(f"not a sealed category: {cat!r}")
        if not isinstance(values, dict) or not values:
            raise MalformedEnvelope(f"sealed.fields.{cat} must be a non-empty object")
        for name, blob in values.items():
            if schema.get(name) != cat:
                raise MalformedEnvelope(f"{name!r} is not a {cat} field of {envelope.type}")
            if not isinstance(blob, str):
                raise MalformedEnvelope(f"ciphertext of {cat}/{name} must be text")
    for name, cat in schema.items():
        if cat == DataCategory.OPERATIONAL and name not in envelope.operational:
            raise MalformedEnvelope(f"operational field {name!r} missing")
    return model, fields_in, _parse_wraps(sealed["wraps"], fields_in)


def verify(item: Envelope | Forwarding, public_key_lookup: PublicKeyLookup) -> Verified:
    """Check signatures first, then structure. For a forwarding: the original sender's
    signature (key valid at the event's time), then the forwarder's."""
    if isinstance(item, Forwarding):
        inner = verify(item.original, public_key_lookup)
        kid = _check_signature(
            item.signature, item.forwarder, item.time, item.signing_bytes(), public_key_lookup
        )
        wraps = _parse_wraps(item.wraps, inner.fields)
        if set(wraps) - {item.recipient}:
            raise MalformedEnvelope("a forwarding carries wraps for its one recipient only")
        return Verified(
            inner.envelope,
            item.forwarder,
            inner.fields,
            wraps,
            inner.model,
            item,
            (*inner.signer_key_ids, kid),
        )
    kid = _check_signature(
        item.signature, item.sender, item.time, signing_bytes(item), public_key_lookup
    )
    model, fields_in, wraps = _parse_sealed(item)
    return Verified(item, item.sender, fields_in, wraps, model, None, (kid,))


def _parse_canonical(cls: type[BaseModel], data: bytes, what: str) -> Any:
    try:
        obj = cls.model_validate_json(data)
    except ValidationError as e:
        raise MalformedEnvelope(f"{what} does not parse: {e.error_count()} error(s)") from None
    except (KeyError, ValueError, TypeError) as e:  # validators that leak a raw error
        raise MalformedEnvelope(f"{what} does not parse: {type(e).__name__}") from None
    canon = canonical_bytes(obj) if isinstance(obj, Envelope) else obj.canonical_bytes()
    if canon != data:
        raise MalformedEnvelope(f"{what} bytes are not in canonical (RFC 8785) form")
    return obj


def parse_envelope(data: bytes) -> Envelope:
    """Parse wire bytes, which must be exactly the envelope's canonical form: no two
    byte strings decode to the same signed envelope."""
    return _parse_canonical(Envelope, data, "envelope")


def parse_forwarding(data: bytes) -> Forwarding:
    return _parse_canonical(Forwarding, data, "forwarding")


# ---------------------------------------------------------------------------- open


def unwrap_data_key(
    verified: Verified, category: DataCategory | str, reader: str, case_key_lookup: CaseKeyLookup
) -> bytes:
    """The data key of one category, as `reader` can unwrap it."""
    cat = DataCategory(category)
    env = verified.envelope
    w = verified.wraps.get(reader)
    if w is None or cat not in w["keys"]:
        raise NotEntitled(f"{reader} holds no key to {cat} in event {env.id}")
    kid = w["kid"]
    ck = case_key_lookup(env.subject, verified.wrapper, reader, kid)
    if ck is None:
        raise CaseKeyUnavailable(
            f"case key ({env.subject}, {verified.wrapper}→{reader}, {kid}) is not in the store"
        )
    if (ck.case, ck.sender, ck.recipient) != (env.subject, verified.wrapper, reader) or (
        not _std_hmac.compare_digest(ck.key_id, kid)
    ):
        raise KeyCommitmentMismatch(f"case key store returned a key that is not {kid}")
    try:
        blob = b64d(w["keys"][cat])
    except ValueError:
        raise MalformedEnvelope(f"wrapped key {reader}/{cat} is not base64url") from None
    if len(blob) != _NONCE + 32 + _TAG:
        raise MalformedEnvelope(f"wrapped key {reader}/{cat} has the wrong length")
    aad = wrap_aad(str(env.id), env.subject, verified.wrapper, reader, kid, cat)
    try:
        return ck.aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
    except InvalidTag:
        raise WrappedKeyTampered(f"wrapped key {reader}/{cat} of event {env.id}") from None


def decrypt_fields(verified: Verified, category: DataCategory | str, data_key: bytes) -> dict:
    """Decrypt every field of one category with its data key."""
    cat = DataCategory(category)
    env = verified.envelope
    eid, etype, case = str(env.id), env.type, env.subject
    aead = AESGCM(data_key)
    out: dict[str, Any] = {}
    for name, text in verified.fields.get(cat, {}).items():
        try:
            blob = b64d(text)
        except ValueError:
            raise MalformedEnvelope(f"ciphertext {cat}/{name} is not base64url") from None
        if len(blob) < _NONCE + _TAG:
            raise MalformedEnvelope(f"ciphertext {cat}/{name} is too short")
        try:
            pt = aead.decrypt(blob[:_NONCE], blob[_NONCE:], field_aad(eid, etype, case, cat, name))
        except InvalidTag:
            raise CiphertextTampered(f"field {cat}/{name} of event {env.id}") from None
        out[name] = json.loads(pt)
    return out


def open_category(
    verified: Verified, category: DataCategory | str, reader: str, case_key_lookup: CaseKeyLookup
) -> dict[str, Any]:
    """Decrypt one category for `reader`; `NotEntitled` if it holds no wrap for it."""
    return decrypt_fields(
        verified, category, unwrap_data_key(verified, category, reader, case_key_lookup)
    )


@dataclass(frozen=True)
class OpenedEvent:
    """What one reader sees of an event: clear fields, opened fields, and a `Withheld`
    marker for every field of a category it may not (or can no longer) open."""

    envelope: Envelope
    reader: str
    values: Mapping[str, Any]
    opened: frozenset[DataCategory]
    withheld: frozenset[DataCategory]
    model: type[EventPayload]
    forwarded_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v.to_json() if isinstance(v, Withheld) else v for k, v in self.values.items()}

    def payload(self) -> EventPayload:
        """The typed payload; `NotEntitled` if any category is withheld."""
        if self.withheld:
            raise NotEntitled(f"{self.reader} cannot open {sorted(self.withheld)}")
        return self.model.model_validate(dict(self.values))


def open_envelope(
    item: Envelope | Forwarding | Verified,
    me: str,
    case_key_lookup: CaseKeyLookup,
    public_key_lookup: PublicKeyLookup | None = None,
) -> OpenedEvent:
    """Verify (unless given a `Verified`), then open every category `me` may read.

    Tampering raises; lack of entitlement never does here (the field becomes
    `Withheld(category)`); `open_category` raises `NotEntitled` when forced.
    """
    if isinstance(item, Verified):
        v = item
    elif public_key_lookup is None:
        raise TypeError("public_key_lookup is required to open an unverified envelope")
    else:
        v = verify(item, public_key_lookup)
    opened: dict[str, dict[str, Any]] = {}
    withheld: dict[DataCategory, Withheld] = {}
    for cat in v.fields:
        c = DataCategory(cat)
        try:
            opened[c] = open_category(v, c, me, case_key_lookup)
        except NotEntitled:
            withheld[c] = Withheld(c, "not-entitled")
        except CaseKeyUnavailable:
            withheld[c] = Withheld(c, "key-unavailable")
    values: dict[str, Any] = {}
    ops = v.envelope.operational
    for name, cat in categories_of(v.model).items():
        if cat == DataCategory.OPERATIONAL:
            values[name] = ops[name]
        elif cat in withheld:
            values[name] = withheld[cat]
        elif name in opened.get(cat, {}):
            values[name] = opened[cat][name]
    return OpenedEvent(
        v.envelope,
        me,
        values,
        frozenset(DataCategory(c) for c in opened),
        frozenset(withheld),
        v.model,
        v.forwarding.forwarder if v.forwarding else None,
    )
