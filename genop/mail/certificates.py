"""Certificates for signed and encrypted mail: loading, checking, and a demo PKI.

Agreement §4: until a MedCom standard is used, Tårnby forwards the rehabilitation plan
to Copenhagen "by encrypted mail with digital signature" (krypteret/digital signatur).
That is S/MIME (``genop.mail.smime``), and it is only as good as the certificates behind it.
Every certificate is therefore checked before a plan is sent — validity dates, trust,
purpose (emailProtection), key usage and the mail address — and any problem raises a
``CertificateError`` whose message a caseworker can act on. There is no fallback to
plain text.

Certificates live in one folder as ``<party>.crt`` (PEM) and, for parties genop signs
for, ``<party>.key`` (PEM, unencrypted, readable by genop only); an optional ``ca.crt``
is the certificate authority every certificate must be directly issued by.

``create_demo_pki`` makes such a folder for development and tests. Everything in it is
named DEMO, because a demo certificate must never be mistaken for a real one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from genop.clock import local
from genop.errors import CertificateError
from genop.files import private_dir

Role = Literal["sign", "encrypt"]
_E = TypeVar("_E", bound=x509.ExtensionType)

DEMO_ORGANISATION = "genop demo"
DEMO_CA_NAME = "genop DEMO CA - NOT FOR PRODUCTION"
DEMO_README = """\
DEMO CERTIFICATES - NOT FOR PRODUCTION

These certificates and keys were made by genop (genop.mail.certificates.create_demo_pki) for
development and testing only. The CA is "{ca}", and every
certificate is marked "(DEMO)". The private keys are stored unencrypted.

Never use them to send real rehabilitation plans: agreement §4 requires encrypted mail
with a digital signature from the municipalities' real certificates. Replace the files
<party>.crt / <party>.key / ca.crt in this folder with certificates issued for the
parties' real mail addresses.
"""

_KEY_SIZE = 2048  # RSA: the one key type openssl and cryptography both sign AND envelope with
# role -> (KeyUsage attribute, its RFC 5280 name, what for, usable key types, their names).
# cryptography's PKCS7EnvelopeBuilder encrypts to RSA keys only.
_ROLE_NEEDS: dict[str, tuple[str, str, str, tuple[type, ...], str]] = {
    "sign": ("digital_signature", "digitalSignature", "digital signatures",
             (rsa.RSAPublicKey, ec.EllipticCurvePublicKey), "an RSA or EC key"),
    "encrypt": ("key_encipherment", "keyEncipherment", "encryption", (rsa.RSAPublicKey,), "an RSA key"),
}


@dataclass(frozen=True)
class Identity:
    """A party's mail identity: its address and certificate, plus its key if genop signs for it."""

    address: str
    certificate: x509.Certificate
    key: PrivateKeyTypes | None  # None for recipients


# --- loading -----------------------------------------------------------------------------

def load_certificate(path: Path, *, what: str) -> x509.Certificate:
    """The PEM certificate at ``path``.

    ``what`` names it in messages, e.g. "the certificate for copenhagen (copenhagen.crt)".
    """
    data = _read(path, what=what, missing="certificate_missing", unreadable="certificate_unreadable")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError(
            f"{_cap(what)} cannot be read: {path} is not a PEM certificate ({exc})",
            code="certificate_unreadable",
        ) from exc


def load_private_key(path: Path, *, what: str) -> PrivateKeyTypes:
    """The unencrypted PEM private key at ``path`` (genop signs unattended, so no passphrase)."""
    data = _read(path, what=what, missing="key_missing", unreadable="key_unreadable")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # the key is protected by a passphrase
        raise CertificateError(
            f"{_cap(what)} cannot be read: {path} is protected by a passphrase; "
            "genop needs the key without one",
            code="key_unreadable",
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError(
            f"{_cap(what)} cannot be read: {path} is not a PEM private key ({exc})",
            code="key_unreadable",
        ) from exc


def load_ca(certs_dir: Path) -> x509.Certificate | None:
    """The trusted CA (``<certs_dir>/ca.crt``), or None when the folder has none.

    Without a CA, certificates are still checked for dates, purpose and address, but not
    for who issued them.
    """
    path = certs_dir / "ca.crt"
    if not path.exists():
        return None
    what = "the CA certificate (ca.crt)"
    ca = load_certificate(path, what=what)
    constraints = _extension(ca, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise CertificateError(
            f"{_cap(what)} in {certs_dir} is not a certificate authority (BasicConstraints CA is not set)",
            code="certificate_untrusted",
        )
    return ca


def load_identity(
    certs_dir: Path, party: str, address: str, *,
    with_key: bool, at: datetime, ca: x509.Certificate | None, role: Role,
) -> Identity:
    """``<party>.crt`` (and ``<party>.key`` if ``with_key``), checked for use at ``at``.

    ``role`` is what genop does with the certificate: "sign" for Tårnby's own, "encrypt"
    for a recipient's (agreement §4: encrypted mail with digital signature).
    """
    cert_what = f"the certificate for {party} ({party}.crt)"
    certificate = load_certificate(certs_dir / f"{party}.crt", what=cert_what)
    check_certificate(certificate, address=address, at=at, ca=ca, what=cert_what, needs_key_usage=role)
    key: PrivateKeyTypes | None = None
    if with_key:
        key = load_private_key(certs_dir / f"{party}.key", what=f"the private key for {party} ({party}.key)")
        check_key_matches(certificate, key, what=cert_what)
    return Identity(address=address, certificate=certificate, key=key)


# --- checking ----------------------------------------------------------------------------

def check_certificate(
    cert: x509.Certificate, *,
    address: str, at: datetime, ca: x509.Certificate | None, what: str, needs_key_usage: Role,
) -> None:
    """Raise ``CertificateError`` unless ``cert`` may sign/encrypt mail for ``address`` at ``at``.

    Trust is checked first: the dates and purpose of a certificate from an unknown issuer
    mean nothing.
    """
    if at.tzinfo is None:
        raise ValueError("check_certificate needs a timezone-aware time")
    if ca is not None:
        _check_issued_by(cert, ca, at=at, what=what)
    _check_dates(cert, at=at, what=what)
    _check_purpose(cert, what=what, needs_key_usage=needs_key_usage)
    _check_address(cert, address=address, what=what)


def check_key_matches(cert: x509.Certificate, key: PrivateKeyTypes, *, what: str) -> None:
    """The private key must belong to the certificate, or recipients could not verify the signature."""
    if _public_der(cert.public_key()) != _public_der(key.public_key()):
        raise CertificateError(
            f"The private key does not belong to {what}: the key and the certificate are from different pairs",
            code="key_mismatch",
        )


def _check_issued_by(cert: x509.Certificate, ca: x509.Certificate, *, at: datetime, what: str) -> None:
    ca_name = _common_name(ca)
    if at > ca.not_valid_after_utc:
        raise CertificateError(
            f"The CA certificate ({ca_name}) that vouches for {what} expired on {_day(ca.not_valid_after_utc)}",
            code="certificate_untrusted",
        )
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateError(
            f"{_cap(what)} is not issued by the trusted CA ({ca_name}); it names "
            f"{cert.issuer.rfc4514_string()} as issuer",
            code="certificate_untrusted",
        ) from exc


def _check_dates(cert: x509.Certificate, *, at: datetime, what: str) -> None:
    if at > cert.not_valid_after_utc:
        raise CertificateError(
            f"{_cap(what)} expired on {_day(cert.not_valid_after_utc)}; "
            "a renewed certificate is needed before encrypted mail can be sent",
            code="certificate_expired",
        )
    if at < cert.not_valid_before_utc:
        raise CertificateError(
            f"{_cap(what)} is not valid until {_day(cert.not_valid_before_utc)}",
            code="certificate_not_yet_valid",
        )


def _check_purpose(cert: x509.Certificate, *, what: str, needs_key_usage: Role) -> None:
    usages = _extension(cert, x509.ExtendedKeyUsage)
    if usages is None or ExtendedKeyUsageOID.EMAIL_PROTECTION not in usages:
        raise CertificateError(
            f"{_cap(what)} is not issued for mail: it lacks the 'E-mail protection' (emailProtection) purpose",
            code="certificate_wrong_purpose",
        )
    attribute, usage_name, use, key_types, key_names = _ROLE_NEEDS[needs_key_usage]
    key_usage = _extension(cert, x509.KeyUsage)
    if key_usage is not None and not getattr(key_usage, attribute):
        raise CertificateError(
            f"{_cap(what)} may not be used for {use} (its key usage lacks {usage_name})",
            code="certificate_wrong_purpose",
        )
    if not isinstance(cert.public_key(), key_types):
        raise CertificateError(
            f"{_cap(what)} has a key genop cannot use for {use} ({key_names} is needed)",
            code="certificate_unsupported_key",
        )


def _check_address(cert: x509.Certificate, *, address: str, what: str) -> None:
    """Mail addresses compare case-insensitively: directories spell them with mixed case."""
    names = _extension(cert, x509.SubjectAlternativeName)
    addresses = names.get_values_for_type(x509.RFC822Name) if names is not None else []
    if address.strip().casefold() not in {a.casefold() for a in addresses}:
        issued_to = ", ".join(addresses) if addresses else "no mail address"
        raise CertificateError(
            f"{_cap(what)} is issued to {issued_to}, not to {address}",
            code="certificate_address_mismatch",
        )


# --- demo PKI ----------------------------------------------------------------------------

def issue_certificate(
    ca_cert: x509.Certificate, ca_key: PrivateKeyTypes, *,
    address: str, common_name: str, not_before: datetime, not_after: datetime,
    email_protection: bool = True,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A new RSA mail certificate for ``address`` issued by ``ca_cert``.

    ``email_protection=False`` issues a TLS client certificate instead, the kind that is
    sometimes handed out by mistake; tests use it to prove such a certificate is refused.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)
    purpose = ExtendedKeyUsageOID.EMAIL_PROTECTION if email_protection else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(_name(common_name), ca_cert.subject, key, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, content_commitment=True, key_encipherment=True),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(address)]), critical=False)
        # a CA read from its files may hold any kind of key; cryptography refuses one that cannot issue
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                       critical=False)
    )
    return builder.sign(ca_key, hashes.SHA256()), key  # type: ignore[arg-type]  # as above: any kind of CA key


def create_demo_pki(
    folder: Path, parties: dict[str, str], *,
    now: datetime | None = None, valid_days: int = 825, overwrite: bool = False,
) -> list[Path]:
    """A DEMO CA and one mail certificate per party (party key -> mail address) in ``folder``.

    Existing files are kept unless ``overwrite``: an existing CA issues the missing party
    certificates, so running this again after adding a party leaves the others alone.
    Returns the paths written.
    """
    now = now or datetime.now(UTC)
    not_before = now - timedelta(hours=1)  # tolerate a little clock skew at the receiver
    if not folder.exists():
        private_dir(folder)
    written: list[Path] = []

    ca_key: PrivateKeyTypes  # ours is RSA; an existing CA's key is whatever its file holds
    ca_pair = _existing_pair(folder, "ca", overwrite=overwrite)
    if ca_pair is None:
        ca_cert, ca_key = _issue_ca(not_before, now + timedelta(days=2 * valid_days))
        written += _write_pair(folder, "ca", ca_cert, ca_key)
    else:
        ca_cert, ca_key = ca_pair
    leaf_not_after = min(now + timedelta(days=valid_days), ca_cert.not_valid_after_utc)

    for party, address in parties.items():
        if _existing_pair(folder, party, overwrite=overwrite) is not None:
            continue
        cert, key = issue_certificate(
            ca_cert, ca_key, address=address, common_name=f"{party} (DEMO)",
            not_before=not_before, not_after=leaf_not_after,
        )
        written += _write_pair(folder, party, cert, key)

    readme = folder / "README.txt"
    if overwrite or not readme.exists():
        readme.write_text(DEMO_README.format(ca=DEMO_CA_NAME), encoding="utf-8")
        os.chmod(readme, 0o644)  # public, like the certificates it describes
        written.append(readme)
    return written


def _issue_ca(not_before: datetime, not_after: datetime) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)
    name = _name(DEMO_CA_NAME)
    builder = (
        _builder(name, name, key, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
    )
    return builder.sign(key, hashes.SHA256()), key


def _existing_pair(folder: Path, stem: str, *, overwrite: bool) -> tuple[x509.Certificate, PrivateKeyTypes] | None:
    """The pair already in ``folder``, None if there is none (or it is to be overwritten).

    Half a pair is an error: writing the missing half would give a key that does not
    belong to its certificate.
    """
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    if overwrite or not (cert_path.exists() or key_path.exists()):
        return None
    if not (cert_path.exists() and key_path.exists()):
        present, absent = (cert_path, key_path) if cert_path.exists() else (key_path, cert_path)
        raise CertificateError(
            f"The demo certificates in {folder} are incomplete: {present.name} exists but "
            f"{absent.name} does not; remove {present.name} or recreate with overwrite",
            code="demo_pki_incomplete",
        )
    what = f"the demo certificate {cert_path.name}"
    cert = load_certificate(cert_path, what=what)
    key = load_private_key(key_path, what=f"the demo key {key_path.name}")
    check_key_matches(cert, key, what=what)
    return cert, key


def _write_pair(folder: Path, stem: str, cert: x509.Certificate, key: PrivateKeyTypes) -> list[Path]:
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    _write_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(cert_path, 0o644)  # a certificate is public (it is sent to the other party); its key is not
    return [cert_path, key_path]


def _write_private(path: Path, data: bytes) -> None:
    """Write with mode 0600 from the start, so the key is never readable by others, even briefly."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through os.open


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey,
    not_before: datetime, not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEMO_ORGANISATION),
    ])


def _key_usage(**granted: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{name: granted.get(name, False) for name in names})


# --- helpers -----------------------------------------------------------------------------

def _read(path: Path, *, what: str, missing: str, unreadable: str) -> bytes:
    if not path.is_file():
        raise CertificateError(
            f"{_cap(what)} is missing: there is no file {path}. "
            "Encrypted mail cannot be sent without it (agreement §4)",
            code=missing,
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"{_cap(what)} cannot be read: {path} ({exc.strerror})", code=unreadable) from exc


def _extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _public_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def _day(moment: datetime) -> str:
    """The Danish calendar day of ``moment``, as a caseworker would look it up."""
    return local(moment).date().isoformat()


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
