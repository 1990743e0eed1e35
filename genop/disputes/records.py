"""Disputes in genop's store: opened, moved (who, when, why), and their redos recorded once.

No mail here: the mediation call's mail and each redo's effects are composed by their callers
(through the outbox) in the same transaction as the move or redo they belong to.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from genop.config import Agreement
from genop.disputes import CLOSED, MOVES, NUMBER_PREFIX, Action, Change, RedoStatus, State, SubjectKind
from genop.errors import GenopError
from genop.escalation import BUDGET_TOTAL
from genop.store.models import (Case, Dispute, DisputeEvent, DisputeRedo, SettledMonth,
                                SettlementDocumentRecord)
from genop.store.repository import bump_counter, get_case

REASON_MAX = 4000
"""Longest reason or note, in characters (a dispute's why is a few lines, not a document)."""
BY_MAX = 128
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class DisputeError(GenopError):
    """A dispute cannot be opened or moved as asked; the message says why and what to do."""

    code = "dispute_refused"


class DisputeNotFound(GenopError):
    code = "dispute_not_found"


def _text(value: str, what: str, limit: int) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise DisputeError(f"{what} is empty: say it in a few words", code=f"{what.replace(' ', '_')}_missing")
    if len(cleaned) > limit:
        raise DisputeError(f"{what} is {len(cleaned)} characters; at most {limit}",
                           code=f"{what.replace(' ', '_')}_too_long")
    return cleaned


def _next_number(session: Session, year: int) -> str:
    value = bump_counter(session, f"dispute:{year}")
    return f"{NUMBER_PREFIX}-{year}-{value:04d}"


def _subject(session: Session, kind: SubjectKind, reference: str,
             agreement: Agreement) -> tuple[Case | None, str | None, str | None, str]:
    """(case, invoice number, month, municipality concerned) of what a dispute is about."""
    if kind is SubjectKind.CASE:
        case = get_case(session, reference)
        return case, None, None, case.payer or _party_key(agreement, case.municipality_code)
    if kind is SubjectKind.INVOICE:
        number = reference.strip().upper()
        document = session.scalar(select(SettlementDocumentRecord)
                                  .where(SettlementDocumentRecord.number == number))
        if document is None:
            raise DisputeError(f"no settlement document {number} in genop's store (see `genop settlement "
                               "documents`)", code="invoice_not_found")
        return None, document.number, None, document.payer
    month = reference.strip()
    if not _MONTH.match(month):
        raise DisputeError(f"{month!r} is not a month: give YYYY-MM", code="month_invalid")
    if session.get(SettledMonth, month) is None:
        raise DisputeError(f"{month} has not been settled; a dispute about a month is about its settlement",
                           code="month_not_settled")
    return None, None, month, BUDGET_TOTAL


def _party_key(agreement: Agreement, code: str) -> str:
    party = agreement.municipality_for_code(code)
    return party.key if party is not None else code


def open_dispute(session: Session, agreement: Agreement, *, subject: SubjectKind, reference: str, about: str,
                 reason: str, by: str, day: date, now: datetime) -> Dispute:
    """A new dispute, numbered, with its first timeline line."""
    kinds = agreement.disputes.kinds
    if about not in kinds:
        raise DisputeError(f"{about!r} is not a kind of dispute; one of: {', '.join(kinds)}", code="about_unknown")
    reason = _text(reason, "reason", REASON_MAX)
    by = _text(by, "by", BY_MAX)
    case, invoice, month, municipality = _subject(session, subject, reference, agreement)
    dispute = Dispute(number=_next_number(session, day.year), about=about, subject_kind=subject.value,
                      case_id=case.id if case is not None else None, invoice_number=invoice, month=month,
                      municipality=municipality, reason=reason, state=State.OPEN.value, opened_by=by,
                      opened_on=day, created_at=now, updated_at=now)
    dispute.case = case
    session.add(dispute)
    dispute.events.append(DisputeEvent(change=Change.OPENED.value, state=State.OPEN.value, day=day, at=now,
                                       by=by, note=reason, details={"about": about}))
    session.flush()
    return dispute


def get_dispute(session: Session, number: str, *, for_update: bool = False) -> Dispute:
    query = (select(Dispute).where(Dispute.number == number.strip().upper())
             .options(selectinload(Dispute.events), selectinload(Dispute.redos)))
    if for_update:
        query = query.with_for_update(of=Dispute)
    dispute = session.scalars(query).one_or_none()
    if dispute is None:
        raise DisputeNotFound(f"no dispute {number!r} in genop's store (see `genop dispute list`)")
    return dispute


def list_disputes(session: Session, *, state: str | None = None, case: Case | None = None) -> list[Dispute]:
    query = select(Dispute).order_by(Dispute.id)
    if state is not None:
        query = query.where(Dispute.state == state)
    if case is not None:
        query = query.where(Dispute.case_id == case.id)
    return list(session.scalars(query))


def move(session: Session, dispute: Dispute, to: State, *, by: str, why: str, day: date, now: datetime,
         details: dict[str, Any] | None = None) -> DisputeEvent:
    """Move a dispute on (§10), or refuse saying which moves it has."""
    here = State(dispute.state)
    if to not in MOVES[here]:
        allowed = ", ".join(sorted(m.value for m in MOVES[here])) or "none (it is closed)"
        raise DisputeError(f"{dispute.number} is {here.value}: it cannot move to {to.value} (moves from "
                           f"{here.value}: {allowed})", code="move_refused")
    if day < dispute.opened_on:
        raise DisputeError(f"{day.isoformat()} is before {dispute.number} was opened "
                           f"({dispute.opened_on.isoformat()})", code="date_before_opened")
    event = DisputeEvent(change=Change(to.value).value, state=to.value, day=day, at=now,
                         by=_text(by, "by", BY_MAX), note=_text(why, "why", REASON_MAX), details=details or {})
    dispute.state = to.value
    dispute.updated_at = now
    if to in CLOSED:
        dispute.closed_on = day
    dispute.events.append(event)
    session.flush()
    return event


def call_mediation(session: Session, agreement: Agreement, dispute: Dispute, *, meeting_on: date, by: str,
                   why: str, day: date, now: datetime) -> DisputeEvent:
    """§10: the written call is dated ``day``; the meeting is held within 8 days of it."""
    within = agreement.disputes.mediation_within_days
    latest = day + timedelta(days=within)
    if meeting_on < day:
        raise DisputeError(f"the meeting ({meeting_on.isoformat()}) cannot be before the call "
                           f"({day.isoformat()})", code="mediation_date_past")
    if meeting_on > latest:
        raise DisputeError(f"the meeting ({meeting_on.isoformat()}) must be held within {within} days of the "
                           f"call (§10): on {latest.isoformat()} at the latest", code="mediation_date_too_late")
    event = move(session, dispute, State.MEDIATION_CALLED, by=by, why=why, day=day, now=now,
                 details={"meeting_on": meeting_on.isoformat()})
    dispute.mediation_called_on = day
    dispute.mediation_on = meeting_on
    return event


def redo_key(dispute: Dispute, action: Action, target: str | None = None) -> str:
    return f"{dispute.number}:{action.value}" + (f":{target}" if target else "")


def begin_redo(session: Session, dispute: Dispute, action: Action, *, target: str | None, by: str, day: date,
               now: datetime, flow_run_id: str | None = None) -> tuple[DisputeRedo, bool]:
    """The redo's record, and whether this call created it. A redo asked for again (a second run,
    a retry, another worker) returns the first record: its caller finishes it if it is still
    ``started`` (a crashed run) and otherwise only reports what it produced."""
    if dispute.state == State.TO_COURT.value:
        raise DisputeError(f"{dispute.number} is with the courts: nothing is redone for it in genop",
                           code="redo_refused")
    key = redo_key(dispute, action, target)
    existing = session.scalar(select(DisputeRedo).where(DisputeRedo.key == key))
    if existing is not None:
        return existing, False
    redo = DisputeRedo(dispute_id=dispute.id, key=key, action=action.value, target=target,
                       status=RedoStatus.STARTED.value, requested_by=_text(by, "by", BY_MAX), requested_on=day,
                       flow_run_id=flow_run_id, changes={}, produced={}, created_at=now)
    try:
        with session.begin_nested():
            session.add(redo)
    except IntegrityError:  # another worker recorded it first
        return session.scalars(select(DisputeRedo).where(DisputeRedo.key == key)).one(), False
    return redo, True


def finish_redo(session: Session, dispute: Dispute, redo: DisputeRedo, *, changes: dict[str, Any],
                produced: dict[str, Any], day: date, now: datetime) -> None:
    """The redo's effects are recorded: it is done, and the dispute's timeline says what it did."""
    if redo.status == RedoStatus.DONE.value:
        return
    redo.status = RedoStatus.DONE.value
    redo.changes = changes
    redo.produced = produced
    redo.finished_at = now
    dispute.updated_at = now
    dispute.events.append(DisputeEvent(change=Change.REDO.value, state=dispute.state, day=day, at=now,
                                       by=redo.requested_by, note=None,
                                       details={"action": redo.action, "redo": redo.key, "produced": produced}))
    session.flush()
