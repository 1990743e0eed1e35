"""Which outbox purpose needs what recorded once it is sent (genop.reconcile.AFTER_SENT)."""

from __future__ import annotations

import pytest

from genop.reconcile import AfterSent, UnknownPurpose, after_sent


@pytest.mark.parametrize(("purpose", "expected"), [
    ("order", AfterSent.CASE_FORWARDED),
    ("consent_refused_letter", AfterSent.LETTER_SENT),
    ("free_choice_letter", AfterSent.ROW_IS_THE_RECORD),
    ("transport_booking_1", AfterSent.ROW_IS_THE_RECORD),
    ("transport_cancel_2", AfterSent.ROW_IS_THE_RECORD),
    ("transport_notice_dragor_3", AfterSent.ROW_IS_THE_RECORD),
    ("transport_notice_dragor_cancel_3", AfterSent.ROW_IS_THE_RECORD),
    ("final_status", AfterSent.ROW_IS_THE_RECORD),
    ("final_status_dragor", AfterSent.ROW_IS_THE_RECORD),
    ("cannot_follow_2", AfterSent.ROW_IS_THE_RECORD),
    ("sent_back", AfterSent.ROW_IS_THE_RECORD),
    ("oioubl_settlement", AfterSent.ROW_IS_THE_RECORD),
    ("resend_order", AfterSent.ROW_IS_THE_RECORD),
    ("mediation_call", AfterSent.ROW_IS_THE_RECORD),
    ("risk_notice", AfterSent.ROW_IS_THE_RECORD),
])
def test_every_purpose_genop_sends_says_what_the_store_records_once_sent(purpose, expected):
    assert after_sent(purpose) == expected


@pytest.mark.parametrize("purpose", ["orders", "order_2", "transport", "mystery"])
def test_a_purpose_reconcile_does_not_know_is_refused_not_guessed(purpose):
    with pytest.raises(UnknownPurpose, match="AFTER_SENT"):
        after_sent(purpose)
