"""The economy at risk (sub-agreement §7; agreement §8; 004 §8 readiness costs).

One query (a ``UNION ALL`` of four aggregates, grouped by payer and SKS code, never by case)
returns the year's cost parts: settled courses (``settled_courses`` by completion month),
retro-regulations (``course_adjustments`` issued in the year), completed courses not yet
settled (their unsettled visits, priced at the tariff of each visit date, as the monthly
settlement will) and courses in training (their visits priced at the tariffs in force on
the scan day). Prices come from :mod:`genop.settlement.rules` (``visit_price``,
``tariff_table_on``): no money rule lives here.

The forecast to year end, per municipality and in total (its method stated in the
figures as ``method``)::

    forecast = completed this year + max(in training now, run rate x months left)

``run_rate_<R>_months``: the run rate is the mean completed cost (by completion month) of the
last R full months of the year (``forecast_run_rate_months``; fewer while fewer months of the
year are over); in January, with no full month behind, ``bilag3_course_mix``: the run rate is
a twelfth of Bilag 3's expected visits per diagnosis group and tariff group, priced at today's
tariffs, times the municipality's a-conto share (Bilag 3's volumes priced at the 2007 DAGS
tariffs come to about DKK 3.6 million a year, above the a-conto: the agreement's own figures
put January's forecast above the budget).
What is in training now is a floor for what is still to come (its courses complete later).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, Integer, Row, Select, String, cast, extract, func, literal_column, null, \
    select, type_coerce, union_all

from genop.config import Agreement
from genop.escalation import BUDGET_TOTAL, Finding, Kind, Level, budget_subject
from genop.escalation.rules import Rule, ScanContext
from genop.lifecycle import CaseState
from genop.settlement.rules import tariff_table_on, visit_price
from genop.store.models import Case, CourseAdjustment, SettledCourse, SettlementDocumentRecord, Visit

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def _part(name: str) -> Any:
    return literal_column(f"'{name}'", String).label("part")


def cost_parts_query(ctx: ScanContext) -> Select[Any]:
    """The year's cost parts up to ``as_of``; columns part, payer, code, priced_on, month, ore, n."""
    first = date(ctx.as_of.year, 1, 1)
    no_code, no_day, no_month = cast(null(), String), cast(null(), Date), cast(null(), Integer)
    doc = SettlementDocumentRecord
    settled_month = cast(extract("month", SettledCourse.completed_on), Integer)
    settled = (select(_part("settled"), doc.payer.label("payer"), no_code.label("code"), no_day.label("priced_on"),
                      settled_month.label("month"),
                      func.sum(type_coerce(SettledCourse.amount, BigInteger)).label("ore"), func.count().label("n"))
               .join(doc, doc.id == SettledCourse.document_id)
               .where(SettledCourse.completed_on >= first, SettledCourse.completed_on <= ctx.as_of)
               .group_by(doc.payer, settled_month))
    adjusted = (select(_part("adjusted"), doc.payer, no_code, no_day, no_month,
                       func.sum(type_coerce(CourseAdjustment.difference, BigInteger)), func.count())
                .join(doc, doc.id == CourseAdjustment.document_id)
                .where(doc.issue_date >= first, doc.issue_date <= ctx.as_of)
                .group_by(doc.payer))
    payer = ctx.payer
    completed_month = cast(extract("month", Case.completed_on), Integer)
    completed = (select(_part("completed"), payer, Visit.sks_code, Visit.visit_date, completed_month,
                        cast(null(), BigInteger), func.count())
                 .join(Case, Case.id == Visit.case_id)
                 .where(Case.state == CaseState.COMPLETED.value, Case.completed_on >= first,
                        Case.completed_on <= ctx.as_of, Visit.settled_document_id.is_(None),
                        Visit.visit_date <= ctx.as_of)
                 .group_by(payer, Visit.sks_code, Visit.visit_date, completed_month))
    training = (select(_part("training"), payer, Visit.sks_code, no_day, no_month, cast(null(), BigInteger),
                       func.count())
                .join(Case, Case.id == Visit.case_id)
                .where(Case.state == CaseState.IN_TRAINING.value, Visit.settled_document_id.is_(None),
                       Visit.visit_date <= ctx.as_of)
                .group_by(payer, Visit.sks_code))
    return union_all(settled, adjusted, completed, training).subquery("parts").select()


@dataclass
class Costs:
    """One municipality's year so far (DKK): completed cost by completion month, in training now."""

    by_month: dict[int, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    settled: Decimal = ZERO
    adjusted: Decimal = ZERO
    completed_unsettled: Decimal = ZERO
    in_training: Decimal = ZERO
    unpriced_visits: int = 0

    @property
    def completed(self) -> Decimal:
        return self.settled + self.adjusted + self.completed_unsettled

    def add(self, other: Costs) -> None:
        for month, amount in other.by_month.items():
            self.by_month[month] += amount
        self.settled += other.settled
        self.adjusted += other.adjusted
        self.completed_unsettled += other.completed_unsettled
        self.in_training += other.in_training
        self.unpriced_visits += other.unpriced_visits


def costs_from(rows: Sequence[Row[Any]], agreement: Agreement, as_of: date) -> dict[str, Costs]:
    costs: dict[str, Costs] = defaultdict(Costs)
    for row in rows:
        cost = costs[row.payer]
        if row.part in ("settled", "adjusted"):
            amount = Decimal(row.ore or 0) / 100
            if row.part == "settled":
                cost.settled += amount
                cost.by_month[row.month] += amount
            else:
                cost.adjusted += amount
            continue
        price = visit_price(agreement.tariffs, row.priced_on if row.part == "completed" else as_of, row.code)
        if price is None:
            cost.unpriced_visits += row.n
            continue
        if row.part == "completed":
            cost.completed_unsettled += price * row.n
            cost.by_month[row.month] += price * row.n
        else:
            cost.in_training += price * row.n
    return costs


def bilag3_annual_cost(agreement: Agreement, as_of: date) -> Decimal:
    """Bilag 3's expected visits per diagnosis group and tariff group, priced at ``as_of``'s tariffs."""
    table = tariff_table_on(agreement.tariffs, as_of)
    if table is None:
        return ZERO
    return sum((table.groups[tariff].price * count for group in agreement.diagnosis_groups.values()
                for tariff, count in group.expected_visits.items() if tariff in table.groups), ZERO)


def months_left(as_of: date) -> Decimal:
    """The rest of the year after ``as_of``, in months (the rest of this month as a fraction)."""
    days_in_month = calendar.monthrange(as_of.year, as_of.month)[1]
    return Decimal(12 - as_of.month) + Decimal(days_in_month - as_of.day) / Decimal(days_in_month)


@dataclass(frozen=True)
class Forecast:
    method: str
    run_rate: Decimal
    months_left: Decimal
    forecast: Decimal


def forecast(cost: Costs, *, as_of: date, run_rate_months: int, expected_annual: Decimal) -> Forecast:
    """The cost to year end by the method stated (module docstring)."""
    full = as_of.month - 1
    counted = min(full, run_rate_months)
    if counted:
        months = range(full - counted + 1, full + 1)
        run_rate = sum((cost.by_month.get(m, ZERO) for m in months), ZERO) / counted
        method = f"run_rate_{counted}_months"
    else:
        run_rate = expected_annual / 12
        method = "bilag3_course_mix"
    left = months_left(as_of)
    to_come = max(cost.in_training, run_rate * left)
    return Forecast(method, _money(run_rate), left.quantize(CENT), _money(cost.completed + to_come))


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _forecasts(ctx: ScanContext, rows: Sequence[Row[Any]]) -> dict[str, tuple[Costs, Forecast, Decimal]]:
    """Per municipality of the a-conto split and ``BUDGET_TOTAL``: costs, forecast, budget."""
    agreement, as_of = ctx.agreement, ctx.as_of
    by_payer = costs_from(rows, agreement, as_of)
    expected = bilag3_annual_cost(agreement, as_of)
    months = ctx.thresholds.forecast_run_rate_months
    result: dict[str, tuple[Costs, Forecast, Decimal]] = {}
    total = Costs()
    for municipality, share in agreement.aconto.split.items():
        cost = by_payer.get(municipality, Costs())
        total.add(cost)
        result[municipality] = (cost, forecast(cost, as_of=as_of, run_rate_months=months,
                                               expected_annual=expected * share),
                                agreement.annual_budget(municipality, as_of))
    result[BUDGET_TOTAL] = (total, forecast(total, as_of=as_of, run_rate_months=months, expected_annual=expected),
                            agreement.aconto.annual_level)
    return result


def _figures(as_of: date, cost: Costs, outlook: Forecast, budget: Decimal, **extra: Any) -> dict[str, str]:
    figures = {"year": str(as_of.year), "method": outlook.method, "settled": _money(cost.settled),
               "adjusted": _money(cost.adjusted), "completed_not_settled": _money(cost.completed_unsettled),
               "in_training": _money(cost.in_training), "year_to_date": _money(cost.completed + cost.in_training),
               "run_rate_month": outlook.run_rate, "months_left": outlook.months_left,
               "forecast": outlook.forecast, "budget": _money(budget), "unpriced_visits": cost.unpriced_visits,
               **extra}
    return {name: str(value) for name, value in figures.items()}


def budget_forecast_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    share = ctx.thresholds.budget_warning_share
    found = []
    for municipality, (cost, outlook, budget) in _forecasts(ctx, rows).items():
        warning_at = _money(budget * share)
        if outlook.forecast <= warning_at:
            continue
        level = Level.BREACH if outlook.forecast > budget else Level.WARNING
        reason = (f"The {ctx.as_of.year} cost is forecast at DKK {outlook.forecast} ({outlook.method}), "
                  f"{'above' if level == Level.BREACH else 'near'} the budget of DKK {_money(budget)}.")
        found.append(Finding(Kind.BUDGET_FORECAST, budget_subject(municipality), municipality, level, ctx.as_of,
                             reason, _figures(ctx.as_of, cost, outlook, budget, warning_at=warning_at)))
    return found


def readiness_clause_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    """004 §8: orders below the a-conto level let Copenhagen charge its readiness costs; for the
    whole a-conto (both municipalities), from ``readiness_from_month`` on."""
    t = ctx.thresholds
    if ctx.as_of.month < t.readiness_from_month:
        return []
    cost, outlook, level = _forecasts(ctx, rows)[BUDGET_TOTAL]
    floor = _money(level * t.readiness_warning_share)
    if outlook.forecast >= floor:
        return []
    reason = (f"Orders for {ctx.as_of.year} are forecast at DKK {outlook.forecast} ({outlook.method}), below "
              f"DKK {floor} of the a-conto level: Copenhagen may charge readiness costs (004 §8).")
    return [Finding(Kind.READINESS_CLAUSE, budget_subject(BUDGET_TOTAL), BUDGET_TOTAL, Level.WARNING, ctx.as_of,
                    reason, _figures(ctx.as_of, cost, outlook, level, readiness_floor=floor))]


BUDGET_RULES: dict[Kind, Rule] = {
    Kind.BUDGET_FORECAST: Rule(cost_parts_query, budget_forecast_findings),
    Kind.READINESS_CLAUSE: Rule(cost_parts_query, readiness_clause_findings),
}
