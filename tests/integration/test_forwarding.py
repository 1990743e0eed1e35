"""The order through the outbox and a real SMTP sink, without Prefect (SQLite and PostgreSQL):
exactly once under crashes and concurrency, and never without valid certificates."""

from __future__ import annotations

import threading

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from genop.mail.certificates import issue_certificate
from genop.clock import now_utc
from genop.consent import ConsentAnswer, ConsentDecision, ConsentMethod, record_consent
from genop.errors import CertificateError, GenopError
from genop.forwarding import prepare_order
from genop.mail.smtp import SmtpSettings
from genop.mail.sink import MailSink
from genop.mail.outbox import deliver, smtp_sender
from genop.store.models import OutboxMessage
from tests.factories import write_plan

AS_OF = date(2026, 11, 3)


def consented_case(runtime, tmp_path: Path, plan_id: str = "GOP-FWD-1") -> str:
    """A case with consent given: state forwarding."""
    from genop.inbox import stage_copy

    write_plan(tmp_path / plan_id, "plan.json", plan_id=plan_id)
    batch = stage_copy(tmp_path / plan_id, runtime.settings.folders)
    [outcome] = runtime.intake.take_in(sorted(batch.iterdir()), AS_OF)
    answer = ConsentAnswer(ConsentDecision.GIVEN, ConsentMethod.WRITTEN, AS_OF, "Test")
    with runtime.store.session() as session:
        record_consent(session, outcome.case_number, answer, today=AS_OF, now=now_utc())
    return outcome.case_number


def _prepare(runtime, number: str) -> OutboxMessage:
    with runtime.store.session() as session:
        return prepare_order(session, number, agreement=runtime.agreement, settings=runtime.settings,
                             now=now_utc())


def test_order_is_prepared_once_with_a_fixed_message_id(certified, tmp_path):
    number = consented_case(certified, tmp_path)
    first, second = _prepare(certified, number), _prepare(certified, number)
    assert first.id == second.id and first.message_id == second.message_id and first.raw == second.raw
    assert first.subject == f"Bestilling af genoptræning – sag {number}"
    assert b"Karen" not in first.raw and b"010145" not in first.raw


def test_crash_after_the_server_accepted_does_not_send_twice(certified, tmp_path, sink, monkeypatch):
    import genop.mail.outbox as outbox

    number = consented_case(certified, tmp_path)
    row = _prepare(certified, number)
    send = smtp_sender(SmtpSettings(port=sink.port))
    real_mark_sent = outbox._mark_sent

    def crash(*_args, **_kwargs):
        raise KeyboardInterrupt("process killed between the SMTP 250 and the commit")

    monkeypatch.setattr(outbox, "_mark_sent", crash)
    with pytest.raises(KeyboardInterrupt):
        deliver(certified.store, row.id, send)
    monkeypatch.setattr(outbox, "_mark_sent", real_mark_sent)
    assert len(sink.handler.stored()) == 1

    at_once = deliver(certified.store, row.id, send)
    assert at_once.status == "in_progress"  # the crashed worker's lease still holds
    later = deliver(certified.store, row.id, send, now=lambda: now_utc() + timedelta(minutes=3))
    assert later.status == "sent"
    assert "duplicate" in later.response
    assert len(sink.handler.stored()) == 1
    with certified.store.session() as session:
        stored = session.get(OutboxMessage, row.id)
        assert (stored.status, stored.attempts) == ("sent", 2)
    assert deliver(certified.store, row.id, send).status == "already_sent"


class _SlowCountingSink(MailSink):
    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.deliveries = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        self.deliveries += 1
        import asyncio

        await asyncio.sleep(0.5)
        return await super().handle_DATA(server, session, envelope)


def test_two_workers_at_once_send_one_mail(certified, tmp_path):
    from genop.mail.sink import SinkController

    handler = _SlowCountingSink(tmp_path / "slow")
    controller = SinkController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        number = consented_case(certified, tmp_path)
        row = _prepare(certified, number)
        send = smtp_sender(SmtpSettings(port=controller.port))
        results: list[str] = []
        threads = [threading.Thread(target=lambda: results.append(deliver(certified.store, row.id, send).status))
                   for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        controller.stop()
    assert sorted(results) == ["in_progress", "sent"] or sorted(results) == ["already_sent", "sent"]
    assert handler.deliveries == 1


def test_missing_recipient_certificate_stops_the_order(certified, tmp_path):
    number = consented_case(certified, tmp_path)
    (certified.settings.certificates_dir / "copenhagen.crt").unlink()
    with pytest.raises(CertificateError) as error:
        _prepare(certified, number)
    assert error.value.code == "certificate_missing"
    assert "copenhagen" in error.value.message
    with certified.store.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


@pytest.mark.parametrize(("shift", "code"), [(-400, "certificate_expired"), (400, "certificate_not_yet_valid")])
def test_signing_certificate_out_of_validity_stops_the_order(certified, tmp_path, shift, code):
    certs = certified.settings.certificates_dir
    ca_cert = _pem_cert(certs / "ca.crt")
    ca_key = serialization.load_pem_private_key((certs / "ca.key").read_bytes(), None)
    start = datetime.now(UTC) + timedelta(days=shift)
    cert, key = issue_certificate(ca_cert, ca_key, address="FLI.PLLOJ.SF@taarnby.dk",
                                  common_name="tarnby (DEMO)", not_before=start,
                                  not_after=start + timedelta(days=30))
    _write_pair(certs, "tarnby", cert, key)
    number = consented_case(certified, tmp_path)
    with pytest.raises(CertificateError) as error:
        _prepare(certified, number)
    assert error.value.code == code


def test_certificate_without_email_protection_purpose_stops_the_order(certified, tmp_path):
    certs = certified.settings.certificates_dir
    ca_cert = _pem_cert(certs / "ca.crt")
    ca_key = serialization.load_pem_private_key((certs / "ca.key").read_bytes(), None)
    now = datetime.now(UTC)
    cert, key = issue_certificate(ca_cert, ca_key, address="genoptraeningkbh@suf.kk.dk",
                                  common_name="copenhagen (DEMO)", not_before=now - timedelta(days=1),
                                  not_after=now + timedelta(days=30), email_protection=False)
    _write_pair(certs, "copenhagen", cert, key)
    number = consented_case(certified, tmp_path)
    with pytest.raises(CertificateError) as error:
        _prepare(certified, number)
    assert error.value.code == "certificate_wrong_purpose"


def test_order_for_a_case_without_consent_is_refused(certified, tmp_path):
    from genop.inbox import stage_copy

    write_plan(tmp_path / "n", "plan.json", plan_id="GOP-NOCONSENT")
    batch = stage_copy(tmp_path / "n", certified.settings.folders)
    [outcome] = certified.intake.take_in(sorted(batch.iterdir()), AS_OF)
    with pytest.raises(GenopError) as error:
        _prepare(certified, outcome.case_number)
    assert error.value.code == "not_forwardable"


def _pem_cert(path: Path):
    from cryptography import x509

    return x509.load_pem_x509_certificate(path.read_bytes())


def _write_pair(folder: Path, party: str, cert, key) -> None:
    (folder / f"{party}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{party}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))



def test_a_case_without_consent_is_never_forwarded_however_often_it_is_tried(certified, tmp_path):
    from genop.forwarding import mark_forward_failed
    from genop.inbox import stage_copy
    from genop.store.repository import get_case

    write_plan(tmp_path / "n", "plan.json", plan_id="GOP-NEVER")
    batch = stage_copy(tmp_path / "n", certified.settings.folders)
    [outcome] = certified.intake.take_in(sorted(batch.iterdir()), AS_OF)
    for _ in range(2):
        with pytest.raises(GenopError) as error:
            _prepare(certified, outcome.case_number)
        assert error.value.code == "not_forwardable"
        with certified.store.session() as session:
            mark_forward_failed(session, outcome.case_number, "test", now_utc())
    with certified.store.session() as session:
        assert get_case(session, outcome.case_number).state == "awaiting_consent"
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_message_ids_never_repeat_across_case_stores(certified, tmp_path):
    """A reset store numbers cases from 1 again; the receiver must not drop the new order."""
    from genop.runtime import build_runtime
    from genop.settings import Settings

    number = consented_case(certified, tmp_path)
    other = build_runtime(Settings(home=tmp_path / "other", certs_dir=certified.settings.certificates_dir,
                                   database_url=f"sqlite:///{tmp_path / 'other.sqlite'}"))
    assert consented_case(other, tmp_path / "x") == number
    assert _prepare(certified, number).message_id != _prepare(other, number).message_id
