"""The escalation rules' pure pieces: cut-off days, norms, training hours and the budget forecast."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from genop.config import load_agreement
from genop.deadlines import add_working_days
from genop.escalation import Kind
from genop.escalation.budget import Costs, bilag3_annual_cost, forecast, months_left
from genop.escalation.rules import last_day_within, norms, overrun_days, start_of, training_hours
from genop.escalation.scan import QUERIES, RULES
from genop.settlement.rules import visit_price

AGREEMENT = load_agreement()


def test_every_kind_has_a_rule_and_a_query():
    assert set(RULES) == set(QUERIES) == set(Kind)


@pytest.mark.parametrize(("as_of", "days", "last"), [
    (date(2026, 11, 10), 2, date(2026, 11, 5)),   # Tue: consent by Thu is late (deadline Mon)
    (date(2026, 11, 9), 2, date(2026, 11, 4)),    # Mon: consent by Wed (deadline Fri) is late
    (date(2026, 11, 10), 1, date(2026, 11, 8)),   # Tue: a weekend day's deadline is Monday
    (date(2026, 12, 28), 1, date(2026, 12, 23)),  # Christmas: 25-27 Dec are no working days
])
def test_the_last_day_whose_working_day_deadline_has_passed(as_of, days, last):
    assert last_day_within(as_of, days) == last
    assert add_working_days(last, days) < as_of <= add_working_days(last + timedelta(days=1), days)


def test_a_day_starts_at_copenhagen_midnight():
    assert start_of(date(2026, 11, 12)).astimezone(UTC) == datetime(2026, 11, 11, 23, 0, tzinfo=UTC)
    assert start_of(date(2026, 7, 1)).astimezone(UTC) == datetime(2026, 6, 30, 22, 0, tzinfo=UTC)


def test_overrun_is_whole_days_rounded_up():
    assert overrun_days(4, Decimal("1.50")) == 42
    assert overrun_days(8, Decimal("1.25")) == 70
    assert overrun_days(3, Decimal("1.10")) == 24  # 23.1 days


def test_training_time_is_individual_hours_plus_group_hours_divided_by_the_group():
    assert training_hours(Decimal(180), Decimal(150)) == Decimal("5.50")
    assert training_hours(Decimal(10), Decimal(0)) == Decimal("0.17")


def test_a_diagnosis_group_without_a_service_level_group_has_no_norm():
    found = norms(AGREEMENT)
    assert "other_replacement" not in found
    stroke = found["stroke"]
    assert (stroke.service_level_group, stroke.sessions) == (5, 18)
    assert stroke.hours == AGREEMENT.service_levels[5].training_hours_per_patient


def test_a_visit_is_priced_at_the_tariff_of_its_day_by_its_sks_prefix():
    assert visit_price(AGREEMENT.tariffs, date(2026, 3, 1), "BLNR1") == Decimal("855.00")
    assert visit_price(AGREEMENT.tariffs, date(2026, 3, 1), "ZZZ") is None


def test_months_left_counts_the_rest_of_this_month_as_a_fraction():
    assert months_left(date(2026, 12, 31)) == 0
    assert months_left(date(2026, 1, 31)) == 11
    assert months_left(date(2026, 2, 14)) == Decimal(10) + Decimal(14) / Decimal(28)


def _costs(by_month: dict[int, str], in_training: str = "0") -> Costs:
    cost = Costs()
    for month, amount in by_month.items():
        cost.by_month[month] = Decimal(amount)
        cost.settled += Decimal(amount)
    cost.in_training = Decimal(in_training)
    return cost


def test_the_forecast_runs_the_last_three_full_months_to_year_end():
    cost = _costs({1: "900000", 4: "10000", 5: "20000", 6: "30000"})
    outlook = forecast(cost, as_of=date(2026, 7, 31), run_rate_months=3, expected_annual=Decimal("999999"))
    assert outlook.method == "run_rate_3_months"
    assert outlook.run_rate == Decimal("20000.00")
    assert outlook.forecast == Decimal("960000.00") + Decimal("20000") * 5


def test_what_is_in_training_is_the_floor_of_what_is_still_to_come():
    cost = _costs({10: "1000", 11: "1000"}, in_training="50000")
    outlook = forecast(cost, as_of=date(2026, 12, 1), run_rate_months=3, expected_annual=Decimal(0))
    assert outlook.forecast == Decimal("52000.00")


def test_early_in_the_year_fewer_months_and_in_january_bilag_3_are_the_run_rate():
    cost = _costs({1: "12000"})
    february = forecast(cost, as_of=date(2026, 2, 28), run_rate_months=3, expected_annual=Decimal("120000"))
    assert (february.method, february.run_rate, february.forecast) == ("run_rate_1_months", Decimal("12000.00"),
                                                                       Decimal("132000.00"))
    january = forecast(Costs(), as_of=date(2026, 1, 31), run_rate_months=3, expected_annual=Decimal("120000"))
    assert (january.method, january.run_rate, january.forecast) == ("bilag3_course_mix", Decimal("10000.00"),
                                                                     Decimal("110000.00"))


def test_bilag_3s_course_mix_is_its_expected_visits_at_todays_tariffs():
    table = AGREEMENT.tariffs[0]
    expected = sum((table.groups[t].price * n for g in AGREEMENT.diagnosis_groups.values()
                    for t, n in g.expected_visits.items()), Decimal(0))
    assert bilag3_annual_cost(AGREEMENT, date(2026, 6, 1)) == expected > 0
