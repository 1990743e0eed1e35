"""Queries and writes on the case store, so that services never build SQL themselves."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from genop.errors import CaseNotFound
from genop.store.models import Case, CaseEvent, Counter, QuarantinedFile

CASE_NUMBER_PREFIX = "GEN"
_IN_CHUNK = 500


def bump_counter(session: Session, name: str, by: int = 1) -> int:
    """Add ``by`` to the named counter (made at 0 when missing) in one statement, safe with two
    writers, and return its new value: the last of the ``by`` numbers taken."""
    if session.get(Counter, name) is None:
        try:
            with session.begin_nested():  # two writers making it at once: one does, the other goes on
                session.add(Counter(name=name, value=0))
        except IntegrityError:
            pass
    return session.execute(update(Counter).where(Counter.name == name).values(value=Counter.value + by)
                           .returning(Counter.value)).scalar_one()


def allocate_case_numbers(session: Session, year: int, count: int) -> list[str]:
    """A block of case numbers ``GEN-YYYY-NNNNNN`` in one statement (safe with two writers)."""
    if count <= 0:
        return []
    last = bump_counter(session, f"case_number:{year}", count)
    first = last - count + 1
    return [f"{CASE_NUMBER_PREFIX}-{year}-{n:06d}" for n in range(first, last + 1)]


def cases_by_plan_id(session: Session, plan_ids: Iterable[str]) -> dict[str, Case]:
    ids = sorted(set(plan_ids))
    found: dict[str, Case] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start:start + _IN_CHUNK]
        rows = session.scalars(
            select(Case).where(Case.plan_id.in_(chunk)).options(selectinload(Case.documents))
            .with_for_update(of=Case)
        )
        found.update({case.plan_id: case for case in rows})
    return found


def get_case(session: Session, case_number: str, *, with_events: bool = False) -> Case:
    query = select(Case).where(Case.case_number == case_number.strip().upper())
    if with_events:
        query = query.options(selectinload(Case.events))
    case = session.scalars(query).one_or_none()
    if case is None:
        raise CaseNotFound(f"no case {case_number!r} in the case store")
    return case


def list_cases(session: Session, *, state: str | None = None, municipality: str | None = None,
               limit: int | None = None) -> Sequence[Case]:
    query = select(Case).order_by(Case.id)
    if state:
        query = query.where(Case.state == state)
    if municipality:
        query = query.where(Case.municipality_code == municipality)
    if limit:
        query = query.limit(limit)
    return session.scalars(query).all()


def count_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(Case.state, func.count()).group_by(Case.state))
    return {state: count for state, count in rows}


def chosen_group_counts(session: Session, groups: Sequence[str], year: int) -> tuple[int, int]:
    """(cases of these diagnosis groups received in the year, of which now routed to Copenhagen)."""
    base = select(func.count()).select_from(Case).where(
        Case.diagnosis_group.in_(list(groups)),
        Case.received_on >= date(year, 1, 1),
        Case.received_on <= date(year, 12, 31),
    )
    total = session.scalar(base) or 0
    to_copenhagen = session.scalar(base.where(Case.route == "copenhagen")) or 0
    return total, to_copenhagen


def append_event(session: Session, case: Case, kind: str, detail: str, at: datetime,
                 data: dict[str, Any] | None = None) -> CaseEvent:
    """The trail is append-only: events are added, never changed or removed."""
    event = CaseEvent(case=case, kind=kind, detail=detail, at=at, data=data or {})
    session.add(event)
    return event


def quarantined_files(session: Session, ids: Iterable[int] | None = None) -> Sequence[QuarantinedFile]:
    query = select(QuarantinedFile).order_by(QuarantinedFile.id)
    if ids is not None:
        query = query.where(QuarantinedFile.id.in_(list(ids)))
    return session.scalars(query).all()


def get_case_for_update(session: Session, case_number: str) -> Case:
    """The case, locked for this transaction (PostgreSQL row lock; SQLite's BEGIN IMMEDIATE)."""
    case = session.scalars(
        select(Case).where(Case.case_number == case_number.strip().upper()).with_for_update()
    ).one_or_none()
    if case is None:
        raise CaseNotFound(f"no case {case_number!r} in the case store")
    return case
