"""Retro-regulation (agreement §8): "If cost-based tariffs are later computed, settlement is
regulated back to 1 January" — a new tariff table with a past ``valid_from`` is added to
``config/agreement.yaml`` and every course settled and completed since then is re-priced.

The difference to what was invoiced so far (the course, any supplement, earlier
adjustments) becomes an adjustment invoice (dearer) or credit note (cheaper) per
municipality; the original documents stay as issued. A second run at the same tariffs finds
no difference and issues nothing; each run that does find differences is numbered
(``regulation:0002:tarnby:CreditNote``), so undoing a mistaken regulation is one too.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genop.settlement.ledger import Outcome, danish_day, load_courses
from genop.config import Agreement
from genop.settlement.oioubl import DocumentKind, danish_amount as kr
from genop.settlement.rules import ZERO, payment_due, regulate
from genop.settlement.documents import course_line, issue, lock_settlement
from genop.store.models import (
    Case,
    CourseAdjustment,
    SettledCourse,
    SettlementDocumentRecord,
)


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
    cases = list({case.id: case for _, case in rows}.values())
    adjusted = dict(session.execute(select(CourseAdjustment.case_id, func.sum(CourseAdjustment.difference))
                                    .group_by(CourseAdjustment.case_id)).tuples().all())
    invoiced = {case.case_number: _money_sum(adjusted.get(case.id)) for case in cases}
    originals: dict[str, list[str]] = {case.case_number: [] for case in cases}
    for course, case in rows:  # the course, and any supplement for visits recorded later
        invoiced[case.case_number] += course.amount
        originals[case.case_number].append(course.document.number)
    earlier = session.execute(select(Case.case_number, SettlementDocumentRecord.number)
                              .join(CourseAdjustment, CourseAdjustment.case_id == Case.id)
                              .join(SettlementDocumentRecord,
                                    CourseAdjustment.document_id == SettlementDocumentRecord.id)
                              .where(Case.id.in_([case.id for case in cases])))
    for number, document in earlier:  # a regulation that corrects an earlier one names it too
        originals[number].append(document)
    # only the visits invoiced so far are re-priced: later ones are invoiced at the new tariffs anyway
    loaded = load_courses(session, cases, settled_visits=True)
    pairs = [(course, invoiced[course.case_number]) for course in loaded.courses]
    adjustments = regulate(pairs, agreement, new_tariffs=agreement.tariffs, since=since)
    if not adjustments:
        return Outcome(_last_regulation_to(session, tariffs), False)
    # each regulation run that finds differences is a new one: returning to an earlier tariff set
    # (undoing a mistaken regulation) is a regulation of its own
    sequence = session.execute(select(func.count(func.distinct(CourseAdjustment.regulation)))).scalar_one() + 1
    regulation = f"{sequence:04d}:{tariffs}"
    ids = {case.case_number: case.id for case in cases}
    names = ", ".join(t.name for t in agreement.tariffs if t.valid_to is None or t.valid_to >= since)
    documents = []
    kind: DocumentKind
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
                             due_date=payment_due(agreement, as_of), lines=lines,
                             corrects=tuple(sorted({n for a in items for n in originals[a.case_number]})),
                             note=(f"Efterregulering af afsluttede forløb fra {danish_day(since)} til taksterne "
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
