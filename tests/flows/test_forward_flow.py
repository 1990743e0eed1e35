"""The case-forward flow under SMTP faults: retried when it may help, failed with the reason
when not, re-triggerable, and never a second mail (SQLite and PostgreSQL)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from genop.mail.sink import MailSink, SinkController
from genop.staged import StagedKind, stage_file
from genop.store.repository import get_case
from genop_cli.main import create_demo_certificates
from tests.integration.test_forwarding import consented_case

pytestmark = pytest.mark.usefixtures("prefect_server")


class _Scripted(MailSink):
    """A sink that misbehaves on the first delivery: answers 451, or hangs up mid-DATA."""

    def __init__(self, folder: Path, first: str) -> None:
        super().__init__(folder)
        self.first = first
        self.calls = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        self.calls += 1
        if self.calls == 1 and self.first == "451":
            return "451 4.3.0 mailbox busy, try again later"
        if self.calls == 1 and self.first == "drop":
            server.transport.abort()
            return "421 closing"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def forwarding_env(genop_env, monkeypatch):
    from genop.runtime import current_runtime

    monkeypatch.setenv("GENOP_SMTP_RETRY_DELAYS", "[0, 0]")
    current_runtime.cache_clear()
    runtime = current_runtime()
    create_demo_certificates(runtime)
    return monkeypatch


def _use_port(monkeypatch, port: int):
    from genop.runtime import current_runtime

    monkeypatch.setenv("GENOP_SMTP_PORT", str(port))
    current_runtime.cache_clear()
    return current_runtime()


@pytest.mark.parametrize("fault", ["451", "drop"])
def test_temporary_smtp_fault_is_retried_and_the_order_sent_once(forwarding_env, tmp_path, fault):
    from flows.forward import case_forward

    handler = _Scripted(tmp_path / "mail", fault)
    controller = SinkController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        runtime = _use_port(forwarding_env, controller.port)
        number = consented_case(runtime, tmp_path)
        assert case_forward(case_number=number) == "forwarded"
    finally:
        controller.stop()
    assert handler.calls == 2
    assert len(handler.stored()) == 1
    with runtime.store.session() as session:
        assert get_case(session, number).state == "forwarded"
    assert [(o.status, o.attempts) for o in _outbox(runtime)] == [("sent", 2)]


def test_refused_connection_ends_forward_failed_and_a_retrigger_sends_once(forwarding_env, tmp_path):
    from flows.forward import case_forward

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    runtime = _use_port(forwarding_env, dead_port)
    number = consented_case(runtime, tmp_path)
    assert case_forward(case_number=number) == "forward_failed"
    with runtime.store.session() as session:
        case = get_case(session, number, with_events=True)
        assert case.state == "forward_failed"
        assert f"127.0.0.1:{dead_port}" in case.events[-1].detail
        assert "smtp_temporary" in case.events[-1].detail
    assert [(o.status, o.attempts) for o in _outbox(runtime)] == [("pending", 3)]

    handler = MailSink(tmp_path / "mail")
    controller = SinkController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        runtime = _use_port(forwarding_env, controller.port)
        assert case_forward(case_number=number) == "forwarded"
        assert case_forward(case_number=number) == "forwarded"
    finally:
        controller.stop()
    assert len(handler.stored()) == 1
    assert [(o.status, o.attempts) for o in _outbox(runtime)] == [("sent", 4)]


def test_missing_certificate_fails_the_forward_with_the_reason_and_sends_nothing(forwarding_env, tmp_path):
    from flows.forward import case_forward
    from genop.runtime import current_runtime

    runtime = current_runtime()
    (runtime.settings.certificates_dir / "copenhagen.crt").unlink()
    number = consented_case(runtime, tmp_path)
    assert case_forward(case_number=number) == "forward_failed"
    with runtime.store.session() as session:
        detail = get_case(session, number, with_events=True).events[-1].detail
    assert "certificate_missing" in detail and "copenhagen.crt" in detail
    assert "Nothing was sent unencrypted" in detail
    assert _outbox(runtime) == []


def _outbox(runtime):
    from genop.mail.outbox import list_messages

    with runtime.store.session() as session:
        rows = list(list_messages(session))
        for row in rows:
            session.expunge(row)
    return rows


def test_offers_import_records_offers_books_transport_and_reports_bad_lines(forwarding_env, tmp_path):
    from datetime import date

    from flows.training import offers_import

    handler = MailSink(tmp_path / "mail")
    controller = SinkController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        runtime = _use_port(forwarding_env, controller.port)
        number = consented_case(runtime, tmp_path)
        with runtime.store.session() as session:
            case = get_case(session, number)
            case.state, case.forwarded_on = "forwarded", date(2026, 11, 4)
        offers = tmp_path / "offers.csv"
        offers.write_text("case_number,first_session\n"
                          f"{number},2026-11-06T10:00\n"
                          "GEN-2026-999999,2026-11-06\n"
                          f"{number},next week\n", encoding="utf-8")
        staged = stage_file(offers.read_bytes(), offers.name, StagedKind.OFFERS, runtime.settings.home_dir)
        result = offers_import(staged=staged.reference, as_of=date(2026, 11, 5))
        again = offers_import(staged=staged.reference, as_of=date(2026, 11, 5))
    finally:
        controller.stop()
    statuses = [(o["case_number"], o["status"]) for o in result["offers"]]
    assert statuses == [(number, "recorded"), ("GEN-2026-999999", "rejected")]
    assert "no case" in result["offers"][1]["reason"]
    assert result["rejected_lines"][0]["line"] == 4 and "next week" in result["rejected_lines"][0]["reason"]
    assert [o["status"] for o in again["offers"]][:1] == ["unchanged"]
    assert len(handler.stored()) == 1  # the transport booking, once
    with runtime.store.session() as session:
        case = get_case(session, number)
        assert case.first_session_at is not None
