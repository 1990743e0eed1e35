"""Settlement (agreement §8, "Settlement rules"): hand-checked against the seed's figures."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import cycle

import pytest

from genop.config import Agreement, TariffTable, load_agreement
from genop.settlement.rules import (
    AcontoPayment,
    Course,
    MonthlySettlement,
    SettlementError,
    VisitRecord,
    aconto_for_month,
    aconto_split,
    first_overlap,
    payment_due,
    price_course,
    reconcile_year,
    regulate,
    settle_month,
)

TARNBY_EAN = "5798009884381"
DRAGOR_EAN = "5798009933423"
# real registered SKS codes per tariff group, some with a sub-code (BLNR1 is priced as BLNR)
CODES = {"GEN1A": ("BRA", "BLNC2", "BLKZ0", "BTR"), "GEN2A": ("BLNR1", "BTP", "BLNR"), "GEN3A": ("AAF6",)}


@pytest.fixture(scope="module")
def agreement() -> Agreement:
    return load_agreement()


def course(number: int, payer: str, completed_on: date, *visits: tuple[date, str],
           group: str | None = "stroke") -> Course:
    case = f"GEN-2027-{number:06d}"
    return Course(case, payer, group, completed_on, tuple(VisitRecord(case, day, code) for day, code in visits))


def bilag3_courses(group: str, patients: int, visits: dict[str, int], *, first_number: int = 1,
                   year: int = 2027) -> list[Course]:
    """Spread a Bilag 3 row over its patients: visits round-robin, courses over the year's months."""
    patients = max(patients, 1)
    per_course: list[list[tuple[date, str]]] = [[] for _ in range(patients)]
    slot = cycle(range(patients))
    for tariff_group, count in visits.items():
        codes = cycle(CODES[tariff_group])
        for _ in range(count):
            i = next(slot)
            month = i % 12 + 1
            per_course[i].append((date(year, month, len(per_course[i]) % 27 + 1), next(codes)))
    payers = cycle(("tarnby", "tarnby", "tarnby", "dragor"))
    return [course(first_number + i, next(payers), date(year, i % 12 + 1, 28), *v, group=group)
            for i, v in enumerate(per_course)]


def whole_bilag3_year(agreement: Agreement) -> list[Course]:
    courses: list[Course] = []
    for key, group in agreement.diagnosis_groups.items():
        if group.expected_visits:
            courses += bilag3_courses(key, group.expected_patients or 1, group.expected_visits,
                                      first_number=len(courses) + 1)
    return courses


def settle_year(courses: list[Course], agreement: Agreement, year: int = 2027) -> list[MonthlySettlement]:
    settled: set[str] = set()
    result: list[MonthlySettlement] = []
    for month in range(1, 13):
        invoice_date = date(year + month // 12, month % 12 + 1, 1)
        batch = settle_month(courses, agreement, month=f"{year}-{month:02d}", invoice_date=invoice_date,
                             already_settled=settled)
        settled |= {line.case_number for s in batch for line in s.lines}
        result += batch
    return result


def year_of_aconto(agreement: Agreement, year: int = 2027) -> list[AcontoPayment]:
    return [p for month in range(1, 13) for p in aconto_for_month(agreement, year, month)]


def with_tariffs(agreement: Agreement, *tables: TariffTable) -> Agreement:
    return agreement.model_copy(update={"tariffs": tables})


def tables_changing_on(agreement: Agreement, day: date, **prices: str) -> tuple[TariffTable, TariffTable]:
    """The DAGS table closed the day before ``day`` and a copy with new prices from ``day``."""
    dags = agreement.tariffs[0]
    old = dags.model_copy(update={"valid_to": day - timedelta(days=1)})
    groups = {k: g.model_copy(update={"price": Decimal(prices[k])}) if k in prices else g
              for k, g in dags.groups.items()}
    return old, dags.model_copy(update={"name": "cost-based", "valid_from": day, "groups": groups})


# -- pricing ------------------------------------------------------------------------------


def test_bilag3_stroke_year_prices_to_449461(agreement):
    courses = bilag3_courses("stroke", 31, {"GEN1A": 175, "GEN2A": 385, "GEN3A": 6})
    lines = [price_course(c, agreement) for c in courses]
    assert len(lines) == 31
    assert {g: sum(line.visits[g] for line in lines) for g in CODES} == {"GEN1A": 175, "GEN2A": 385, "GEN3A": 6}
    assert sum(line.amount for line in lines) == Decimal("449461.00")


def test_whole_bilag3_year_settles_to_3593541_above_the_aconto_level(agreement):
    settlements = settle_year(whole_bilag3_year(agreement), agreement)
    visits = {g: sum(line.visits[g] for s in settlements for line in s.lines) for g in CODES}
    assert visits == {"GEN1A": 2819, "GEN2A": 2067, "GEN3A": 16}
    total = sum(s.total for s in settlements)
    assert total == Decimal("3593541.00")
    assert total > agreement.aconto.annual_level
    assert all(not r.readiness_clause for r in reconcile_year(2027, settlements, year_of_aconto(agreement),
                                                               agreement))


def test_course_line_counts_every_tariff_group_and_prices_sub_codes_by_their_group(agreement):
    line = price_course(course(1, "tarnby", date(2027, 3, 31), (date(2027, 3, 2), "BLNR1"),
                               (date(2027, 3, 3), "blnr12 ")), agreement)
    assert line.visits == {"GEN1A": 0, "GEN2A": 2, "GEN3A": 0}
    assert str(line.amount) == "1710.00"


def test_lymphoedema_course_is_settled_per_visit_like_any_covered_group(agreement):
    """Bilag 3's "x" gives no session count, not an exclusion: each visit at its DAGS tariff (§8, Bilag 7)."""
    visits = [(date(2027, 3, 2), "BLNC"), (date(2027, 3, 4), "BLNR1"), (date(2027, 3, 9), "BTP"),
              (date(2027, 3, 11), "AAF6")]
    lymph = course(1, "dragor", date(2027, 3, 31), *visits, group="lymphoedema")
    [settlement] = settle_month([lymph], agreement, month="2027-03", invoice_date=date(2027, 4, 1))
    [line] = settlement.lines
    assert (line.case_number, line.diagnosis_group) == ("GEN-2027-000001", "lymphoedema")
    assert line.visits == {"GEN1A": 1, "GEN2A": 2, "GEN3A": 1}
    assert line.amount == Decimal("640.00") + 2 * Decimal("855.00") + Decimal("1381.00") == Decimal("3731.00")
    assert settlement.total == line.amount
    assert price_course(course(2, "dragor", date(2027, 3, 31), *visits[:1], group="lymphoedema"),
                        agreement).amount == Decimal("640.00")


def test_visit_is_priced_at_the_tariff_in_force_on_the_visit_date(agreement):
    tables = tables_changing_on(agreement, date(2027, 1, 1), GEN2A="900.00")
    straddling = course(1, "tarnby", date(2027, 1, 5), (date(2026, 12, 31), "BLNR1"), (date(2027, 1, 1), "BLNR1"))
    assert price_course(straddling, with_tariffs(agreement, *tables)).amount == Decimal("1755.00")
    assert price_course(straddling, agreement, tariffs=tables).amount == Decimal("1755.00")
    assert price_course(straddling, agreement).amount == Decimal("1710.00")


def test_unknown_sks_code_names_case_date_and_code(agreement):
    unknown = course(7, "dragor", date(2027, 2, 10), (date(2027, 2, 3), "BRA"), (date(2027, 2, 4), "ZZX9"))
    with pytest.raises(SettlementError) as error:
        price_course(unknown, agreement)
    assert error.value.code == "settlement_error"
    assert all(part in error.value.message for part in ("GEN-2027-000007", "2027-02-04", "ZZX9"))


def test_visit_without_a_tariff_in_force_is_refused(agreement):
    _, only_new = tables_changing_on(agreement, date(2027, 1, 1), GEN1A="700.00")
    early = course(3, "tarnby", date(2027, 1, 5), (date(2026, 12, 30), "BRA"))
    with pytest.raises(SettlementError, match="no tariff table is in force on 2026-12-30"):
        price_course(early, agreement, tariffs=[only_new])


def test_overlapping_tariff_tables_are_named_earliest_first_in_any_order(agreement):
    old, new = tables_changing_on(agreement, date(2027, 1, 1), GEN1A="700.00")
    assert first_overlap([new, old]) is None
    still_open = old.model_copy(update={"valid_to": None})
    assert first_overlap([new, still_open]) == (1, 0)
    assert first_overlap([still_open, new]) == (0, 1)


def test_invoice_falls_due_30_days_after_its_invoice_date(agreement):
    assert payment_due(agreement, date(2026, 12, 1)) == date(2026, 12, 31)
    assert payment_due(agreement, date(2027, 2, 1)) == date(2027, 3, 3)


# -- a-conto ------------------------------------------------------------------------------


def test_aconto_is_150000_from_tarnby_and_50000_from_dragor_to_their_ean(agreement):
    payments = aconto_for_month(agreement, 2027, 3)
    assert [(p.month, p.payer, p.ean, str(p.amount)) for p in payments] == [
        ("2027-03", "tarnby", TARNBY_EAN, "150000.00"), ("2027-03", "dragor", DRAGOR_EAN, "50000.00")]


@pytest.mark.parametrize(("year", "month", "due_on"), [
    (2027, 1, date(2027, 1, 4)),   # New Year's Day is a Friday, then a weekend
    (2027, 5, date(2027, 5, 3)),   # the month starts on a Saturday
    (2029, 4, date(2029, 4, 3)),   # 1 April is Easter Sunday, 2 April Easter Monday
    (2027, 3, date(2027, 3, 1)),   # a Monday: due the same day
])
def test_aconto_falls_on_the_first_danish_working_day(agreement, year, month, due_on):
    assert {p.due_on for p in aconto_for_month(agreement, year, month)} == {due_on}


def test_aconto_split_rounds_half_up_and_gives_the_remainder_to_the_largest_share(agreement):
    odd = agreement.aconto.model_copy(update={"monthly_total": Decimal("100.01"),
                                              "split": {"tarnby": Decimal("0.75"), "dragor": Decimal("0.25")}})
    split = aconto_split(agreement.model_copy(update={"aconto": odd}))
    # 75.0075 -> 75.01 and 25.0025 -> 25.00 half-up sum to 100.01 already
    assert split == {"tarnby": Decimal("75.01"), "dragor": Decimal("25.00")}
    halves = odd.model_copy(update={"split": {"tarnby": Decimal("0.5"), "dragor": Decimal("0.5")}})
    split = aconto_split(agreement.model_copy(update={"aconto": halves}))
    # 50.005 rounds half-up to 50.01 twice (100.02): the first largest share gives the øre back
    assert split == {"tarnby": Decimal("50.00"), "dragor": Decimal("50.01")}
    assert sum(split.values()) == Decimal("100.01")


# -- monthly settlement -------------------------------------------------------------------


def test_month_above_the_aconto_invoices_the_difference_due_in_30_days(agreement):
    big = course(1, "tarnby", date(2027, 3, 20), *[(date(2027, 3, 1 + i % 19), "BLNR1") for i in range(200)])
    [settlement] = settle_month([big], agreement, month="2027-03", invoice_date=date(2027, 4, 1))
    assert (settlement.payer, settlement.ean) == ("tarnby", TARNBY_EAN)
    assert settlement.total == Decimal("171000.00")
    assert settlement.aconto == settlement.prepaid == Decimal("150000.00")
    assert settlement.amount_due == Decimal("21000.00")
    assert settlement.carried_to_reconciliation == Decimal("0.00")
    assert settlement.due_date == date(2027, 5, 1)


def test_month_below_the_aconto_is_not_due_and_the_surplus_is_carried(agreement):
    small = course(2, "dragor", date(2027, 3, 20), *[(date(2027, 3, 2 + i), "BRA") for i in range(10)])
    settlements = settle_month([small], agreement, month="2027-03", invoice_date=date(2027, 4, 1))
    assert [s.payer for s in settlements] == ["dragor"]  # no document for Tårnby without courses
    [settlement] = settlements
    assert settlement.total == settlement.prepaid == Decimal("6400.00")
    assert str(settlement.amount_due) == "0.00"
    assert settlement.carried_to_reconciliation == Decimal("43600.00")


def test_only_courses_completed_in_the_month_are_settled_sorted_by_case_number(agreement):
    visit = (date(2027, 2, 1), "BRA")
    courses = [course(5, "tarnby", date(2027, 3, 31), visit), course(4, "tarnby", date(2027, 2, 28), visit),
               course(3, "tarnby", date(2027, 4, 1), visit), course(1, "tarnby", date(2027, 3, 1), visit)]
    [march] = settle_month(courses, agreement, month="2027-03", invoice_date=date(2027, 4, 1))
    assert [line.case_number for line in march.lines] == ["GEN-2027-000001", "GEN-2027-000005"]


def test_already_settled_course_is_never_settled_again(agreement):
    visit = (date(2027, 3, 1), "AAF6")
    courses = [course(1, "tarnby", date(2027, 3, 10), visit), course(2, "dragor", date(2027, 3, 10), visit)]
    settlements = settle_month(courses, agreement, month="2027-03", invoice_date=date(2027, 4, 1),
                               already_settled={"GEN-2027-000001"})
    assert [(s.payer, [line.case_number for line in s.lines]) for s in settlements] == [
        ("dragor", ["GEN-2027-000002"])]
    assert settle_month(courses, agreement, month="2027-03", invoice_date=date(2027, 4, 1),
                        already_settled={"GEN-2027-000001", "GEN-2027-000002"}) == []


def test_invoice_dated_before_a_course_completes_is_refused(agreement):
    late = course(9, "tarnby", date(2027, 3, 20), (date(2027, 3, 1), "BRA"))
    with pytest.raises(SettlementError, match="GEN-2027-000009 completes on 2027-03-20"):
        settle_month([late], agreement, month="2027-03", invoice_date=date(2027, 3, 15))


@pytest.mark.parametrize("month", ["2027-13", "2027-3", "March"])
def test_month_must_be_written_yyyy_mm(agreement, month):
    with pytest.raises(SettlementError, match="YYYY-MM"):
        settle_month([], agreement, month=month, invoice_date=date(2027, 4, 1))


# -- January reconciliation ---------------------------------------------------------------


def test_reconciliation_refunds_unused_aconto_and_flags_readiness_below_24_million(agreement):
    small = course(1, "tarnby", date(2027, 6, 30), *[(date(2027, 6, 1), "BLNR1")] * 10)
    settlements = settle_year([small], agreement)
    tarnby, dragor = reconcile_year(2027, settlements, year_of_aconto(agreement), agreement)
    assert (tarnby.payer, tarnby.ean, tarnby.aconto_paid, tarnby.settled) == (
        "tarnby", TARNBY_EAN, Decimal("1800000.00"), Decimal("8550.00"))
    assert tarnby.refund == Decimal("1791450.00")
    assert (dragor.aconto_paid, dragor.settled, dragor.refund) == (
        Decimal("600000.00"), Decimal("0.00"), Decimal("600000.00"))
    assert tarnby.readiness_clause and dragor.readiness_clause


@pytest.mark.parametrize(("tarnby_visits", "below"), [(3000, False), (2999, True)])
def test_readiness_clause_counts_both_municipalities_against_the_annual_level(agreement, tarnby_visits, below):
    # 3,000 + 750 GEN1A visits at 640.00 are exactly DKK 2,400,000.00: not below the level
    day = date(2027, 11, 2)
    courses = [course(1, "tarnby", day, *[(day, "BRA")] * tarnby_visits),
               course(2, "dragor", day, *[(day, "BLNA")] * 750)]
    settlements = settle_year(courses, agreement)
    reconciliations = reconcile_year(2027, settlements, year_of_aconto(agreement), agreement)
    assert [r.readiness_clause for r in reconciliations] == [below, below]
    # November's a-conto is used up in full; the other eleven months are refunded
    assert [r.refund for r in reconciliations] == [Decimal("1650000.00"), Decimal("550000.00")]


def test_reconciliation_refuses_aconto_offset_that_was_never_paid(agreement):
    settlements = settle_year([course(1, "dragor", date(2027, 2, 5), *[(date(2027, 2, 1), "AAF6")] * 5)],
                              agreement)
    with pytest.raises(SettlementError, match="only DKK 0.00 was paid"):
        reconcile_year(2027, settlements, [], agreement)


def test_reconciliation_refuses_a_month_settled_twice(agreement):
    settlements = settle_year([course(1, "dragor", date(2027, 2, 5), (date(2027, 2, 1), "AAF6"))], agreement)
    with pytest.raises(SettlementError, match="appears twice"):
        reconcile_year(2027, settlements * 2, year_of_aconto(agreement), agreement)


# -- retro-regulation ---------------------------------------------------------------------


def test_regulation_back_to_1_january_gives_invoices_credits_and_nothing_for_unchanged(agreement):
    since = date(2027, 1, 1)
    new = tables_changing_on(agreement, since, GEN1A="700.00", GEN2A="800.00")
    courses = [
        course(1, "tarnby", date(2027, 2, 1), *[(date(2027, 1, 10), "BRA")] * 3),     # 3 × +60
        course(2, "dragor", date(2027, 2, 1), (date(2027, 1, 10), "BLNR1")),           # 1 × −55
        course(3, "tarnby", date(2027, 2, 1), (date(2027, 1, 10), "AAF6")),            # unchanged
        course(4, "tarnby", date(2026, 12, 20), (date(2026, 12, 1), "BRA")),           # before `since`
        course(5, "tarnby", date(2027, 1, 8), (date(2026, 12, 29), "BRA"), (date(2027, 1, 4), "BRA")),
    ]
    settled = [(c, price_course(c, agreement).amount) for c in courses]
    adjustments = regulate(settled, agreement, new_tariffs=new, since=since)
    assert {payer: [(a.case_number, a.original, a.repriced, a.difference) for a in items]
            for payer, items in adjustments.items()} == {
        "tarnby": [("GEN-2027-000001", Decimal("1920.00"), Decimal("2100.00"), Decimal("180.00")),
                   ("GEN-2027-000005", Decimal("1280.00"), Decimal("1340.00"), Decimal("60.00"))],
        "dragor": [("GEN-2027-000002", Decimal("855.00"), Decimal("800.00"), Decimal("-55.00"))],
    }


def test_regulation_with_unchanged_tariffs_changes_nothing(agreement):
    settled = [(c, price_course(c, agreement).amount)
               for c in bilag3_courses("stroke", 31, {"GEN1A": 175, "GEN2A": 385, "GEN3A": 6})]
    assert regulate(settled, agreement, new_tariffs=agreement.tariffs, since=date(2027, 1, 1)) == {}


def test_course_recorded_after_its_month_was_settled_goes_into_the_next_month(agreement):
    visit = (date(2027, 2, 10), "BRA")
    late, april = course(4, "tarnby", date(2027, 2, 28), visit), course(5, "tarnby", date(2027, 4, 3), visit)
    on_time = course(6, "tarnby", date(2027, 3, 5), visit)
    [march] = settle_month([late, april, on_time], agreement, month="2027-03", invoice_date=date(2027, 4, 1),
                           include_earlier=True)
    assert [(line.case_number, line.completed_on) for line in march.lines] == [
        ("GEN-2027-000004", date(2027, 2, 28)), ("GEN-2027-000006", date(2027, 3, 5))]


def test_the_aconto_offset_is_what_was_recorded_for_the_month(agreement):
    big = course(1, "tarnby", date(2027, 3, 20), *[(date(2027, 3, 2), "AAF6")] * 100)
    [settlement] = settle_month([big], agreement, month="2027-03", invoice_date=date(2027, 4, 1),
                                aconto={"tarnby": Decimal("100000.00"), "dragor": Decimal("50000.00")})
    assert (settlement.total, settlement.prepaid, settlement.amount_due) == (
        Decimal("138100.00"), Decimal("100000.00"), Decimal("38100.00"))
    [unrecorded] = settle_month([big], agreement, month="2027-03", invoice_date=date(2027, 4, 1), aconto={})
    assert (unrecorded.aconto, unrecorded.prepaid, unrecorded.amount_due) == (
        Decimal("0.00"), Decimal("0.00"), Decimal("138100.00"))


@pytest.mark.parametrize(("visits", "below"), [(625, False), (624, True)])
def test_a_part_year_is_measured_against_the_aconto_paid_in_it(agreement, visits, below):
    """genop took over settlement in November: two months of a-conto (DKK 400,000) is the level."""
    day = date(2027, 11, 2)
    settlements = settle_year([course(1, "tarnby", day, *[(day, "BRA")] * visits)], agreement)
    payments = [p for month in (11, 12) for p in aconto_for_month(agreement, 2027, month)]
    reconciliations = reconcile_year(2027, settlements, payments, agreement)
    assert [r.readiness_clause for r in reconciliations] == [below, below]  # 625 x 640.00 = 400,000.00
