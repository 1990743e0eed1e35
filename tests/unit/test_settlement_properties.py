"""Money properties of settlement (agreement §8) for any courses and any effective-dated tariffs.

Expected amounts are computed here independently of genop.settlement.rules: each visit's table is
found from the drawn validity dates and its price read from the drawn prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genop.config import Agreement, TariffTable, load_agreement
from genop.settlement.rules import (
    Course,
    MonthlySettlement,
    VisitRecord,
    aconto_for_month,
    aconto_split,
    reconcile_year,
    regulate,
    settle_month,
)

YEAR = 2027
YEAR_START = date(YEAR, 1, 1)
AGREEMENT = load_agreement()
GROUPS = {key: group.sks_codes for key, group in AGREEMENT.tariffs[0].groups.items()}
MONEY = settings(max_examples=200, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass(frozen=True)
class Tariffs:
    """Drawn tables, plus what the test needs to price a visit by itself."""

    starts: tuple[date, ...]
    prices: tuple[dict[str, Decimal], ...]
    tables: tuple[TariffTable, ...]

    def price(self, day: date, group: str) -> Decimal:
        index = max(i for i, start in enumerate(self.starts) if start <= day)
        return self.prices[index][group]


@st.composite
def tariffs(draw: st.DrawFn) -> Tariffs:
    """1–3 tables: the first in force long before the year, the others from days within it."""
    offsets = draw(st.lists(st.integers(1, 364), min_size=0, max_size=2, unique=True))
    starts = (date(2000, 1, 1), *sorted(YEAR_START + timedelta(days=o) for o in offsets))
    cents = st.integers(0, 5_000_00).map(lambda c: Decimal(c).scaleb(-2))
    prices = tuple(draw(st.fixed_dictionaries({g: cents for g in GROUPS})) for _ in starts)
    ends = (*(start - timedelta(days=1) for start in starts[1:]), None)
    tables = tuple(TariffTable.model_validate({
        "name": f"table {i}", "valid_from": start, "valid_to": end,
        "groups": {g: {"price": price[g], "description": g, "sks_codes": codes} for g, codes in GROUPS.items()},
    }) for i, (start, end, price) in enumerate(zip(starts, ends, prices, strict=True)))
    return Tariffs(starts, prices, tables)


@st.composite
def visit(draw: st.DrawFn) -> tuple[date, str, str]:
    """A visit in the year: its date, its tariff group and a registered code with sub-code digits."""
    group = draw(st.sampled_from(sorted(GROUPS)))
    code = draw(st.sampled_from(GROUPS[group])) + draw(st.text("0123456789", max_size=2))
    return YEAR_START + timedelta(days=draw(st.integers(0, 364))), group, code


@st.composite
def courses(draw: st.DrawFn) -> tuple[list[Course], dict[str, list[tuple[date, str]]]]:
    """Courses completing after their last visit (some spill into the next year), in any order."""
    result: list[Course] = []
    visits_of: dict[str, list[tuple[date, str]]] = {}
    for number in range(draw(st.integers(0, 25))):
        case = f"GEN-{YEAR}-{number:06d}"
        visits = draw(st.lists(visit(), max_size=12))
        last = max((day for day, _, _ in visits), default=YEAR_START + timedelta(days=draw(st.integers(0, 364))))
        completed_on = last + timedelta(days=draw(st.integers(0, 40)))
        payer = draw(st.sampled_from(sorted(AGREEMENT.aconto.split)))
        group = draw(st.sampled_from([None, *sorted(AGREEMENT.diagnosis_groups)]))
        result.append(Course(case, payer, group, completed_on,
                             tuple(VisitRecord(case, day, code) for day, _, code in visits)))
        visits_of[case] = [(day, g) for day, g, _ in visits]
    return draw(st.permutations(result)), visits_of


def priced(visits: list[tuple[date, str]], drawn: Tariffs) -> Decimal:
    return sum((drawn.price(day, group) for day, group in visits), Decimal("0.00"))


def month_label(month: int) -> str:
    return f"{YEAR}-{month:02d}"


def settle_the_year(all_courses: list[Course], agreement: Agreement) -> list[MonthlySettlement]:
    """Settle January to December in turn, each after its month ends, feeding back what was settled."""
    settled: set[str] = set()
    result: list[MonthlySettlement] = []
    for month in range(1, 13):
        invoice_date = date(YEAR + month // 12, month % 12 + 1, 1)
        batch = settle_month(all_courses, agreement, month=month_label(month), invoice_date=invoice_date,
                             already_settled=frozenset(settled))
        settled |= {line.case_number for s in batch for line in s.lines}
        result += batch
    return result


def with_tariffs(drawn: Tariffs) -> Agreement:
    return AGREEMENT.model_copy(update={"tariffs": drawn.tables})


@MONEY
@given(drawn=tariffs(), scenario=courses())
def test_year_of_settlements_equals_the_visits_priced_at_their_tariffs(drawn, scenario):
    all_courses, visits_of = scenario
    settlements = settle_the_year(all_courses, with_tariffs(drawn))
    in_year = [c for c in all_courses if c.completed_on.year == YEAR]
    assert sum((s.total for s in settlements), Decimal(0)) == priced(
        [v for c in in_year for v in visits_of[c.case_number]], drawn)
    for settlement in settlements:
        assert settlement.total == sum((line.amount for line in settlement.lines), Decimal(0))
        for line in settlement.lines:
            assert line.amount == priced(visits_of[line.case_number], drawn)
            assert line.amount.as_tuple().exponent == -2
            assert sum(line.visits.values()) == len(visits_of[line.case_number])


@MONEY
@given(drawn=tariffs(), scenario=courses())
def test_money_is_conserved_between_invoices_aconto_and_refund(drawn, scenario):
    """Per municipality: Σ amount due + Σ a-conto paid − refund == Σ settled."""
    all_courses, visits_of = scenario
    agreement = with_tariffs(drawn)
    settlements = settle_the_year(all_courses, agreement)
    payments = [p for month in range(1, 13) for p in aconto_for_month(agreement, YEAR, month)]
    reconciliations = reconcile_year(YEAR, settlements, payments, agreement)
    assert [r.payer for r in reconciliations] == list(agreement.aconto.split)
    year_total = sum((s.total for s in settlements), Decimal(0))
    for r in reconciliations:
        own = [s for s in settlements if s.payer == r.payer]
        amount_due = sum((s.amount_due for s in own), Decimal(0))
        assert amount_due + r.aconto_paid - r.refund == r.settled
        assert r.settled == priced([v for c in all_courses if c.payer == r.payer and c.completed_on.year == YEAR
                                    for v in visits_of[c.case_number]], drawn)
        assert r.aconto_paid == 12 * aconto_split(agreement)[r.payer]
        assert r.refund == sum((s.carried_to_reconciliation for s in own), Decimal(0)) + \
            aconto_split(agreement)[r.payer] * (12 - len(own))
        assert r.refund >= 0 and all(s.amount_due >= 0 for s in own)
        assert r.readiness_clause == (year_total < agreement.aconto.annual_level)


@MONEY
@given(drawn=tariffs(), scenario=courses())
def test_resettling_a_month_adds_nothing_and_no_course_is_settled_twice(drawn, scenario):
    all_courses, _ = scenario
    agreement = with_tariffs(drawn)
    settlements = settle_the_year(all_courses, agreement)
    cases = [line.case_number for s in settlements for line in s.lines]
    assert len(cases) == len(set(cases))
    for month in range(1, 13):
        first = [s for s in settlements if s.month == month_label(month)]
        again = settle_month(all_courses, agreement, month=month_label(month), invoice_date=date(YEAR + 1, 2, 1),
                             already_settled={line.case_number for s in first for line in s.lines})
        assert again == []


@MONEY
@given(drawn=tariffs(), scenario=courses())
def test_no_course_is_settled_before_it_completes(drawn, scenario):
    all_courses, _ = scenario
    completed_on = {c.case_number: c.completed_on for c in all_courses}
    for settlement in settle_the_year(all_courses, with_tariffs(drawn)):
        for line in settlement.lines:
            assert line.completed_on == completed_on[line.case_number]
            assert f"{line.completed_on:%Y-%m}" == settlement.month
            assert line.completed_on <= settlement.invoice_date


@MONEY
@given(old=tariffs(), new=tariffs(), scenario=courses(), since_offset=st.integers(0, 364))
def test_regulation_differences_bring_the_settled_total_to_the_repriced_total(old, new, scenario, since_offset):
    all_courses, visits_of = scenario
    since = YEAR_START + timedelta(days=since_offset)
    lines = [line for s in settle_the_year(all_courses, with_tariffs(old)) for line in s.lines]
    by_case = {c.case_number: c for c in all_courses}
    settled = [(by_case[line.case_number], line.amount) for line in lines]
    adjustments = [a for items in regulate(settled, AGREEMENT, new_tariffs=new.tables, since=since).values()
                   for a in items]
    regulated = [(c, amount) for c, amount in settled if c.completed_on >= since]
    original = sum((amount for _, amount in regulated), Decimal(0))
    repriced = sum((priced(visits_of[c.case_number], new) for c, _ in regulated), Decimal(0))
    assert original + sum((a.difference for a in adjustments), Decimal(0)) == repriced
    assert all(a.difference != 0 and a.difference == a.repriced - a.original for a in adjustments)
    assert {a.case_number for a in adjustments} <= {c.case_number for c, _ in regulated}
    assert all(a.payer == by_case[a.case_number].payer for a in adjustments)
