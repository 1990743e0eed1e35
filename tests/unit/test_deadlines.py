"""Date rules: Danish working days and the 7-day free-choice clock."""

from datetime import date

from genop.deadlines import add_working_days, case_deadlines, first_working_day_of_month, is_working_day


def test_free_choice_starts_seven_days_after_discharge():
    deadlines = case_deadlines(date(2026, 11, 2), date(2026, 11, 9), free_choice_days=7)
    assert deadlines.free_choice_from == date(2026, 11, 9)
    assert deadlines.as_dict() == {"free_choice_from": "2026-11-09", "start_by": "2026-11-09"}


def test_free_choice_clock_runs_over_weekends_and_holidays():
    assert case_deadlines(date(2026, 12, 22), None, 7).free_choice_from == date(2026, 12, 29)


def test_new_years_day_and_weekend_are_not_working_days():
    assert not is_working_day(date(2027, 1, 1))  # Friday, New Year's Day
    assert not is_working_day(date(2027, 1, 2))  # Saturday
    assert is_working_day(date(2027, 1, 4))


def test_first_working_day_after_new_year_skips_holiday_and_weekend():
    assert first_working_day_of_month(2027, 1) == date(2027, 1, 4)


def test_easter_monday_is_not_a_working_day():
    assert not is_working_day(date(2026, 4, 6))
    assert first_working_day_of_month(2026, 4) == date(2026, 4, 1)


def test_adding_working_days_skips_christmas():
    # 24 December is not a public holiday in Denmark; 25 and 26 are (and 27 is a Sunday)
    assert add_working_days(date(2026, 12, 24), 1) == date(2026, 12, 28)
