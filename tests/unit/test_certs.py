"""Certificate checks before a plan is mailed (agreement §4: encrypted mail with digital signature).

Every problem must stop the mail with a specific code and a message naming the
certificate, never fall back to plain text.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from genop.mail.certificates import (
    Identity,
    check_certificate,
    check_key_matches,
    create_demo_pki,
    issue_certificate,
    load_ca,
    load_certificate,
    load_identity,
    load_private_key,
)
from genop.errors import CertificateError
from genop.mail.smime import build_message, make_message_id, sign_and_encrypt

TARNBY = "FLI.PLLOJ.SF@taarnby.dk"
COPENHAGEN = "genoptraeningkbh@suf.kk.dk"
NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Pki:
    folder: Path
    ca: x509.Certificate
    ca_key: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    create_demo_pki(folder, {"tarnby": TARNBY, "copenhagen": COPENHAGEN}, now=NOW)
    ca_key = load_private_key(folder / "ca.key", what="ca.key")
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    return Pki(folder=folder, ca=load_certificate(folder / "ca.crt", what="ca.crt"), ca_key=ca_key)


def check(cert: x509.Certificate, pki: Pki, *, address: str = COPENHAGEN, at: datetime = NOW,
          role: str = "encrypt") -> None:
    check_certificate(cert, address=address, at=at, ca=pki.ca, what="Copenhagen's certificate (copenhagen.crt)",
                      needs_key_usage=role)  # type: ignore[arg-type]


def issue(pki: Pki, *, not_before: datetime = NOW - timedelta(days=1),
          not_after: datetime = NOW + timedelta(days=365), email_protection: bool = True) -> x509.Certificate:
    cert, _ = issue_certificate(pki.ca, pki.ca_key, address=COPENHAGEN, common_name="copenhagen (DEMO)",
                                not_before=not_before, not_after=not_after, email_protection=email_protection)
    return cert


def code_of(excinfo: pytest.ExceptionInfo[CertificateError]) -> str:
    return excinfo.value.code


# --- the demo certificates are usable ---------------------------------------------------

def test_demo_certificates_pass_every_check_for_their_role(pki: Pki) -> None:
    ca = load_ca(pki.folder)
    signer = load_identity(pki.folder, "tarnby", TARNBY, with_key=True, at=NOW, ca=ca, role="sign")
    recipient = load_identity(pki.folder, "copenhagen", COPENHAGEN, with_key=False, at=NOW, ca=ca, role="encrypt")
    assert signer.key is not None and signer.address == TARNBY
    assert recipient.key is None


def test_mail_address_is_matched_without_regard_to_case(pki: Pki) -> None:
    identity = load_identity(pki.folder, "tarnby", TARNBY.lower(), with_key=False, at=NOW, ca=pki.ca, role="sign")
    assert identity.address == TARNBY.lower()


# --- missing and unreadable files -------------------------------------------------------

def test_missing_certificate_names_the_party_and_the_path(tmp_path: Path) -> None:
    with pytest.raises(CertificateError) as excinfo:
        load_identity(tmp_path, "copenhagen", COPENHAGEN, with_key=False, at=NOW, ca=None, role="encrypt")
    assert code_of(excinfo) == "certificate_missing"
    assert "certificate for copenhagen (copenhagen.crt)" in excinfo.value.message
    assert str(tmp_path / "copenhagen.crt") in excinfo.value.message


def test_missing_signing_key_is_reported_as_key_missing(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "tarnby.crt").write_bytes((pki.folder / "tarnby.crt").read_bytes())
    with pytest.raises(CertificateError) as excinfo:
        load_identity(tmp_path, "tarnby", TARNBY, with_key=True, at=NOW, ca=pki.ca, role="sign")
    assert code_of(excinfo) == "key_missing"
    assert str(tmp_path / "tarnby.key") in excinfo.value.message


def test_certificate_that_is_not_pem_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "copenhagen.crt"
    path.write_text("this is not a certificate\n")
    with pytest.raises(CertificateError) as excinfo:
        load_certificate(path, what="Copenhagen's certificate (copenhagen.crt)")
    assert code_of(excinfo) == "certificate_unreadable"
    assert "Copenhagen's certificate" in excinfo.value.message


def test_key_that_is_not_pem_is_unreadable(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "tarnby.key"
    path.write_bytes((pki.folder / "tarnby.crt").read_bytes())  # a certificate where the key should be
    with pytest.raises(CertificateError) as excinfo:
        load_private_key(path, what="Tårnby's key (tarnby.key)")
    assert code_of(excinfo) == "key_unreadable"


def test_key_protected_by_a_passphrase_is_unreadable(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "tarnby.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(CertificateError) as excinfo:
        load_private_key(path, what="Tårnby's key (tarnby.key)")
    assert code_of(excinfo) == "key_unreadable"
    assert "passphrase" in excinfo.value.message


# --- validity, purpose, address, trust --------------------------------------------------

def test_expired_certificate_is_refused_with_its_expiry_date(pki: Pki) -> None:
    cert = issue(pki, not_before=datetime(2025, 1, 1, tzinfo=UTC), not_after=datetime(2026, 1, 1, 10, tzinfo=UTC))
    with pytest.raises(CertificateError) as excinfo:
        check(cert, pki, at=datetime(2026, 1, 2, tzinfo=UTC))
    assert code_of(excinfo) == "certificate_expired"
    assert "Copenhagen's certificate (copenhagen.crt) expired on 2026-01-01" in excinfo.value.message


def test_certificate_is_still_valid_on_its_last_second(pki: Pki) -> None:
    last = datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC)
    check(issue(pki, not_after=last), pki, at=last)


def test_certificate_not_yet_valid_is_refused(pki: Pki) -> None:
    cert = issue(pki, not_before=datetime(2027, 1, 1, 10, tzinfo=UTC), not_after=datetime(2028, 1, 1, tzinfo=UTC))
    with pytest.raises(CertificateError) as excinfo:
        check(cert, pki)
    assert code_of(excinfo) == "certificate_not_yet_valid"
    assert "not valid until 2027-01-01" in excinfo.value.message


def test_certificate_without_email_protection_is_the_wrong_purpose(pki: Pki) -> None:
    with pytest.raises(CertificateError) as excinfo:
        check(issue(pki, email_protection=False), pki)
    assert code_of(excinfo) == "certificate_wrong_purpose"
    assert "emailProtection" in excinfo.value.message


def test_signature_only_certificate_cannot_be_encrypted_to(pki: Pki) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "copenhagen signing only")]))
        .issuer_name(pki.ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(COPENHAGEN)]), critical=False)
        .sign(pki.ca_key, hashes.SHA256())
    )
    check(cert, pki, role="sign")
    with pytest.raises(CertificateError) as excinfo:
        check(cert, pki, role="encrypt")
    assert code_of(excinfo) == "certificate_wrong_purpose"
    assert "keyEncipherment" in excinfo.value.message


def test_certificate_for_another_address_is_refused(pki: Pki) -> None:
    with pytest.raises(CertificateError) as excinfo:
        check(issue(pki), pki, address="someone.else@kk.dk")
    assert code_of(excinfo) == "certificate_address_mismatch"
    assert COPENHAGEN in excinfo.value.message
    assert "someone.else@kk.dk" in excinfo.value.message


def test_certificate_from_another_ca_is_untrusted(pki: Pki, tmp_path: Path) -> None:
    create_demo_pki(tmp_path, {"copenhagen": COPENHAGEN}, now=NOW)
    foreign = load_certificate(tmp_path / "copenhagen.crt", what="copenhagen.crt")
    with pytest.raises(CertificateError) as excinfo:
        check(foreign, pki)
    assert code_of(excinfo) == "certificate_untrusted"


def test_without_a_ca_a_certificate_is_not_checked_for_issuer(pki: Pki, tmp_path: Path) -> None:
    create_demo_pki(tmp_path, {"copenhagen": COPENHAGEN}, now=NOW)
    foreign = load_certificate(tmp_path / "copenhagen.crt", what="copenhagen.crt")
    check_certificate(foreign, address=COPENHAGEN, at=NOW, ca=None, what="copenhagen.crt", needs_key_usage="encrypt")


def test_key_of_another_party_does_not_match(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "tarnby.crt").write_bytes((pki.folder / "tarnby.crt").read_bytes())
    (tmp_path / "tarnby.key").write_bytes((pki.folder / "copenhagen.key").read_bytes())
    with pytest.raises(CertificateError) as excinfo:
        load_identity(tmp_path, "tarnby", TARNBY, with_key=True, at=NOW, ca=pki.ca, role="sign")
    assert code_of(excinfo) == "key_mismatch"


def test_leaf_certificate_is_not_accepted_as_ca(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes((pki.folder / "tarnby.crt").read_bytes())
    with pytest.raises(CertificateError) as excinfo:
        load_ca(tmp_path)
    assert code_of(excinfo) == "certificate_untrusted"


def test_folder_without_ca_has_no_ca(tmp_path: Path) -> None:
    assert load_ca(tmp_path) is None


# --- demo PKI ---------------------------------------------------------------------------

def test_demo_pki_is_named_demo_everywhere(pki: Pki) -> None:
    assert pki.ca.subject.rfc4514_string() == "O=genop demo,CN=genop DEMO CA - NOT FOR PRODUCTION"
    leaf = load_certificate(pki.folder / "tarnby.crt", what="tarnby.crt")
    assert leaf.subject.rfc4514_string() == "O=genop demo,CN=tarnby (DEMO)"
    assert "DEMO CERTIFICATES - NOT FOR PRODUCTION" in (pki.folder / "README.txt").read_text()


def test_demo_keys_are_readable_by_the_owner_only(pki: Pki) -> None:
    for name in ("ca.key", "tarnby.key", "copenhagen.key"):
        assert stat.S_IMODE((pki.folder / name).stat().st_mode) == 0o600


def test_demo_pki_does_not_overwrite_existing_files(tmp_path: Path) -> None:
    first = create_demo_pki(tmp_path, {"tarnby": TARNBY}, now=NOW)
    before = {path: path.read_bytes() for path in first}

    assert create_demo_pki(tmp_path, {"tarnby": TARNBY}, now=NOW) == []
    assert {path: path.read_bytes() for path in first} == before


def test_demo_pki_adds_a_new_party_with_the_existing_ca(tmp_path: Path) -> None:
    create_demo_pki(tmp_path, {"tarnby": TARNBY}, now=NOW)
    ca_before = (tmp_path / "ca.crt").read_bytes()

    written = create_demo_pki(tmp_path, {"tarnby": TARNBY, "copenhagen": COPENHAGEN}, now=NOW)

    assert sorted(p.name for p in written) == ["copenhagen.crt", "copenhagen.key"]
    assert (tmp_path / "ca.crt").read_bytes() == ca_before
    load_identity(tmp_path, "copenhagen", COPENHAGEN, with_key=True, at=NOW, ca=load_ca(tmp_path), role="encrypt")


def test_demo_pki_overwrites_when_asked(tmp_path: Path) -> None:
    create_demo_pki(tmp_path, {"tarnby": TARNBY}, now=NOW)
    old_key = (tmp_path / "tarnby.key").read_bytes()

    written = create_demo_pki(tmp_path, {"tarnby": TARNBY}, now=NOW, overwrite=True)

    assert {p.name for p in written} == {"ca.crt", "ca.key", "tarnby.crt", "tarnby.key", "README.txt"}
    assert (tmp_path / "tarnby.key").read_bytes() != old_key


def test_demo_pki_refuses_to_complete_half_a_pair(tmp_path: Path) -> None:
    create_demo_pki(tmp_path, {"tarnby": TARNBY}, now=NOW)
    (tmp_path / "tarnby.key").unlink()
    with pytest.raises(CertificateError) as excinfo:
        create_demo_pki(tmp_path, {"tarnby": TARNBY}, now=NOW)
    assert code_of(excinfo) == "demo_pki_incomplete"


# --- mail is never sent unsigned or unencrypted -----------------------------------------

def test_signer_without_a_key_cannot_send(pki: Pki) -> None:
    ca = pki.ca
    signer = load_identity(pki.folder, "tarnby", TARNBY, with_key=False, at=NOW, ca=ca, role="sign")
    recipient = load_identity(pki.folder, "copenhagen", COPENHAGEN, with_key=False, at=NOW, ca=ca, role="encrypt")
    with pytest.raises(CertificateError) as excinfo:
        sign_and_encrypt(b"Content-Type: text/plain\r\n\r\nplan\r\n", signer=signer, recipients=[recipient])
    assert code_of(excinfo) == "key_missing"


def test_mail_without_recipients_is_refused(pki: Pki) -> None:
    signer = load_identity(pki.folder, "tarnby", TARNBY, with_key=True, at=NOW, ca=pki.ca, role="sign")
    inner = EmailMessage()
    inner.set_content("plan")
    with pytest.raises(CertificateError) as excinfo:
        build_message(inner, sender=TARNBY, to=[COPENHAGEN], subject="Genoptræningsplan",
                      message_id=make_message_id("k", "taarnby.dk"), date=NOW, signer=signer, recipients=[])
    assert code_of(excinfo) == "no_recipients"


def test_key_matches_its_own_certificate(pki: Pki) -> None:
    identity = load_identity(pki.folder, "tarnby", TARNBY, with_key=True, at=NOW, ca=pki.ca, role="sign")
    assert isinstance(identity, Identity) and identity.key is not None
    check_key_matches(identity.certificate, identity.key, what="tarnby.crt")


# --- Message-ID -------------------------------------------------------------------------

def test_same_outbox_key_gives_the_same_message_id() -> None:
    assert make_message_id("outbox:42", "taarnby.dk") == make_message_id("outbox:42", "taarnby.dk")


def test_different_outbox_keys_give_different_message_ids() -> None:
    assert make_message_id("outbox:42", "taarnby.dk") != make_message_id("outbox:43", "taarnby.dk")


def test_message_id_hides_the_key_and_names_the_domain() -> None:
    message_id = make_message_id("case-2026-0042", "taarnby.dk")
    assert message_id.startswith("<") and message_id.endswith("@taarnby.dk>")
    local_part = message_id[1:].split("@")[0]
    assert len(local_part) == 32 and "0042" not in local_part
