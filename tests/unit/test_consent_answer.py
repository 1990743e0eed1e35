"""A consent answer the domain accepts is one the consent form (and the store) can hold."""

from __future__ import annotations

from datetime import date

import pytest

from genop.consent import RECORDED_BY_MAX, ConsentAnswer, ConsentDecision, ConsentError, ConsentMethod, validate_answer


def _answer(recorded_by: str) -> ConsentAnswer:
    return ConsentAnswer(ConsentDecision.GIVEN, ConsentMethod.WRITTEN, date(2026, 11, 3), recorded_by)


def test_a_recorder_name_longer_than_the_form_allows_is_refused_before_anything_is_recorded() -> None:
    with pytest.raises(ConsentError, match="longer than 128"):
        validate_answer(_answer("x" * (RECORDED_BY_MAX + 1)), today=date(2026, 11, 3))
    validate_answer(_answer("x" * RECORDED_BY_MAX), today=date(2026, 11, 3))
