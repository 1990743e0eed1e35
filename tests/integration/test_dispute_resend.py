"""Re-sending a mail for a dispute, through the outbox and a real SMTP sink (SQLite and PostgreSQL):
exactly one more mail, with a new Message-ID that references the original, the same content read
by openssl, the original row untouched, and one mail however often the redo runs."""

from __future__ import annotations

from datetime import date
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from genop.clock import now_utc
from genop.disputes import Action, RedoStatus, SubjectKind
from genop.disputes.records import DisputeError, get_dispute, open_dispute
from genop.disputes.resend import resend
from genop.forwarding import prepare_order
from genop.mail.outbox import deliver, smtp_sender
from genop.mail.smtp import SmtpSettings
from genop.store.models import OutboxMessage
from tests.flows.helpers import openssl_decrypt_and_verify
from tests.integration.test_forwarding import consented_case
from tests.integration.test_training import _complete, _status
from tests.integration.test_transport import consented_with, plan, set_case

DAY = date(2026, 11, 20)
REASON = "Københavns Kommune siger at bestillingen aldrig kom frem"


def _send(runtime, row_ids, sink) -> None:
    send = smtp_sender(SmtpSettings(port=sink.port))
    for row_id in row_ids:
        assert deliver(runtime.store, row_id, send).status == "sent"


def _forwarded(runtime, tmp_path: Path, sink, plan_id: str = "GOP-RS-1") -> tuple[str, int]:
    number = consented_case(runtime, tmp_path, plan_id)
    with runtime.store.session() as session:
        row_id = prepare_order(session, number, agreement=runtime.agreement, settings=runtime.settings,
                               now=now_utc()).id
    _send(runtime, [row_id], sink)
    return number, row_id


def by_message_id(sink) -> dict[str, Path]:
    """The sink's mails by Message-ID (file names order them by the second only)."""
    return {message_from_bytes(path.read_bytes(), policy=policy.default)["Message-ID"]: path
            for path in sink.handler.stored()}


def _dispute(runtime, reference: str, about: str = "order_not_received") -> str:
    with runtime.store.session() as session:
        return open_dispute(session, runtime.agreement, subject=SubjectKind.CASE, reference=reference, about=about,
                            reason=REASON, by="Sagsbehandler A", day=DAY, now=now_utc()).number


def _resend(runtime, number: str, action: Action, **options):  # noqa: ANN202
    with runtime.store.session() as session:
        return resend(session, runtime.agreement, runtime.settings, number, action, by="Sagsbehandler B", day=DAY,
                      now=now_utc(), **options)


def _row(runtime, row_id: int) -> dict:
    with runtime.store.session() as session:
        row = session.get_one(OutboxMessage, row_id)
        return {column.key: getattr(row, column.key) for column in OutboxMessage.__table__.columns}


def test_an_order_resend_is_one_new_mail_that_references_the_original(certified, tmp_path, sink):
    case_number, original_id = _forwarded(certified, tmp_path, sink)
    before = _row(certified, original_id)
    number = _dispute(certified, case_number)

    first = _resend(certified, number, Action.RESEND_ORDER)
    _send(certified, first.outbox_ids, sink)
    again = _resend(certified, number, Action.RESEND_ORDER)
    assert again.outbox_ids == first.outbox_ids and not again.first and first.first
    assert deliver(certified.store, first.outbox_ids[0], smtp_sender(SmtpSettings(port=sink.port))).status \
        == "already_sent"

    mails = by_message_id(sink)
    assert len(mails) == 2
    [produced] = first.produced["outbox"]
    stored = [mails[before["message_id"]], mails[produced["message_id"]]]
    assert produced["key"] == f"{case_number}:order:resend-order:{number}"
    assert produced["original_message_id"] == before["message_id"] != produced["message_id"]
    assert _row(certified, original_id) == before
    outer = message_from_bytes(stored[1].read_bytes(), policy=policy.default)
    assert outer["Message-ID"] == produced["message_id"]
    assert outer["In-Reply-To"] == outer["References"] == before["message_id"]
    assert number in outer["Subject"] and case_number in outer["Subject"]
    assert REASON.encode() not in stored[1].read_bytes()

    (tmp_path / "first").mkdir()
    resent = openssl_decrypt_and_verify(stored[1], certified.settings.certificates_dir, tmp_path)
    first_mail = openssl_decrypt_and_verify(stored[0], certified.settings.certificates_dir, tmp_path / "first")
    body = resent.get_payload(0).get_payload(decode=True).decode("utf-8")
    assert f"tvist {number}" in body and before["message_id"] in body
    assert body.endswith(first_mail.get_payload(0).get_payload(decode=True).decode("utf-8"))
    assert [p.get_payload(decode=True) for p in resent.get_payload()[1:]] == \
        [p.get_payload(decode=True) for p in first_mail.get_payload()[1:]]

    with certified.store.session() as session:
        dispute = get_dispute(session, number)
        [redo] = dispute.redos
        assert redo.status == RedoStatus.DONE.value and redo.requested_by == "Sagsbehandler B"
        assert redo.produced == first.produced
        assert [e.change for e in dispute.events] == ["opened", "redo"]


def test_nothing_to_resend_and_another_case_are_refused_in_one_line(certified, tmp_path, sink):
    waiting = consented_case(certified, tmp_path, "GOP-RS-2")
    other, _ = _forwarded(certified, tmp_path, sink, "GOP-RS-3")
    number = _dispute(certified, waiting)
    with pytest.raises(DisputeError, match=f"no order was ever sent for case {waiting}") as error:
        _resend(certified, number, Action.RESEND_ORDER)
    assert error.value.code == "nothing_to_resend"
    with pytest.raises(DisputeError, match=f"is about case {waiting}, not {other}"):
        _resend(certified, number, Action.RESEND_ORDER, case_number=other)
    with pytest.raises(DisputeError, match="no final status was sent"):
        _resend(certified, number, Action.RESEND_FINAL_STATUS)
    with pytest.raises(DisputeError, match="no transport is booked"):
        _resend(certified, number, Action.REBOOK_TRANSPORT)
    with pytest.raises(DisputeError, match="is about another case"):
        _resend(certified, number, Action.RESEND_NOTICE, notice=f"{other}:order")
    with certified.store.session() as session:
        assert get_dispute(session, number).redos == []
    assert len(sink.handler.stored()) == 1


def test_final_status_is_resent_to_tarnby_and_dragor_once(certified, tmp_path, sink):
    case_number = consented_with(certified, tmp_path, "GOP-RS-DR", citizen__municipality_code="155")
    set_case(certified, case_number)
    _send(certified, _complete(certified, case_number, _status(case_number)).outbox_ids, sink)
    number = _dispute(certified, case_number, about="completion_disputed")
    first = _resend(certified, number, Action.RESEND_FINAL_STATUS)
    _send(certified, first.outbox_ids, sink)
    assert _resend(certified, number, Action.RESEND_FINAL_STATUS).outbox_ids == first.outbox_ids
    assert [entry["resends"] for entry in first.produced["outbox"]] == [
        f"{case_number}:final_status", f"{case_number}:final_status_dragor"]
    mails = by_message_id(sink)
    assert len(mails) == 4
    for entry in first.produced["outbox"]:
        resent = message_from_bytes(mails[entry["message_id"]].read_bytes(), policy=policy.default)
        assert resent["References"] == entry["original_message_id"] in mails


def test_transport_is_rebooked_and_a_notice_resent_by_its_key(certified, tmp_path, sink):
    case_number = consented_case(certified, tmp_path, "GOP-RS-TR")
    set_case(certified, case_number)
    booked = plan(certified, case_number)
    _send(certified, [row.id for row in booked], sink)
    number = _dispute(certified, case_number, about="transport")
    rebooked = _resend(certified, number, Action.REBOOK_TRANSPORT)
    assert [e["resends"] for e in rebooked.produced["outbox"]] == [f"{case_number}:transport_booking_1"]
    notice = _resend(certified, number, Action.RESEND_NOTICE, notice=f"{case_number}:transport_booking_1")
    assert notice.outbox_ids != rebooked.outbox_ids  # its own redo (target: the mail's key), its own key
    _send(certified, rebooked.outbox_ids + notice.outbox_ids, sink)
    assert _resend(certified, number, Action.RESEND_NOTICE,
                   notice=f"{case_number}:transport_booking_1").outbox_ids == notice.outbox_ids
    assert len(sink.handler.stored()) == len(booked) + 2


def test_a_dispute_about_a_month_resends_for_the_case_it_is_given(certified, tmp_path, sink):
    from genop.store.models import SettledMonth

    case_number, _ = _forwarded(certified, tmp_path, sink, "GOP-RS-M")
    with certified.store.session() as session:
        session.add(SettledMonth(month="2026-10", invoice_date=date(2026, 11, 2), settled_at=now_utc()))
    with certified.store.session() as session:
        number = open_dispute(session, certified.agreement, subject=SubjectKind.MONTH, reference="2026-10",
                              about="visits_disputed", reason=REASON, by="A", day=DAY, now=now_utc()).number
    with pytest.raises(DisputeError, match=f"{number} is about month 2026-10: say which case") as error:
        _resend(certified, number, Action.RESEND_ORDER)
    assert error.value.code == "case_missing"
    resent = _resend(certified, number, Action.RESEND_ORDER, case_number=case_number.lower())
    assert resent.case_number == case_number and len(resent.outbox_ids) == 1
