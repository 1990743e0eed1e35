"""The money rules of the agreement ("Settlement rules", agreement §8), as pure functions.

Settlement is on **completed** courses (*afsluttede forløb*) only: every visit is priced
at the tariff in force on the visit date (tariffs are effective-dated), the month's
a-conto prepayment is offset against the month's total, excess a-conto is refunded in
January, and a tariff set with a past validity re-prices settled courses (regulation).
Every figure comes from the :class:`~genop.config.Agreement`; none lives here.

Rounding rule (the only one): money is ``Decimal`` in DKK, exact to the øre. Prices are
whole øre; a line amount is quantity × unit price, exact, and totals are exact sums. The
only division is the a-conto split: each share rounds half-up to the øre and the
rounding remainder goes to the largest share, so the parts always sum to the total.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from genop.config import Agreement, TariffTable, longest_prefix
from genop.deadlines import first_working_day_of_month
from genop.errors import GenopError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class SettlementError(GenopError):
    """A course or a settlement cannot be priced or offset as the agreement says."""

    code = "settlement_error"


@dataclass(frozen=True)
class VisitRecord:
    case_number: str
    visit_date: date
    sks_code: str
    priced_as: str | None = None
    """A tariff group a dispute's correction set (genop.settlement.corrections): priced at it, not by SKS code."""


@dataclass(frozen=True)
class Course:
    """A completed course; ``payer`` is the municipality's party key (tarnby | dragor)."""

    case_number: str
    payer: str
    diagnosis_group: str | None
    completed_on: date
    visits: tuple[VisitRecord, ...]


@dataclass(frozen=True)
class CourseLine:
    """One invoice line: a course priced; ``visits`` counts every tariff group (0 when none)."""

    case_number: str
    payer: str
    diagnosis_group: str | None
    completed_on: date
    visits: dict[str, int]
    amount: Decimal


@dataclass(frozen=True)
class AcontoPayment:
    """One municipality's monthly a-conto prepayment, due the first Danish working day."""

    month: str
    payer: str
    ean: str
    amount: Decimal
    due_on: date


@dataclass(frozen=True)
class MonthlySettlement:
    """One municipality's settlement of a month: ``prepaid`` is the a-conto offset."""

    month: str
    payer: str
    ean: str
    lines: tuple[CourseLine, ...]
    total: Decimal
    aconto: Decimal
    prepaid: Decimal
    amount_due: Decimal
    carried_to_reconciliation: Decimal
    invoice_date: date
    due_date: date


@dataclass(frozen=True)
class YearReconciliation:
    """The January reconciliation of one municipality's financial year."""

    year: int
    payer: str
    ean: str
    aconto_paid: Decimal
    settled: Decimal
    prepaid_used: Decimal
    refund: Decimal
    readiness_clause: bool
    """Both municipalities' orders fell below the annual a-conto level: Copenhagen may charge
    its documented readiness costs (cost guarantee, *omkostningsgaranti*)."""


@dataclass(frozen=True)
class Adjustment:
    """Regulation of one settled course: positive → an invoice, negative → a credit note."""

    case_number: str
    payer: str
    original: Decimal
    repriced: Decimal
    difference: Decimal


# -- pricing ------------------------------------------------------------------------------


def price_course(course: Course, agreement: Agreement, *,
                 tariffs: Sequence[TariffTable] | None = None) -> CourseLine:
    """Price every visit at the tariff in force on its visit date (agreement §8).

    ``tariffs`` replaces the agreement's tables as a whole (retro-regulation); they must
    cover every visit date.
    """
    tables = tuple(tariffs) if tariffs is not None else agreement.tariffs
    _check_tables(tables)
    visits = dict.fromkeys(sorted({g for table in tables for g in table.groups}), 0)
    amount = ZERO
    for visit in course.visits:
        table = tariff_table_on(tables, visit.visit_date)
        if table is None:
            raise SettlementError(f"case {course.case_number}: no tariff table is in force on "
                                  f"{visit.visit_date.isoformat()}")
        group = priced_group(table, visit.sks_code, visit.priced_as)
        if group is None:
            raise SettlementError(
                f"case {course.case_number}: the visit on {visit.visit_date.isoformat()} has SKS code "
                f"{visit.sks_code!r}, which no tariff group of {table.name!r} prices")
        visits[group] += 1
        amount += _whole_ore(table.groups[group].price, table.name, group)
    return CourseLine(course.case_number, course.payer, course.diagnosis_group, course.completed_on,
                      visits, amount)


def priced_group(table: TariffTable, sks_code: str, priced_as: str | None = None) -> str | None:
    """The tariff group a visit is priced at in ``table``: the one a dispute's correction set
    (``priced_as``) where the table has it, else the group of its SKS code (None: none prices it)."""
    return priced_as if priced_as in table.groups else tariff_group(table, sks_code)


def _check_tables(tables: Sequence[TariffTable]) -> None:
    if not tables:
        raise SettlementError("no tariff table given: at least one is needed to price a visit")
    overlap = first_overlap(tables)
    if overlap is not None:
        before, after = (tables[i] for i in overlap)
        raise SettlementError(f"tariff tables {before.name!r} and {after.name!r} overlap: "
                              "only one tariff may be in force on a day")


def first_overlap(tables: Sequence[TariffTable]) -> tuple[int, int] | None:
    """Agreement §8: one tariff in force on any day. The first two tables (their indexes, the
    earlier-starting first) whose validity periods overlap, in order of ``valid_from``."""
    order = sorted(range(len(tables)), key=lambda i: tables[i].valid_from)
    for before, after in itertools.pairwise(order):
        valid_to = tables[before].valid_to
        if valid_to is None or valid_to >= tables[after].valid_from:
            return before, after
    return None


def tariff_table_on(tables: Sequence[TariffTable], day: date) -> TariffTable | None:
    """The tariff table in force on ``day`` (tariffs are effective-dated, agreement §8)."""
    return next((t for t in tables if t.covers(day)), None)


def tariff_group(table: TariffTable, sks_code: str) -> str | None:
    """SKS codes are hierarchical: BLNR1 is priced as BLNR (the longest listed prefix)."""
    return longest_prefix(sks_code.strip().upper(), table.group_by_code, shortest=1)


def visit_price(tables: Sequence[TariffTable], day: date, sks_code: str) -> Decimal | None:
    """A visit's price: the tariff in force on ``day`` for its SKS code (agreement §8); None when no
    table is in force or none of its groups prices the code (``price_course`` says which)."""
    table = tariff_table_on(tables, day)
    group = tariff_group(table, sks_code) if table is not None else None
    return table.groups[group].price if table is not None and group is not None else None


def _whole_ore(price: Decimal, table: str, group: str) -> Decimal:
    exact = price.quantize(CENT)
    if exact != price:
        raise SettlementError(f"tariff {table!r} prices {group} at {price}, which is not whole øre")
    return exact


# -- a-conto ------------------------------------------------------------------------------


def aconto_split(agreement: Agreement) -> dict[str, Decimal]:
    """Each municipality's monthly a-conto: shares half-up to the øre, remainder to the largest."""
    total = agreement.aconto.monthly_total.quantize(CENT)
    split = agreement.aconto.split
    parts = {payer: (total * share).quantize(CENT, rounding=ROUND_HALF_UP) for payer, share in split.items()}
    largest = max(split, key=lambda payer: split[payer])
    parts[largest] += total - sum(parts.values(), ZERO)
    return parts


def aconto_for_month(agreement: Agreement, year: int, month: int) -> list[AcontoPayment]:
    """The month's prepayments (agreement §8: "første hverdag i hver måned")."""
    label = f"{year:04d}-{month:02d}"
    parse_month(label)
    due_on = first_working_day_of_month(year, month)
    return [AcontoPayment(label, payer, _ean(agreement, payer), amount, due_on)
            for payer, amount in aconto_split(agreement).items()]


def _ean(agreement: Agreement, payer: str) -> str:
    party = agreement.parties.get(payer)
    if party is None or party.kind != "municipality" or party.ean is None:
        raise SettlementError(f"{payer!r} is not a municipality with an EAN number in the agreement "
                              "configuration (parties): it cannot be invoiced")
    return party.ean


def parse_month(month: str) -> tuple[int, int]:
    found = _MONTH.match(month)
    if found is None or not 1 <= int(found[2]) <= 12:
        raise SettlementError(f"{month!r} is not a month in the form YYYY-MM (e.g. 2027-01)")
    return int(found[1]), int(found[2])


# -- monthly settlement -------------------------------------------------------------------


def settle_month(courses: Iterable[Course], agreement: Agreement, *, month: str, invoice_date: date,
                 already_settled: Collection[str] = (), include_earlier: bool = False,
                 aconto: Mapping[str, Decimal] | None = None) -> list[MonthlySettlement]:
    """Settle the courses completed in ``month``, one settlement per payer with courses.

    A case in ``already_settled`` is never settled again. With ``include_earlier``, a course
    completed before ``month`` and not yet settled (its completion was recorded after its
    own month was closed) is settled now rather than lost. The payer's a-conto for the
    month (``aconto``: what was recorded; default the agreement's split) is offset up to
    the month's total; the unused rest is carried to the January reconciliation. Invoices
    fall due ``payment_term_days`` after the invoice date.
    """
    year, number = parse_month(month)

    def in_scope(course: Course) -> bool:
        key = (course.completed_on.year, course.completed_on.month)
        return key == (year, number) or (include_earlier and key < (year, number))

    completed = [c for c in courses if in_scope(c) and c.case_number not in already_settled]
    _refuse_duplicates([c.case_number for c in completed], f"completed courses of {month}")
    for course in completed:
        if course.completed_on > invoice_date:
            raise SettlementError(f"case {course.case_number} completes on {course.completed_on.isoformat()}, "
                                  f"after the invoice date {invoice_date.isoformat()}: a course is settled "
                                  "only when completed (agreement §8)")
    by_payer: dict[str, list[CourseLine]] = defaultdict(list)
    for course in sorted(completed, key=lambda c: c.case_number):
        by_payer[course.payer].append(price_course(course, agreement))
    split = aconto_split(agreement) if aconto is None else dict(aconto)
    due_date = payment_due(agreement, invoice_date)
    for payer, priced in by_payer.items():
        if payer not in agreement.aconto.split:
            raise SettlementError(f"case {priced[0].case_number}: payer {payer!r} pays no a-conto under the "
                                  "agreement (aconto.split) and cannot be settled")
    settlements = []
    for payer in (p for p in agreement.aconto.split if p in by_payer):
        lines = tuple(by_payer[payer])
        total = sum((line.amount for line in lines), ZERO)
        prepaid = min(split.get(payer, ZERO), total)
        settlements.append(MonthlySettlement(
            month=month, payer=payer, ean=_ean(agreement, payer), lines=lines, total=total,
            aconto=split.get(payer, ZERO), prepaid=prepaid, amount_due=total - prepaid,
            carried_to_reconciliation=split.get(payer, ZERO) - prepaid, invoice_date=invoice_date, due_date=due_date))
    return settlements


def payment_due(agreement: Agreement, invoice_date: date) -> date:
    """Agreement §8: an invoice falls due ``payment_term_days`` (30) after its invoice date."""
    return invoice_date + timedelta(days=agreement.deadlines.payment_term_days)


def _refuse_duplicates(keys: Iterable[object], what: str) -> None:
    seen: set[object] = set()
    for key in keys:
        if key in seen:
            raise SettlementError(f"{key} appears twice in the {what}: nothing is settled twice")
        seen.add(key)


# -- January reconciliation ---------------------------------------------------------------


def reconcile_year(year: int, settlements: Iterable[MonthlySettlement], payments: Iterable[AcontoPayment],
                   agreement: Agreement) -> list[YearReconciliation]:
    """A-conto paid vs. used per municipality; the unused part is refunded in January.

    The readiness-cost clause is flagged when both municipalities' settled orders together
    fell below the annual a-conto level (agreement §8, DKK 2.4 million; for a part year, the
    a-conto paid in it).
    """
    in_year = [s for s in settlements if parse_month(s.month)[0] == year]
    paid = [p for p in payments if parse_month(p.month)[0] == year]
    _refuse_duplicates([f"{s.payer} {s.month}" for s in in_year], f"settlements of {year}")
    _refuse_duplicates([f"{p.payer} {p.month}" for p in paid], f"a-conto payments of {year}")
    _refuse_duplicates([line.case_number for s in in_year for line in s.lines], f"settlements of {year}")
    # the a-conto level of the year: DKK 2.4 million, or what was paid in a year genop did not
    # settle from January (a part year is measured against its own a-conto)
    level = min(agreement.aconto.annual_level, sum((p.amount for p in paid), ZERO))
    readiness = sum((s.total for s in in_year), ZERO) < level
    result = []
    for payer in agreement.aconto.split:
        aconto_paid = sum((p.amount for p in paid if p.payer == payer), ZERO)
        used = sum((s.prepaid for s in in_year if s.payer == payer), ZERO)
        if used > aconto_paid:
            raise SettlementError(f"{payer}'s settlements of {year} offset DKK {used} of a-conto, but only "
                                  f"DKK {aconto_paid} was paid: record the missing a-conto payments first")
        result.append(YearReconciliation(
            year=year, payer=payer, ean=_ean(agreement, payer), aconto_paid=aconto_paid,
            settled=sum((s.total for s in in_year if s.payer == payer), ZERO), prepaid_used=used,
            refund=aconto_paid - used, readiness_clause=readiness))
    return result


# -- retro-regulation ---------------------------------------------------------------------


def regulate(settled: Iterable[tuple[Course, Decimal]], agreement: Agreement, *,
             new_tariffs: Sequence[TariffTable], since: date) -> dict[str, list[Adjustment]]:
    """Re-price courses completed on or after ``since`` at ``new_tariffs`` (agreement §8).

    ``new_tariffs`` is the whole effective-dated set to price with (e.g. the old table
    closed the day before ``since`` plus the new one). Only non-zero differences are
    returned, per payer, by case number; the original documents stay as they are.
    """
    pairs = [(course, original) for course, original in settled if course.completed_on >= since]
    _refuse_duplicates([course.case_number for course, _ in pairs], "settled courses to regulate")
    adjustments: dict[str, list[Adjustment]] = defaultdict(list)
    for course, original in sorted(pairs, key=lambda pair: pair[0].case_number):
        repriced = price_course(course, agreement, tariffs=new_tariffs).amount
        if repriced != original:
            adjustments[course.payer].append(
                Adjustment(course.case_number, course.payer, original, repriced, repriced - original))
    return dict(adjustments)
