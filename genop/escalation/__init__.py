"""Escalation (sub-agreement §7; AGREEMENT.md "What 'at risk' means"): what watches the cases.

Every Danish working day a scan asks the store, one set-based query per kind, which cases
and budgets are at risk (``genop.escalation.rules`` for case time and service level,
``genop.escalation.budget`` for the economy): the answer is a list of ``Finding``s, pure
data with the figures that made them. ``genop.escalation.trail`` compares them with the
findings already open: a new one is opened, a higher level raises it, one no longer found
is closed; ``genop.escalation.notices`` sends one notice per finding and level, through
the outbox, to the contacts the finding concerns.

This module is the vocabulary the parts share; it imports nothing of Prefect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class Kind(StrEnum):
    """What is at risk. The value is what staff read (CLI, artifacts, events, mail subjects)."""

    # case time
    CONSENT_MISSING = "consent_missing"          # no consent N days after the plan arrived
    FORWARD_LATE = "forward_late"                # consent given, the order not sent within M hours (forward_failed too)
    NO_START_OFFERED = "no_start_offered"        # no first session offered within 7 days of discharge (§140(4))
    START_BY = "start_by"                        # the plan's own start_by close (warning) or passed (breach)
    URGENT_NOT_STARTED = "urgent_not_started"    # an urgent plan with no start after U working days
    NO_RECENT_VISIT = "no_recent_visit"          # a course in training with no visit for V days
    # service level
    TRAINING_OVER_NORM = "training_over_norm"    # visits/hours delivered above factor x the group's norm
    DURATION_OVER_NORM = "duration_over_norm"    # the course runs past the norm's weeks by a margin
    PLAN_CANNOT_BE_FOLLOWED = "plan_cannot_be_followed"  # Copenhagen's report (agreement §7)
    SENT_BACK = "sent_back"                      # Copenhagen sent the citizen back
    # budget
    BUDGET_FORECAST = "budget_forecast"          # forecast cost to year end above the a-conto / budget
    READINESS_CLAUSE = "readiness_clause"        # orders forecast below the a-conto: 004 §8 readiness costs
    # disputes (agreement §10)
    MEDIATION_OVERDUE = "mediation_overdue"      # the mediation meeting's day passed with no outcome recorded
    DISPUTE_OPEN_TOO_LONG = "dispute_open_too_long"  # open, no mediation called, for disputes.open_warning_days


class Concern(StrEnum):
    CASE_TIME = "case_time"
    SERVICE_LEVEL = "service_level"
    BUDGET = "budget"
    DISPUTE = "dispute"


CONCERN: dict[Kind, Concern] = {
    Kind.CONSENT_MISSING: Concern.CASE_TIME, Kind.FORWARD_LATE: Concern.CASE_TIME,
    Kind.NO_START_OFFERED: Concern.CASE_TIME, Kind.START_BY: Concern.CASE_TIME,
    Kind.URGENT_NOT_STARTED: Concern.CASE_TIME, Kind.NO_RECENT_VISIT: Concern.CASE_TIME,
    Kind.TRAINING_OVER_NORM: Concern.SERVICE_LEVEL, Kind.DURATION_OVER_NORM: Concern.SERVICE_LEVEL,
    Kind.PLAN_CANNOT_BE_FOLLOWED: Concern.SERVICE_LEVEL, Kind.SENT_BACK: Concern.SERVICE_LEVEL,
    Kind.BUDGET_FORECAST: Concern.BUDGET, Kind.READINESS_CLAUSE: Concern.BUDGET,
    Kind.MEDIATION_OVERDUE: Concern.DISPUTE, Kind.DISPUTE_OPEN_TOO_LONG: Concern.DISPUTE,
}


class Level(StrEnum):
    """How bad: a rule finds ``warning`` or ``breach``; the trail makes a breach that has held
    for the configured number of days ``persisting`` ("still in breach after D days")."""

    WARNING = "warning"
    BREACH = "breach"
    PERSISTING = "persisting"


RANK: dict[Level, int] = {Level.WARNING: 1, Level.BREACH: 2, Level.PERSISTING: 3}

BUDGET_TOTAL = "total"
"""The ``municipality`` of a finding about the shared budget (both municipalities)."""


def budget_subject(municipality: str) -> str:
    """The subject of a budget finding: ``budget:tarnby``, ``budget:dragor``, ``budget:total``."""
    return f"budget:{municipality}"


@dataclass(frozen=True)
class Finding:
    """One thing at risk as the scan found it on its day.

    ``subject`` is a case number (``GEN-2026-000123``), a budget (``budget_subject``) or a
    dispute's number (``TV-2026-0001``);
    ``key`` (kind + subject, plus ``instance`` where a case can have several of a kind — the
    n-th "cannot be followed" report) identifies the finding across scans. ``municipality``
    is the party key the finding concerns (``tarnby``/``dragor``; ``BUDGET_TOTAL`` for the
    shared budget): it decides who is told. ``since`` is the day the condition began (the
    day the consent became overdue, not the day of the scan). ``figures`` are the numbers
    that made it, as strings (Decimal money as ``"1234.50"``, dates ISO): never a CPR, a
    name, a diagnosis text or a file name. ``reason`` is one English sentence for staff
    (CLI, artifacts) built from the figures only.
    """

    kind: Kind
    subject: str
    municipality: str
    level: Level
    since: date
    reason: str
    figures: dict[str, str] = field(default_factory=dict)
    instance: int = 0

    @property
    def key(self) -> str:
        suffix = f":{self.instance}" if self.instance else ""
        return f"{self.kind.value}:{self.subject}{suffix}"

    @property
    def concern(self) -> Concern:
        return CONCERN[self.kind]
