"""The agreement's term (agreement §12): recorded terms and the earliest end of a notice."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from genop.config import Terms, load_agreement
from genop.term import earliest_end, in_term, latest_notice_day, term_status

ORIGINAL = {"valid_from": "2007-01-01", "valid_to": "2009-12-31", "basis": "agreement §12"}


@pytest.fixture(scope="module")
def terms() -> Terms:
    return load_agreement().terms


def with_periods(terms: Terms, *periods: dict, **changes) -> Terms:
    """The configured terms with other periods (validated as config/agreement.yaml is)."""
    return Terms.model_validate({**terms.model_dump(), "periods": list(periods), **changes})


def test_config_records_the_original_term_2007_to_2009_and_six_months_notice(terms):
    [original] = terms.periods
    assert (original.valid_from, original.valid_to) == (date(2007, 1, 1), date(2009, 12, 31))
    assert terms.termination_notice_months == 6


@pytest.mark.parametrize("day, inside", [
    (date(2006, 12, 31), False), (date(2007, 1, 1), True), (date(2008, 2, 29), True),
    (date(2009, 12, 31), True), (date(2010, 1, 1), False), (date(2026, 12, 2), False),
])
def test_a_day_is_inside_the_original_term_only_from_2007_through_2009(terms, day, inside):
    assert in_term(terms, day) is inside


def test_outside_the_recorded_term_says_when_the_last_one_ended_and_what_to_record(terms):
    status = term_status(terms, date(2026, 12, 2))
    assert not status.in_term and status.last_end == date(2009, 12, 31) and status.next_start is None
    assert status.summary() == (
        "2026-12-02 is outside any recorded term of the agreement (the last recorded term ended "
        "2009-12-31): record the prolongation in config/agreement.yaml, terms.periods (agreement §12)")


def test_prolongations_that_follow_on_run_the_term_until_the_last_of_them(terms):
    prolonged = with_periods(terms, ORIGINAL,
                             {"valid_from": "2010-01-01", "valid_to": "2013-12-31", "basis": "prolonged"},
                             {"valid_from": "2014-01-01", "valid_to": "2017-12-31", "basis": "prolonged"})
    status = term_status(prolonged, date(2008, 5, 1))
    assert status.in_term and status.runs_until == date(2017, 12, 31)
    assert status.summary() == ("2008-05-01 is inside a recorded term of the agreement, until 2017-12-31 "
                                "(agreement §12)")
    assert not in_term(prolonged, date(2018, 1, 1))


def test_an_open_prolongation_runs_until_terminated_and_a_gap_is_outside_the_term(terms):
    gapped = with_periods(terms, ORIGINAL, {"valid_from": "2011-01-01", "valid_to": None, "basis": "prolonged"})
    gap = term_status(gapped, date(2010, 6, 1))
    assert not gap.in_term and (gap.last_end, gap.next_start) == (date(2009, 12, 31), date(2011, 1, 1))
    assert "the next recorded term starts 2011-01-01" in gap.summary()
    assert term_status(gapped, date(2009, 6, 1)).runs_until == date(2009, 12, 31)  # the gap ends the run
    today = term_status(gapped, date(2026, 12, 2))
    assert today.in_term and today.runs_until is None
    assert "until terminated by notice" in today.summary()


@pytest.mark.parametrize("given, end", [
    (date(2027, 1, 1), date(2027, 12, 31)),
    (date(2027, 6, 29), date(2027, 12, 31)),
    (date(2027, 6, 30), date(2027, 12, 31)),   # the last day: 1 July – 31 December are six months
    (date(2027, 7, 1), date(2028, 12, 31)),    # a day later: the next budget year's end
    (date(2027, 12, 31), date(2028, 12, 31)),
    (date(2028, 2, 29), date(2028, 12, 31)),   # leap day
    (date(2028, 6, 30), date(2028, 12, 31)),   # leap year: still 30 June
    (date(2028, 7, 1), date(2029, 12, 31)),
])
def test_six_months_notice_ends_the_agreement_at_the_end_of_a_budget_year(terms, given, end):
    notice = earliest_end(terms, given)
    assert notice.earliest_end == end
    assert notice.latest_notice_day == date(end.year, 6, 30)
    assert notice.given_on <= notice.latest_notice_day


@pytest.mark.parametrize("year, day", [(2028, date(2028, 2, 29)), (2027, date(2027, 2, 28))])
def test_a_ten_month_notice_must_be_given_by_the_last_day_of_february(terms, year, day):
    assert latest_notice_day(year, 10) == day
    ten = with_periods(terms, ORIGINAL, termination_notice_months=10)
    assert earliest_end(ten, day).earliest_end == date(year, 12, 31)
    assert earliest_end(ten, date(year, 3, 1)).earliest_end == date(year + 1, 12, 31)


def test_a_notice_longer_than_a_year_reaches_a_later_budget_year(terms):
    long = with_periods(terms, ORIGINAL, termination_notice_months=18)
    assert earliest_end(long, date(2027, 6, 30)).earliest_end == date(2028, 12, 31)
    assert earliest_end(long, date(2027, 7, 1)).earliest_end == date(2029, 12, 31)


def test_a_notice_in_the_original_term_can_be_overtaken_by_its_expiry(terms):
    """§12: the original term 'udløber uden varsel' at the end of 2009."""
    early = earliest_end(terms, date(2009, 6, 30))
    assert early.earliest_end == date(2009, 12, 31) and not early.term_ends_first
    late = earliest_end(terms, date(2009, 7, 1))
    assert late.earliest_end == date(2010, 12, 31)
    assert late.term.in_term and late.term_ends_first


def test_the_first_period_must_be_the_original_term(terms):
    with pytest.raises(ValidationError, match="must be the original term, 2007-01-01 to 2009-12-31"):
        with_periods(terms, {"valid_from": "2007-01-01", "valid_to": "2010-12-31", "basis": "agreement §12"})


@pytest.mark.parametrize("second", [
    {"valid_from": "2009-12-31", "valid_to": None, "basis": "prolonged"},
    {"valid_from": "2008-01-01", "valid_to": "2008-12-31", "basis": "prolonged"},
])
def test_periods_overlapping_or_out_of_order_are_refused_naming_the_period(terms, second):
    with pytest.raises(ValidationError, match=r"overlaps periods\.0"):
        with_periods(terms, ORIGINAL, second)


def test_only_the_last_period_may_be_open(terms):
    with pytest.raises(ValidationError, match="overlaps periods.1"):
        with_periods(terms, ORIGINAL, {"valid_from": "2010-01-01", "valid_to": None, "basis": "prolonged"},
                     {"valid_from": "2020-01-01", "valid_to": None, "basis": "prolonged"})


def test_an_overlapping_prolongation_in_the_yaml_is_a_config_error_naming_the_key(tmp_path):
    import yaml

    from genop.config import DEFAULT_AGREEMENT_FILE
    from genop.errors import ConfigError

    data = yaml.safe_load(DEFAULT_AGREEMENT_FILE.read_text(encoding="utf-8"))
    data["terms"]["periods"].append({"valid_from": "2009-06-01", "valid_to": None, "basis": "prolonged"})
    path = tmp_path / "agreement.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"agreement\.yaml: terms\.periods\.1\.valid_from: 2009-06-01 overlaps"):
        load_agreement(path)
