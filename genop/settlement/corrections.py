"""Correcting a settled month for a dispute (agreement §8 and §10; issue 12).

A settled month's documents are never changed or issued again: a correction is a new
document per municipality that names the original (``cac:BillingReference``) and the
dispute (its note), handed to NemHandel once with the others (the hand-off outbox row is
written with it). Each correction is a redo of the dispute (``Action.CORRECT_SETTLEMENT``),
recorded once per dispute, kind and target: running it again returns what it produced.

* ``remove-visit``: the visit is credited at its price as invoiced (the tariff in force on its
  date for its tariff group) and marked removed (``Visit.removed_by_redo_id``), so no later
  settlement, regulation or budget forecast counts it.
* ``reprice``: the course's visits (or one) are priced at another tariff group
  (``Visit.priced_as``, which later regulations keep); the difference is a supplementary
  invoice (dearer) or a credit note (cheaper); no difference, no document.
* ``change-completion``: a visit is priced at the tariff in force on its visit date, never on
  the course's completion date (§8), so the course's price does not change. The course stays
  on the invoice it was settled on, with that month's a-conto offset as issued: the date is
  corrected in the store (the case and its settled course, which the budget and later
  regulations read) and recorded, and no document is issued. A date in a month not settled
  yet is refused (that course should not have been invoiced: remove its visits instead).

Every money effect is a :class:`CourseAdjustment` row too (``regulation`` =
``correction:<dispute>:<target>``), so a later regulation starts from what was invoiced
after the correction and the budget forecast counts it as adjusted.
"""

from __future__ import annotations

import hashlib

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genop.config import Agreement
from genop.disputes import Action, RedoStatus, SubjectKind
from genop.disputes.records import begin_redo, finish_redo, get_dispute
from genop.settlement.documents import (course_line, documents_by_number, find, handoff_key, issue, lock_settlement,
                                        money)
from genop.settlement.ledger import danish_day
from genop.settlement.oioubl import DocumentKind, danish_amount as kr
from genop.settlement.rules import ZERO, SettlementError, payment_due, priced_group, tariff_table_on
from genop.store.models import (Case, CourseAdjustment, Dispute, DisputeRedo, SettledCourse, SettledMonth,
                                SettlementDocumentRecord, Visit, YearReconciliationRecord)
from genop.store.repository import get_case

PURPOSE = "correction"


class CorrectionKind(StrEnum):
    REMOVE_VISIT = "remove-visit"
    CHANGE_COMPLETION = "change-completion"
    REPRICE = "reprice"


class CorrectionRefused(SettlementError):
    """A settled month cannot be corrected as asked; the message says why."""

    code = "correction_refused"


@dataclass(frozen=True)
class Request:
    """What staff asked for (the deployment's parameters, checked)."""

    dispute: str
    kind: CorrectionKind
    by: str
    case: str | None = None
    visit: int | None = None
    completed_on: date | None = None
    tariff_group: str | None = None

    @property
    def target(self) -> str:
        """What the correction applies to, in the redo's key (numbers only)."""
        if self.kind is CorrectionKind.REMOVE_VISIT:
            return f"{self.kind.value}:visit-{self.visit}"
        if self.kind is CorrectionKind.CHANGE_COMPLETION:
            # the date itself stays out of the key (the key reaches Prefect's logs): a digest of it
            digest = hashlib.sha256(str(self.completed_on).encode("ascii")).hexdigest()[:8]
            return f"{self.kind.value}:{self.case}:{digest}"
        what = f"visit-{self.visit}" if self.visit is not None else self.case
        return f"{self.kind.value}:{what}:{self.tariff_group}"


@dataclass(frozen=True)
class Corrected:
    """What a correction produced (found again on a re-run: ``new`` is False)."""

    redo: DisputeRedo
    documents: tuple[SettlementDocumentRecord, ...]
    new: bool


def checked(dispute: str, kind: str, by: str, *, case: str | None, visit: int | None, completed_on: date | None,
            tariff_group: str | None) -> Request:
    """The request, or a one-line refusal of a parameter that is missing or does not belong."""
    try:
        correction = CorrectionKind(kind)
    except ValueError:
        raise CorrectionRefused(f"{kind!r} is not a correction; one of: "
                                f"{', '.join(k.value for k in CorrectionKind)}") from None
    case = case.strip().upper() if case and case.strip() else None
    group = tariff_group.strip().upper() if tariff_group and tariff_group.strip() else None
    if correction is CorrectionKind.REMOVE_VISIT and visit is None:
        raise CorrectionRefused("remove-visit needs the visit's id (`genop case show CASE` lists them)")
    if correction is CorrectionKind.CHANGE_COMPLETION and completed_on is None:
        raise CorrectionRefused("change-completion needs the corrected completion date (completed_on)")
    if correction is CorrectionKind.REPRICE and group is None:
        raise CorrectionRefused("reprice needs the tariff group to price at (tariff_group, e.g. GEN1A)")
    if correction is not CorrectionKind.REPRICE and group is not None:
        raise CorrectionRefused(f"a tariff group is given only to reprice, not to {correction.value}")
    if correction is not CorrectionKind.CHANGE_COMPLETION and completed_on is not None:
        raise CorrectionRefused(f"a completion date is given only to change-completion, not to {correction.value}")
    if correction is CorrectionKind.CHANGE_COMPLETION and visit is not None:
        raise CorrectionRefused("change-completion corrects a course, not a visit: give the case, not a visit")
    return Request(dispute.strip().upper(), correction, by, case, visit, completed_on, group)


def correct(session: Session, agreement: Agreement, request: Request, *, as_of: date, folder: Path, now: datetime,
            flow_run_id: str | None = None) -> Corrected:
    """Carry out ``request`` once (see the module docstring); the caller hands the documents off."""
    lock_settlement(session)
    dispute = get_dispute(session, request.dispute, for_update=True)
    request = with_case(session, dispute, request)
    redo, _ = begin_redo(session, dispute, Action.CORRECT_SETTLEMENT, target=request.target, by=request.by,
                         day=as_of, now=now, flow_run_id=flow_run_id)
    if redo.status == RedoStatus.DONE.value:
        return Corrected(redo, tuple(documents_by_number(session, redo.produced.get("documents", []))), False)
    case = get_case(session, request.case or "")
    course = _settled_course(session, dispute, case)
    if request.kind is CorrectionKind.CHANGE_COMPLETION:
        changes = _change_completion(session, case, course, request, as_of)
        documents: list[SettlementDocumentRecord] = []
    else:
        visits = _visits(session, dispute, case, request)
        changes, documents = _reprice_or_remove(session, agreement, dispute, redo, case, visits, request,
                                                as_of=as_of, folder=folder, now=now)
    produced = {"documents": [d.number for d in documents], "handoffs": [handoff_key(d.number) for d in documents]}
    finish_redo(session, dispute, redo, changes={"correction": request.kind.value, "case": case.case_number,
                                                 **changes}, produced=produced, day=as_of, now=now)
    return Corrected(redo, tuple(documents), True)


def with_case(session: Session, dispute: Dispute, request: Request) -> Request:
    """The case the correction is about: given, the dispute's, or the visit's."""
    case = request.case
    if case is None and dispute.case is not None:
        case = dispute.case.case_number
    if request.visit is not None:
        visit = session.get(Visit, request.visit)
        if visit is None:
            raise CorrectionRefused(f"no visit {request.visit} in genop's store (`genop case show CASE` lists them)")
        if case is not None and visit.case.case_number != case:
            raise CorrectionRefused(f"visit {request.visit} is not of case {case}")
        case = visit.case.case_number
    if case is None:
        raise CorrectionRefused(f"{dispute.number} is about {dispute.subject_kind} "
                                f"{dispute.invoice_number or dispute.month}: give the case (GEN-YYYY-NNNNNN)")
    return Request(request.dispute, request.kind, request.by, case, request.visit, request.completed_on,
                   request.tariff_group)


def _settled_course(session: Session, dispute: Dispute, case: Case) -> SettledCourse:
    """The case's settled course, refused unless it is on what the dispute is about."""
    course = session.scalar(select(SettledCourse).where(SettledCourse.case_id == case.id,
                                                        SettledCourse.supplement.is_(False)))
    if course is None:
        raise CorrectionRefused(f"case {case.case_number} is not on a settled course: there is nothing settled to "
                                "correct (a course not yet settled is settled as it is recorded)")
    subject = SubjectKind(dispute.subject_kind)
    if subject is SubjectKind.CASE and dispute.case_id != case.id:
        raise CorrectionRefused(f"case {case.case_number} is not the case of {dispute.number}")
    if subject is SubjectKind.INVOICE:
        numbers = set(session.scalars(select(SettlementDocumentRecord.number).join(
            SettledCourse, SettledCourse.document_id == SettlementDocumentRecord.id)
            .where(SettledCourse.case_id == case.id)))
        if dispute.invoice_number not in numbers:
            raise CorrectionRefused(f"case {case.case_number} is not on invoice {dispute.invoice_number}, which "
                                    f"{dispute.number} is about")
    if subject is SubjectKind.MONTH and course.month != dispute.month:
        raise CorrectionRefused(f"case {case.case_number} was settled in {course.month}, not in {dispute.month}, "
                                f"which {dispute.number} is about")
    return course


def _visits(session: Session, dispute: Dispute, case: Case, request: Request) -> list[Visit]:
    """The invoiced visits corrected: the one asked for, or (reprice) every one of the course."""
    if request.visit is None:
        return list(session.scalars(select(Visit).where(Visit.case_id == case.id,
                                                        Visit.settled_document_id.is_not(None),
                                                        Visit.removed_by_redo_id.is_(None))
                                    .order_by(Visit.visit_date, Visit.id)))
    visit = session.get(Visit, request.visit)
    assert visit is not None  # checked by with_case
    if visit.removed_by_redo_id is not None:
        raise CorrectionRefused(f"visit {visit.id} was removed from case {case.case_number} by an earlier correction")
    if visit.settled_document_id is None:
        raise CorrectionRefused(f"visit {visit.id} of case {case.case_number} is not invoiced yet: it is settled "
                                "with the next month, nothing settled to correct")
    invoice = session.get(SettlementDocumentRecord, visit.settled_document_id)
    if dispute.subject_kind == SubjectKind.INVOICE.value and invoice is not None \
            and invoice.number != dispute.invoice_number:
        raise CorrectionRefused(f"visit {visit.id} was invoiced on {invoice.number}, not on "
                                f"{dispute.invoice_number}, which {dispute.number} is about")
    return [visit]


def _price(agreement: Agreement, visit: Visit, group: str | None = None) -> tuple[str, Decimal]:
    """(tariff group, price) of a visit: the tariff in force on its date (§8), at ``group`` when given."""
    table = tariff_table_on(agreement.tariffs, visit.visit_date)
    if table is None:
        raise CorrectionRefused(f"no tariff table is in force on {visit.visit_date.isoformat()} (visit {visit.id})")
    chosen = group or priced_group(table, visit.sks_code, visit.priced_as)
    if chosen is None or chosen not in table.groups:
        known = ", ".join(sorted(table.groups))
        raise CorrectionRefused(f"{chosen or visit.sks_code!r} is not a tariff group of {table.name!r} in force on "
                                f"{visit.visit_date.isoformat()}; its groups: {known}")
    return chosen, table.groups[chosen].price


def invoiced_for(session: Session, case: Case) -> Decimal:
    """What has been invoiced for a course so far: its lines, less credits, plus adjustments."""
    settled = session.scalar(select(func.sum(SettledCourse.amount)).where(SettledCourse.case_id == case.id))
    adjusted = session.scalar(select(func.sum(CourseAdjustment.difference)).where(CourseAdjustment.case_id == case.id))
    return (settled or ZERO) + (adjusted or ZERO)


def _reprice_or_remove(session: Session, agreement: Agreement, dispute: Dispute, redo: DisputeRedo, case: Case,
                       visits: Sequence[Visit], request: Request, *, as_of: date, folder: Path,
                       now: datetime) -> tuple[dict[str, Any], list[SettlementDocumentRecord]]:
    removing = request.kind is CorrectionKind.REMOVE_VISIT
    priced = []
    for visit in visits:
        group, price = _price(agreement, visit)
        new_group, new_price = (group, ZERO) if removing else _price(agreement, visit, request.tariff_group)
        priced.append((visit, group, price, new_group, new_price))
    before = invoiced_for(session, case)
    difference = sum((new - old for _, _, old, _, new in priced), ZERO)
    originals = sorted({number for number in session.scalars(select(SettlementDocumentRecord.number).where(
        SettlementDocumentRecord.id.in_([v.settled_document_id for v in visits])))})
    changes: dict[str, Any] = {
        "visits": [{"visit": v.id, "visit_date": v.visit_date.isoformat(), "tariff_group_before": g,
                    "price_before": money(p), "tariff_group_after": None if removing else ng,
                    "price_after": money(np)} for v, g, p, ng, np in priced],
        "invoiced_before": money(before), "invoiced_after": money(before + difference),
        "difference": money(difference), "originals": originals}
    for visit, _, _, new_group, _ in priced:
        if removing:
            visit.removed_by_redo_id = redo.id
        else:
            visit.priced_as = new_group
    if difference == ZERO:
        return changes, []
    kind: DocumentKind = "Invoice" if difference > 0 else "CreditNote"
    what = (f"Fjernet besøg {danish_day(visits[0].visit_date)} ({priced[0][1]})"
            if removing else f"Omprisning til takstgruppe {request.tariff_group} af {len(visits)} besøg")
    key = f"{PURPOSE}:{dispute.number}:{request.target}:{case.payer}"
    if find(session, key) is not None:  # the redo's record was lost but its document is there
        raise CorrectionRefused(f"a document for {key} exists already: nothing is issued twice")
    period = session.scalars(select(SettledCourse.month).where(SettledCourse.case_id == case.id,
                                                               SettledCourse.supplement.is_(False))).one()
    document = issue(
        session, agreement, folder=folder, now=now, key=key, kind=kind, purpose=PURPOSE, payer=case.payer or "",
        period=period, issue_date=as_of, due_date=payment_due(agreement, as_of),
        lines=[course_line(1, case.case_number, f"{what} i forløb {case.case_number}: faktureret "
                           f"kr. {kr(before)}, korrigeret kr. {kr(before + difference)}", abs(difference))],
        corrects=tuple(originals),
        note=(f"Korrektion efter tvist {dispute.number} (aftalens §10) af {', '.join(originals)}. "
              "De oprindelige fakturaer er uændrede."))
    session.add(CourseAdjustment(case_id=case.id, document_id=document.id, line_no=1,
                                 regulation=f"{PURPOSE}:{dispute.number}:{request.target}", original=before,
                                 repriced=before + difference, difference=difference, created_at=now))
    session.flush()
    return changes, [document]


def _change_completion(session: Session, case: Case, course: SettledCourse, request: Request,
                       as_of: date) -> dict[str, Any]:
    corrected = request.completed_on
    assert corrected is not None and case.completed_on is not None  # checked, and settled
    if corrected > as_of:
        raise CorrectionRefused(f"the corrected completion date {corrected.isoformat()} is after the business date "
                                f"{as_of.isoformat()}")
    last_visit = session.scalar(select(func.max(Visit.visit_date)).where(Visit.case_id == case.id,
                                                                         Visit.removed_by_redo_id.is_(None)))
    if last_visit is not None and corrected < last_visit:
        raise CorrectionRefused(f"case {case.case_number} has a visit on {last_visit.isoformat()}, after the "
                                f"corrected completion date {corrected.isoformat()}")
    month = f"{corrected:%Y-%m}"
    if session.get(SettledMonth, month) is None:
        raise CorrectionRefused(f"{month} is not settled: a course invoiced in {course.month} cannot be completed "
                                "in a month not yet settled (remove its visits or reprice it instead)")
    years = {case.completed_on.year, corrected.year}
    reconciled = session.scalars(select(YearReconciliationRecord.year).where(
        YearReconciliationRecord.year.in_(years))).first()
    if len(years) > 1 and reconciled is not None:
        raise CorrectionRefused(f"{reconciled} is reconciled: a course cannot move between years after that")
    before = case.completed_on
    case.completed_on = corrected
    for row in session.scalars(select(SettledCourse).where(SettledCourse.case_id == case.id)):
        row.completed_on = corrected
    return {"completed_on_before": before.isoformat(), "completed_on_after": corrected.isoformat(),
            "settled_in": course.month, "difference": money(ZERO),
            "money": "none: visits are priced on their visit dates (§8), not on the completion date"}
