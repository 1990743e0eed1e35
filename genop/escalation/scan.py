"""The morning scan: every kind's findings for a day (PLACEHOLDER: consent_missing only).

The full scan, one set-based query per kind, lives on its own branch and replaces this file;
this placeholder keeps the same signature so the trail, the notices and the flow can be built
and tested against it. Only ``consent_missing`` is implemented, as AGREEMENT.md "What 'at
risk' means" describes it: a case still awaiting consent ``consent_reminder_after_days``
calendar days after its plan arrived is a warning (a reminder to Tårnby's caseworkers), after
``consent_missing_after_days`` a breach.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from genop.config import Agreement
from genop.escalation import Finding, Kind, Level
from genop.lifecycle import CaseState
from genop.store.models import Case


def scan(session: Session, *, as_of: date, agreement: Agreement) -> list[Finding]:
    return consent_missing(session, as_of=as_of, agreement=agreement)


def consent_missing(session: Session, *, as_of: date, agreement: Agreement) -> list[Finding]:
    """Cases awaiting consent past the reminder day (one query on ``ix_cases_state``)."""
    thresholds = agreement.escalation_on(as_of)
    reminder, missing = thresholds.consent_reminder_after_days, thresholds.consent_missing_after_days
    rows = session.execute(
        select(Case.case_number, Case.payer, Case.received_on)
        .where(Case.state == CaseState.AWAITING_CONSENT.value,
               Case.received_on <= as_of - timedelta(days=reminder))
        .order_by(Case.id)).all()
    findings = []
    for number, payer, received_on in rows:
        waited = (as_of - received_on).days
        breach = waited >= missing
        due = received_on + timedelta(days=missing if breach else reminder)
        findings.append(Finding(
            kind=Kind.CONSENT_MISSING, subject=number, municipality=payer or "tarnby",
            level=Level.BREACH if breach else Level.WARNING, since=due,
            reason=f"no consent {waited} days after the plan arrived on {received_on.isoformat()} "
                   f"(reminder after {reminder} days, escalation after {missing})",
            figures={"received_on": received_on.isoformat(), "days_waiting": str(waited),
                     "reminder_after_days": str(reminder), "missing_after_days": str(missing)}))
    return findings
