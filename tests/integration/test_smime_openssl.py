"""Signed and encrypted plan mail, checked by the openssl command line (agreement §4).

Copenhagen reads the mail with whatever S/MIME tool it has; ``openssl smime`` / ``openssl
cms`` stand in for it here. A test passes only if openssl itself decrypts the mail,
verifies Tårnby's signature against the CA, and the plan comes out byte for byte.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from genop.mail.certificates import create_demo_pki, load_ca, load_identity
from genop.mail.smime import build_message, make_message_id
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None,
    reason="the openssl command line is not installed; S/MIME interoperability tests skipped",
)

TARNBY = "FLI.PLLOJ.SF@taarnby.dk"  # Bilag 5 contacts, as in config/agreement.yaml
COPENHAGEN = "genoptraeningkbh@suf.kk.dk"
OUTSIDER = "afdelingsleder.dragoer@example.org"
BODY = "Kære Genoptræning København\n\nHermed genoptræningsplan for borgeren (bilag).\nFrom Tårnby: æøå ÆØÅ\n"
SUBJECT = "Genoptræningsplan fra Tårnby Kommune (sag 2026-0042)"
PLAN = EXAMPLES / "plan-example.json"


@dataclass(frozen=True)
class Sent:
    folder: Path
    pki: Path
    mail: Path
    raw: bytes
    message_id: str


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> Sent:
    folder = tmp_path_factory.mktemp("smime")
    pki = folder / "pki"
    now = datetime.now(UTC)
    create_demo_pki(pki, {"tarnby": TARNBY, "copenhagen": COPENHAGEN, "dragor": OUTSIDER}, now=now)
    ca = load_ca(pki)
    signer = load_identity(pki, "tarnby", TARNBY, with_key=True, at=now, ca=ca, role="sign")
    recipient = load_identity(pki, "copenhagen", COPENHAGEN, with_key=False, at=now, ca=ca, role="encrypt")

    inner = EmailMessage()
    inner.set_content(BODY, cte="quoted-printable")
    inner.add_attachment(PLAN.read_bytes(), maintype="application", subtype="json",
                         filename="genoptræningsplan.json")
    message_id = make_message_id("outbox:case-42:forward", "taarnby.dk")
    raw = build_message(
        inner, sender=TARNBY, to=[COPENHAGEN], subject=SUBJECT, message_id=message_id,
        date=now, signer=signer, recipients=[recipient],
    )
    mail = folder / "msg.eml"
    mail.write_bytes(raw)
    return Sent(folder=folder, pki=pki, mail=mail, raw=raw, message_id=message_id)


def decrypt(sent: Sent, party: str, out: Path, *, tool: str = "smime") -> subprocess.CompletedProcess[str]:
    return openssl(tool, "-decrypt", "-in", sent.mail, "-recip", sent.pki / f"{party}.crt",
                   "-inkey", sent.pki / f"{party}.key", "-out", out)


def verify(sent: Sent, signed: Path, out: Path, *, tool: str = "smime") -> subprocess.CompletedProcess[str]:
    return openssl(tool, "-verify", "-in", signed, "-CAfile", sent.pki / "ca.crt", "-out", out)


def attachment_and_body(content: Path) -> tuple[bytes, str]:
    message = message_from_bytes(content.read_bytes(), policy=policy.default)
    attachment = next(message.iter_attachments())
    body = message.get_body(preferencelist=("plain",))
    assert attachment.get_filename() == "genoptræningsplan.json"
    return attachment.get_content(), body.get_content()


def test_copenhagen_decrypts_and_verifies_the_plan_byte_for_byte(sent: Sent, tmp_path: Path) -> None:
    decrypted, content = tmp_path / "dec.eml", tmp_path / "content.eml"

    result = decrypt(sent, "copenhagen", decrypted)
    assert result.returncode == 0, result.stderr
    result = verify(sent, decrypted, content)
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr

    attachment, body = attachment_and_body(content)
    assert attachment == PLAN.read_bytes()
    assert body.replace("\r\n", "\n") == BODY


def test_signature_is_detached_sha256_and_carries_tarnbys_certificate(sent: Sent, tmp_path: Path) -> None:
    decrypted, signer = tmp_path / "dec.eml", tmp_path / "signer.pem"
    assert decrypt(sent, "copenhagen", decrypted).returncode == 0

    signed = message_from_bytes(decrypted.read_bytes(), policy=policy.default)
    assert signed.get_content_type() == "multipart/signed"
    assert signed.get_param("micalg") == "sha-256"
    # -CAfile alone (no -certfile) verifies, so the signer's certificate is in the signature.
    result = openssl("smime", "-verify", "-in", decrypted, "-CAfile", sent.pki / "ca.crt",
                     "-signer", signer, "-out", tmp_path / "content.eml")
    assert result.returncode == 0, result.stderr
    subject = openssl("x509", "-in", signer, "-noout", "-subject").stdout
    assert "tarnby (DEMO)" in subject


def test_content_is_encrypted_with_aes_256(sent: Sent) -> None:
    printed = openssl("cms", "-cmsout", "-print", "-in", sent.mail)
    assert printed.returncode == 0, printed.stderr
    assert "aes-256-cbc" in printed.stdout


def test_nothing_of_the_plan_travels_in_plain_text(sent: Sent) -> None:
    plan_as_base64 = base64.b64encode(PLAN.read_bytes())[:48]  # how an unencrypted attachment would look
    for secret in (b"Hermed genoptr", b"010145-1234", b"Karen Jensen", plan_as_base64):
        assert secret not in sent.raw


def test_outer_headers_carry_subject_and_message_id_as_given(sent: Sent) -> None:
    outer = message_from_bytes(sent.raw, policy=policy.default)
    assert outer["Subject"] == SUBJECT
    assert outer["Message-ID"] == sent.message_id
    assert outer["From"] == TARNBY
    assert outer["To"] == COPENHAGEN
    assert outer["MIME-Version"] == "1.0"
    assert outer.get_content_type() == "application/pkcs7-mime"
    assert outer.get_param("smime-type") == "enveloped-data"
    assert outer.get_param("name") == "smime.p7m"


def test_message_uses_crlf_line_endings(sent: Sent) -> None:
    assert sent.raw.count(b"\n") == sent.raw.count(b"\r\n")
    assert sent.raw.count(b"\r\n") > 10


def test_tarnby_can_read_its_own_sent_copy(sent: Sent, tmp_path: Path) -> None:
    decrypted, content = tmp_path / "dec.eml", tmp_path / "content.eml"
    result = decrypt(sent, "tarnby", decrypted)
    assert result.returncode == 0, result.stderr
    assert verify(sent, decrypted, content).returncode == 0
    assert attachment_and_body(content)[0] == PLAN.read_bytes()


def test_a_party_that_is_not_a_recipient_cannot_decrypt(sent: Sent, tmp_path: Path) -> None:
    decrypted = tmp_path / "dec.eml"
    result = decrypt(sent, "dragor", decrypted)
    assert result.returncode != 0
    assert not decrypted.exists() or b"Karen Jensen" not in decrypted.read_bytes()


def test_tampered_plan_fails_verification(sent: Sent, tmp_path: Path) -> None:
    decrypted, content = tmp_path / "dec.eml", tmp_path / "content.eml"
    assert decrypt(sent, "copenhagen", decrypted).returncode == 0
    original = decrypted.read_bytes()
    tampered = original.replace(b"Hermed genoptr", b"Hermed GENOPTR", 1)
    assert tampered != original
    decrypted.write_bytes(tampered)

    result = verify(sent, decrypted, content)
    assert result.returncode != 0
    assert "Verification successful" not in result.stderr


def test_signature_from_another_ca_is_not_trusted(sent: Sent, tmp_path: Path) -> None:
    decrypted, content = tmp_path / "dec.eml", tmp_path / "content.eml"
    other = tmp_path / "other-pki"
    create_demo_pki(other, {})
    assert decrypt(sent, "copenhagen", decrypted).returncode == 0

    result = openssl("smime", "-verify", "-in", decrypted, "-CAfile", other / "ca.crt", "-out", content)
    assert result.returncode != 0


def test_openssl_cms_also_decrypts_and_verifies(sent: Sent, tmp_path: Path) -> None:
    decrypted, content = tmp_path / "dec.eml", tmp_path / "content.eml"
    result = decrypt(sent, "copenhagen", decrypted, tool="cms")
    assert result.returncode == 0, result.stderr
    result = verify(sent, decrypted, content, tool="cms")
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr
    assert attachment_and_body(content)[0] == PLAN.read_bytes()
