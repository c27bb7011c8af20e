"""A small local certificate authority: TLS identities for the broker and the HTTP services.

One CA per country deployment signs every TLS certificate of the bus: the Kafka brokers,
the operator's provisioning client, one client certificate per agency node (its broker
principal is read from the subject, so no shared secret crosses the wire), and the server
certificates of the HTTP services. Keys are ECDSA P-256 (what Java's and OpenSSL's TLS
stacks both accept without extra providers); each private key lives in one PEM file with
its certificate chain (mode 0600), which Kafka reads as a PEM key store and Python's `ssl`
as a certificate chain. Certificates are short-lived (90 days by default): rotation, not
revocation lists, is how a lost key stops working, with the broker ACLs (withdrawn when an
agency is suspended) as the immediate brake.

Layout of a PKI folder::

    ca.pem                 the CA certificate (public: every client and broker trusts it)
    ca.key                 the CA private key (0600; only `nrm pki issue|rotate` reads it)
    <label>.pem            private key + certificate + CA (0600), one per identity
    <label>.prev.pem       the identity's previous file, kept by `rotate` until removed

Labels: ``broker``, ``operator``, ``agency-<id>``, ``service-<name>``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from contracts.envelope import AGENCY_ID_PATTERN

CA_DAYS = 5 * 365
LEAF_DAYS = 90
LOCAL_NAMES = ("localhost", "127.0.0.1")
_AGENCY_ORG = "NRM agency"
_OPERATOR_ORG = "NRM operator"
_BROKER_ORG = "NRM broker"
_SERVICE_ORG = "NRM service"


class PkiError(RuntimeError):
    """The PKI folder is missing, incomplete, or asked for something it cannot issue."""


class Kind(StrEnum):
    """What an identity is; it decides the subject and so the broker principal."""

    AGENCY = "agency"
    OPERATOR = "operator"
    BROKER = "broker"
    SERVICE = "service"


@dataclass(frozen=True)
class Identity:
    """Who a certificate names. The subject is what the brokers map to a principal."""

    kind: Kind
    name: str = ""
    country: str = ""

    def __post_init__(self) -> None:
        import re

        if self.kind is Kind.AGENCY:
            if not re.match(AGENCY_ID_PATTERN, self.name) or not re.match(
                r"^[A-Z]{2}$", self.country
            ):
                raise PkiError(f"an agency identity needs an agency id and a country: {self}")
        elif self.kind is Kind.SERVICE and not re.match(r"^[a-z0-9][a-z0-9-]{0,62}$", self.name):
            raise PkiError(f"a service name is lower-case letters, digits and '-': {self.name!r}")

    @property
    def label(self) -> str:
        if self.kind in (Kind.AGENCY, Kind.SERVICE):
            return f"{self.kind}-{self.name}"
        return str(self.kind)

    def subject(self) -> x509.Name:
        """RFC 2253 renders it most specific first: ``CN=<id>,OU=<country>,O=NRM agency``."""
        attrs: list[x509.NameAttribute] = []
        if self.kind is Kind.AGENCY:
            attrs = [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _AGENCY_ORG),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.country),
                x509.NameAttribute(NameOID.COMMON_NAME, self.name),
            ]
        elif self.kind is Kind.OPERATOR:
            attrs = [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _OPERATOR_ORG),
                x509.NameAttribute(NameOID.COMMON_NAME, "operator"),
            ]
        elif self.kind is Kind.BROKER:
            attrs = [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _BROKER_ORG),
                x509.NameAttribute(NameOID.COMMON_NAME, "broker"),
            ]
        else:
            attrs = [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _SERVICE_ORG),
                x509.NameAttribute(NameOID.COMMON_NAME, self.name),
            ]
        return x509.Name(attrs)

    def usages(self) -> list[x509.ObjectIdentifier]:
        """Brokers and services also serve TLS; agencies' node servers do as well."""
        if self.kind is Kind.OPERATOR:
            return [ExtendedKeyUsageOID.CLIENT_AUTH]
        return [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]


def agency(agency_id: str, country: str) -> Identity:
    return Identity(Kind.AGENCY, agency_id, country)


def service(name: str) -> Identity:
    return Identity(Kind.SERVICE, name)


OPERATOR = Identity(Kind.OPERATOR)
BROKER = Identity(Kind.BROKER)


# --- certificates (pure: bytes in, bytes out) ------------------------------------------


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    out: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(out)


def _key_usage(ca: bool) -> x509.KeyUsage:
    """A CA signs certificates; a leaf signs (TLS 1.3) and agrees keys (ECDHE)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(
    country: str, now: datetime, days: int = CA_DAYS
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NRM referral bus"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"NRM {country} local CA"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(
    identity: Identity,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: datetime,
    names: Sequence[str] = LOCAL_NAMES,
    days: int = LEAF_DAYS,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A leaf certificate for `identity`; `names` are its subjectAltNames (servers)."""
    key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(identity.subject())
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(identity.usages()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def spki_sha256(cert_pem: bytes) -> str:
    """The SHA-256 of a certificate's public key: what a federation agreement pins."""
    import hashlib

    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


# --- the folder ------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    from nrm.agency_cli import write_private_file

    write_private_file(path, data)


@dataclass(frozen=True)
class LocalCA:
    """A PKI folder (see the module doc). `init` makes it; `open` reads an existing one."""

    folder: Path

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def _ca_key_file(self) -> Path:
        return self.folder / "ca.key"

    def exists(self) -> bool:
        return self.ca_file.exists() and self._ca_key_file.exists()

    @classmethod
    def init(cls, folder: Path, country: str, now: datetime | None = None) -> LocalCA:
        """A new CA; refuses to overwrite one (every issued certificate depends on it)."""
        ca = cls(folder)
        if ca.ca_file.exists() or ca._ca_key_file.exists():
            raise PkiError(f"{folder} already holds a CA; remove it first to start over")
        key, cert = make_ca(country, now or datetime.now(UTC))
        _write_private(ca._ca_key_file, _key_pem(key))
        ca.ca_file.write_bytes(_cert_pem(cert))
        return ca

    @classmethod
    def open_or_init(cls, folder: Path, country: str) -> LocalCA:
        ca = cls(folder)
        return ca if ca.exists() else cls.init(folder, country)

    def _ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if not self.exists():
            raise PkiError(f"no CA in {self.folder}: run `nrm pki init --dir {self.folder}`")
        key = serialization.load_pem_private_key(self._ca_key_file.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"{self._ca_key_file} is not an EC private key")
        return key, x509.load_pem_x509_certificate(self.ca_file.read_bytes())

    def path(self, identity: Identity) -> Path:
        return self.folder / f"{identity.label}.pem"

    def issue(
        self,
        identity: Identity,
        names: Sequence[str] = LOCAL_NAMES,
        days: int = LEAF_DAYS,
        now: datetime | None = None,
        out: Path | None = None,
    ) -> Path:
        """Key + certificate + CA in `<label>.pem` (0600), or in `out`; replaces an
        existing file."""
        ca_key, ca_cert = self._ca()
        key, cert = make_leaf(identity, ca_key, ca_cert, now or datetime.now(UTC), names, days)
        path = out or self.path(identity)
        _write_private(path, _key_pem(key) + _cert_pem(cert) + _cert_pem(ca_cert))
        return path

    def ensure(self, identity: Identity, names: Sequence[str] = LOCAL_NAMES) -> Path:
        """The identity's file, issued if missing."""
        path = self.path(identity)
        return path if path.exists() else self.issue(identity, names)

    def rotate(
        self,
        identity: Identity,
        names: Sequence[str] = LOCAL_NAMES,
        days: int = LEAF_DAYS,
        out: Path | None = None,
    ) -> tuple[Path, Path | None]:
        """A new key and certificate for the same subject (so the same broker principal
        and ACLs); the previous file is kept as `<name>.prev.pem` for the switch-over."""
        path = out or self.path(identity)
        previous: Path | None = None
        if path.exists():
            previous = path.with_name(f"{path.name.removesuffix('.pem')}.prev.pem")
            _write_private(previous, path.read_bytes())
        return self.issue(identity, names, days, out=path), previous

    def certificate(self, identity: Identity, path: Path | None = None) -> x509.Certificate:
        path = path or self.path(identity)
        if not path.exists():
            raise PkiError(f"no certificate for {identity.label} in {self.folder}")
        return x509.load_pem_x509_certificate(path.read_bytes())


def pem_certificates(data: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(data)


def leaf_pem(path: Path) -> str:
    """The first certificate of an identity's file (no key, no chain): what a peer pins."""
    return _cert_pem(pem_certificates(path.read_bytes())[0]).decode()
