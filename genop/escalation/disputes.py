"""Disputes at risk (agreement §10, Tvister; issue 12): settled amicably as early as possible,
else a mediation meeting held within 8 days of the call.

Two kinds, one set-based query each over ``disputes`` (``ix_disputes_state``):

* ``mediation_overdue`` (breach): the meeting's day (``mediation_on``) has passed and the dispute
  is still ``mediation_called`` — no outcome (resolved, to court) recorded.
* ``dispute_open_too_long`` (warning): still ``open`` (no mediation called)
  ``disputes.open_warning_days`` days or more after it was opened.

The finding's subject is the dispute's number; its municipality is the one the dispute
concerns (``total`` for a settled month: both), which decides who is told
(genop.escalation.notices). Figures are dates, counts and the dispute's kind key only: never
its free-text reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, Select, select

from genop.disputes import State
from genop.escalation import Finding, Kind, Level
from genop.escalation.rules import Rule, ScanContext
from genop.store.models import Dispute


def mediation_overdue_query(ctx: ScanContext) -> Select[Any]:
    return (select(Dispute.number, Dispute.municipality, Dispute.about, Dispute.mediation_called_on,
                   Dispute.mediation_on)
            .where(Dispute.state == State.MEDIATION_CALLED.value, Dispute.mediation_on < ctx.as_of))


def mediation_overdue_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    found = []
    for row in rows:
        days = (ctx.as_of - row.mediation_on).days
        reason = (f"The mediation meeting of {row.mediation_on.isoformat()} (called on "
                  f"{row.mediation_called_on.isoformat()}) has passed {days} day(s) ago with no outcome recorded.")
        found.append(Finding(kind=Kind.MEDIATION_OVERDUE, subject=row.number, municipality=row.municipality,
                             level=Level.BREACH, since=row.mediation_on + timedelta(days=1), reason=reason,
                             figures={"about": row.about, "mediation_called_on": row.mediation_called_on.isoformat(),
                                      "mediation_on": row.mediation_on.isoformat(), "days_overdue": str(days)}))
    return found


def dispute_open_too_long_query(ctx: ScanContext) -> Select[Any]:
    opened_by = ctx.as_of - timedelta(days=ctx.agreement.disputes.open_warning_days)
    return (select(Dispute.number, Dispute.municipality, Dispute.about, Dispute.opened_on)
            .where(Dispute.state == State.OPEN.value, Dispute.opened_on <= opened_by))


def dispute_open_too_long_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    limit = ctx.agreement.disputes.open_warning_days
    found = []
    for row in rows:
        days = (ctx.as_of - row.opened_on).days
        reason = (f"Open {days} days since {row.opened_on.isoformat()} with no mediation called "
                  f"(warning after {limit} days; agreement §10: settle it, or call mediation).")
        found.append(Finding(kind=Kind.DISPUTE_OPEN_TOO_LONG, subject=row.number, municipality=row.municipality,
                             level=Level.WARNING, since=row.opened_on + timedelta(days=limit), reason=reason,
                             figures={"about": row.about, "opened_on": row.opened_on.isoformat(),
                                      "days_open": str(days), "threshold_days": str(limit)}))
    return found


DISPUTE_RULES: dict[Kind, Rule] = {
    Kind.MEDIATION_OVERDUE: Rule(mediation_overdue_query, mediation_overdue_findings),
    Kind.DISPUTE_OPEN_TOO_LONG: Rule(dispute_open_too_long_query, dispute_open_too_long_findings),
}
