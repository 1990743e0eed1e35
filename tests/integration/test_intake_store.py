"""Intake against the real case store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from genop.inbox import stage_copy
from genop.store.models import Case, CaseEvent, PlanDocument, QuarantinedFile
from genop.store.repository import allocate_case_numbers, get_case
from tests.factories import CHILD_CPR, plan_bytes, write_plan

AS_OF = date(2026, 11, 3)


def _take_in(runtime, folder: Path, as_of: date = AS_OF):
    batch = stage_copy(folder, runtime.settings.folders)
    return runtime.intake.take_in(sorted(p for p in batch.iterdir()), as_of)


def test_example_plan_becomes_a_case_awaiting_consent(runtime, tmp_path):
    write_plan(tmp_path / "in", "plan.json")
    [outcome] = _take_in(runtime, tmp_path / "in")
    assert outcome.outcome == "created"
    assert outcome.state == "awaiting_consent" and outcome.route == "copenhagen"
    assert outcome.case_number == "GEN-2026-000001"
    with runtime.store.session() as session:
        case = get_case(session, outcome.case_number, with_events=True)
        assert case.free_choice_from == date(2026, 11, 9)
        assert case.start_by == date(2026, 11, 9)
        assert case.payer == "tarnby"
        assert [e.kind for e in case.events] == ["plan_received", "scope_decided", "deadlines_set"]
        assert "route copenhagen" in case.events[1].detail
        assert case.events[0].at.tzinfo is not None


def test_plan_document_is_kept_byte_for_byte(runtime, tmp_path):
    path = write_plan(tmp_path / "in", "plan.json")
    [outcome] = _take_in(runtime, tmp_path / "in")
    with runtime.store.session() as session:
        doc = session.scalars(select(PlanDocument)).one()
        assert doc.content == path.read_bytes()
        assert doc.parsed["citizen"]["name"] == "Karen Jensen"
        assert doc.case.case_number == outcome.case_number


def test_same_plan_twice_is_one_case(runtime, tmp_path):
    write_plan(tmp_path / "a", "plan.json")
    first = _take_in(runtime, tmp_path / "a")
    second = _take_in(runtime, tmp_path / "a")
    assert second[0].outcome == "unchanged"
    assert second[0].case_number == first[0].case_number
    with runtime.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 1
        assert session.scalar(select(func.count()).select_from(PlanDocument)) == 1
        kinds = session.scalars(select(CaseEvent.kind)).all()
        assert "plan_received_again" in kinds


def test_changed_plan_under_same_plan_id_is_a_revision_and_rerouted(runtime, tmp_path):
    write_plan(tmp_path / "a", "plan.json")
    [first] = _take_in(runtime, tmp_path / "a")
    write_plan(tmp_path / "b", "plan-v2.json", level="specialiseret")
    [second] = _take_in(runtime, tmp_path / "b")
    assert second.outcome == "revised"
    assert second.case_number == first.case_number
    assert second.route == "region"
    with runtime.store.session() as session:
        case = get_case(session, first.case_number, with_events=True)
        assert case.revision == 2
        assert [d.revision for d in case.documents] == [1, 2]
        assert [e.kind for e in case.events][-2:] == ["plan_revised", "scope_decided"]


def test_duplicate_inside_one_batch_is_recorded_once(runtime, tmp_path):
    write_plan(tmp_path / "in", "a.json")
    write_plan(tmp_path / "in", "b.json")  # same plan_id, same content
    outcomes = _take_in(runtime, tmp_path / "in")
    assert [o.outcome for o in outcomes] == ["created", "unchanged"]


def test_processed_files_are_archived_not_deleted(runtime, tmp_path):
    path = write_plan(tmp_path / "in", "plan.json")
    _take_in(runtime, tmp_path / "in")
    [archived] = list((runtime.settings.processed_dir / AS_OF.isoformat()).rglob("*.json"))
    assert archived.read_bytes() == path.read_bytes()
    assert archived.name == "0001.json"  # the hospital's name is kept in the store, not on disk


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [
        (b'{"plan_id": "X", ', "malformed_json", "JSON"),
        (b"<Genoptraeningsplan><unclosed></Genoptraeningsplan>", "malformed_xml", "XML"),
        (b"%PDF-1.4 binary", "not_a_plan", ""),
        (b'["a", "list"]', "not_a_plan", ""),
        (plan_bytes(citizen__cpr="991399-1234"), "invalid_cpr", "month 13"),
        (plan_bytes(citizen__cpr=None), "missing_field", "citizen.cpr"),
        (plan_bytes(level="super"), "unknown_level", "super"),
        (plan_bytes(discharge_date="2026-12-24", start_by="2026-12-30"), "discharge_in_future", "2026-12-24"),
        (plan_bytes(start_by="2026-10-01"), "start_by_before_discharge", "start_by"),
        (plan_bytes(diagnosis_group="broken_heart"), "unknown_diagnosis_group", "broken_heart"),
        (plan_bytes(citizen__municipality_code="18"), "invalid_municipality_code", "18"),
    ],
)
def test_bad_file_is_quarantined_with_specific_reason(runtime, tmp_path, content, code, words):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.json").write_bytes(content)
    [outcome] = _take_in(runtime, folder)
    assert outcome.outcome == "quarantined"
    assert outcome.reason_code == code
    with runtime.store.session() as session:
        row = session.scalars(select(QuarantinedFile)).one()
        assert row.reason_code == code
        assert words in row.reason
        assert session.scalar(select(func.count()).select_from(Case)) == 0
    kept = Path(row.stored_path)
    assert kept.read_bytes() == content
    assert f"code: {code}" in kept.with_name(kept.name + ".reason").read_text(encoding="utf-8")


def test_huge_file_is_quarantined_by_configured_size_limit(runtime, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    limit = runtime.agreement.limits.max_plan_bytes
    (folder / "huge.json").write_bytes(b" " * (limit + 1))
    [outcome] = _take_in(runtime, folder)
    assert outcome.reason_code == "too_large"


def test_out_of_scope_plans_are_recorded_with_route_and_reason(runtime, tmp_path):
    folder = tmp_path / "in"
    write_plan(folder, "child.json", plan_id="P-child", citizen__cpr=CHILD_CPR)
    write_plan(folder, "kbh.json", plan_id="P-kbh", citizen__municipality_code="101")
    write_plan(folder, "region.json", plan_id="P-region", level="specialiseret")
    write_plan(folder, "own.json", plan_id="P-own", level="rehabilitering_specialiseret")
    write_plan(folder, "lymph.json", plan_id="P-lymph", diagnosis_group=None,
               diagnoses=[{"system": "ICD-10", "code": "DI890", "text": "Lymfødem"}])
    write_plan(folder, "geri.json", plan_id="P-geri", diagnosis_group="geriatric")
    write_plan(folder, "nodesc.json", plan_id="P-nodesc", function_before="")
    outcomes = _take_in(runtime, folder)
    with runtime.store.session() as session:
        names = dict(session.execute(select(Case.case_number, PlanDocument.source_name).join(PlanDocument.case)).all())
    outcomes = {names[o.case_number]: (o.state, o.route) for o in outcomes}
    assert outcomes == {
        "child.json": ("rejected", "rejected"),
        "kbh.json": ("rejected", "rejected"),
        "region.json": ("routed_elsewhere", "region"),
        "own.json": ("routed_elsewhere", "residence_municipality"),
        "lymph.json": ("awaiting_consent", "copenhagen"),
        "geri.json": ("routed_elsewhere", "lojtegaardsvej"),
        "nodesc.json": ("incomplete", "copenhagen"),
    }


def test_case_numbers_are_allocated_in_blocks_without_gaps_or_repeats(runtime):
    with runtime.store.session() as session:
        first = allocate_case_numbers(session, 2026, 3)
        second = allocate_case_numbers(session, 2026, 2)
    assert first + second == [f"GEN-2026-00000{n}" for n in range(1, 6)]


def test_two_workers_taking_in_the_same_plan_make_one_case(runtime, tmp_path):
    folders = []
    for worker in range(2):
        folder = tmp_path / f"w{worker}"
        for n in range(20):
            write_plan(folder, f"p{n}.json", plan_id=f"P-{n}")
        folders.append(stage_copy(folder, runtime.settings.folders))
    errors: list[BaseException] = []

    def work(batch: Path) -> None:
        try:
            runtime.intake.take_in(sorted(batch.iterdir()), AS_OF)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(batch,)) for batch in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with runtime.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 20
        assert session.scalar(select(func.count()).select_from(PlanDocument)) == 20


def test_schema_is_at_the_newest_migration(runtime):
    from alembic.script import ScriptDirectory

    from genop.store.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(runtime.store.engine)).get_current_head()
    with runtime.store.session() as session:
        version = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        tables = set(session.connection().dialect.get_table_names(session.connection()))
    assert version == head
    assert {"cases", "plan_documents", "case_events", "quarantine", "outbox"} <= tables


def test_migrations_build_the_schema_the_models_describe(runtime):
    """A model change without its migration (or the reverse) fails here, on SQLite and PostgreSQL."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from genop.store.models import Base

    with runtime.store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
