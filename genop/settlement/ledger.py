"""Settlement in the case store (agreement §8): the a-conto, the monthly settlement of
completed courses and the January reconciliation (retro-regulation: genop.settlement.regulation).

The rules are :mod:`genop.settlement.rules` (pure); the documents :mod:`genop.settlement.documents`.
Here is what makes them safe to run again (a dispute, a crash, a retry, two workers):

* a-conto: one record per (month, municipality); a month is recorded on or after its first
  Danish working day, and the daily run catches up every month not recorded since the first;
* monthly settlement: a month is settled once (``settled_months``), in order; a course is
  settled once (``settled_courses``) and every visit is invoiced once (``visits.settled_document_id``):
  a course whose completion was recorded after its month was settled goes into the next
  month settled, marked as late, and visits recorded after their course was settled are
  invoiced there as a supplement line — never lost, never twice;
* reconciliation: once per year and municipality, in January or later, after December is settled.

Re-running returns the documents already issued, unchanged.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from genop.config import Agreement
from genop.deadlines import first_working_day_of_month
from genop.settlement.oioubl import danish_amount as kr
from genop.settlement.rules import (
    AcontoPayment,
    Course,
    CourseLine,
    MonthlySettlement,
    ZERO,
    SettlementError,
    VisitRecord,
    aconto_for_month,
    parse_month,
    payment_due,
    reconcile_year,
    settle_month,
)
from genop.settlement.documents import (
    course_line,
    issue,
    lock_settlement,
    month_in_danish,
    single_line,
)
from genop.store.models import (
    AcontoRecord,
    Case,
    CourseAdjustment,
    SettledCourse,
    SettledMonth,
    SettlementDocumentRecord,
    Visit,
    YearReconciliationRecord,
)

_CHUNK = 500


@dataclass(frozen=True)
class Outcome:
    """What a settlement step produced: the documents (new or found) and whether any is new."""

    documents: tuple[SettlementDocumentRecord, ...]
    new: bool


def danish_day(day: date) -> str:
    return f"{day.day}. {month_in_danish(f'{day:%Y-%m}')}"


def _month_after(month: str) -> str:
    year, number = parse_month(month)
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def _month_end(month: str) -> date:
    year, number = parse_month(month)
    return date(year, number, calendar.monthrange(year, number)[1])


# -- a-conto ------------------------------------------------------------------------------


def aconto_months_due(session: Session, as_of: date) -> list[str]:
    """Months whose a-conto is due by ``as_of`` and not recorded: every month from the first
    recorded one on (catch-up after downtime, gaps filled); with none recorded, the current month."""
    recorded = set(session.scalars(select(AcontoRecord.month).distinct()))
    current = f"{as_of:%Y-%m}"
    months: list[str] = []
    month = min(recorded) if recorded else current
    while month <= current:
        year, number = parse_month(month)
        if month not in recorded and first_working_day_of_month(year, number) <= as_of:
            months.append(month)
        month = _month_after(month)
    return months


def record_aconto(session: Session, agreement: Agreement, *, month: str, as_of: date, folder: Path,
                  now: datetime) -> Outcome:
    """Record the month's a-conto per municipality, each with its own document (once)."""
    lock_settlement(session)
    year, number = parse_month(month)
    payments = aconto_for_month(agreement, year, number)
    due_on = payments[0].due_on
    if due_on > as_of:
        raise SettlementError(f"the a-conto for {month} falls due on {due_on.isoformat()} (first working day "
                              f"of the month) and is recorded on or after that day, not on {as_of.isoformat()}")
    documents, new = [], False
    for payment in payments:
        existing = session.scalar(select(AcontoRecord).where(AcontoRecord.month == month,
                                                             AcontoRecord.payer == payment.payer))
        if existing is not None:
            documents.append(existing.document)
            continue
        _refuse_aconto_that_cannot_be_offset(session, month)
        document = issue(
            session, agreement, folder=folder, now=now, key=f"aconto:{month}:{payment.payer}", kind="Invoice",
            purpose="aconto", payer=payment.payer, period=month, issue_date=as_of,
            due_date=max(due_on, as_of), aconto=payment.amount,
            lines=[single_line(f"A conto {month_in_danish(month)} (aftalens §8, omkostningsgaranti)",
                               payment.amount)],
            note=f"A conto for {month_in_danish(month)}, forfalder første hverdag i måneden ({danish_day(due_on)}).")
        session.add(AcontoRecord(month=month, payer=payment.payer, amount=payment.amount, due_on=due_on,
                                 document_id=document.id, recorded_at=now))
        documents.append(document)
        new = True
    return Outcome(tuple(documents), new)


def _refuse_aconto_that_cannot_be_offset(session: Session, month: str) -> None:
    """An a-conto before genop's first a-conto month, for a month already settled, or in a
    reconciled year could never be offset or refunded (or would back-date the catch-up): it is
    refused rather than invoiced."""
    first = session.scalar(select(func.min(AcontoRecord.month)))
    if first is not None and month < first:
        raise SettlementError(f"the a-conto for {month} cannot be recorded: genop's a-conto starts with {first}, "
                              "and an earlier month would make the daily run invoice every month in between")
    last = session.scalar(select(func.max(SettledMonth.month)))
    if last is not None and month <= last:
        raise SettlementError(f"the a-conto for {month} cannot be recorded: genop has settled up to {last}, so it "
                              "could never be offset (genop's settlement starts after that month)")
    if session.scalar(select(YearReconciliationRecord.id).where(YearReconciliationRecord.year == int(month[:4]))):
        raise SettlementError(f"the a-conto for {month} cannot be recorded: {month[:4]} is reconciled already")


# -- monthly settlement -------------------------------------------------------------------


def _documents(session: Session, purpose: str, period: str) -> tuple[SettlementDocumentRecord, ...]:
    return tuple(session.scalars(select(SettlementDocumentRecord).where(
        SettlementDocumentRecord.purpose == purpose, SettlementDocumentRecord.period == period)
        .order_by(SettlementDocumentRecord.number)))


def settlement_day(month: str) -> date:
    """The scheduled settlement of a month runs on the first working day after it."""
    following = _month_end(month) + timedelta(days=1)
    return first_working_day_of_month(following.year, following.month)


def months_to_settle(session: Session, as_of: date) -> list[str]:
    """Months due for settlement by ``as_of`` (from their :func:`settlement_day`) and not settled:
    every month after the last settled one; with none settled yet, from the first a-conto month."""
    first = next_to_settle(session)
    months: list[str] = []
    while first is not None and settlement_day(first) <= as_of:
        months.append(first)
        first = _month_after(first)
    return months


def next_to_settle(session: Session) -> str | None:
    """The month genop settles next: after the last settled one, or the first a-conto month."""
    last = session.scalar(select(func.max(SettledMonth.month)))
    return _month_after(last) if last else session.scalar(select(func.min(AcontoRecord.month)))


def _check_order(session: Session, month: str) -> None:
    expected = next_to_settle(session)
    if expected is None or month == expected:
        return
    if month < expected:
        raise SettlementError(f"{month} comes before {expected}, the next month genop settles: courses completed "
                              f"in {month} are settled in {expected} or later (as late courses)")
    raise SettlementError(f"settle {expected} first: months are settled in order, so that every course is "
                          "settled in the first month after it completed")


@dataclass(frozen=True)
class _Loaded:
    courses: list[Course]
    visit_ids: dict[str, list[int]]


def load_courses(session: Session, cases: Sequence[Case], *, settled_visits: bool) -> _Loaded:
    """The cases as courses with their visits not yet invoiced, or (for regulation) invoiced."""
    visits: dict[int, list[Visit]] = defaultdict(list)
    ids = sorted(case.id for case in cases)
    marked = Visit.settled_document_id.is_not(None) if settled_visits else Visit.settled_document_id.is_(None)
    kept = Visit.removed_by_redo_id.is_(None)  # a visit a dispute's correction removed (and credited)
    for start in range(0, len(ids), _CHUNK):
        for visit in session.scalars(select(Visit).where(Visit.case_id.in_(ids[start:start + _CHUNK]), marked, kept)
                                     .order_by(Visit.visit_date, Visit.id)):
            visits[visit.case_id].append(visit)
    courses = []
    for case in cases:
        if case.payer is None or case.completed_on is None:
            raise SettlementError(f"case {case.case_number} has no paying municipality or completion date "
                                  "and cannot be settled")
        courses.append(Course(case.case_number, case.payer, case.diagnosis_group, case.completed_on,
                              tuple(VisitRecord(case.case_number, v.visit_date, v.sks_code, v.priced_as)
                                    for v in visits[case.id])))
    return _Loaded(courses, {case.case_number: [v.id for v in visits[case.id]] for case in cases})


def _describe(line: CourseLine, month: str, supplement: bool) -> str:
    visits = ", ".join(f"{count} × {group}" for group, count in line.visits.items() if count) or "ingen besøg"
    if supplement:
        return (f"Efterregistrerede besøg i forløb {line.case_number} (afsluttet {danish_day(line.completed_on)}, "
                f"afregnet tidligere): {visits}")
    late = ("" if f"{line.completed_on:%Y-%m}" == month
            else f" (afsluttet {danish_day(line.completed_on)}, efterregistreret)")
    return f"Afsluttet genoptræningsforløb {line.case_number}: {visits}{late}"


def settle(session: Session, agreement: Agreement, *, month: str, invoice_date: date, folder: Path,
           now: datetime) -> Outcome:
    """Settle the courses completed in ``month`` (and late ones before it) once (agreement §8);
    visits recorded after their course was settled are invoiced here as supplements."""
    lock_settlement(session)
    parse_month(month)
    if session.get(SettledMonth, month) is not None:
        return Outcome(_documents(session, "settlement", month), False)
    if invoice_date <= _month_end(month):
        raise SettlementError(f"{month} can be settled from {(_month_end(month) + timedelta(days=1)).isoformat()}"
                              f", when the month is over; the invoice date {invoice_date.isoformat()} is not")
    _check_order(session, month)
    recorded = {row.payer: row.amount for row in session.scalars(
        select(AcontoRecord).where(AcontoRecord.month == month))}
    missing = [payer for payer in agreement.aconto.split if payer not in recorded]
    if missing:
        raise SettlementError(f"the a-conto for {month} is not recorded for {', '.join(missing)}: run "
                              f"`genop aconto --month {month}` first, so the settlement can offset it")
    settled = select(SettledCourse.case_id).where(SettledCourse.supplement.is_(False))
    new = list(session.scalars(select(Case).where(
        Case.completed_on.is_not(None), Case.completed_on <= _month_end(month), Case.id.not_in(settled))))
    unsettled_visit = select(Visit.case_id).where(Visit.settled_document_id.is_(None))
    supplements = list(session.scalars(select(Case).where(Case.id.in_(settled), Case.id.in_(unsettled_visit))))
    loaded = load_courses(session, new + supplements, settled_visits=False)
    results = settle_month(loaded.courses, agreement, month=month, invoice_date=invoice_date,
                           include_earlier=True, aconto=recorded)
    context = _SettlementContext({c.case_number: c.id for c in new + supplements},
                                 {c.case_number for c in supplements}, loaded.visit_ids)
    documents = [_issue_settlement(session, agreement, result, context, folder=folder, now=now) for result in results]
    session.add(SettledMonth(month=month, invoice_date=invoice_date, settled_at=now))
    return Outcome(tuple(documents), True)


@dataclass(frozen=True)
class _SettlementContext:
    case_ids: dict[str, int]
    supplements: set[str]
    visit_ids: dict[str, list[int]]


def _issue_settlement(session: Session, agreement: Agreement, result: MonthlySettlement,
                      context: _SettlementContext, *, folder: Path, now: datetime) -> SettlementDocumentRecord:
    note = (f"Afregning af afsluttede genoptræningsforløb, {month_in_danish(result.month)} (aftalens §8). "
            f"A conto for måneden kr. {kr(result.aconto)}, heraf modregnet kr. {kr(result.prepaid)}; "
            f"ikke anvendt a conto kr. {kr(result.carried_to_reconciliation)} indgår i årsopgørelsen.")
    lines = [course_line(n, line.case_number,
                         _describe(line, result.month, line.case_number in context.supplements), line.amount)
             for n, line in enumerate(result.lines, start=1)]
    document = issue(session, agreement, folder=folder, now=now, key=f"settlement:{result.month}:{result.payer}",
                     kind="Invoice", purpose="settlement", payer=result.payer, period=result.month,
                     issue_date=result.invoice_date, due_date=result.due_date, lines=lines,
                     prepaid=result.prepaid, aconto=result.aconto, carried=result.carried_to_reconciliation,
                     note=note)
    visit_ids: list[int] = []
    for n, line in enumerate(result.lines, start=1):
        session.add(SettledCourse(case_id=context.case_ids[line.case_number], document_id=document.id, line_no=n,
                                  month=result.month, completed_on=line.completed_on, visits=line.visits,
                                  amount=line.amount, supplement=line.case_number in context.supplements))
        visit_ids += context.visit_ids[line.case_number]
    for start in range(0, len(visit_ids), _CHUNK):
        session.execute(update(Visit).where(Visit.id.in_(visit_ids[start:start + _CHUNK]))
                        .values(settled_document_id=document.id))
    return document


# -- January reconciliation ---------------------------------------------------------------


def reconcile(session: Session, agreement: Agreement, *, year: int, as_of: date, folder: Path,
              now: datetime) -> tuple[list[YearReconciliationRecord], Outcome]:
    """The year's a-conto paid vs. used; the unused part refunded by credit note (agreement §8)."""
    lock_settlement(session)
    existing = year_reconciliations(session, year)
    if existing:
        return existing, Outcome(tuple(r.document for r in existing if r.document is not None), False)
    if as_of.year <= year:
        raise SettlementError(f"the reconciliation of {year} is made in January {year + 1} or later, "
                              f"not on {as_of.isoformat()}")
    if session.get(SettledMonth, f"{year}-12") is None:
        raise SettlementError(f"the January reconciliation of {year} needs December {year} settled first "
                              f"(`genop settle --month {year}-12`)")
    results = reconcile_year(year, _settlements_of(session, year), _payments_of(session, year), agreement)
    rows, documents = [], []
    for result in results:
        document = None
        if result.refund > 0:
            document = issue(
                session, agreement, folder=folder, now=now, key=f"refund:{year}:{result.payer}", kind="CreditNote",
                purpose="refund", payer=result.payer, period=str(year), issue_date=as_of,
                due_date=payment_due(agreement, as_of),
                lines=[single_line(f"Tilbagebetaling af ikke anvendt a conto {year} (aftalens §8)", result.refund)],
                corrects=tuple(sorted(row.document.number for row in session.scalars(select(AcontoRecord).where(
                    AcontoRecord.payer == result.payer, AcontoRecord.month.like(f"{year}-%"))))),
                note=(f"Årsopgørelse {year}: a conto betalt kr. {kr(result.aconto_paid)}, modregnet i "
                      f"månedsafregninger kr. {kr(result.prepaid_used)}; forskellen tilbagebetales."))
            documents.append(document)
        row = YearReconciliationRecord(
            year=year, payer=result.payer, aconto_paid=result.aconto_paid, settled=result.settled,
            prepaid_used=result.prepaid_used, refund=result.refund, readiness_clause=result.readiness_clause,
            document_id=document.id if document else None, created_at=now)
        session.add(row)
        rows.append(row)
    session.flush()
    return rows, Outcome(tuple(documents), True)


def year_reconciliations(session: Session, year: int) -> list[YearReconciliationRecord]:
    """The January reconciliation of ``year``, one row per municipality (by party key); empty
    until the year is reconciled."""
    return list(session.scalars(select(YearReconciliationRecord).where(YearReconciliationRecord.year == year)
                                .order_by(YearReconciliationRecord.payer)))


def years_to_reconcile(session: Session, as_of: date) -> list[int]:
    """Years whose December is settled and which are not reconciled yet (January or later)."""
    done = set(session.scalars(select(YearReconciliationRecord.year).distinct()))
    decembers = session.scalars(select(SettledMonth.month).where(SettledMonth.month.like("%-12")))
    return sorted(y for y in (int(m[:4]) for m in decembers) if y not in done and as_of.year > y)


def _settlements_of(session: Session, year: int) -> list[MonthlySettlement]:
    documents = session.scalars(select(SettlementDocumentRecord).where(
        SettlementDocumentRecord.purpose == "settlement", SettlementDocumentRecord.period.like(f"{year}-%")))
    # a dispute's correction (genop.settlement.corrections) changes what the month settled
    corrected = dict(session.execute(
        select(SettledCourse.document_id, func.sum(CourseAdjustment.difference))
        .join(CourseAdjustment, CourseAdjustment.case_id == SettledCourse.case_id)
        .where(SettledCourse.supplement.is_(False), CourseAdjustment.regulation.like("correction:%"))
        .group_by(SettledCourse.document_id)).tuples().all())
    result = []
    for document in documents:
        courses = session.execute(select(SettledCourse, Case).join(Case, SettledCourse.case_id == Case.id)
                                  .where(SettledCourse.document_id == document.id)).all()
        # supplement lines (visits recorded later) are in the total; a course is named once
        lines = tuple(CourseLine(case.case_number, document.payer, case.diagnosis_group, course.completed_on,
                                 course.visits, course.amount) for course, case in courses if not course.supplement)
        result.append(MonthlySettlement(
            month=document.period, payer=document.payer, ean=document.ean, lines=lines,
            total=document.line_total + (corrected.get(document.id) or ZERO), aconto=document.aconto,
            prepaid=document.prepaid,
            amount_due=document.payable, carried_to_reconciliation=document.carried,
            invoice_date=document.issue_date, due_date=document.due_date or document.issue_date))
    return result


def _payments_of(session: Session, year: int) -> list[AcontoPayment]:
    rows = session.scalars(select(AcontoRecord).where(AcontoRecord.month.like(f"{year}-%")))
    return [AcontoPayment(row.month, row.payer, row.document.ean, row.amount, row.due_on) for row in rows]
