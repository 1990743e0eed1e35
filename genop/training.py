"""Waiting time, the first session, and following the training (agreement "Case lifecycle"
5–7, §3.1, §3.3, §7).

Free text typed by staff (reasons) is recorded here, in genop's store, and the notices it
causes are composed into the outbox; flows then deliver them with case numbers only.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from genop.clock import COPENHAGEN, local
from genop.config import Agreement
from genop.errors import GenopError
from genop.lifecycle import WAITING_FOR_START, WITH_COPENHAGEN, CaseState, move
from genop.plans import Plan
from genop.routing import at_own_centre
from genop.mail.compose import SecureMail, compose, compose_letter, contact_of
from genop.settings import Settings
from genop.store.models import Case, CaseEvent, OutboxMessage
from genop.store.repository import append_event, get_case_for_update
from genop.templates import render

FREE_CHOICE_LETTER = "free_choice_letter"
CANNOT_FOLLOW = "cannot_follow"
SENT_BACK = "sent_back"
DEFAULT_SESSION_TIME = time(9, 0)


class TrainingError(GenopError):
    code = "training_error"


def parse_session_time(value: str) -> datetime:
    """``2026-11-25`` or ``2026-11-25T10:30`` in Danish time → aware datetime (09:00 if no time)."""
    try:
        if "T" in value or " " in value:
            moment = datetime.fromisoformat(value)
        else:
            moment = datetime.combine(date.fromisoformat(value), DEFAULT_SESSION_TIME)
    except ValueError as exc:
        raise TrainingError(f"first session {value!r} is not a date or date-time (YYYY-MM-DD[THH:MM])",
                            code="invalid_session_time") from exc
    return moment.replace(tzinfo=COPENHAGEN) if moment.tzinfo is None else moment


def record_offer(session: Session, case_number: str, first_session: datetime, *, offered_on: date,
                 now: datetime) -> bool:
    """The training unit's offer of a first session; True when it is new or moved.

    The unit is Copenhagen's for a forwarded case, or Tårnby's own centre for a case routed
    to Løjtegårdsvej (agreement §3.1), which needs no order: both count for the 7-day rule.
    """
    case = get_case_for_update(session, case_number)
    if case.state not in WITH_COPENHAGEN and not at_own_centre(case):
        raise TrainingError(f"case {case.case_number} is {case.state}: a first session is offered only "
                            "for a case forwarded to Copenhagen or routed to Løjtegårdsvej",
                            code="not_forwarded")
    if first_session.date() < case.discharge_date:
        raise TrainingError(f"first session {first_session.date()} is before discharge "
                            f"({case.discharge_date})", code="invalid_session_time")
    if case.first_session_at == first_session:
        return False
    moved = case.first_session_at is not None
    previous = case.first_session_at
    case.first_session_at = first_session
    case.first_session_offered_on = offered_on
    case.updated_at = now
    within = first_session.date() <= case.free_choice_from
    detail = (f"first session {'moved to' if moved else 'offered for'} "
              f"{local(first_session):%Y-%m-%d %H:%M}"
              + (f" (was {local(previous):%Y-%m-%d %H:%M})" if previous else "")
              + ("; within 7 days of discharge" if within else
                 f"; later than the free-choice day {case.free_choice_from} (Health Act §140(4))"))
    if case.start_by and first_session.date() > case.start_by:
        detail += f"; after the plan's start-by date {case.start_by}"
    append_event(session, case, "first_session_moved" if moved else "first_session_offered", detail, now,
                 {"first_session_at": first_session.isoformat(), "offered_on": offered_on.isoformat()})
    return True


def _count_events(session: Session, case: Case, kind: str) -> int:
    return len(session.scalars(select(CaseEvent.id).where(CaseEvent.case_id == case.id,
                                                          CaseEvent.kind == kind)).all())


def note_cannot_follow(session: Session, case_number: str, reason: str, *, agreement: Agreement,
                       settings: Settings, now: datetime) -> OutboxMessage:
    """Copenhagen's contact tells Tårnby the plan cannot be followed (agreement §7): recorded and
    a notice composed (signed by Copenhagen, encrypted to Tårnby)."""
    case = get_case_for_update(session, case_number)
    if case.state not in WITH_COPENHAGEN:
        raise TrainingError(f"case {case.case_number} is {case.state}: not in training with Copenhagen",
                            code="not_forwarded")
    reason = _require_reason(reason)
    sequence = _count_events(session, case, "cannot_follow") + 1
    append_event(session, case, "cannot_follow",
                 f"Copenhagen's contact reports the plan cannot be followed: {reason}", now,
                 {"sequence": sequence})
    body = render("mail/cannot_follow.da.txt.j2", case_number=case.case_number, reason=reason,
                  sender=contact_of("copenhagen", agreement), recipient=contact_of("tarnby", agreement))
    subject = render("mail/cannot_follow.subject.da.txt.j2", case_number=case.case_number).strip()
    return compose(session, case, SecureMail(f"{CANNOT_FOLLOW}_{sequence}", "copenhagen", "tarnby", subject, body),
                   agreement=agreement, settings=settings, now=now)


def send_back(session: Session, case_number: str, reason: str, *, agreement: Agreement,
              settings: Settings, now: datetime) -> OutboxMessage:
    """Copenhagen sends the citizen back to Løjtegårdsvej (agreement §3.1): route and trail updated,
    Tårnby told by secure mail."""
    case = get_case_for_update(session, case_number)
    if case.state not in WITH_COPENHAGEN or case.route != "copenhagen":
        raise TrainingError(f"case {case.case_number} is {case.state} with route {case.route}: only a "
                            "case in training with Copenhagen can be sent back", code="not_forwarded")
    reason = _require_reason(reason)
    case.route = "lojtegaardsvej"
    move(session, case, CaseState.ROUTED_ELSEWHERE, at=now,
         detail=f"Copenhagen sent the citizen back to Løjtegårdsvej (agreement §3.1): {reason}; route "
                "now lojtegaardsvej; visits already delivered by Copenhagen stay on the case")
    body = render("mail/sent_back.da.txt.j2", case_number=case.case_number, reason=reason,
                  sender=contact_of("copenhagen", agreement), recipient=contact_of("tarnby", agreement))
    subject = render("mail/sent_back.subject.da.txt.j2", case_number=case.case_number).strip()
    return compose(session, case, SecureMail(SENT_BACK, "copenhagen", "tarnby", subject, body),
                   agreement=agreement, settings=settings, now=now)


def _require_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise TrainingError("a reason is required", code="reason_missing")
    return reason


def free_choice_due(case: Case, as_of: date) -> bool:
    """Health Act §140(4): no start offered within 7 days after discharge → the citizen may
    choose a private provider, and is told so once. For every route the municipality
    answers for: Copenhagen (from intake on) and Løjtegårdsvej (its own centre)."""
    if case.free_choice_letter_on is not None or case.state not in WAITING_FOR_START:
        return False
    if case.state == CaseState.ROUTED_ELSEWHERE and not at_own_centre(case):
        return False
    if as_of < case.free_choice_from:
        return False
    return case.first_session_at is None or local(case.first_session_at).date() > case.free_choice_from


def cases_due_free_choice(session: Session, as_of: date) -> list[str]:
    candidates = session.scalars(
        select(Case).where(Case.free_choice_letter_on.is_(None), Case.free_choice_from <= as_of,
                           Case.state.in_([s.value for s in WAITING_FOR_START])).order_by(Case.id))
    return [case.case_number for case in candidates if free_choice_due(case, as_of)]


def prepare_free_choice_letter(session: Session, case_number: str, *, agreement: Agreement,
                               settings: Settings, as_of: date, now: datetime) -> OutboxMessage | None:
    """The letter about the right to choose a private provider, produced once per case."""
    from genop.forwarding import latest_document

    case = get_case_for_update(session, case_number)
    if not free_choice_due(case, as_of):
        return None
    plan = Plan.model_validate(latest_document(case).parsed)
    html = render("letters/free_choice.da.html.j2", citizen=plan.citizen, case_number=case.case_number,
                  sender=contact_of("tarnby", agreement), letter_date=as_of,
                  discharge_date=case.discharge_date, free_choice_from=case.free_choice_from,
                  first_session=local(case.first_session_at) if case.first_session_at else None)
    row = compose_letter(session, case, purpose=FREE_CHOICE_LETTER, subject="Frit valg af genoptræning",
                         html=html, filename="frit-valg.da.html", settings=settings, now=now)
    case.free_choice_letter_on = as_of
    append_event(session, case, "free_choice_announced",
                 f"no start offered by {case.free_choice_from} (discharge + 7 days): the citizen may choose "
                 "a private provider (Health Act §140(4)); letter produced", now,
                 {"as_of": as_of.isoformat()})
    session.flush()
    return row


def parse_offers(content: bytes) -> tuple[list[tuple[int, str, str]], list[tuple[int, str]]]:
    """An offers file from the training unit: CSV ``case_number,first_session`` (header first).

    Returns (line, case number, first session) for good lines and (line, reason) for bad ones.
    """
    import csv
    import io

    good: list[tuple[int, str, str]] = []
    bad: list[tuple[int, str]] = []
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [(0, "the file is not UTF-8 text")]
    rows = csv.DictReader(io.StringIO(text))
    if not rows.fieldnames or not {"case_number", "first_session"} <= set(rows.fieldnames):
        return [], [(1, "header must name the columns case_number,first_session")]
    for line, row in enumerate(rows, start=2):
        number, when = (row.get("case_number") or "").strip().upper(), (row.get("first_session") or "").strip()
        if not number or not when:
            bad.append((line, "case_number and first_session are both required"))
            continue
        try:
            parse_session_time(when)
        except TrainingError as error:
            bad.append((line, error.message))
            continue
        good.append((line, number, when))
    return good, bad
