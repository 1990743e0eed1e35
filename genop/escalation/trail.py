"""The trail of what is at risk: each scan's findings compared with those already open.

A key not open yet is opened; a higher level raises it, a lower one lowers it; a breach
that has held ``persisting_after_days`` days (counted from the day the rule says the breach
began, ``Finding.since``) is ``persisting``; an open finding the scan no longer reports is
closed on the scan's day. Every change is a ``RiskEvent``. The same facts scanned again —
the same day or the next — change nothing, so a notice (one per finding and level) is never
repeated.

Two scans at once (the schedule and `genop escalate`) must not open a key twice: on
PostgreSQL ``record`` holds a transaction-scoped advisory lock, on SQLite the store begins
every transaction IMMEDIATE (one writer at a time); the partial unique index on open keys
(``uq_risk_findings_open_key``) is the last guard.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from genop.config import Agreement
from genop.escalation import RANK, Finding, Level
from genop.store.models import Case, RiskEvent, RiskFinding

SCAN_LOCK = 0x67656E6F70  # "genop": the advisory lock key of a scan's record()


class Change(StrEnum):
    OPENED = "opened"
    RAISED = "raised"
    LOWERED = "lowered"
    CLOSED = "closed"


@dataclass(frozen=True)
class TrailChange:
    """One change a scan made: the finding (its row, as changed) and its level before."""

    change: Change
    finding: RiskFinding
    previous: Level | None = None

    @property
    def level(self) -> Level:
        return Level(self.finding.level)


def level_on(finding: Finding, scan_on: date, agreement: Agreement) -> Level:
    """The rule's level, or ``persisting`` for a breach held the configured number of days."""
    held = (scan_on - finding.since).days
    if finding.level == Level.BREACH and held >= agreement.escalation_on(scan_on).persisting_after_days:
        return Level.PERSISTING
    return finding.level


def record(session: Session, findings: Iterable[Finding], *, scan_on: date, now: datetime,
           agreement: Agreement) -> list[TrailChange]:
    """Bring the open findings in line with this scan's; the changes, in the order made."""
    _lock_scans(session)
    current: dict[str, Finding] = {}
    for finding in findings:
        current.setdefault(finding.key, finding)
    open_rows = {row.key: row for row in open_findings(session)}
    case_ids = _case_ids(session, [f.subject for key, f in current.items() if key not in open_rows])
    changes: list[TrailChange] = []
    for key, finding in current.items():
        level = level_on(finding, scan_on, agreement)
        row = open_rows.get(key)
        if row is None:
            row = _open(session, finding, level, case_ids.get(finding.subject), scan_on, now)
            changes.append(TrailChange(Change.OPENED, row))
            continue
        row.reason, row.figures = finding.reason, dict(finding.figures)
        previous = Level(row.level)
        if RANK[level] != RANK[previous]:
            change = Change.RAISED if RANK[level] > RANK[previous] else Change.LOWERED
            row.level, row.level_since, row.updated_at = level.value, scan_on, now
            _event(session, row, change, scan_on, now)
            changes.append(TrailChange(change, row, previous))
    for key, row in open_rows.items():
        if key not in current:
            row.closed_on, row.updated_at = scan_on, now
            _event(session, row, Change.CLOSED, scan_on, now)
            changes.append(TrailChange(Change.CLOSED, row, Level(row.level)))
    session.flush()
    return changes


def open_findings(session: Session, kind: str | None = None,
                  municipality: str | None = None) -> Sequence[RiskFinding]:
    """What is at risk now (``ix_risk_findings_kind_closed_on``), oldest first."""
    query = select(RiskFinding).where(RiskFinding.closed_on.is_(None))
    if kind is not None:
        query = query.where(RiskFinding.kind == kind)
    if municipality is not None:
        query = query.where(RiskFinding.municipality == municipality)
    return session.scalars(query.order_by(RiskFinding.id)).all()


def open_counts(session: Session) -> dict[tuple[str, str], int]:
    """Open findings by (kind, level): one GROUP BY."""
    rows = session.execute(select(RiskFinding.kind, RiskFinding.level, func.count())
                           .where(RiskFinding.closed_on.is_(None))
                           .group_by(RiskFinding.kind, RiskFinding.level)).tuples().all()
    return {(kind, level): count for kind, level, count in rows}


def findings_of_case(session: Session, case: Case) -> Sequence[RiskFinding]:
    """A case's findings, open and closed, in the order they were opened."""
    return session.scalars(select(RiskFinding).where(RiskFinding.case_id == case.id)
                           .order_by(RiskFinding.id)).all()


def events_of(session: Session, finding: RiskFinding) -> Sequence[RiskEvent]:
    return session.scalars(select(RiskEvent).where(RiskEvent.finding_id == finding.id)
                           .order_by(RiskEvent.id)).all()


def _lock_scans(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCAN_LOCK})


def _case_ids(session: Session, subjects: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(subjects), 1000):
        chunk = subjects[start:start + 1000]
        found.update(session.execute(select(Case.case_number, Case.id)
                                     .where(Case.case_number.in_(chunk))).tuples().all())
    return found


def _open(session: Session, finding: Finding, level: Level, case_id: int | None, scan_on: date,
          now: datetime) -> RiskFinding:
    row = RiskFinding(key=finding.key, kind=finding.kind.value, subject=finding.subject, case_id=case_id,
                      municipality=finding.municipality, level=level.value, since=finding.since,
                      level_since=scan_on, opened_on=scan_on, closed_on=None, reason=finding.reason,
                      figures=dict(finding.figures), created_at=now, updated_at=now)
    session.add(row)
    _event(session, row, Change.OPENED, scan_on, now)
    return row


def _event(session: Session, row: RiskFinding, change: Change, scan_on: date, now: datetime) -> None:
    session.add(RiskEvent(finding=row, change=change.value, level=row.level, scan_on=scan_on, at=now,
                          figures=dict(row.figures)))
