"""The escalation scan's rules against the case store, on SQLite and PostgreSQL: every kind is
found at its level on the day its threshold passes, not the day before, and no longer once its
condition clears; each names the municipality that pays; none carries a CPR number, a name, a
diagnosis text or a file name.

Cases are written straight into the store (as tests/settlement_factories.py does): the scan
reads the columns the lifecycle leaves behind, and the business day is driven with ``as_of``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from genop.clock import COPENHAGEN
from genop.escalation import BUDGET_TOTAL, Finding, Kind, Level, budget_subject
from genop.escalation.budget import bilag3_annual_cost, months_left
from genop.escalation.scan import ScanContext, scan, scan_kind
from genop.store.models import Case, CaseEvent, CourseAdjustment, SettledCourse, SettlementDocumentRecord, Visit
from tests.factories import EXAMPLE
from tests.settlement_factories import add_course, visits_on

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CPR = "0101451234"
PRIVATE = (CPR, "010145-1234", EXAMPLE["citizen"]["name"], "Karen", "Jensen", EXAMPLE["diagnoses"][0]["text"],
           "Englandsvej", "plan.json")
CODES = {"tarnby": "185", "dragor": "155"}
_numbers: Iterator[int] = iter(range(1, 10_000))


@pytest.fixture
def session(runtime) -> Iterator[Session]:  # noqa: ANN001 - genop.runtime.Runtime
    with runtime.store.session() as session:
        yield session


@pytest.fixture
def agreement(runtime):  # noqa: ANN001, ANN201 - genop.config.Agreement
    return runtime.agreement


def add_case(session: Session, state: str, *, municipality: str = "tarnby", payer: str | None = None,
             route: str = "copenhagen", discharge: date = date(2026, 11, 2), **fields: Any) -> Case:
    number = f"GEN-2026-{next(_numbers):06d}"
    values: dict[str, Any] = dict(
        case_number=number, plan_id=f"plan-{number}", state=state, route=route,
        municipality_code=CODES[municipality], payer=payer, diagnosis_group="hip_fracture", level="basal",
        discharge_date=discharge, free_choice_from=discharge + timedelta(days=7), cpr=CPR,
        received_on=discharge, created_at=NOW, updated_at=NOW)
    values.update(fields)
    case = Case(**values)
    session.add(case)
    session.flush()
    return case


def add_visits(session: Session, case: Case, days: list[date], *, minutes: int = 45, mode: str = "individual",
               group_size: int | None = None) -> None:
    for n, day in enumerate(days):
        fingerprint = hashlib.sha256(f"{case.case_number}|{day}|{mode}|{n}|{minutes}".encode()).hexdigest()
        session.add(Visit(case_id=case.id, visit_date=day, sks_code="BLNA", tariff_group="GEN1A", minutes=minutes,
                          mode=mode, group_size=group_size, fingerprint=fingerprint, recorded_at=NOW))
    session.flush()


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=COPENHAGEN)


def found(session: Session, agreement, kind: Kind, as_of: date) -> dict[str, Finding]:  # noqa: ANN001
    findings = scan_kind(session, kind, ScanContext(as_of, agreement))
    assert all(f.kind == kind for f in findings)
    assert_private(findings)
    return {f.key: f for f in findings}


def assert_private(findings: list[Finding]) -> None:
    for finding in findings:
        text = " ".join([finding.reason, finding.subject, *finding.figures, *finding.figures.values()])
        for private in PRIVATE:
            assert private.lower() not in text.lower(), (finding.key, private)
        assert all(isinstance(value, str) for value in finding.figures.values())


def key(kind: Kind, case: Case, instance: int = 0) -> str:
    return f"{kind.value}:{case.case_number}" + (f":{instance}" if instance else "")


def levels(findings: dict[str, Finding]) -> dict[str, Level]:
    return {k: f.level for k, f in findings.items()}


# -- case time ------------------------------------------------------------------------------


def test_missing_consent_is_a_reminder_after_3_days_and_an_escalation_after_5(session, agreement):
    waiting = add_case(session, "awaiting_consent", received_on=date(2026, 11, 2))
    add_case(session, "forwarding", received_on=date(2026, 11, 2))
    kind = Kind.CONSENT_MISSING
    assert found(session, agreement, kind, date(2026, 11, 4)) == {}
    reminder = found(session, agreement, kind, date(2026, 11, 5))
    assert levels(reminder) == {key(kind, waiting): Level.WARNING}
    assert reminder[key(kind, waiting)].since == date(2026, 11, 5)
    assert reminder[key(kind, waiting)].municipality == "tarnby"
    escalated = found(session, agreement, kind, date(2026, 11, 7))[key(kind, waiting)]
    assert (escalated.level, escalated.since) == (Level.BREACH, date(2026, 11, 7))
    assert escalated.figures["days_waiting"] == "5"
    waiting.state = "forwarding"
    session.flush()
    assert found(session, agreement, kind, date(2026, 11, 9)) == {}


def test_order_not_sent_two_working_days_after_consent_is_late(session, agreement):
    # Thursday 10:00: the deadline is Monday (2 Danish working days), late from Tuesday
    thursday = add_case(session, "forwarding", consent_recorded_at=at(date(2026, 11, 5)))
    # Friday 00:30 in Copenhagen is Thursday 23:30 UTC: the consent day is Friday, late from Wednesday
    friday = add_case(session, "forwarding", consent_recorded_at=at(date(2026, 11, 6), 0, 30), municipality="dragor")
    add_case(session, "forwarded", consent_recorded_at=at(date(2026, 11, 2)))
    kind = Kind.FORWARD_LATE
    assert found(session, agreement, kind, date(2026, 11, 9)) == {}
    tuesday = found(session, agreement, kind, date(2026, 11, 10))
    assert levels(tuesday) == {key(kind, thursday): Level.BREACH}
    assert tuesday[key(kind, thursday)].since == date(2026, 11, 10)
    wednesday = found(session, agreement, kind, date(2026, 11, 11))
    assert set(wednesday) == {key(kind, thursday), key(kind, friday)}
    assert wednesday[key(kind, friday)].municipality == "dragor"
    thursday.state = "forwarded"
    session.flush()
    assert set(found(session, agreement, kind, date(2026, 11, 11))) == {key(kind, friday)}


def test_a_failed_order_is_a_breach_at_once(session, agreement):
    failed = add_case(session, "forward_failed", consent_recorded_at=at(date(2026, 11, 5)))
    late = found(session, agreement, Kind.FORWARD_LATE, date(2026, 11, 5))
    assert levels(late) == {key(Kind.FORWARD_LATE, failed): Level.BREACH}
    assert late[key(Kind.FORWARD_LATE, failed)].figures["state"] == "forward_failed"


def test_no_first_session_offered_by_the_free_choice_day_is_told_to_staff(session, agreement):
    copenhagen = add_case(session, "forwarded")
    own_centre = add_case(session, "routed_elsewhere", route="lojtegaardsvej", municipality="dragor")
    add_case(session, "routed_elsewhere", route="region")
    add_case(session, "forwarded", first_session_offered_on=date(2026, 11, 4),
             first_session_at=at(date(2026, 11, 6)))
    kind = Kind.NO_START_OFFERED
    assert found(session, agreement, kind, date(2026, 11, 8)) == {}
    due = found(session, agreement, kind, date(2026, 11, 9))
    assert levels(due) == {key(kind, copenhagen): Level.BREACH, key(kind, own_centre): Level.BREACH}
    assert due[key(kind, own_centre)].municipality == "dragor"
    assert due[key(kind, copenhagen)].since == date(2026, 11, 9)
    copenhagen.first_session_offered_on = date(2026, 11, 10)
    session.flush()
    assert set(found(session, agreement, kind, date(2026, 11, 10))) == {key(kind, own_centre)}


def test_start_by_warns_two_days_before_and_is_a_breach_once_passed(session, agreement):
    waiting = add_case(session, "forwarded", start_by=date(2026, 11, 20))
    offered = add_case(session, "forwarded", start_by=date(2026, 11, 20), first_session_at=at(date(2026, 11, 19)))
    late = add_case(session, "routed_elsewhere", route="lojtegaardsvej", start_by=date(2026, 11, 20),
                    first_session_at=at(date(2026, 11, 21), 0, 30))  # 20 Nov 23:30 UTC: the 21st in Copenhagen
    add_case(session, "in_training", start_by=date(2026, 11, 20))
    kind = Kind.START_BY
    assert found(session, agreement, kind, date(2026, 11, 17)) == {}
    warned = found(session, agreement, kind, date(2026, 11, 18))
    assert levels(warned) == {key(kind, waiting): Level.WARNING, key(kind, late): Level.WARNING}
    assert warned[key(kind, waiting)].since == date(2026, 11, 18)
    assert set(found(session, agreement, kind, date(2026, 11, 20))) == {key(kind, waiting), key(kind, late)}
    passed = found(session, agreement, kind, date(2026, 11, 21))
    assert levels(passed) == {key(kind, waiting): Level.BREACH, key(kind, late): Level.BREACH}  # offered: started
    assert passed[key(kind, waiting)].since == date(2026, 11, 21)
    waiting.state = offered.state = "in_training"
    late.first_session_at = at(date(2026, 11, 20), 23, 30)
    session.flush()
    assert found(session, agreement, kind, date(2026, 11, 22)) == {}


def test_an_urgent_plan_without_a_start_after_one_working_day_is_a_breach(session, agreement):
    friday = date(2026, 11, 6)
    urgent = add_case(session, "forwarded", urgent=True, discharge=friday)
    add_case(session, "forwarded", urgent=False, discharge=friday)
    add_case(session, "forwarded", urgent=True, discharge=friday, first_session_at=at(date(2026, 11, 9)))
    kind = Kind.URGENT_NOT_STARTED
    assert found(session, agreement, kind, date(2026, 11, 9)) == {}  # Monday: the first working day after
    tuesday = found(session, agreement, kind, date(2026, 11, 10))
    assert levels(tuesday) == {key(kind, urgent): Level.BREACH}
    assert tuesday[key(kind, urgent)].since == date(2026, 11, 10)
    urgent.state = "in_training"
    session.flush()
    assert found(session, agreement, kind, date(2026, 11, 10)) == {}


def test_a_course_with_no_visit_for_14_days_is_a_breach_until_the_next_visit(session, agreement):
    training = add_case(session, "in_training", municipality="dragor")
    add_visits(session, training, [date(2026, 11, 1), date(2026, 11, 5)])
    kind = Kind.NO_RECENT_VISIT
    assert found(session, agreement, kind, date(2026, 11, 18)) == {}
    quiet = found(session, agreement, kind, date(2026, 11, 19))
    assert levels(quiet) == {key(kind, training): Level.BREACH}
    assert (quiet[key(kind, training)].since, quiet[key(kind, training)].municipality) == (date(2026, 11, 19), "dragor")
    add_visits(session, training, [date(2026, 11, 20)])
    assert found(session, agreement, kind, date(2026, 11, 21)) == {}
    assert set(found(session, agreement, kind, date(2026, 12, 4))) == {key(kind, training)}


# -- service level --------------------------------------------------------------------------


def test_visits_above_the_norm_warn_and_above_1_25_times_it_breach(session, agreement):
    # hip fracture: Bilag 3 9 sessions per course, Bilag 8 group 1 (2.3 training hours)
    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(12)]
    warned = add_case(session, "in_training")
    add_visits(session, warned, days[:10], minutes=10)
    breached = add_case(session, "in_training")
    add_visits(session, breached, days[:12], minutes=10)
    no_norm = add_case(session, "in_training", diagnosis_group="other_replacement")
    add_visits(session, no_norm, days * 3, minutes=60)
    kind = Kind.TRAINING_OVER_NORM
    assert found(session, agreement, kind, days[8]) == {}  # 9 visits: the norm itself
    assert levels(found(session, agreement, kind, days[9])) == {key(kind, warned): Level.WARNING,
                                                                 key(kind, breached): Level.WARNING}
    last = found(session, agreement, kind, days[11])
    assert levels(last) == {key(kind, warned): Level.WARNING, key(kind, breached): Level.BREACH}
    assert last[key(kind, breached)].figures["visits"] == "12"
    assert last[key(kind, breached)].figures["service_level_group"] == "1"


def test_training_hours_count_group_time_divided_by_the_group(session, agreement):
    # group 1: 2.3 h. Five group sessions of 120 minutes for 4 = 2.5 h (warning); 4 x 45 min alone = 3 h (breach)
    group = add_case(session, "in_training")
    add_visits(session, group, [date(2026, 11, n) for n in range(2, 7)], minutes=120, mode="group", group_size=4)
    alone = add_case(session, "in_training")
    add_visits(session, alone, [date(2026, 11, n) for n in range(2, 6)], minutes=45)
    kind = Kind.TRAINING_OVER_NORM
    result = found(session, agreement, kind, date(2026, 11, 10))
    assert levels(result) == {key(kind, group): Level.WARNING, key(kind, alone): Level.BREACH}
    assert result[key(kind, group)].figures["training_hours"] == "2.50"
    assert result[key(kind, alone)].figures["training_hours"] == "3.00"


def test_a_course_past_1_5_times_the_norms_weeks_is_a_breach(session, agreement):
    # hip fracture: group 1, typical 4 weeks x 1.5 = 42 days after the first session
    course = add_case(session, "in_training")
    add_visits(session, course, [date(2026, 10, 1), date(2026, 11, 10)])
    add_visits(session, add_case(session, "completed"), [date(2026, 9, 1)])
    kind = Kind.DURATION_OVER_NORM
    assert found(session, agreement, kind, date(2026, 11, 12)) == {}
    late = found(session, agreement, kind, date(2026, 11, 13))
    assert levels(late) == {key(kind, course): Level.BREACH}
    assert late[key(kind, course)].since == date(2026, 11, 13)
    course.state = "completed"
    session.flush()
    assert found(session, agreement, kind, date(2026, 11, 13)) == {}


def _disputes(session: Session, agreement: Any, case: Case, as_of: date) -> None:
    """A dispute open past disputes.open_warning_days, and one whose mediation meeting has passed."""
    from genop.disputes import SubjectKind
    from genop.disputes.records import call_mediation, open_dispute

    opened_on = as_of - timedelta(days=agreement.disputes.open_warning_days)
    for _ in range(2):
        dispute = open_dispute(session, agreement, subject=SubjectKind.CASE, reference=case.case_number,
                               about="other", reason="uenige", by="A", day=opened_on, now=NOW)
    call_mediation(session, agreement, dispute, meeting_on=as_of - timedelta(days=1), by="A", why="uenige",
                   day=as_of - timedelta(days=2), now=NOW)


def _report(session: Session, case: Case, kind: str, when: datetime) -> None:
    session.add(CaseEvent(case_id=case.id, at=when, kind=kind, detail="reported", data={}))
    session.flush()


def test_each_cannot_follow_report_is_a_finding_for_14_days(session, agreement):
    case = add_case(session, "in_training", municipality="dragor")
    _report(session, case, "cannot_follow", at(date(2026, 11, 10), 9))
    _report(session, case, "cannot_follow", at(date(2026, 11, 12), 0, 15))  # 11 Nov 23:15 UTC
    kind = Kind.PLAN_CANNOT_BE_FOLLOWED
    first, second = key(kind, case, 1), key(kind, case, 2)
    assert found(session, agreement, kind, date(2026, 11, 9)) == {}
    assert set(found(session, agreement, kind, date(2026, 11, 11))) == {first}
    both = found(session, agreement, kind, date(2026, 11, 12))
    assert set(both) == {first, second}
    assert both[second].since == date(2026, 11, 12) and both[second].municipality == "dragor"
    assert set(found(session, agreement, kind, date(2026, 11, 24))) == {first, second}
    assert set(found(session, agreement, kind, date(2026, 11, 25))) == {second}
    assert found(session, agreement, kind, date(2026, 11, 27)) == {}


def test_a_send_back_is_a_finding_for_14_days(session, agreement):
    case = add_case(session, "routed_elsewhere", route="lojtegaardsvej", first_session_offered_on=date(2026, 11, 3))
    _report(session, case, "sent_back", at(date(2026, 11, 16)))
    kind = Kind.SENT_BACK
    assert found(session, agreement, kind, date(2026, 11, 15)) == {}
    assert levels(found(session, agreement, kind, date(2026, 11, 16))) == {key(kind, case, 1): Level.WARNING}
    assert found(session, agreement, kind, date(2026, 12, 1)) == {}


# -- budget ---------------------------------------------------------------------------------


def _settled(session: Session, case: Case, payer: str, amount: Decimal, *, month: str, completed_on: date) -> None:
    document = SettlementDocumentRecord(
        key=f"settlement:{month}:{payer}:{case.id}", number=f"S-{case.id}", kind="Invoice", purpose="settlement",
        payer=payer, ean="5798009933423", period=month, issue_date=completed_on + timedelta(days=10),
        due_date=None, line_total=amount, prepaid=Decimal("0.00"), payable=amount, aconto=Decimal("0.00"),
        carried=Decimal("0.00"), note=None, xml=b"", html="", xml_path="", html_path="", created_at=NOW)
    session.add(document)
    session.flush()
    session.add(SettledCourse(case_id=case.id, document_id=document.id, line_no=1, month=month,
                              completed_on=completed_on, visits={}, amount=amount))
    session.execute(update(Visit).where(Visit.case_id == case.id).values(settled_document_id=document.id))
    session.add(CourseAdjustment(case_id=case.id, document_id=document.id, line_no=2, regulation="test",
                                 original=amount, repriced=amount + Decimal("10.00"),
                                 difference=Decimal("10.00"), created_at=NOW))
    session.flush()


def test_the_budget_forecast_uses_the_run_rate_of_the_last_three_months(session, agreement):
    # Dragør: 100 home visits (GEN3A, DKK 1381.00) completed in each of April, May (not yet settled) and June
    for month in (4, 5, 6):
        add_course(session, f"GEN-2026-9000{month:02d}", payer="dragor", completed_on=date(2026, month, 20),
                   visits=visits_on(date(2026, month, 10), AAF6=100))
    settled = add_course(session, "GEN-2026-900001", payer="dragor", completed_on=date(2026, 1, 20),
                         visits=visits_on(date(2026, 1, 10), BLNA=1))
    _settled(session, settled, "dragor", Decimal("640.00"), month="2026-01", completed_on=date(2026, 1, 20))
    add_course(session, "GEN-2026-900010", payer="dragor", completed_on=None,
               visits=visits_on(date(2026, 7, 1), BLNR=2))
    as_of = date(2026, 7, 15)
    run_rate = Decimal("138100.00")
    completed = 3 * run_rate + Decimal("640.00") + Decimal("10.00")
    expected = (completed + run_rate * months_left(as_of)).quantize(Decimal("0.01"))

    findings = {f.key: f for f in scan(session, as_of=as_of, agreement=agreement)
                if f.kind in (Kind.BUDGET_FORECAST, Kind.READINESS_CLAUSE)}
    assert_private(list(findings.values()))
    dragor = findings[f"budget_forecast:{budget_subject('dragor')}"]
    assert (dragor.level, dragor.municipality) == (Level.BREACH, "dragor")
    assert dragor.figures["method"] == "run_rate_3_months"
    assert dragor.figures["run_rate_month"] == "138100.00"
    assert dragor.figures["settled"] == "640.00" and dragor.figures["adjusted"] == "10.00"
    assert dragor.figures["in_training"] == "1710.00"
    assert dragor.figures["forecast"] == str(expected)
    assert dragor.figures["budget"] == "600000.00"
    assert f"budget_forecast:{budget_subject('tarnby')}" not in findings
    assert f"budget_forecast:{budget_subject(BUDGET_TOTAL)}" not in findings  # 1.18 million of 2.4
    readiness = findings[f"readiness_clause:{budget_subject(BUDGET_TOTAL)}"]
    assert (readiness.level, readiness.municipality) == (Level.WARNING, BUDGET_TOTAL)
    assert readiness.figures["forecast"] == str(expected)


def test_in_january_the_forecast_falls_back_to_bilag_3s_course_mix(session, agreement):
    add_course(session, "GEN-2026-900100", payer="tarnby", completed_on=None,
               visits=visits_on(date(2026, 1, 5), AAF6=1200))  # DKK 1,657,200 in training now
    as_of = date(2026, 1, 20)
    expected = bilag3_annual_cost(agreement, as_of) * agreement.aconto.split["tarnby"] / 12
    findings = {f.key: f for f in scan(session, as_of=as_of, agreement=agreement)
                if f.kind in (Kind.BUDGET_FORECAST, Kind.READINESS_CLAUSE)}
    tarnby = findings[f"budget_forecast:{budget_subject('tarnby')}"]
    assert tarnby.figures["method"] == "bilag3_course_mix"
    assert tarnby.figures["in_training"] == "1657200.00"
    assert tarnby.figures["forecast"] == str(max(Decimal("1657200"), expected * months_left(as_of))
                                             .quantize(Decimal("0.01")))
    assert not any(f.kind == Kind.READINESS_CLAUSE for f in findings.values())  # told from April


def test_in_february_the_run_rate_is_januarys_and_what_is_in_training_is_its_floor(session, agreement):
    add_course(session, "GEN-2026-900200", payer="tarnby", completed_on=date(2026, 1, 25),
               visits=visits_on(date(2026, 1, 12), BLNA=10))  # DKK 6,400 completed in January
    add_course(session, "GEN-2026-900201", payer="tarnby", completed_on=None,
               visits=visits_on(date(2026, 2, 2), AAF6=1200))  # DKK 1,657,200 in training now
    findings = {f.key: f for f in scan(session, as_of=date(2026, 2, 10), agreement=agreement)}
    tarnby = findings[f"budget_forecast:{budget_subject('tarnby')}"]
    assert tarnby.figures["method"] == "run_rate_1_months"
    assert tarnby.figures["run_rate_month"] == "6400.00"
    assert tarnby.figures["forecast"] == "1663600.00"  # 6,400 + max(1,657,200, 6,400 x 10.64)
    assert tarnby.level == Level.WARNING  # above 90% of DKK 1.8 million, not above it
    assert f"budget_forecast:{budget_subject('dragor')}" not in findings
    before = {f.key for f in scan(session, as_of=date(2026, 2, 1), agreement=agreement)}  # no visit in training yet
    assert f"budget_forecast:{budget_subject('tarnby')}" not in before


def test_one_scan_finds_every_kind_and_the_same_findings_when_run_again(session, agreement):
    as_of = date(2026, 11, 20)
    add_case(session, "awaiting_consent", received_on=date(2026, 11, 10))
    add_case(session, "forward_failed", consent_recorded_at=at(date(2026, 11, 18)))
    add_case(session, "forwarded", urgent=True, discharge=date(2026, 11, 12), start_by=date(2026, 11, 19))
    training = add_case(session, "in_training", municipality="dragor", discharge=date(2026, 9, 1))
    add_visits(session, training, [date(2026, 9, 10) + timedelta(days=n) for n in range(12)])
    _report(session, training, "cannot_follow", at(date(2026, 11, 19)))
    back = add_case(session, "routed_elsewhere", route="lojtegaardsvej", first_session_offered_on=date(2026, 11, 3))
    _report(session, back, "sent_back", at(date(2026, 11, 18)))
    add_course(session, "GEN-2026-900300", payer="tarnby", completed_on=None,
               visits=visits_on(date(2026, 11, 2), AAF6=1400))  # DKK 1,933,400 in training: above 1.8 million
    _disputes(session, agreement, training, as_of)

    first = scan(session, as_of=as_of, agreement=agreement)
    assert {f.kind for f in first} == set(Kind)
    assert_private(first)
    assert len({f.key for f in first}) == len(first)
    assert scan(session, as_of=as_of, agreement=agreement) == first
    dragor = {f.kind for f in first if f.municipality == "dragor"}
    assert {Kind.NO_RECENT_VISIT, Kind.TRAINING_OVER_NORM, Kind.DURATION_OVER_NORM,
            Kind.PLAN_CANNOT_BE_FOLLOWED} <= dragor


def test_a_concurrent_scan_finds_what_a_sequential_one_does(runtime):
    """escalation-scan scans concurrently (on PostgreSQL: helper connections in the caller's
    snapshot); on SQLite it is the sequential scan."""
    as_of = date(2026, 11, 20)
    with runtime.store.session() as writing:
        add_case(writing, "awaiting_consent", received_on=date(2026, 11, 10))
        add_case(writing, "forwarded", urgent=True, discharge=date(2026, 11, 12), start_by=date(2026, 11, 19))
        training = add_case(writing, "in_training", municipality="dragor", discharge=date(2026, 9, 1))
        add_visits(writing, training, [date(2026, 9, 10) + timedelta(days=n) for n in range(12)])
    with runtime.store.session() as reading:
        sequential = scan(reading, as_of=as_of, agreement=runtime.agreement)
        concurrent = scan(reading, as_of=as_of, agreement=runtime.agreement, concurrent=True)
    assert len(sequential) > 5 and concurrent == sequential
