"""Sending over real SMTP (TCP on 127.0.0.1) to aiosmtpd: the sink, failing servers, TLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from genop.errors import SmtpPermanentError, SmtpTemporaryError
from genop.mail.smtp import SmtpReceipt, SmtpSettings, send_message
from genop.mail.sink import MailSink, SinkController, start_sink

SENDER = "genop@taarnby.dk"
RECIPIENT = "rehab@kk.dk"


def _mail(message_id: str, body: str = "MIAGCSqGSIb3DQEHA6CAMIACAQAx") -> bytes:
    lines = [
        f"Message-ID: {message_id}",
        f"From: {SENDER}",
        f"To: {RECIPIENT}",
        "Subject: Genoptraeningsplan GEN-2026-000001",
        "MIME-Version: 1.0",
        'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        "Content-Transfer-Encoding: base64",
        "",
        body,
        ".line starting with a dot survives transparency",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _send(raw: bytes, message_id: str, settings: SmtpSettings) -> SmtpReceipt:
    return send_message(raw, sender=SENDER, recipients=[RECIPIENT], message_id=message_id,
                        settings=settings)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SinkController]:
    controller = start_sink(tmp_path / "mail")
    yield controller
    controller.stop()


def _settings(controller: SinkController, **overrides: Any) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=controller.port, timeout=5.0, **overrides)


def test_mail_sent_to_the_sink_is_stored_byte_for_byte(sink: SinkController) -> None:
    raw = _mail("<20261103.GEN-2026-000001.order@genop.taarnby.dk>")
    receipt = _send(raw, "<20261103.GEN-2026-000001.order@genop.taarnby.dk>", _settings(sink))
    [stored] = sink.handler.stored()
    assert stored.read_bytes() == raw
    assert receipt.response == f"250 OK stored as {stored.name}"
    assert receipt.message_id == "<20261103.GEN-2026-000001.order@genop.taarnby.dk>"
    assert stored.name.endswith(".eml") and stored.name[8] == "T"


def test_resend_with_same_message_id_is_acknowledged_but_stored_once(sink: SinkController) -> None:
    message_id = "<resend-after-crash@genop.taarnby.dk>"
    first = _send(_mail(message_id), message_id, _settings(sink))
    second = _send(_mail(message_id, body="QUJD"), message_id, _settings(sink))
    [stored] = sink.handler.stored()
    assert first.response.startswith("250 OK stored as")
    assert second.response == f"250 OK duplicate of {message_id} ignored"
    assert stored.read_bytes() == _mail(message_id)


def test_concurrent_resends_of_one_message_id_are_stored_once(sink: SinkController) -> None:
    message_id = "<concurrent@genop.taarnby.dk>"
    with ThreadPoolExecutor(max_workers=6) as pool:
        receipts = list(pool.map(lambda _: _send(_mail(message_id), message_id, _settings(sink)),
                                 range(6)))
    assert len(sink.handler.stored()) == 1
    assert sorted(r.response.split()[2] for r in receipts) == ["duplicate"] * 5 + ["stored"]


def test_duplicate_check_survives_a_restart_of_the_sink(tmp_path: Path) -> None:
    message_id = "<before-restart@genop.taarnby.dk>"
    for _ in range(2):
        controller = start_sink(tmp_path / "mail")
        try:
            receipt = _send(_mail(message_id), message_id, _settings(controller))
        finally:
            controller.stop()
    assert receipt.response == f"250 OK duplicate of {message_id} ignored"
    assert len(MailSink(tmp_path / "mail").stored()) == 1


def test_sink_refuses_a_mail_without_message_id(tmp_path: Path) -> None:
    envelope = Envelope()
    envelope.content = envelope.original_content = b"Subject: no id\r\n\r\nbody\r\n"
    sink = MailSink(tmp_path / "mail")
    reply = asyncio.run(sink.handle_DATA(None, None, envelope))  # type: ignore[arg-type]
    assert reply == "550 5.6.0 Message-ID required"
    assert sink.stored() == []


def test_mail_whose_header_differs_from_the_outbox_message_id_is_not_sent(sink: SinkController) -> None:
    with pytest.raises(SmtpPermanentError) as caught:
        _send(_mail("<other@genop.taarnby.dk>"), "<outbox@genop.taarnby.dk>", _settings(sink))
    assert caught.value.code == "smtp_message_id_mismatch"
    assert sink.handler.stored() == []


def test_nothing_listening_is_a_temporary_error_naming_the_server() -> None:
    port = _free_port()
    with pytest.raises(SmtpTemporaryError) as caught:
        _send(_mail("<a@b>"), "<a@b>", SmtpSettings(host="127.0.0.1", port=port, timeout=5.0))
    assert f"127.0.0.1:{port}" in caught.value.message
    assert "refused" in caught.value.message
    assert caught.value.code == "smtp_temporary"


class _Replies:
    """A receiving server whose DATA replies are scripted, one per delivery attempt."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.calls += 1
        return self.replies.pop(0)


class _HangsUp:
    """A receiving server that drops the connection instead of answering the mail."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert server.transport is not None
        server.transport.abort()
        return "250 never seen"


@pytest.fixture
def scripted() -> Iterator[Any]:
    controllers: list[SinkController] = []

    def start(handler: Any) -> SinkController:
        controller = SinkController(handler, hostname="127.0.0.1", port=0)
        controller.start()
        controllers.append(controller)
        return controller

    yield start
    for controller in controllers:
        controller.stop()


def test_server_hanging_up_instead_of_answering_the_mail_is_temporary(scripted: Any) -> None:
    server = scripted(_HangsUp())
    with pytest.raises(SmtpTemporaryError) as caught:
        _send(_mail("<drop@x>"), "<drop@x>", _settings(server))
    assert f"127.0.0.1:{server.port}" in caught.value.message
    assert "MIAGCSqGSIb3DQEHA6CAMIACAQAx" not in caught.value.message


def _smtp_server_that_dies_during_data(listener: socket.socket) -> None:
    """Speaks SMTP up to the 354, reads the first bytes of the mail and closes."""
    conn, _ = listener.accept()
    with conn, conn.makefile("rwb") as stream:
        stream.write(b"220 fake ESMTP\r\n")
        stream.flush()
        for line in stream:
            verb = line[:4].upper()
            stream.write(b"354 go ahead\r\n" if verb == b"DATA" else b"250 ok\r\n")
            stream.flush()
            if verb == b"DATA":
                stream.read(10)
                return


def test_connection_dropped_in_the_middle_of_the_transfer_is_temporary() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = threading.Thread(target=_smtp_server_that_dies_during_data, args=(listener,))
        server.start()
        port = listener.getsockname()[1]
        with pytest.raises(SmtpTemporaryError) as caught:
            _send(_mail("<mid@x>", body="QUJD" * 50_000), "<mid@x>",
                  SmtpSettings(host="127.0.0.1", port=port, timeout=5.0))
        server.join(5)
    assert f"127.0.0.1:{port}" in caught.value.message
    assert "dropped the connection" in caught.value.message


def test_451_is_temporary_and_the_next_attempt_is_delivered(scripted: Any) -> None:
    handler = _Replies("451 4.3.0 try again later", "250 OK queued as 7F3A")
    server = scripted(handler)
    with pytest.raises(SmtpTemporaryError) as caught:
        _send(_mail("<retry@x>"), "<retry@x>", _settings(server))
    assert "451 4.3.0 try again later" in caught.value.message
    receipt = _send(_mail("<retry@x>"), "<retry@x>", _settings(server))
    assert receipt.response == "250 OK queued as 7F3A"
    assert handler.calls == 2


def test_550_is_permanent(scripted: Any) -> None:
    server = scripted(_Replies("550 5.1.1 mailbox unavailable"))
    with pytest.raises(SmtpPermanentError) as caught:
        _send(_mail("<perm@x>"), "<perm@x>", _settings(server))
    assert caught.value.code == "smtp_permanent"
    assert "550 5.1.1 mailbox unavailable" in caught.value.message
    assert f"127.0.0.1:{server.port}" in caught.value.message


def _certificate(subject: str, public_key: Any, ca_key: Any, ca_name: x509.Name | None,
                 extensions: list[x509.ExtensionType]) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name or name)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1)))
    for extension in extensions:
        critical = isinstance(extension, (x509.BasicConstraints, x509.KeyUsage))
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(ca_key, hashes.SHA256())


@pytest.fixture(scope="module")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 (IP SAN) that it issued."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("genop test CA", ca_key.public_key(), ca_key, None, [
        x509.BasicConstraints(ca=True, path_length=0),
        x509.KeyUsage(False, False, False, False, False, True, True, False, False),
        x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())])
    server = _certificate("127.0.0.1", key.public_key(), ca_key, ca.subject, [
        x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        x509.BasicConstraints(ca=False, path_length=None),
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())])
    folder = tmp_path_factory.mktemp("pki")
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def _server_context(pki: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["cert"], pki["key"])
    return context


@pytest.fixture
def starttls_sink(tmp_path: Path, test_pki: dict[str, Path]) -> Iterator[SinkController]:
    controller = start_sink(tmp_path / "mail", tls_context=_server_context(test_pki),
                            require_starttls=True)
    yield controller
    controller.stop()


def test_starttls_with_the_test_ca_delivers(starttls_sink: SinkController,
                                            test_pki: dict[str, Path]) -> None:
    settings = _settings(starttls_sink, security="starttls", ca_file=test_pki["ca"])
    receipt = _send(_mail("<tls@x>"), "<tls@x>", settings)
    assert receipt.response.startswith("250 OK stored as")
    [stored] = starttls_sink.handler.stored()
    assert stored.read_bytes() == _mail("<tls@x>")


def test_starttls_to_an_unknown_ca_is_refused_not_downgraded(starttls_sink: SinkController) -> None:
    with pytest.raises(SmtpPermanentError) as caught:
        _send(_mail("<tls@x>"), "<tls@x>", _settings(starttls_sink, security="starttls"))
    assert caught.value.code == "smtp_tls_untrusted"
    assert "never turned off" in caught.value.message
    assert f"127.0.0.1:{starttls_sink.port}" in caught.value.message
    assert starttls_sink.handler.stored() == []


def test_plain_smtp_to_a_sink_requiring_starttls_is_permanent(starttls_sink: SinkController) -> None:
    with pytest.raises(SmtpPermanentError) as caught:
        _send(_mail("<plain@x>"), "<plain@x>", _settings(starttls_sink))
    assert "530" in caught.value.message
    assert starttls_sink.handler.stored() == []


def test_implicit_tls_with_the_test_ca_delivers(tmp_path: Path, test_pki: dict[str, Path]) -> None:
    controller = start_sink(tmp_path / "mail", tls_context=_server_context(test_pki),
                            implicit_tls=True)
    try:
        settings = _settings(controller, security="tls", ca_file=test_pki["ca"])
        receipt = _send(_mail("<smtps@x>"), "<smtps@x>", settings)
        with pytest.raises(SmtpPermanentError) as caught:
            _send(_mail("<smtps2@x>"), "<smtps2@x>", _settings(controller, security="tls"))
    finally:
        controller.stop()
    assert receipt.response.startswith("250 OK stored as")
    assert caught.value.code == "smtp_tls_untrusted"
    assert len(controller.handler.stored()) == 1


def test_send_works_when_called_inside_a_running_event_loop(sink: SinkController) -> None:
    async def from_async_code() -> SmtpReceipt:
        return _send(_mail("<loop@x>"), "<loop@x>", _settings(sink))

    receipt = asyncio.run(from_async_code())
    assert receipt.response.startswith("250 OK stored as")
    assert len(sink.handler.stored()) == 1
