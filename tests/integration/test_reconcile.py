"""What reconcile takes up and what it leaves alone (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from genop.clock import now_utc
from genop.consent import ConsentDecision
from genop.forwarding import ORDER, prepare_order
from genop.mail.outbox import LEASE
from genop.reconcile import DeliveryOutcome, cases_stuck_after_consent, deliver_undelivered, undelivered
from genop.store.models import OutboxMessage
from tests.faults.helpers import case_facts, decided_case


def _prepared_order(runtime, tmp_path) -> tuple[str, int]:
    number = decided_case(runtime, tmp_path, ConsentDecision.GIVEN)
    with runtime.store.session() as session:
        row = prepare_order(session, number, agreement=runtime.agreement, settings=runtime.settings,
                            now=now_utc())
        return number, row.id


def test_a_message_composed_moments_ago_is_left_to_the_run_that_composed_it(certified, tmp_path):
    _, outbox_id = _prepared_order(certified, tmp_path)
    with certified.store.session() as session:
        assert undelivered(session, now_utc()) == []
        assert undelivered(session, now_utc() + LEASE + timedelta(seconds=5)) == [outbox_id]


def test_an_order_refused_for_good_while_reconcile_sends_it_marks_the_case_forward_failed(certified, tmp_path):
    number, outbox_id = _prepared_order(certified, tmp_path)
    with certified.store.session() as session:  # a row that cannot be sent (the server would say 5xx)
        session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(raw=None))
    later = now_utc() + LEASE + timedelta(seconds=5)
    outcome = deliver_undelivered(certified.store, certified.settings, outbox_id, lambda: later)
    assert outcome == DeliveryOutcome.FAILED
    state, events, row = case_facts(certified, number, ORDER)
    assert (state, row.status) == ("forward_failed", "failed")
    assert "forward_failed" in events
    with certified.store.session() as session:  # failed rows wait for staff (genop case forward)
        assert undelivered(session, later + timedelta(hours=1)) == []


def test_a_case_idle_after_consent_without_an_order_is_resumed_but_not_one_just_decided(certified, tmp_path):
    number = decided_case(certified, tmp_path, ConsentDecision.GIVEN)
    with certified.store.session() as session:
        assert cases_stuck_after_consent(session, now_utc()).unforwarded == []
        stuck = cases_stuck_after_consent(session, now_utc() + timedelta(minutes=16))
    assert (stuck.unforwarded, stuck.unlettered) == ([number], [])


def test_a_free_choice_letter_composed_but_never_written_is_written_once_by_reconcile(certified, tmp_path):
    from genop.training import FREE_CHOICE_LETTER, prepare_free_choice_letter
    from tests.faults.helpers import AS_OF, reconcile_store

    number = decided_case(certified, tmp_path, ConsentDecision.GIVEN)
    with certified.store.session() as session:  # the daily run died after composing the letter
        assert prepare_free_choice_letter(session, number, agreement=certified.agreement,
                                          settings=certified.settings, as_of=AS_OF + timedelta(days=30),
                                          now=now_utc()) is not None
    later = now_utc() + LEASE + timedelta(seconds=5)
    reconcile_store(certified, certified.settings, later)
    reconcile_store(certified, certified.settings, later + timedelta(minutes=10))
    _, _, row = case_facts(certified, number, FREE_CHOICE_LETTER)
    [letter] = (certified.settings.letters_dir / number).glob("*.html")
    assert row.status == "sent" and letter.read_bytes() == row.raw


def test_a_case_whose_order_is_composed_but_unsent_is_left_to_delivery_not_forwarded_again(certified, tmp_path):
    number, _ = _prepared_order(certified, tmp_path)
    with certified.store.session() as session:  # delivering the composed row is step 2's work
        stuck = cases_stuck_after_consent(session, now_utc() + timedelta(minutes=16))
    assert number not in stuck.unforwarded


def test_a_surprise_while_delivering_one_row_leaves_it_pending_and_reconcile_goes_on(certified, tmp_path,
                                                                                    monkeypatch):
    import genop.reconcile

    number, outbox_id = _prepared_order(certified, tmp_path)

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(genop.reconcile, "deliver", broken)
    later = now_utc() + LEASE + timedelta(seconds=5)
    outcome = deliver_undelivered(certified.store, certified.settings, outbox_id, lambda: later)
    assert outcome == DeliveryOutcome.LEFT_PENDING
    assert "disk on fire" in certified.settings.error_log.read_text(encoding="utf-8")
    state, _, row = case_facts(certified, number, ORDER)
    assert (state, row.status) == ("forwarding", "pending")


def test_a_letter_that_cannot_be_written_is_a_temporary_failure(tmp_path):
    import pytest

    from genop.errors import TemporaryDeliveryError
    from genop.mail.outbox import letter_writer

    (tmp_path / "not-a-folder").write_text("x")
    row = OutboxMessage(key="letter:x", raw=b"letter", document_path=str(tmp_path / "not-a-folder" / "l.html"))
    with pytest.raises(TemporaryDeliveryError):
        letter_writer(tmp_path)(row)
