"""Signed and encrypted mail (S/MIME): how a plan leaves Tårnby.

Agreement §4: until a MedCom standard is used, the plan is forwarded "by encrypted mail
with digital signature". The message is built the way mail clients and ``openssl smime``
expect it (RFC 8551): the content is first signed with Tårnby's certificate as a
detached signature (multipart/signed, so the plan stays readable even where the
signature cannot be checked), and the signed entity is then encrypted
(application/pkcs7-mime, enveloped-data, AES-256-CBC) to every recipient's certificate
and to Tårnby's own, so the sent copy in Tårnby's archive can be read later.

Nothing here falls back to plain text: a missing key or unusable certificate raises
``CertificateError``.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7

from genop.mail.certificates import Identity
from genop.errors import CertificateError

_CRLF = b"\r\n"
_SMTP = email.policy.SMTP  # CRLF line endings, no "From " mangling (it would break the signature)
_BASE64_LINE = 76  # RFC 2045 §6.8: encoded lines are at most 76 characters


def sign_and_encrypt(inner_mime: bytes, *, signer: Identity, recipients: Sequence[Identity]) -> bytes:
    """The S/MIME enveloped entity (headers and base64 body) carrying ``inner_mime`` signed by ``signer``.

    ``inner_mime`` is a complete MIME entity; line endings are canonicalised to CRLF
    before signing, as S/MIME requires. The signature is detached, SHA-256, and carries
    the signer's certificate so the recipient can verify it against its CA alone.
    """
    if signer.key is None:
        raise CertificateError(
            f"Mail from {signer.address} cannot be signed: genop has no private key for it",
            code="key_missing",
        )
    if not isinstance(signer.key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise CertificateError(
            f"Mail from {signer.address} cannot be signed: its key type is not supported (RSA or EC is needed)",
            code="certificate_unsupported_key",
        )
    if not recipients:
        raise CertificateError("Mail cannot be encrypted: no recipient certificate was given", code="no_recipients")

    signed = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(inner_mime)
        .add_signer(signer.certificate, signer.key, hashes.SHA256())
        .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    )
    envelope = pkcs7.PKCS7EnvelopeBuilder().set_data(signed)
    envelope = envelope.set_content_encryption_algorithm(algorithms.AES256)
    for identity in _unique([*recipients, signer]):
        envelope = envelope.add_recipient(_encryptable(identity))
    # Binary: the signed entity is already canonical; any change now would break the signature.
    der = envelope.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    return _enveloped_entity(der)


def build_message(
    inner: EmailMessage,
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    message_id: str,
    date: datetime,
    signer: Identity,
    recipients: Sequence[Identity],
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
) -> bytes:
    """The complete mail (RFC 5322, CRLF) ready for SMTP: outer headers plus the encrypted entity.

    Only the outer headers travel unencrypted, so ``subject`` must carry no personal data;
    the caller guarantees that. ``message_id`` is given, not made here, so a retried
    delivery repeats the same Message-ID (see ``make_message_id``). A mail that re-sends an
    earlier one names it (RFC 5322 §3.6.4): ``in_reply_to`` its Message-ID, ``references`` the
    thread it belongs to (outer headers: Message-IDs carry no personal data).
    """
    if date.tzinfo is None:
        raise ValueError("build_message needs a timezone-aware date")
    if not to:
        raise ValueError("build_message needs at least one To address")
    entity = sign_and_encrypt(inner.as_bytes(policy=_SMTP), signer=signer, recipients=recipients)
    outer = EmailMessage(policy=_SMTP)  # folds and RFC 2047-encodes; rejects CR/LF in values
    outer["From"] = sender
    outer["To"] = ", ".join(to)
    outer["Subject"] = subject
    outer["Date"] = format_datetime(date)
    outer["Message-ID"] = message_id
    if in_reply_to:
        outer["In-Reply-To"] = in_reply_to
    if references:
        outer["References"] = " ".join(references)
    outer["MIME-Version"] = "1.0"
    headers = b"".join(_SMTP.fold_binary(name, value) for name, value in outer.items())
    return headers + entity


def open_message(raw: bytes, *, reader: Identity) -> EmailMessage:
    """The content of a mail built by ``build_message``, as ``reader`` (a recipient, or the
    signer: every mail is encrypted to its sender too) decrypts it: the inner entity that was
    signed, without its signature. Used to send the same content again (a dispute's re-send)."""
    if reader.key is None or not isinstance(reader.key, rsa.RSAPrivateKey):
        raise CertificateError(f"Mail to {reader.address} cannot be decrypted: genop has no RSA key for it",
                               code="key_missing")
    outer = email.message_from_bytes(raw, policy=email.policy.default)
    payload = outer.get_payload(decode=True)
    if outer.get_content_type() != "application/pkcs7-mime" or not isinstance(payload, bytes):
        raise CertificateError("the mail is not an S/MIME enveloped message", code="not_smime")
    try:
        signed = pkcs7.pkcs7_decrypt_der(payload, reader.certificate, reader.key, [])
    except ValueError as exc:
        raise CertificateError(f"the mail cannot be decrypted with {reader.address}'s key",
                               code="not_decryptable") from exc
    entity = email.message_from_bytes(signed, policy=email.policy.default)
    if entity.get_content_type() != "multipart/signed":
        raise CertificateError("the decrypted mail is not signed content", code="not_signed")
    content = entity.get_payload(0)
    assert isinstance(content, EmailMessage)  # policy.default parses into EmailMessage
    return content


def make_message_id(key: str, domain: str) -> str:
    """A Message-ID derived from the outbox key, so a resent plan is recognisable as the same mail.

    The key is hashed: it may contain a case number, which must not show in a header.
    """
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def _encryptable(identity: Identity) -> x509.Certificate:
    if not isinstance(identity.certificate.public_key(), rsa.RSAPublicKey):
        raise CertificateError(
            f"Mail to {identity.address} cannot be encrypted: its certificate has no RSA key",
            code="certificate_unsupported_key",
        )
    return identity.certificate


def _unique(identities: Sequence[Identity]) -> list[Identity]:
    """One recipient entry per certificate, even when Tårnby also receives the mail."""
    seen: set[bytes] = set()
    unique = []
    for identity in identities:
        fingerprint = identity.certificate.fingerprint(hashes.SHA256())
        if fingerprint not in seen:
            seen.add(fingerprint)
            unique.append(identity)
    return unique


def _enveloped_entity(der: bytes) -> bytes:
    encoded = base64.b64encode(der)
    lines = [encoded[i:i + _BASE64_LINE] for i in range(0, len(encoded), _BASE64_LINE)]
    headers = [
        b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="smime.p7m"',
    ]
    return _CRLF.join([*headers, b"", *lines, b""])
