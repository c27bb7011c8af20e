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

import binascii
import hmac as _std_hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ValidationError

from contracts.canonical import canonical_json_insert, canonical_json_with
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
_encode_str = json.encoder.encode_basestring  # the escaper of `canonical_json`'s strings
_CAT_JSON = {str(c): _encode_str(str(c)) + ':"' for c in DataCategory}
_SEALED_MIDDLE = '},"format":' + _encode_str(SEAL_FORMAT) + ',"wraps":{'
_CATEGORIES = {str(c): c for c in DataCategory}
_AD_FIELD = ad("nrm/field/v1")
_AD_WRAP = ad("nrm/wrap/v1")


@lru_cache(maxsize=4096)
def _ad_cached(a: str, b: str) -> bytes:
    """`ad(a, b)` of the parts that repeat across events (case and agency, key ids)."""
    return ad(a, b)


def _category(category: DataCategory | str) -> DataCategory:
    """`DataCategory(category)`, by a dict look-up for the valid ones."""
    try:
        return _CATEGORIES[category]
    except (KeyError, TypeError):
        return DataCategory(category)


@cache
def _categories(model: type[EventPayload]) -> Mapping[str, DataCategory]:
    """`categories_of(model)`, read once per model (read-only)."""
    return MappingProxyType(categories_of(model))


def _sorted_names(categories: frozenset[DataCategory], present: frozenset[str]) -> tuple[str, ...]:
    """The names of `categories` that are `present`, sorted."""
    try:
        return _sorted_names_cached(categories, present)
    except TypeError:  # an unhashable collection of categories
        return tuple(sorted(frozenset(map(str, categories)) & present))


@lru_cache(maxsize=1024)
def _sorted_names_cached(
    categories: frozenset[DataCategory], present: frozenset[str]
) -> tuple[str, ...]:
    return tuple(sorted(frozenset(map(str, categories)) & present))


@dataclass(frozen=True)
class _ReaderParts:
    """Per (reader, case key id): ``ad(reader, kid)`` and the canonical JSON around the
    reader's wrapped keys (``"reader":{"keys":{"`` … ``"},"kid":"kid"}``), None if the
    reader's id is not ASCII (its sort order would then need UTF-16 care)."""

    ad: bytes
    json_open: str | None
    json_close: str


@lru_cache(maxsize=4096)
def _reader_parts(reader: str, kid: str) -> _ReaderParts:
    ok = type(reader) is str and reader.isascii()
    return _ReaderParts(
        ad(reader, kid),
        _encode_str(reader) + ':{"keys":{' if ok else None,
        '"},"kid":' + _encode_str(kid) + "}",
    )


def _first(item: tuple[Any, ...]) -> Any:
    return item[0]


@dataclass(frozen=True)
class _Layout:
    """What `seal` needs of a payload model, read once per model: the operational field
    names, and per sealed category (in schema order) its fields with their associated
    data suffixes ``ad(category) + ad(name)`` precomputed."""

    operational: tuple[str, ...]
    sealed: tuple[tuple[str, tuple[tuple[str, bytes], ...]], ...]
    present: frozenset[str]
    present_sorted: tuple[str, ...]
    n_fields: int
    # `sealed.fields` as canonical JSON text: per category in RFC 8785 order its member
    # opening (``"cat":{``) and per field in order the text before its value
    # (``"name":"``); None if a name is not ASCII (then the generic encoder is used).
    fields_json: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] | None


@cache
def _layout(model: type[EventPayload]) -> _Layout:
    grouped: dict[str, list[tuple[str, bytes]]] = {}
    for name, cat in categories_of(model).items():
        grouped.setdefault(str(cat), []).append((name, ad(str(cat), name)))
    ops = tuple(name for name, _ in grouped.pop(str(DataCategory.OPERATIONAL), []))
    sealed = tuple((cat, tuple(fs)) for cat, fs in grouped.items())
    ascii_names = all(c.isascii() and all(n.isascii() for n, _ in fs) for c, fs in sealed)
    fields_json = tuple(
        (cat, _encode_str(cat) + ":{", tuple((n, _encode_str(n) + ':"') for n, _ in sorted(fs)))
        for cat, fs in sorted(sealed)
    )
    return _Layout(
        ops,
        sealed,
        frozenset(grouped),
        tuple(sorted(grouped)),
        sum(len(fs) for _, fs in sealed),
        fields_json if ascii_names else None,
    )


@lru_cache(maxsize=1024)
def _model_of(event_type: str, dataschema: str) -> type[EventPayload]:
    schema_type, version = parse_dataschema(dataschema)
    if schema_type != event_type:
        raise MalformedEnvelope(f"dataschema {dataschema} is not of {event_type}")
    model = CATALOGUE[event_type]
    return model if model.version == version else OLDER_VERSIONS[(event_type, version)]


_TAG = 16
_KEY = 32
_WRAP_B64 = (_NONCE + _KEY + _TAG) // 3 * 4
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_NOT_CLEAR = frozenset({"signature", "sealed", "operational"})


def field_aad(event_id: str, event_type: str, case: str, category: str, name: str) -> bytes:
    return ad("nrm/field/v1", event_id, event_type, case, category, name)


def wrap_aad(
    event_id: str, case: str, wrapper: str, reader: str, key_id: str, category: str
) -> bytes:
    return ad("nrm/wrap/v1", event_id, case, wrapper, reader, key_id, category)


def payload_model(envelope: Envelope) -> type[EventPayload]:
    """The payload model of the envelope's type and schema version."""
    return _model_of(envelope.type, envelope.dataschema)


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
    model = type(payload)
    if not isinstance(payload, payload_model(envelope)):
        raise ValueError(f"payload {model.__name__} is not a {envelope.dataschema}")
    layout = _layout(model)
    data = payload.model_dump(mode="json")
    ops = {name: data[name] for name in layout.operational}
    if envelope.operational and envelope.operational != ops:
        raise ValueError("envelope.operational differs from the payload's operational fields")
    allowed = set(envelope.recipients)
    for reader in entitlements:
        if reader != sender and reader not in allowed:
            raise ValueError(f"{reader} is entitled but not a recipient of the envelope")

    # Who gets a wrap of which category, and under which case key: checked before any
    # encryption, so a missing key costs nothing. Readers and categories are taken in
    # RFC 8785 order, the order the signed JSON lists them in.
    eid, case = str(envelope.id), envelope.subject
    present = layout.present
    readers = {r: _sorted_names(c, present) for r, c in entitlements.items()}
    readers[sender] = layout.present_sorted
    wrap_plan: list[tuple[str, str, Any, _ReaderParts, tuple[str, ...]]] = []
    n_wraps = 0
    eid_ad = ad(eid)
    wrap_prefix = _AD_WRAP + eid_ad + _ad_cached(case, sender)
    for reader, cats in readers.items():
        if not cats:
            continue
        ck = case_keys.get(reader)
        if ck is None:
            raise CaseKeyUnavailable(f"no case key ({case}, {sender}→{reader}): grant one first")
        if (ck.case, ck.sender, ck.recipient) != (case, sender, reader):
            raise ValueError(f"case key is for ({ck.case}, {ck.sender}→{ck.recipient})")
        kid = ck.key_id
        wrap_plan.append((reader, kid, ck.aead.encrypt, _reader_parts(reader, kid), cats))
        n_wraps += len(cats)
    wrap_plan.sort(key=_first)

    # All the randomness of the event in one call, laid out in the order it is used:
    # per category its data key then its fields' nonces, then the wraps' nonces.
    rnd = os.urandom(_KEY * len(layout.sealed) + _NONCE * (layout.n_fields + n_wraps))
    pos = 0
    b2a, urlsafe, enc_str = binascii.b2a_base64, _URLSAFE, _encode_str
    field_prefix = _AD_FIELD + eid_ad + _ad_cached(envelope.type, case)
    fields_out: dict[str, dict[str, str]] = {}
    data_keys: dict[str, bytes] = {}
    for cat, names in layout.sealed:
        dk = rnd[pos : pos + _KEY]
        pos += _KEY
        encrypt = AESGCM(dk).encrypt
        out: dict[str, str] = {}
        for name, name_ad in names:
            n = rnd[pos : pos + _NONCE]
            pos += _NONCE
            value = data[name]
            if type(value) is str and value.isascii():  # canonical_json's str case
                pt = enc_str(value).encode()
            else:
                pt = canonical_json(value)
            blob = n + encrypt(n, pt, field_prefix + name_ad)
            out[name] = b2a(blob, newline=False).translate(urlsafe).rstrip(b"=").decode()
        fields_out[cat] = out
        data_keys[cat] = dk

    # Every wrapped key is nonce ‖ 32-byte key ‖ tag = 60 bytes, a multiple of 3: the
    # base64 of their concatenation is the concatenation of their base64 (80 chars each,
    # no padding), so one encoding serves them all.
    wrapped: list[bytes] = []
    for _, _, encrypt, parts, cats in wrap_plan:
        reader_prefix = wrap_prefix + parts.ad
        for cat in cats:
            n = rnd[pos : pos + _NONCE]
            pos += _NONCE
            wrapped.append(n)
            wrapped.append(encrypt(n, data_keys[cat], reader_prefix + _AD_CAT[cat]))
    text = b2a(b"".join(wrapped), newline=False).translate(urlsafe).decode()
    wraps: dict[str, dict[str, Any]] = {}
    wraps_json: list[str] | None = []
    at = 0
    for reader, kid, _, parts, cats in wrap_plan:
        keys: dict[str, str] = {}
        for cat in cats:
            keys[cat] = text[at : at + _WRAP_B64]
            at += _WRAP_B64
        wraps[reader] = {"kid": kid, "keys": keys}
        if parts.json_open is None:
            wraps_json = None
        elif wraps_json is not None:
            wraps_json.append(
                parts.json_open
                + '",'.join([_CAT_JSON[cat] + v for cat, v in keys.items()])
                + parts.json_close
            )

    sealed = {"format": SEAL_FORMAT, "fields": fields_out, "wraps": wraps}
    body = envelope.model_dump(mode="json", exclude=_NOT_CLEAR)
    body["operational"] = ops
    if layout.fields_json is None or wraps_json is None:
        body["sealed"] = sealed
        signed = canonical_json(body)
    else:
        # The clear attributes are encoded as usual and the sealed part, built here,
        # spliced in as text; a test checks the result equals `signing_bytes()`.
        sealed_json = (
            '{"fields":{'
            + ",".join(
                [
                    opening + ",".join([pre + values[name] + '"' for name, pre in names]) + "}"
                    for cat, opening, names in layout.fields_json
                    for values in (fields_out[cat],)
                ]
            )
            + _SEALED_MIDDLE
            + ",".join(wraps_json)
            + "}}"
        )
        signed = canonical_json_with(body, "sealed", sealed, sealed_json)
    signature = _sig_dict(signer, signed)
    out: Envelope = envelope.model_copy(
        update={"operational": ops, "sealed": sealed, "signature": signature}
    )
    # The whole envelope's canonical bytes (what its log leaf hashes) are the signed bytes
    # with the signature spliced in: they are not encoded a second time.
    after = {k: v for k, v in body.items() if k > "signature"}
    whole = canonical_json_insert(signed, "signature", canonical_json(signature).decode(), after)
    if whole is not None:
        out.known_canonical(signed, whole)
    return out


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
    schema = _categories(model)
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
    cat = _category(category)
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
    cat = _category(category)
    env = verified.envelope
    prefix = ad("nrm/field/v1", str(env.id), env.type, env.subject, cat)  # + ad(name)
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
            pt = aead.decrypt(blob[:_NONCE], blob[_NONCE:], prefix + ad(name))
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
        c = _category(cat)
        try:
            opened[c] = open_category(v, c, me, case_key_lookup)
        except NotEntitled:
            withheld[c] = Withheld(c, "not-entitled")
        except CaseKeyUnavailable:
            withheld[c] = Withheld(c, "key-unavailable")
    values: dict[str, Any] = {}
    ops = v.envelope.operational
    for name, cat in _categories(v.model).items():
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
        frozenset(opened),
        frozenset(withheld),
        v.model,
        v.forwarding.forwarder if v.forwarding else None,
    )
