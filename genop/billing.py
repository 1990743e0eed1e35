"""Settlement in the case store (agreement §8): the a-conto, the monthly settlement of
completed courses, the January reconciliation and retro-regulation.

The rules are :mod:`genop.settlement` (pure); the documents :mod:`genop.settlement_documents`.
Here is what makes them safe to run again (a dispute, a crash, a retry, two workers):

* a-conto: one record per (month, municipality); a month is recorded on or after its
  first Danish working day, and the daily run catches up every month since the last one;
* monthly settlement: a month is settled once (``settled_months``), in order; a course is
  settled once (``settled_courses``); a course whose completion was recorded after its
  month was settled goes into the next month settled, marked as late — never lost;
* reconciliation: once per year and municipality, after December is settled;
* regulation: the difference between the current tariffs and what was invoiced so far
  (original plus earlier adjustments) — a second run finds no difference and issues nothing;
  each run that does find differences is numbered (``regulation:0002:tarnby:CreditNote``).

Re-running returns the documents already issued, unchanged.
"""

from __future__ import annotations

import calendar
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genop.config import Agreement
from genop.deadlines import first_working_day_of_month
from genop.oioubl import danish_amount as kr
from genop.settlement import (
    ZERO,
    AcontoPayment,
    Course,
    CourseLine,
    MonthlySettlement,
    SettlementError,
    VisitRecord,
    aconto_for_month,
    parse_month,
    reconcile_year,
    regulate,
    settle_month,
)
from genop.settlement_documents import (
    course_line,
    issue,
    lock_settlement,
    money,
    month_in_danish,
    single_line,
    xml_lines,
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
    notes: tuple[str, ...] = ()


def _da(day: date) -> str:
    return f"{day.day}. {month_in_danish(f'{day:%Y-%m}')}"


def _month_after(month: str) -> str:
    year, number = parse_month(month)
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def _month_end(month: str) -> date:
    year, number = parse_month(month)
    return date(year, number, calendar.monthrange(year, number)[1])


def _payment_due(agreement: Agreement, day: date) -> date:
    return day + timedelta(days=agreement.deadlines.payment_term_days)


# -- a-conto ------------------------------------------------------------------------------


def aconto_months_due(session: Session, as_of: date) -> list[str]:
    """Months whose a-conto is due by ``as_of`` and not recorded: every month after the last
    recorded one (catch-up after downtime); with none recorded yet, the current month."""
    last = session.scalar(select(func.max(AcontoRecord.month)))
    current = f"{as_of:%Y-%m}"
    months: list[str] = []
    month = _month_after(last) if last else current
    while month <= current:
        year, number = parse_month(month)
        if first_working_day_of_month(year, number) <= as_of:
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
        document = issue(
            session, agreement, folder=folder, now=now, key=f"aconto:{month}:{payment.payer}", kind="Invoice",
            purpose="aconto", payer=payment.payer, period=month, issue_date=as_of,
            due_date=max(due_on, as_of), aconto=payment.amount,
            lines=[single_line(f"A conto {month_in_danish(month)} (aftalens §8, omkostningsgaranti)",
                               payment.amount)],
            note=f"A conto for {month_in_danish(month)}, forfalder første hverdag i måneden ({_da(due_on)}).")
        session.add(AcontoRecord(month=month, payer=payment.payer, amount=payment.amount, due_on=due_on,
                                 document_id=document.id, recorded_at=now))
        documents.append(document)
        new = True
    return Outcome(tuple(documents), new)


# -- monthly settlement -------------------------------------------------------------------


def _documents(session: Session, purpose: str, period: str) -> tuple[SettlementDocumentRecord, ...]:
    return tuple(session.scalars(select(SettlementDocumentRecord).where(
        SettlementDocumentRecord.purpose == purpose, SettlementDocumentRecord.period == period)
        .order_by(SettlementDocumentRecord.number)))


def months_to_settle(session: Session, as_of: date) -> list[str]:
    """Months ended before ``as_of`` and not settled: every month after the last settled one;
    with none settled yet, from the first month with a recorded a-conto."""
    last = session.scalar(select(func.max(SettledMonth.month)))
    first = _month_after(last) if last else session.scalar(select(func.min(AcontoRecord.month)))
    months: list[str] = []
    while first is not None and _month_end(first) < as_of:
        months.append(first)
        first = _month_after(first)
    return months


def _check_order(session: Session, month: str) -> None:
    last = session.scalar(select(func.max(SettledMonth.month)))
    if last is None or month == _month_after(last):
        return
    if month < last:
        raise SettlementError(f"{month} was never settled and genop has settled {last} since: its completed "
                              "courses were settled in the months that followed (as late courses)")
    raise SettlementError(f"settle {_month_after(last)} first: months are settled in order, so that every "
                          "course is settled in the first month after it completed")


def _load_courses(session: Session, cases: Sequence[Case]) -> list[Course]:
    visits: dict[int, list[VisitRecord]] = defaultdict(list)
    numbers = {case.id: case.case_number for case in cases}
    ids = sorted(numbers)
    for start in range(0, len(ids), _CHUNK):
        for visit in session.scalars(select(Visit).where(Visit.case_id.in_(ids[start:start + _CHUNK]))
                                     .order_by(Visit.visit_date, Visit.id)):
            visits[visit.case_id].append(VisitRecord(numbers[visit.case_id], visit.visit_date, visit.sks_code))
    courses = []
    for case in cases:
        if case.payer is None or case.completed_on is None:
            raise SettlementError(f"case {case.case_number} has no paying municipality or completion date "
                                  "and cannot be settled")
        courses.append(Course(case.case_number, case.payer, case.diagnosis_group, case.completed_on,
                              tuple(visits[case.id])))
    return courses


def _describe(line: CourseLine, month: str) -> str:
    visits = ", ".join(f"{count} × {group}" for group, count in line.visits.items() if count) or "ingen besøg"
    late = "" if f"{line.completed_on:%Y-%m}" == month else f" (afsluttet {_da(line.completed_on)}, efterregistreret)"
    return f"Afsluttet genoptræningsforløb {line.case_number}: {visits}{late}"


def settle(session: Session, agreement: Agreement, *, month: str, invoice_date: date, folder: Path,
           now: datetime) -> Outcome:
    """Settle the courses completed in ``month`` (and late ones before it) once (agreement §8)."""
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
    settled = select(SettledCourse.case_id)
    cases = list(session.scalars(select(Case).where(
        Case.completed_on.is_not(None), Case.completed_on <= _month_end(month), Case.id.not_in(settled))
        .order_by(Case.case_number)))
    results = settle_month(_load_courses(session, cases), agreement, month=month, invoice_date=invoice_date,
                           include_earlier=True, aconto=recorded)
    case_ids = {case.case_number: case.id for case in cases}
    documents = []
    for result in results:
        documents.append(_issue_settlement(session, agreement, result, case_ids, folder=folder, now=now))
    session.add(SettledMonth(month=month, invoice_date=invoice_date, settled_at=now))
    return Outcome(tuple(documents), True)


def _issue_settlement(session: Session, agreement: Agreement, result: MonthlySettlement,
                      case_ids: dict[str, int], *, folder: Path, now: datetime) -> SettlementDocumentRecord:
    note = (f"Afregning af afsluttede genoptræningsforløb, {month_in_danish(result.month)} (aftalens §8). "
            f"A conto for måneden kr. {kr(result.aconto)}, heraf modregnet kr. {kr(result.prepaid)}; "
            f"ikke anvendt a conto kr. {kr(result.carried_to_reconciliation)} indgår i årsopgørelsen.")
    lines = [course_line(n, line.case_number, _describe(line, result.month), line.amount)
             for n, line in enumerate(result.lines, start=1)]
    document = issue(session, agreement, folder=folder, now=now, key=f"settlement:{result.month}:{result.payer}",
                     kind="Invoice", purpose="settlement", payer=result.payer, period=result.month,
                     issue_date=result.invoice_date, due_date=result.due_date, lines=lines,
                     prepaid=result.prepaid, aconto=result.aconto, carried=result.carried_to_reconciliation,
                     note=note)
    for n, line in enumerate(result.lines, start=1):
        session.add(SettledCourse(case_id=case_ids[line.case_number], document_id=document.id, line_no=n,
                                  month=result.month, completed_on=line.completed_on, visits=line.visits,
                                  amount=line.amount))
    return document


# -- January reconciliation ---------------------------------------------------------------


def reconcile(session: Session, agreement: Agreement, *, year: int, as_of: date, folder: Path,
              now: datetime) -> tuple[list[YearReconciliationRecord], Outcome]:
    """The year's a-conto paid vs. used; the unused part refunded by credit note (agreement §8)."""
    lock_settlement(session)
    existing = list(session.scalars(select(YearReconciliationRecord).where(YearReconciliationRecord.year == year)
                                    .order_by(YearReconciliationRecord.payer)))
    if existing:
        return existing, Outcome(tuple(r.document for r in existing if r.document is not None), False)
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
                due_date=_payment_due(agreement, as_of),
                lines=[single_line(f"Tilbagebetaling af ikke anvendt a conto {year} (aftalens §8)", result.refund)],
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


def years_to_reconcile(session: Session, as_of: date) -> list[int]:
    """Years whose December is settled and which are not reconciled yet (January or later)."""
    done = set(session.scalars(select(YearReconciliationRecord.year).distinct()))
    decembers = session.scalars(select(SettledMonth.month).where(SettledMonth.month.like("%-12")))
    return sorted(y for y in (int(m[:4]) for m in decembers) if y not in done and as_of.year > y)


def _settlements_of(session: Session, year: int) -> list[MonthlySettlement]:
    documents = session.scalars(select(SettlementDocumentRecord).where(
        SettlementDocumentRecord.purpose == "settlement", SettlementDocumentRecord.period.like(f"{year}-%")))
    result = []
    for document in documents:
        courses = session.execute(select(SettledCourse, Case).join(Case, SettledCourse.case_id == Case.id)
                                  .where(SettledCourse.document_id == document.id)).all()
        lines = tuple(CourseLine(case.case_number, document.payer, case.diagnosis_group, course.completed_on,
                                 course.visits, course.amount) for course, case in courses)
        result.append(MonthlySettlement(
            month=document.period, payer=document.payer, ean=document.ean, lines=lines,
            total=document.line_total, aconto=document.aconto, prepaid=document.prepaid,
            amount_due=document.payable, carried_to_reconciliation=document.carried,
            invoice_date=document.issue_date, due_date=document.due_date or document.issue_date))
    return result


def _payments_of(session: Session, year: int) -> list[AcontoPayment]:
    rows = session.scalars(select(AcontoRecord).where(AcontoRecord.month.like(f"{year}-%")))
    return [AcontoPayment(row.month, row.payer, row.document.ean, row.amount, row.due_on) for row in rows]


# -- retro-regulation ---------------------------------------------------------------------


def tariff_fingerprint(agreement: Agreement) -> str:
    """Names the tariff set a regulation prices at: the same tables give the same fingerprint."""
    text = "|".join(f"{t.name};{t.valid_from};{t.valid_to};" + ",".join(
        f"{g}={group.price}" for g, group in sorted(t.groups.items())) for t in agreement.tariffs)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def regulate_since(session: Session, agreement: Agreement, *, since: date, as_of: date, folder: Path,
                   now: datetime) -> Outcome:
    """Re-price every course settled and completed since ``since`` at the configured tariffs;
    the differences become adjustment invoices or credit notes per municipality, the original
    documents stay as issued (agreement §8: regulation back to 1 January)."""
    lock_settlement(session)
    tariffs = f"{since.isoformat()}:{tariff_fingerprint(agreement)}"
    rows = session.execute(select(SettledCourse, Case).join(Case, SettledCourse.case_id == Case.id)
                           .where(SettledCourse.completed_on >= since).order_by(Case.case_number)).all()
    cases = [case for _, case in rows]
    adjusted = dict(session.execute(select(CourseAdjustment.case_id, func.sum(CourseAdjustment.difference))
                                    .group_by(CourseAdjustment.case_id)).all())
    invoiced = {case.case_number: course.amount + _money_sum(adjusted.get(case.id)) for course, case in rows}
    pairs = [(course, invoiced[course.case_number]) for course in _load_courses(session, cases)]
    adjustments = regulate(pairs, agreement, new_tariffs=agreement.tariffs, since=since)
    if not adjustments:
        return Outcome(_last_regulation_to(session, tariffs), False)
    # each regulation run that finds differences is a new one: returning to an earlier tariff set
    # (undoing a mistaken regulation) is a regulation of its own
    sequence = session.scalar(select(func.count(func.distinct(CourseAdjustment.regulation)))) + 1
    regulation = f"{sequence:04d}:{tariffs}"
    ids = {case.case_number: case.id for case in cases}
    names = ", ".join(t.name for t in agreement.tariffs if t.valid_to is None or t.valid_to >= since)
    documents = []
    for payer in (p for p in agreement.aconto.split if p in adjustments):
        for kind, items in (("Invoice", [a for a in adjustments[payer] if a.difference > 0]),
                            ("CreditNote", [a for a in adjustments[payer] if a.difference < 0])):
            if not items:
                continue
            key = f"regulation:{sequence:04d}:{payer}:{kind}"
            lines = [course_line(n, a.case_number, f"Efterregulering af forløb {a.case_number}: faktureret "
                                 f"kr. {kr(a.original)}, nye takster kr. {kr(a.repriced)}", abs(a.difference))
                     for n, a in enumerate(items, start=1)]
            document = issue(session, agreement, folder=folder, now=now, key=key, kind=kind, purpose="regulation",
                             payer=payer, period=since.isoformat(), issue_date=as_of,
                             due_date=_payment_due(agreement, as_of), lines=lines,
                             note=(f"Efterregulering af afsluttede forløb fra {_da(since)} til taksterne "
                                   f"{names} (aftalens §8). De oprindelige fakturaer er uændrede."))
            for n, item in enumerate(items, start=1):
                session.add(CourseAdjustment(case_id=ids[item.case_number], document_id=document.id, line_no=n,
                                             regulation=regulation, original=item.original,
                                             repriced=item.repriced, difference=item.difference, created_at=now))
            documents.append(document)
    return Outcome(tuple(documents), True)


def _last_regulation_to(session: Session, tariffs: str) -> tuple[SettlementDocumentRecord, ...]:
    """The documents of the latest regulation to these tariffs from this date (a re-run shows them)."""
    latest = session.scalar(select(func.max(CourseAdjustment.regulation))
                            .where(CourseAdjustment.regulation.like(f"%:{tariffs}")))
    if latest is None:
        return ()
    ids = select(CourseAdjustment.document_id).where(CourseAdjustment.regulation == latest)
    return tuple(session.scalars(select(SettlementDocumentRecord).where(SettlementDocumentRecord.id.in_(ids))
                                 .order_by(SettlementDocumentRecord.number)))


def _money_sum(value: Decimal | None) -> Decimal:
    """SUM over a Money column is typed Money (so Decimal DKK), or None when there is no row."""
    return ZERO if value is None else value


# -- views (for the CLI and artifacts) ----------------------------------------------------


def document_view(session: Session, agreement: Agreement, document: SettlementDocumentRecord) -> dict[str, object]:
    """A document as staff read it (``genop settle --json``): amounts as two-decimal strings."""
    party = agreement.parties[document.payer]
    courses = {row.line_no: row for row in session.scalars(
        select(SettledCourse).where(SettledCourse.document_id == document.id))}
    lines = []
    for line in xml_lines(document.xml):
        view: dict[str, object] = {"case_number": line["case_number"], "description": line["description"],
                                   "amount": line["amount"]}
        course = courses.get(int(line["line"] or 0)) if document.purpose == "settlement" else None
        if course is not None:
            view.update(diagnosis_group=course.case.diagnosis_group, visits=course.visits)
        lines.append(view)
    return {
        "number": document.number, "kind": document.kind, "purpose": document.purpose,
        "period": document.period, "municipality": party.municipality_code, "payer": document.payer,
        "ean": document.ean, "issue_date": document.issue_date.isoformat(),
        "due_date": document.due_date.isoformat() if document.due_date else None, "lines": lines,
        "total": money(document.line_total), "aconto": money(document.aconto), "prepaid": money(document.prepaid),
        "amount_due": money(document.payable), "carried_to_reconciliation": money(document.carried),
        "oioubl_path": document.xml_path, "html_path": document.html_path,
    }


def totals_row(agreement: Agreement, document: SettlementDocumentRecord) -> dict[str, str]:
    """One row of a Prefect table artifact: totals only, no case or citizen data."""
    party = agreement.parties[document.payer]
    return {"document": document.number, "kind": document.kind, "purpose": document.purpose,
            "period": document.period, "municipality": f"{party.municipality_code} {party.name}",
            "total": money(document.line_total), "prepaid": money(document.prepaid),
            "amount_due": money(document.payable), "due_date": document.due_date.isoformat() if document.due_date else ""}
