"""A process killed (SIGKILL) at any point between sending a message and recording it leaves
a half-done step; reconcile finishes it from the store's facts, with exactly one message.
SQLite and PostgreSQL, a real SMTP sink, a real kill."""

from __future__ import annotations

import email
from datetime import timedelta

import pytest
from sqlalchemy import select

from genop.clock import now_utc
from genop.consent import ConsentDecision
from genop.forwarding import ORDER, REFUSAL_LETTER
from genop.mail.outbox import LEASE
from genop.store.models import OutboxMessage
from tests.faults.helpers import case_facts, decided_case, reconcile_store, run_killed

POINTS = ["claimed", "accepted", "sent"]


@pytest.mark.parametrize("point", POINTS)
def test_order_killed_before_it_was_recorded_is_forwarded_by_reconcile_with_one_mail(
        certified, sink, tmp_path, point):
    number = decided_case(certified, tmp_path, ConsentDecision.GIVEN)
    settings = certified.settings.model_copy(update={"smtp_port": sink.port})
    run_killed("forward", point, number, GENOP_SMTP_PORT=str(sink.port))
    state, _, row = case_facts(certified, number, ORDER)
    assert state == "forwarding"
    assert len(sink.handler.stored()) == (0 if point == "claimed" else 1)

    reconcile_store(certified, settings, now_utc())  # at once: a claimed row is still its worker's
    state, _, _ = case_facts(certified, number, ORDER)
    assert state == ("forwarded" if point == "sent" else "forwarding")

    later = now_utc() + LEASE + timedelta(seconds=30)
    reconcile_store(certified, settings, later)
    reconcile_store(certified, settings, later + timedelta(minutes=10))
    state, events, row = case_facts(certified, number, ORDER)
    assert state == "forwarded"
    assert events.count("forwarded") == 1
    assert row.status == "sent"
    [mail] = sink.handler.stored()
    assert email.message_from_bytes(mail.read_bytes())["Message-ID"].strip() == row.message_id


@pytest.mark.parametrize("point", POINTS)
def test_refusal_letter_killed_before_it_was_recorded_is_written_once_and_recorded_by_reconcile(
        certified, tmp_path, point):
    number = decided_case(certified, tmp_path, ConsentDecision.REFUSED)
    run_killed("refusal", point, number)
    letters = certified.settings.letters_dir / number
    _, events, row = case_facts(certified, number, REFUSAL_LETTER)
    assert "letter_sent" not in events
    assert len(list(letters.glob("*.html"))) == (0 if point == "claimed" else 1)

    later = now_utc() + LEASE + timedelta(seconds=30)
    reconcile_store(certified, certified.settings, later)
    reconcile_store(certified, certified.settings, later + timedelta(minutes=10))
    state, events, row = case_facts(certified, number, REFUSAL_LETTER)
    assert state == "consent_refused"
    assert events.count("letter_sent") == 1
    assert row.status == "sent"
    [letter] = letters.glob("*.html")
    assert letter.read_bytes() == row.raw


@pytest.mark.parametrize("point", ["claimed", "accepted"])
def test_transport_booking_and_notice_killed_while_sending_are_each_delivered_once_by_reconcile(
        certified, sink, tmp_path, point):
    from tests.integration.test_transport import consented_with, set_case

    number = consented_with(certified, tmp_path, "GOP-KILL-TR", citizen__municipality_code="155")
    set_case(certified, number)  # forwarded, first session known: booking + Dragør Borgerservice notice
    settings = certified.settings.model_copy(update={"smtp_port": sink.port})
    run_killed("transport", point, number, GENOP_SMTP_PORT=str(sink.port))
    assert len(sink.handler.stored()) == (0 if point == "claimed" else 1)

    later = now_utc() + LEASE + timedelta(seconds=30)
    reconcile_store(certified, settings, later)
    reconcile_store(certified, settings, later + timedelta(minutes=10))
    with certified.store.session() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.purpose.like("transport_%"))).all()
        sent = {row.purpose: (row.status, row.message_id) for row in rows}
    assert set(sent) == {"transport_booking_1", "transport_notice_dragor_1"}
    assert {status for status, _ in sent.values()} == {"sent"}
    stored = sorted(email.message_from_bytes(mail.read_bytes())["Message-ID"].strip()
                    for mail in sink.handler.stored())
    assert stored == sorted(message_id for _, message_id in sent.values())
