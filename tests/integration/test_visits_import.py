"""Training visits from Copenhagen against the real case store, on SQLite and PostgreSQL
(agreement "Case lifecycle" 7: every visit with an SKS code that maps to a tariff group)."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from genop.clock import now_utc
from genop.consent import ConsentAnswer, ConsentDecision, ConsentMethod, record_consent
from genop.errors import GenopError
from genop.store.models import Case, CaseEvent, Visit, VisitImport
from genop.store.repository import get_case
from genop.visits import VisitImportReport, import_visits, visits_by_group
from tests.integration.test_forwarding import AS_OF as INTAKE_DAY
from tests.integration.test_forwarding import consented_case

AS_OF = date(2026, 12, 15)
NOW = datetime(2026, 12, 15, 9, 30, tzinfo=UTC)  # 10:30 in Copenhagen
FORWARDED_ON = date(2026, 11, 20)
HEADER = "case_number,visit_date,sks_code,minutes,mode,group_size"


def forwarded_case(runtime, tmp_path: Path, plan_id: str = "GOP-VIS-1", *, state: str = "forwarded",
                   completed_on: date | None = None) -> str:
    """A case as the forwarding stage leaves it (forwarding itself is tested elsewhere)."""
    number = consented_case(runtime, tmp_path, plan_id)
    with runtime.store.session() as session:
        case = get_case(session, number)
        case.state, case.forwarded_on, case.completed_on = state, FORWARDED_ON, completed_on
    return number


def run_import(runtime, tmp_path: Path, content: str, name: str = "visits.csv",
               now: datetime = NOW) -> VisitImportReport:
    return import_visits(runtime.store, runtime.agreement, content.encode("utf-8"), source_name=name,
                         as_of=AS_OF, rejects_dir=tmp_path / "rejects", now=now)


def csv_file(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def events(runtime, number: str) -> list[CaseEvent]:
    with runtime.store.session() as session:
        return list(get_case(session, number, with_events=True).events)


def visit_count(runtime) -> int:
    with runtime.store.session() as session:
        return session.scalar(select(func.count()).select_from(Visit))


def test_valid_visits_are_kept_and_every_bad_line_has_its_reason(runtime, tmp_path):
    number = forwarded_case(runtime, tmp_path)
    refused = forwarded_case(runtime, tmp_path, "GOP-VIS-2", state="consent_refused")
    content = csv_file(
        f"{number},2026-11-23,BLNR1,45,individual,",
        f"{number},2026-11-24,AAF6,60,individual,",
        f"{number},2026-12-24,BLNR1,45,individual,",
        f"{number},2026-11-30,BXYZ1,45,individual,",
        "GEN-2026-000099,2026-11-30,BLNR1,45,individual,",
        f"{refused},2026-11-30,BLNR1,45,individual,",
        f"{number},2026-11-01,BLNR1,45,individual,",
        f"{number},2026-11-30,BLNR1,abc,individual,",
        f"{number},2026-11-30,BLNR1,45,solo,",
        f"{number},2026-11-30,BLNR1,45,group,",
        "",
        f"{number},2026-11-30,BLNR1",
        f"{number},2026-02-30,BLNR1,45,individual,",
        f"{number},2026-11-25,BRA,30,group,4",
    )
    report = run_import(runtime, tmp_path, content)

    assert (report.accepted, report.duplicates, report.rejected) == (3, 0, 10)
    reasons = {line.line: line.reason for line in report.lines if line.status == "rejected"}
    assert reasons == {
        4: "line 4: visit_date 2026-12-24 is after the as-of day 2026-12-15",
        5: "line 5: unknown SKS code BXYZ1 (no tariff group in config on 2026-11-30)",
        6: "line 6: case GEN-2026-000099 is unknown",
        7: f"line 7: case {refused} is consent_refused: visits are recorded only for forwarded cases",
        8: "line 8: visit_date 2026-11-01 is before the case was forwarded (2026-11-20)",
        9: "line 9: minutes 'abc' is not a whole number",
        10: "line 10: mode 'solo' must be individual or group",
        11: "line 11: group visit without group_size",
        13: "line 13: minutes is missing; mode is missing",
        14: "line 14: visit_date '2026-02-30' is not a date (use YYYY-MM-DD)",
    }
    assert [line.line for line in report.lines if line.status == "accepted"] == [2, 3, 15]
    assert {line.case_number for line in report.lines if line.line != 6} <= {number, refused}

    rejects = Path(report.rejects_path)
    assert rejects.name == "20261215T103000-visits.csv.rejects.csv"
    written = rejects.read_text(encoding="utf-8").splitlines()
    assert written[0] == HEADER + ",reason"
    assert written[1] == f'{number},2026-12-24,BLNR1,45,individual,,line 4: visit_date 2026-12-24 is after ' \
                         'the as-of day 2026-12-15'
    assert written[9] == f"{number},2026-11-30,BLNR1,,,,line 13: minutes is missing; mode is missing"
    assert len(written) == 1 + 10

    with runtime.store.session() as session:
        case = get_case(session, number)
        assert case.state == "in_training"
        assert visits_by_group(session, case.id) == {"GEN1A": 1, "GEN2A": 1, "GEN3A": 1}
        groups = dict(session.execute(select(Visit.sks_code, Visit.tariff_group)).tuples().all())
        assert groups == {"BLNR1": "GEN2A", "AAF6": "GEN3A", "BRA": "GEN1A"}
        group_visit = session.scalars(select(Visit).where(Visit.mode == "group")).one()
        assert (group_visit.group_size, group_visit.minutes) == (4, 30)
        assert group_visit.import_id == report.import_id
        row = session.get(VisitImport, report.import_id)
        assert (row.accepted, row.duplicates, row.rejected) == (3, 0, 10)
        assert row.rejects_path == str(rejects) and row.as_of == AS_OF
        assert row.sha256 == hashlib.sha256(content.encode()).hexdigest()
        assert get_case(session, refused).state == "consent_refused"

    trail = [(event.kind, event.detail) for event in events(runtime, number) if event.at == NOW]
    assert trail == [
        ("training_started",
         "first training visit on 2026-11-23 recorded from visits.csv: case is in training"),
        ("visits_recorded", "3 visit(s) recorded from visits.csv: GEN1A 1, GEN2A 1, GEN3A 1"),
    ]
    assert not [event for event in events(runtime, refused) if event.at == NOW]


def test_the_same_file_twice_records_nothing_new(runtime, tmp_path):
    number = forwarded_case(runtime, tmp_path)
    content = csv_file(f"{number},2026-11-23,BLNR1,45,individual,", f"{number},2026-11-24,BTP,45,group,3")
    first = run_import(runtime, tmp_path, content)
    second = run_import(runtime, tmp_path, content)

    assert (first.accepted, first.duplicates, first.rejected) == (2, 0, 0)
    assert first.rejects_path is None
    assert (second.accepted, second.duplicates, second.rejected) == (0, 2, 0)
    assert [line.reason for line in second.lines] == [
        f"line 2: visit already recorded by import {first.import_id}: ignored",
        f"line 3: visit already recorded by import {first.import_id}: ignored",
    ]
    assert second.as_dict()["lines"] == [
        {"line": 2, "status": "duplicate", "case_number": number, "reason": second.lines[0].reason},
        {"line": 3, "status": "duplicate", "case_number": number, "reason": second.lines[1].reason},
    ]
    assert visit_count(runtime) == 2
    assert [e.kind for e in events(runtime, number)].count("visits_recorded") == 1
    with runtime.store.session() as session:
        imports = session.scalars(select(VisitImport).order_by(VisitImport.id)).all()
        assert [(i.accepted, i.duplicates) for i in imports] == [(2, 0), (0, 2)]
        assert imports[0].sha256 == imports[1].sha256


def test_a_visit_repeated_in_one_file_is_recorded_once(runtime, tmp_path):
    number = forwarded_case(runtime, tmp_path)
    report = run_import(runtime, tmp_path, csv_file(
        f"{number},2026-11-23,BLNR1,45,individual,",
        f"{number.lower()}, 2026-11-23 ,blnr1,45,Individual,",
        f"{number},2026-11-23,BLNR1,30,individual,",
    ))
    assert (report.accepted, report.duplicates, report.rejected) == (2, 1, 0)
    assert report.lines[1].reason == "line 3: same visit as line 2: ignored"
    assert visit_count(runtime) == 2
    [summary] = [e for e in events(runtime, number) if e.kind == "visits_recorded"]
    assert summary.detail == "2 visit(s) recorded from visits.csv: GEN2A 2"
    assert summary.data["by_tariff_group"] == {"GEN2A": 2}


def test_json_lines_are_read_like_csv(runtime, tmp_path):
    number = forwarded_case(runtime, tmp_path)
    visits = [
        {"case_number": number, "visit_date": "2026-11-23", "sks_code": "BLNR1", "minutes": 45,
         "mode": "individual"},
        {"case_number": number, "visit_date": "2026-11-24", "sks_code": "AAF6", "minutes": "60",
         "mode": "individual", "group_size": None},
        {"case_number": number, "visit_date": "2026-11-25", "sks_code": "BRA", "minutes": 30, "mode": "group",
         "group_size": 4},
    ]
    jsonl = "\n".join(json.dumps(v) for v in visits) + "\n\n{not json\n[1, 2]\n"
    from_json = run_import(runtime, tmp_path, jsonl, name="visits.jsonl")
    from_csv = run_import(runtime, tmp_path, csv_file(
        f"{number},2026-11-23,BLNR1,45,individual,",
        f"{number},2026-11-24,AAF6,60,individual,",
        f"{number},2026-11-25,BRA,30,group,4",
    ), name="visits.csv")

    assert (from_json.accepted, from_json.rejected) == (3, 2)
    assert (from_csv.accepted, from_csv.duplicates) == (0, 3)  # the very same visits
    malformed = "line 5: malformed JSON (Expecting property name enclosed in double quotes at column 2)"
    not_object = "line 6: expected a JSON object with case_number, visit_date, sks_code, minutes, mode, " \
                 "found a JSON list"
    assert [line.reason for line in from_json.lines if line.status == "rejected"] == [malformed, not_object]
    with runtime.store.session() as session:
        assert visits_by_group(session, get_case(session, number).id) == {"GEN1A": 1, "GEN2A": 1, "GEN3A": 1}
    written = Path(from_json.rejects_path).read_text(encoding="utf-8").splitlines()
    assert written == ["original,reason", f"{{not json,{malformed}", f'"[1, 2]","{not_object}"']


def _intake_only(runtime, tmp_path: Path, plan_id: str, decision: ConsentDecision | None) -> str:
    from genop.inbox import stage_copy
    from tests.factories import write_plan

    write_plan(tmp_path / plan_id, "plan.json", plan_id=plan_id)
    batch = stage_copy(tmp_path / plan_id, runtime.settings.folders)
    [outcome] = runtime.intake.take_in(sorted(batch.iterdir()), INTAKE_DAY)
    if decision is not None:
        answer = ConsentAnswer(decision, ConsentMethod.WRITTEN, INTAKE_DAY, "Test")
        with runtime.store.session() as session:
            record_consent(session, outcome.case_number, answer, today=INTAKE_DAY, now=now_utc())
    return outcome.case_number


@pytest.mark.parametrize(("decision", "state"), [(None, "awaiting_consent"),
                                                 (ConsentDecision.REFUSED, "consent_refused"),
                                                 (ConsentDecision.GIVEN, "forwarding")])
def test_visits_for_a_case_not_forwarded_are_rejected(runtime, tmp_path, decision, state):
    number = _intake_only(runtime, tmp_path, "GOP-NOTFWD", decision)
    report = run_import(runtime, tmp_path, csv_file(f"{number},2026-11-23,BLNR1,45,individual,"))
    assert (report.accepted, report.rejected) == (0, 1)
    assert report.lines[0].reason == \
        f"line 2: case {number} is {state}: visits are recorded only for forwarded cases"
    assert visit_count(runtime) == 0
    with runtime.store.session() as session:
        assert get_case(session, number).state == state


def test_late_visits_of_a_completed_course_are_kept_up_to_its_completion(runtime, tmp_path):
    number = forwarded_case(runtime, tmp_path, state="completed", completed_on=date(2026, 12, 5))
    report = run_import(runtime, tmp_path, csv_file(
        f"{number},2026-12-05,BLNR1,45,individual,",
        f"{number},2026-12-06,BLNR1,45,individual,",
    ))
    assert [(line.status, line.reason) for line in report.lines] == [
        ("accepted", None),
        ("rejected", "line 3: visit_date 2026-12-06 is after the case was completed (2026-12-05)"),
    ]
    with runtime.store.session() as session:
        assert get_case(session, number).state == "completed"
    assert [e.kind for e in events(runtime, number) if e.at == NOW] == ["visits_recorded"]


def test_a_visit_recorded_meanwhile_by_another_importer_is_a_duplicate(runtime, tmp_path, monkeypatch):
    import genop.visits as visits

    number = forwarded_case(runtime, tmp_path)
    content = csv_file(f"{number},2026-11-23,BLNR1,45,individual,", f"{number},2026-11-24,BRA,45,individual,")
    first = run_import(runtime, tmp_path, content)
    real_lookup, calls = visits._recorded_fingerprints, []

    def blind_first_time(session, fingerprints):  # the other importer commits after our look-up
        calls.append(fingerprints)
        return {} if len(calls) == 1 else real_lookup(session, fingerprints)

    monkeypatch.setattr(visits, "_recorded_fingerprints", blind_first_time)
    second = run_import(runtime, tmp_path, content)
    assert len(calls) == 2
    assert (second.accepted, second.duplicates) == (0, 2)
    assert second.lines[0].reason == f"line 2: visit already recorded by import {first.import_id}: ignored"
    assert visit_count(runtime) == 2
    with runtime.store.session() as session:
        assert session.get(VisitImport, second.import_id).duplicates == 2


def test_two_importers_at_once_record_each_visit_once(runtime, tmp_path):
    numbers = [forwarded_case(runtime, tmp_path, f"GOP-VIS-{n}") for n in range(3)]
    content = csv_file(*(f"{number},2026-11-{day},BLNR1,45,individual," for number in numbers
                         for day in range(21, 31)))
    reports: list[VisitImportReport] = []
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            reports.append(run_import(runtime, tmp_path / str(index), content, now=now_utc()))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.accepted + r.duplicates for r in reports) == [30, 30]
    assert sum(r.accepted for r in reports) == 30
    assert visit_count(runtime) == 30
    for number in numbers:
        kinds = [e.kind for e in events(runtime, number)]
        assert (kinds.count("training_started"), kinds.count("visits_recorded")) == (1, 1)
    with runtime.store.session() as session:
        states = session.scalars(select(Case.state).where(Case.case_number.in_(numbers)))
        assert set(states) == {"in_training"}


def test_semicolon_csv_with_more_columns_is_read_and_its_rejects_can_be_reimported(runtime, tmp_path):
    number = forwarded_case(runtime, tmp_path)
    content = (f"note;{HEADER.replace(',', ';')}\n"
               f"x;{number};2026-11-23;BLNR1;45;individual;\n"
               f"y;{number};2026-11-24;BLNR1;45;individual;2\n")
    report = run_import(runtime, tmp_path, content)
    assert (report.accepted, report.rejected) == (1, 1)
    assert report.lines[1].reason == "line 3: individual visit with group_size '2' (leave it empty)"
    rejects = Path(report.rejects_path)
    fixed = rejects.read_text(encoding="utf-8").replace("individual;2;", "individual;;")
    again = run_import(runtime, tmp_path, fixed, name="fixed.csv")
    assert (again.accepted, again.rejected) == (1, 0)
    assert visit_count(runtime) == 2


def test_a_file_without_a_header_loses_no_line(runtime, tmp_path):
    number = forwarded_case(runtime, tmp_path)
    report = run_import(runtime, tmp_path, f"{number},2026-11-23,BLNR1,45,individual,\n"
                                           f"{number},2026-11-24,BLNR1,45,individual,\n")
    assert (report.accepted, report.rejected) == (0, 2)
    assert report.lines[0].reason.startswith("line 1: not a header: no column case_number, visit_date")
    assert report.lines[1].reason.startswith("line 2: the header (line 1) has no column case_number")


def test_a_file_that_is_not_utf8_is_refused_as_a_whole(runtime, tmp_path):
    with pytest.raises(GenopError) as error:
        import_visits(runtime.store, runtime.agreement, b"case_number\n\xff\xfe", source_name="v.csv",
                      as_of=AS_OF, rejects_dir=tmp_path, now=NOW)
    assert error.value.code == "visits_not_utf8"
    assert "v.csv is not UTF-8 text (byte 0xff at position 12)" in error.value.message


def test_a_cpr_number_in_the_case_number_column_is_not_repeated(runtime, tmp_path):
    report = run_import(runtime, tmp_path, csv_file("010145-1234,2026-11-23,BLNR1,45,individual,"))
    [line] = report.lines
    assert (line.status, line.case_number) == ("rejected", None)
    assert line.reason == \
        "line 2: case_number is not a case number (GEN-YYYY-NNNNNN); its value is not repeated here"
    assert "010145" not in json.dumps(report.as_dict())


@pytest.mark.parametrize("content, what", [
    (b"", "the file is empty"),
    (b"\n\r\n  \n", "only blank lines"),
    (b"\xef\xbb\xbf" + HEADER.encode() + b"\n\n", "only the header line"),
])
def test_a_file_without_any_visit_line_is_refused_and_records_no_import(runtime, tmp_path, content, what):
    with pytest.raises(GenopError) as error:
        import_visits(runtime.store, runtime.agreement, content, source_name="v.csv",
                      as_of=AS_OF, rejects_dir=tmp_path, now=NOW)
    assert error.value.code == "visits_empty"
    assert f"v.csv holds no visit lines ({what}); nothing was imported" in error.value.message
    with runtime.store.session() as session:
        assert session.scalar(select(func.count()).select_from(VisitImport)) == 0
