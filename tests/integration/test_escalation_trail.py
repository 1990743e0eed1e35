"""The escalation trail and its notices on the store (SQLite and PostgreSQL): a finding fires once
per level, never repeats on a re-run, becomes persisting after the configured days, closes when
its condition clears; two scans at once open a key once; notices reach the right parties once."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path

from genop.clock import now_utc
from genop.consent import ConsentAnswer, ConsentDecision, ConsentMethod, record_consent
from genop.escalation import BUDGET_TOTAL, Finding, Kind, Level, budget_subject
from genop.escalation.notices import compose_notices, recipients
from genop.escalation.scan import ScanContext, scan_kind
from genop.escalation.trail import Change, TrailChange, events_of, findings_of_case, open_findings, record
from genop.store.repository import get_case
from tests.factories import write_plan

RECEIVED = date(2026, 11, 3)


def awaiting_case(runtime, tmp_path: Path, plan_id: str, municipality_code: str = "185") -> str:
    """A case taken in on RECEIVED, waiting for the citizen's consent."""
    from genop.inbox import stage_copy

    write_plan(tmp_path / plan_id, "plan.json", plan_id=plan_id, citizen__municipality_code=municipality_code)
    batch = stage_copy(tmp_path / plan_id, runtime.settings.folders)
    [outcome] = runtime.intake.take_in(sorted(batch.iterdir()), RECEIVED)
    return outcome.case_number


def scan_on(runtime, day: date) -> list[TrailChange]:
    """The trail of consent_missing alone (the other kinds also find these cases: start_by, no start
    offered; tests/integration/test_escalation_scan.py drives them)."""
    with runtime.store.session() as session:
        found = scan_kind(session, Kind.CONSENT_MISSING, ScanContext(day, runtime.agreement))
        changes = record(session, found, scan_on=day, now=now_utc(), agreement=runtime.agreement)
        return changes


def summary(changes: list[TrailChange]) -> list[tuple[str, str, str]]:
    return [(c.change.value, c.finding.subject, c.finding.level) for c in changes]


def test_consent_missing_fires_once_per_level_persists_and_closes(runtime, tmp_path):
    number = awaiting_case(runtime, tmp_path, "GOP-ESC-1")
    limits = runtime.agreement.escalation_on(RECEIVED)
    reminder = RECEIVED + timedelta(days=limits.consent_reminder_after_days)
    breach = RECEIVED + timedelta(days=limits.consent_missing_after_days)
    persisting = breach + timedelta(days=limits.persisting_after_days)

    assert scan_on(runtime, reminder - timedelta(days=1)) == []
    assert summary(scan_on(runtime, reminder)) == [("opened", number, "warning")]
    assert scan_on(runtime, reminder) == []                      # the same day again
    assert scan_on(runtime, reminder + timedelta(days=1)) == []  # the next day, same level
    assert summary(scan_on(runtime, breach)) == [("raised", number, "breach")]
    assert scan_on(runtime, breach) == [] and scan_on(runtime, breach + timedelta(days=1)) == []
    assert scan_on(runtime, persisting - timedelta(days=1)) == []
    assert summary(scan_on(runtime, persisting)) == [("raised", number, "persisting")]
    assert scan_on(runtime, persisting + timedelta(days=1)) == []

    answer = ConsentAnswer(ConsentDecision.GIVEN, ConsentMethod.WRITTEN, persisting, "Test")
    with runtime.store.session() as session:
        record_consent(session, number, answer, today=persisting, now=now_utc())
    closed_on = persisting + timedelta(days=2)
    assert summary(scan_on(runtime, closed_on)) == [("closed", number, "persisting")]
    assert scan_on(runtime, closed_on) == []

    with runtime.store.session() as session:
        assert open_findings(session) == []
        [finding] = findings_of_case(session, get_case(session, number))
        assert (finding.kind, finding.opened_on, finding.closed_on) == ("consent_missing", reminder, closed_on)
        assert finding.since == reminder
        trail = [(e.change, e.level, e.scan_on) for e in events_of(session, finding)]
    assert trail == [("opened", "warning", reminder), ("raised", "breach", breach),
                     ("raised", "persisting", persisting), ("closed", "persisting", closed_on)]


def test_a_finding_found_again_after_it_closed_is_a_new_one(runtime, tmp_path):
    number = awaiting_case(runtime, tmp_path, "GOP-ESC-2")
    finding = Finding(Kind.SENT_BACK, number, "tarnby", Level.WARNING, RECEIVED, "sent back")
    with runtime.store.session() as session:
        record(session, [finding], scan_on=RECEIVED, now=now_utc(), agreement=runtime.agreement)
        record(session, [], scan_on=RECEIVED + timedelta(days=1), now=now_utc(), agreement=runtime.agreement)
        again = record(session, [finding], scan_on=RECEIVED + timedelta(days=2), now=now_utc(),
                       agreement=runtime.agreement)
        assert [c.change for c in again] == [Change.OPENED]
        assert len(findings_of_case(session, get_case(session, number))) == 2


def test_two_scans_at_once_open_a_finding_once(runtime, tmp_path):
    number = awaiting_case(runtime, tmp_path, "GOP-ESC-3")
    day = RECEIVED + timedelta(days=3)
    start = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def one_scan() -> None:
        try:
            start.wait(timeout=30)
            results.append([c.change.value for c in scan_on(runtime, day)])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one_scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(results) == [[], ["opened"]]
    with runtime.store.session() as session:
        assert [f.subject for f in open_findings(session)] == [number]


def _told(certified, changes: list[TrailChange]) -> list[tuple[str, str]]:
    with certified.store.session() as session:
        rows = compose_notices(session, [TrailChange(c.change, session.merge(c.finding), c.previous)
                                         for c in changes],
                               agreement=certified.agreement, settings=certified.settings, now=now_utc())
        return [(row.key.rsplit(":", 1)[-1], row.subject or "") for row in rows]


def test_a_dragor_case_reaches_dragor_and_a_tarnby_case_never_does(certified, tmp_path):
    tarnby = awaiting_case(certified, tmp_path, "GOP-ESC-T", "185")
    dragor = awaiting_case(certified, tmp_path, "GOP-ESC-D", "155")
    limits = certified.agreement.escalation_on(RECEIVED)
    reminder = RECEIVED + timedelta(days=limits.consent_reminder_after_days)
    breach = RECEIVED + timedelta(days=limits.consent_missing_after_days)

    warned = _told(certified, scan_on(certified, reminder))
    assert sorted(party for party, _ in warned) == ["tarnby", "tarnby"]  # a reminder: Tårnby's caseworkers
    assert {subject for _, subject in warned} == {f"Varsel: samtykke mangler – sag {tarnby}",
                                                  f"Varsel: samtykke mangler – sag {dragor}"}
    breached = _told(certified, scan_on(certified, breach))
    assert sorted(breached) == sorted([
        ("tarnby", f"Overskredet: samtykke mangler – sag {tarnby}"),
        ("tarnby", f"Overskredet: samtykke mangler – sag {dragor}"),
        ("dragor", f"Overskredet: samtykke mangler – sag {dragor}")])
    assert _told(certified, scan_on(certified, breach)) == []  # the level holds: nothing again

    with certified.store.session() as session:
        findings = {f.subject: f for f in open_findings(session)}
        again = compose_notices(session, [TrailChange(Change.RAISED, findings[dragor])],
                                agreement=certified.agreement, settings=certified.settings, now=now_utc())
        assert len(again) == 2 and all(row.raw is not None for row in again)  # the rows composed before
        keys = sorted(row.key for row in again)
        assert keys == sorted(f"risk:{findings[dragor].id}:breach:{p}" for p in ("tarnby", "dragor"))
        assert b"Karen" not in again[0].raw and b"010145" not in again[0].raw


def test_dragor_is_told_of_the_shared_budget_and_its_own_never_tarnbys(certified):
    from genop.store.models import RiskFinding

    runtime = certified
    shared = Finding(Kind.BUDGET_FORECAST, budget_subject(BUDGET_TOTAL), BUDGET_TOTAL, Level.WARNING, RECEIVED,
                     "forecast above 90 % of the a-conto", {"forecast": "2300000.00", "aconto": "2400000.00"})
    with runtime.store.session() as session:
        changes = record(session, [shared], scan_on=RECEIVED, now=now_utc(), agreement=runtime.agreement)
    assert _told(runtime, changes) == [
        ("tarnby", "Varsel: budgettet forventes overskredet – fælles budget"),
        ("dragor", "Varsel: budgettet forventes overskredet – fælles budget")]

    def parties(municipality: str, kind: Kind = Kind.BUDGET_FORECAST, level: str = "breach") -> list[str]:
        row = RiskFinding(kind=kind.value, municipality=municipality, level=level)
        return recipients(row, runtime.agreement)

    assert parties(BUDGET_TOTAL) == ["tarnby", "dragor"]
    assert parties("dragor") == ["tarnby", "dragor"]
    assert parties("tarnby") == ["tarnby"]
    assert parties("tarnby", Kind.TRAINING_OVER_NORM) == ["tarnby", "copenhagen"]
    assert "dragor" not in parties("tarnby", Kind.SENT_BACK, "persisting")
    # even a config that lists Dragør for every case is never obeyed for a Tårnby citizen
    notices = runtime.agreement.escalation_notices.model_copy(update={"case_time": {"breach": ("dragor",)}})
    wrong = runtime.agreement.model_copy(update={"escalation_notices": notices})
    assert recipients(RiskFinding(kind="consent_missing", municipality="tarnby", level="breach"), wrong) == []
    assert recipients(RiskFinding(kind="consent_missing", municipality="dragor", level="breach"), wrong) == [
        "dragor"]
    assert budget_subject(BUDGET_TOTAL) == "budget:total"
