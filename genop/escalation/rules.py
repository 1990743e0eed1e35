"""Case time and service level at risk (sub-agreement §7; AGREEMENT.md "What 'at risk' means").

Each kind is a pair: a query (one SQLAlchemy Core ``select`` over indexed columns, its
thresholds turned into cut-off dates in Python and compared in SQL) and a function turning
the rows it returns into :class:`~genop.escalation.Finding`s. Only cases that meet the
condition come back from the database; nothing here loops over every case.

Reasons and figures are built from dates, counts and configuration keys only: never a CPR
number, a name, a diagnosis text or a file name (the diagnosis group key and the Bilag 8
service-level group number are configuration, not health data about a person).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, case, func, literal, literal_column, or_, select
from sqlalchemy.orm import aliased

from genop.clock import COPENHAGEN, local
from genop.config import Agreement, EscalationThresholds
from genop.deadlines import add_working_days
from genop.escalation import Finding, Kind, Level
from genop.lifecycle import WAITING_FOR_START, CaseState
from genop.scope import Route
from genop.store.models import Case, CaseEvent, Visit
from genop.training import CANNOT_FOLLOW, SENT_BACK

HOURS = Decimal("0.01")


@dataclass(frozen=True)
class ScanContext:
    """What every rule needs: the business day and the agreement (thresholds in force that day)."""

    as_of: date
    agreement: Agreement

    @property
    def thresholds(self) -> EscalationThresholds:
        return self.agreement.escalation_on(self.as_of)

    @property
    def payer(self) -> ColumnElement[str]:
        return payer_of(self.agreement)


Query = Callable[[ScanContext], Select[Any]]
ToFindings = Callable[[ScanContext, Sequence[Row[Any]]], list[Finding]]


@dataclass(frozen=True)
class Rule:
    """One kind: its query and how its rows become findings."""

    query: Query
    findings: ToFindings


# -- pure pieces ----------------------------------------------------------------------------


def start_of(day: date) -> datetime:
    """Midnight in Copenhagen at the start of ``day``, aware (compared with UTC columns)."""
    return datetime.combine(day, time(0), tzinfo=COPENHAGEN)


def last_day_within(as_of: date, working_days: int) -> date:
    """The latest day ``d`` whose deadline ``add_working_days(d, working_days)`` is already past on
    ``as_of``: everything from before the end of ``d`` is late (deadlines are monotone in ``d``)."""
    day = as_of - timedelta(days=1)
    while add_working_days(day, working_days) >= as_of:
        day -= timedelta(days=1)
    return day


def overrun_days(weeks: int, factor: Decimal) -> int:
    """``weeks`` x ``factor`` as whole days, rounded up (a course runs past it the day after)."""
    return math.ceil(Decimal(weeks * 7) * factor)


def training_hours(individual_minutes: Decimal, group_minutes_per_patient: Decimal) -> Decimal:
    """Bilag 8: training time = individual hours + group hours / group size (each visit's own size)."""
    return ((individual_minutes + group_minutes_per_patient) / 60).quantize(HOURS, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Norm:
    """A diagnosis group's service-level norm (Bilag 3 sessions per course, Bilag 8 hours, weeks)."""

    diagnosis_group: str
    service_level_group: int
    sessions: int | None
    hours: Decimal
    weeks: int


def norms(agreement: Agreement) -> dict[str, Norm]:
    """Every diagnosis group with a service-level group (config ``service_level_group``); no group,
    no norm."""
    found: dict[str, Norm] = {}
    for key, group in agreement.diagnosis_groups.items():
        if group.service_level_group is None:
            continue
        level = agreement.service_levels[group.service_level_group]
        found[key] = Norm(key, level.group, group.sessions_per_course, level.training_hours_per_patient,
                          level.typical_weeks)
    return found


def payer_of(agreement: Agreement) -> ColumnElement[str]:
    """The party key that pays for a case: ``Case.payer``, else by its municipality code."""
    codes = {party.municipality_code: key for key, party in agreement.parties.items()
             if party.kind == "municipality" and party.municipality_code}
    # inlined (codes are digits, keys [a-z_]): the same expression can then be grouped by on PostgreSQL
    whens: list[tuple[ColumnElement[bool], ColumnElement[str]]] = [
        (Case.municipality_code == literal_column(f"'{code}'"), literal_column(f"'{key}'"))
        for code, key in codes.items()]
    return func.coalesce(Case.payer, case(*whens, else_=Case.municipality_code))


def _finding(ctx: ScanContext, kind: Kind, row: Row[Any], level: Level, since: date, reason: str,
             figures: dict[str, Any], instance: int = 0) -> Finding:
    shown = {name: value.isoformat() if isinstance(value, date) else str(value) for name, value in figures.items()}
    return Finding(kind=kind, subject=row.case_number, municipality=row.payer, level=level, since=since,
                   reason=reason, figures=shown, instance=instance)


def _states(*states: CaseState) -> list[str]:
    return [state.value for state in states]


def _not_started() -> ColumnElement[bool]:
    """Waiting for a start with a provider genop answers for: Copenhagen (from consent on) or
    Tårnby's own centre at Løjtegårdsvej (routing.at_own_centre)."""
    with_copenhagen = [s for s in WAITING_FOR_START if s != CaseState.ROUTED_ELSEWHERE]
    return or_(Case.state.in_(_states(*with_copenhagen)),
               and_(Case.state == CaseState.ROUTED_ELSEWHERE.value, Case.route == Route.LOJTEGAARDSVEJ.value))


def _offered_by(first_session_at: datetime | None, day: date) -> bool:
    return first_session_at is not None and local(first_session_at).date() <= day


# -- consent_missing ------------------------------------------------------------------------


def consent_missing_query(ctx: ScanContext) -> Select[Any]:
    due = ctx.as_of - timedelta(days=ctx.thresholds.consent_reminder_after_days)
    return (select(Case.case_number, ctx.payer.label("payer"), Case.received_on)
            .where(Case.state == CaseState.AWAITING_CONSENT.value, Case.received_on <= due))


def consent_missing_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    t = ctx.thresholds
    found = []
    for row in rows:
        days = (ctx.as_of - row.received_on).days
        breach = days >= t.consent_missing_after_days
        after = t.consent_missing_after_days if breach else t.consent_reminder_after_days
        reason = (f"No consent {days} days after the plan arrived on {row.received_on.isoformat()} "
                  f"({'escalation' if breach else 'reminder'} after {after} days).")
        found.append(_finding(ctx, Kind.CONSENT_MISSING, row, Level.BREACH if breach else Level.WARNING,
                              row.received_on + timedelta(days=after), reason,
                              {"received_on": row.received_on, "days_waiting": days, "threshold_days": after}))
    return found


# -- forward_late ---------------------------------------------------------------------------


def forward_late_query(ctx: ScanContext) -> Select[Any]:
    last_on_time = last_day_within(ctx.as_of, ctx.thresholds.forward_deadline_days)
    late = and_(Case.state == CaseState.FORWARDING.value,
                Case.consent_recorded_at < start_of(last_on_time + timedelta(days=1)))
    return (select(Case.case_number, ctx.payer.label("payer"), Case.state, Case.consent_recorded_at,
                   Case.received_on)
            .where(or_(late, Case.state == CaseState.FORWARD_FAILED.value)))


def forward_late_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    days = ctx.thresholds.forward_deadline_days
    found = []
    for row in rows:
        consent_day = local(row.consent_recorded_at).date() if row.consent_recorded_at else row.received_on
        deadline = add_working_days(consent_day, days)
        figures: dict[str, Any] = {"state": row.state, "consent_on": consent_day, "deadline": deadline,
                                   "deadline_working_days": days}
        if row.state == CaseState.FORWARD_FAILED.value:
            reason = f"Sending the order failed; consent was recorded on {consent_day.isoformat()}."
            found.append(_finding(ctx, Kind.FORWARD_LATE, row, Level.BREACH, consent_day, reason, figures))
        else:
            reason = (f"Consent recorded on {consent_day.isoformat()}, the order not sent by "
                      f"{deadline.isoformat()} ({days} working days).")
            found.append(_finding(ctx, Kind.FORWARD_LATE, row, Level.BREACH, deadline + timedelta(days=1),
                                  reason, figures))
    return found


# -- no_start_offered -----------------------------------------------------------------------


def no_start_offered_query(ctx: ScanContext) -> Select[Any]:
    return (select(Case.case_number, ctx.payer.label("payer"), Case.discharge_date, Case.free_choice_from)
            .where(_not_started(), Case.first_session_offered_on.is_(None), Case.free_choice_from <= ctx.as_of))


def no_start_offered_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    found = []
    for row in rows:
        reason = (f"No first session offered by {row.free_choice_from.isoformat()}, 7 days after discharge on "
                  f"{row.discharge_date.isoformat()}: the citizen may choose a provider (Health Act §140(4)).")
        found.append(_finding(ctx, Kind.NO_START_OFFERED, row, Level.BREACH, row.free_choice_from, reason,
                              {"discharge_date": row.discharge_date, "free_choice_from": row.free_choice_from,
                               "days_since_discharge": (ctx.as_of - row.discharge_date).days}))
    return found


# -- start_by -------------------------------------------------------------------------------


def start_by_query(ctx: ScanContext) -> Select[Any]:
    horizon = ctx.as_of + timedelta(days=ctx.thresholds.start_by_warning_days)
    return (select(Case.case_number, ctx.payer.label("payer"), Case.start_by, Case.first_session_at,
                   Case.received_on)
            .where(_not_started(), Case.start_by.is_not(None), Case.start_by <= horizon,
                   _no_session_before(Case.start_by)))


def _no_session_before(day: Any) -> ColumnElement[bool]:
    """A superset of "no first session by the end of ``day`` in Copenhagen": no session, or one
    from UTC midnight of ``day`` on (both dialects compare a timestamp with a date so); the
    rule's function decides each row exactly in Copenhagen time."""
    return or_(Case.first_session_at.is_(None), Case.first_session_at >= day)


def start_by_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    warn = ctx.thresholds.start_by_warning_days
    found = []
    for row in rows:
        if _offered_by(row.first_session_at, row.start_by):
            continue
        if row.start_by < ctx.as_of:
            reason = f"The plan's start-by date {row.start_by.isoformat()} has passed with no start."
            level, since = Level.BREACH, row.start_by + timedelta(days=1)
        else:
            reason = (f"The plan's start-by date {row.start_by.isoformat()} is {(row.start_by - ctx.as_of).days} "
                      f"days away and no first session is offered by then (warning {warn} days before).")
            level, since = Level.WARNING, max(row.start_by - timedelta(days=warn), row.received_on)
        found.append(_finding(ctx, Kind.START_BY, row, level, since, reason,
                              {"start_by": row.start_by, "warning_days": warn}))
    return found


# -- urgent_not_started ---------------------------------------------------------------------


def urgent_not_started_query(ctx: ScanContext) -> Select[Any]:
    last = last_day_within(ctx.as_of, ctx.thresholds.urgent_start_days)
    return (select(Case.case_number, ctx.payer.label("payer"), Case.discharge_date, Case.first_session_at)
            .where(Case.urgent.is_(True), _not_started(), Case.discharge_date <= last,
                   _no_session_before(Case.discharge_date)))


def urgent_not_started_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    days = ctx.thresholds.urgent_start_days
    found = []
    for row in rows:
        deadline = add_working_days(row.discharge_date, days)
        if _offered_by(row.first_session_at, deadline):
            continue
        reason = (f"An urgent plan (discharge {row.discharge_date.isoformat()}) has no start by "
                  f"{deadline.isoformat()} ({days} working days).")
        found.append(_finding(ctx, Kind.URGENT_NOT_STARTED, row, Level.BREACH, deadline + timedelta(days=1),
                              reason, {"discharge_date": row.discharge_date, "deadline": deadline,
                                       "deadline_working_days": days}))
    return found


# -- no_recent_visit ------------------------------------------------------------------------


def _visit_day(ctx: ScanContext, extreme: Callable[[Any], Any]) -> Any:
    """The first or last visit of the case up to ``as_of``: one probe of ix_visits_case_id_date per case."""
    return (select(extreme(Visit.visit_date)).where(Visit.case_id == Case.id, Visit.visit_date <= ctx.as_of)
            .scalar_subquery())


def no_recent_visit_query(ctx: ScanContext) -> Select[Any]:
    cutoff = ctx.as_of - timedelta(days=ctx.thresholds.no_visit_after_days)
    courses = (select(Case.case_number, ctx.payer.label("payer"),
                      func.coalesce(_visit_day(ctx, func.max), Case.forwarded_on, Case.received_on)
                      .label("last_visit"))
               .where(Case.state == CaseState.IN_TRAINING.value).subquery("courses"))
    return select(courses).where(courses.c.last_visit <= cutoff)


def no_recent_visit_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    days = ctx.thresholds.no_visit_after_days
    found = []
    for row in rows:
        last: date | None = row.last_visit
        since = last + timedelta(days=days) if last else ctx.as_of
        shown = last.isoformat() if last else "none recorded"
        reason = f"In training with no visit for {days} days or more (last visit: {shown})."
        found.append(_finding(ctx, Kind.NO_RECENT_VISIT, row, Level.BREACH, since, reason,
                              {"last_visit": shown, "threshold_days": days}))
    return found


# -- training_over_norm ---------------------------------------------------------------------


def _per_group(norm_of: dict[str, Any]) -> ColumnElement[Any]:
    return case(norm_of, value=Case.diagnosis_group, else_=None)


def training_over_norm_query(ctx: ScanContext) -> Select[Any]:
    """Visits are aggregated per course first (narrow rows: case id and group), the case's number
    and payer joined to the courses over the norm only."""
    factor = ctx.thresholds.service_level_warning_factor
    found = norms(ctx.agreement)
    sessions = {k: int(math.floor(n.sessions * factor)) for k, n in found.items() if n.sessions is not None}
    minutes = {k: float(n.hours * factor * 60) for k, n in found.items()}
    individual = func.sum(case((Visit.mode == "group", 0), else_=Visit.minutes))
    grouped = func.sum(case((and_(Visit.mode == "group", Visit.group_size > 0),
                             Visit.minutes * literal(1.0) / Visit.group_size),
                            (Visit.mode == "group", Visit.minutes), else_=0))
    count = func.count(Visit.id)
    courses = (select(Visit.case_id, Case.diagnosis_group, count.label("visits"),
                      individual.label("individual_minutes"), grouped.label("group_minutes"),
                      func.max(Visit.visit_date).label("last_visit"))
               .join(Case, Case.id == Visit.case_id)
               .where(Case.state == CaseState.IN_TRAINING.value, Case.diagnosis_group.in_(list(found)),
                      Visit.visit_date <= ctx.as_of)
               .group_by(Visit.case_id, Case.diagnosis_group)
               .having(or_(count > _per_group(sessions), individual + grouped > _per_group(minutes)))
               .subquery("courses"))
    return (select(Case.case_number, ctx.payer.label("payer"), courses.c.diagnosis_group, courses.c.visits,
                   courses.c.individual_minutes, courses.c.group_minutes, courses.c.last_visit)
            .join(courses, courses.c.case_id == Case.id))


def training_over_norm_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    t = ctx.thresholds
    found = []
    by_group = norms(ctx.agreement)
    for row in rows:
        norm = by_group[row.diagnosis_group]
        hours = training_hours(Decimal(str(row.individual_minutes or 0)), Decimal(str(row.group_minutes or 0)))
        over_hours = hours / norm.hours
        over_visits = Decimal(row.visits) / norm.sessions if norm.sessions else Decimal(0)
        over = max(over_hours, over_visits)
        if over <= t.service_level_warning_factor:
            continue
        breach = over > t.service_level_overrun_factor
        sessions = str(norm.sessions) if norm.sessions else "unknown"
        reason = (f"Delivered {row.visits} visits (norm {sessions}) and {hours} training hours (norm "
                  f"{norm.hours}, service-level group {norm.service_level_group}): "
                  f"{over.quantize(HOURS)} x the norm.")
        found.append(_finding(ctx, Kind.TRAINING_OVER_NORM, row, Level.BREACH if breach else Level.WARNING,
                              row.last_visit, reason,
                              {"visits": row.visits, "norm_visits": sessions, "training_hours": hours,
                               "norm_hours": norm.hours, "ratio": over.quantize(HOURS),
                               "diagnosis_group": norm.diagnosis_group,
                               "service_level_group": norm.service_level_group,
                               "warning_factor": t.service_level_warning_factor,
                               "breach_factor": t.service_level_overrun_factor}))
    return found


# -- duration_over_norm ---------------------------------------------------------------------


def duration_over_norm_query(ctx: ScanContext) -> Select[Any]:
    factor = ctx.thresholds.duration_overrun_factor
    cutoff = {k: ctx.as_of - timedelta(days=overrun_days(n.weeks, factor)) for k, n in norms(ctx.agreement).items()}
    courses = (select(Case.case_number, ctx.payer.label("payer"), Case.diagnosis_group,
                      _visit_day(ctx, func.min).label("first_visit"))
               .where(Case.state == CaseState.IN_TRAINING.value, Case.diagnosis_group.in_(list(cutoff)))
               .subquery("courses"))
    limit = case(cutoff, value=courses.c.diagnosis_group, else_=None)
    return select(courses).where(courses.c.first_visit < limit)


def duration_over_norm_findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
    factor = ctx.thresholds.duration_overrun_factor
    by_group = norms(ctx.agreement)
    found = []
    for row in rows:
        norm = by_group[row.diagnosis_group]
        days = overrun_days(norm.weeks, factor)
        weeks = Decimal((ctx.as_of - row.first_visit).days) / 7
        reason = (f"In training {weeks.quantize(Decimal('0.1'))} weeks since the first session on "
                  f"{row.first_visit.isoformat()}; norm {norm.weeks} weeks x {factor} "
                  f"(service-level group {norm.service_level_group}).")
        found.append(_finding(ctx, Kind.DURATION_OVER_NORM, row, Level.BREACH,
                              row.first_visit + timedelta(days=days + 1), reason,
                              {"first_visit": row.first_visit, "weeks": weeks.quantize(Decimal("0.1")),
                               "norm_weeks": norm.weeks, "factor": factor, "limit_days": days,
                               "diagnosis_group": norm.diagnosis_group,
                               "service_level_group": norm.service_level_group}))
    return found


# -- plan_cannot_be_followed / sent_back ----------------------------------------------------


def _report_query(event_kind: str) -> Query:
    def query(ctx: ScanContext) -> Select[Any]:
        numbered = (select(CaseEvent.case_id, CaseEvent.at,
                           func.row_number().over(partition_by=CaseEvent.case_id, order_by=CaseEvent.id)
                           .label("sequence"))
                    .where(CaseEvent.kind == event_kind, CaseEvent.at < start_of(ctx.as_of + timedelta(days=1)))
                    .subquery())
        report = aliased(numbered)
        opened = start_of(ctx.as_of - timedelta(days=ctx.thresholds.report_open_days))
        return (select(Case.case_number, ctx.payer.label("payer"), report.c.at, report.c.sequence)
                .join(report, report.c.case_id == Case.id)
                .where(report.c.at >= opened))
    return query


def _report_findings(kind: Kind, what: str) -> ToFindings:
    def findings(ctx: ScanContext, rows: Sequence[Row[Any]]) -> list[Finding]:
        days = ctx.thresholds.report_open_days
        found = []
        for row in rows:
            day = local(row.at).date()
            reason = (f"{what} (report {row.sequence}) on {day.isoformat()}; open until "
                      f"{(day + timedelta(days=days)).isoformat()}.")
            found.append(_finding(ctx, kind, row, Level.WARNING, day, reason,
                                  {"reported_on": day, "report": row.sequence, "open_days": days},
                                  instance=row.sequence))
        return found
    return findings


CASE_RULES: dict[Kind, Rule] = {
    Kind.CONSENT_MISSING: Rule(consent_missing_query, consent_missing_findings),
    Kind.FORWARD_LATE: Rule(forward_late_query, forward_late_findings),
    Kind.NO_START_OFFERED: Rule(no_start_offered_query, no_start_offered_findings),
    Kind.START_BY: Rule(start_by_query, start_by_findings),
    Kind.URGENT_NOT_STARTED: Rule(urgent_not_started_query, urgent_not_started_findings),
    Kind.NO_RECENT_VISIT: Rule(no_recent_visit_query, no_recent_visit_findings),
    Kind.TRAINING_OVER_NORM: Rule(training_over_norm_query, training_over_norm_findings),
    Kind.DURATION_OVER_NORM: Rule(duration_over_norm_query, duration_over_norm_findings),
    Kind.PLAN_CANNOT_BE_FOLLOWED: Rule(_report_query(CANNOT_FOLLOW),
                                       _report_findings(Kind.PLAN_CANNOT_BE_FOLLOWED,
                                                        "Copenhagen reported the plan cannot be followed")),
    Kind.SENT_BACK: Rule(_report_query(SENT_BACK),
                         _report_findings(Kind.SENT_BACK, "Copenhagen sent the citizen back to Løjtegårdsvej")),
}
