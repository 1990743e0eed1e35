"""Completed courses written straight into the case store, for settlement tests.

Intake → consent → forwarding → visits → completion is exercised by the lifecycle tests;
settlement tests start from what those leave behind: a case with a payer, a completion
date and its visits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genop.store.models import Case, Visit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TARIFF_GROUP = {"BLNA": "GEN1A", "BRA": "GEN1A", "BLNR": "GEN2A", "BTP": "GEN2A", "AAF6": "GEN3A"}
MUNICIPALITY = {"tarnby": "185", "dragor": "155"}


def add_course(session: Session, number: str, *, payer: str = "tarnby", group: str = "stroke",
               completed_on: date | None, visits: Sequence[tuple[date, str]] = ()) -> Case:
    """A forwarded case of ``payer`` with ``visits`` (date, SKS code), completed on ``completed_on``."""
    first = min((day for day, _ in visits), default=completed_on or date(2026, 1, 1))
    case = Case(case_number=number, plan_id=f"plan-{number}", state="completed" if completed_on else "in_training",
                route="copenhagen", municipality_code=MUNICIPALITY[payer], payer=payer, diagnosis_group=group,
                level="basal", discharge_date=first - timedelta(days=3), free_choice_from=first + timedelta(days=4),
                cpr="0101701234", received_on=first - timedelta(days=3), completed_on=completed_on,
                created_at=NOW, updated_at=NOW)
    session.add(case)
    session.flush()
    for n, (day, code) in enumerate(visits):
        fingerprint = hashlib.sha256(f"{number}|{day}|{code}|{n}".encode()).hexdigest()
        session.add(Visit(case_id=case.id, visit_date=day, sks_code=code, tariff_group=_group(code),
                          minutes=45, mode="individual", fingerprint=fingerprint, recorded_at=NOW))
    session.flush()
    return case


def _group(code: str) -> str:
    return next(group for prefix, group in TARIFF_GROUP.items() if code.startswith(prefix))


def visits_on(day: date, **counts: int) -> list[tuple[date, str]]:
    """``visits_on(d, BLNA=2, AAF6=1)`` → two GEN1A visits and one GEN3A visit on ``d``."""
    return [(day, code) for code, count in counts.items() for _ in range(count)]


def add_visits(session: Session, number: str, visits: Sequence[tuple[date, str]]) -> None:
    """Visits recorded later for an existing case (e.g. after its course was settled)."""
    case = session.scalars(select(Case).where(Case.case_number == number)).one()
    start = session.scalar(select(func.count()).select_from(Visit).where(Visit.case_id == case.id)) or 0
    for n, (day, code) in enumerate(visits, start=start):
        fingerprint = hashlib.sha256(f"{number}|{day}|{code}|{n}".encode()).hexdigest()
        session.add(Visit(case_id=case.id, visit_date=day, sks_code=code, tariff_group=_group(code),
                          minutes=45, mode="individual", fingerprint=fingerprint, recorded_at=NOW))
    session.flush()
