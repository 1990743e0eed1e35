"""One bad file never stops intake (issue 17): each file is decided on its own, quarantine
is idempotent, and a batch that keeps failing is given up rather than retried forever."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from genop.inbox import MAX_BATCH_ATTEMPTS, batch_files, close_batch, count_attempt, stage_copy
from genop.intake import _Recorder
from genop.store.models import Case, PlanDocument, QuarantinedFile
from tests.factories import plan_dict, write_plan

AS_OF = date(2026, 11, 3)


def _stage(runtime, folder: Path) -> Path:
    return stage_copy(folder, runtime.settings.folders)


def _counts(runtime) -> tuple[int, int]:
    with runtime.store.session() as session:
        return (session.scalar(select(func.count()).select_from(Case)),
                session.scalar(select(func.count()).select_from(QuarantinedFile)))


def test_a_plan_with_a_lone_surrogate_is_quarantined_and_the_rest_of_the_batch_recorded(runtime, tmp_path):
    folder = tmp_path / "in"
    for n in range(5):
        write_plan(folder, f"good-{n}.json", plan_id=f"GOP-ISO-{n}")
    bad = json.dumps(plan_dict(plan_id="GOP-ISO-BAD", citizen__name="\ud800Karen Jensen")).encode("ascii")
    (folder / "bad.json").write_bytes(bad)
    batch = _stage(runtime, folder)

    outcomes = runtime.intake.take_in(batch_files(batch), AS_OF)
    close_batch(batch)

    assert sorted(o.outcome for o in outcomes) == ["created"] * 5 + ["quarantined"]
    with runtime.store.session() as session:
        row = session.scalars(select(QuarantinedFile)).one()
        assert session.scalar(select(func.count()).select_from(Case)) == 5
    assert row.source_name == "bad.json"
    kept = Path(row.stored_path)
    assert kept.read_bytes() == bad
    assert f"code: {row.reason_code}" in kept.with_name(kept.name + ".reason").read_text(encoding="utf-8")
    assert not batch.exists(), "staging is left empty"


def test_a_file_name_that_is_not_utf8_is_taken_in_and_named_readably(runtime, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    good, bad = os.fsdecode(b"plan-\xff\xfe.json"), os.fsdecode(b"broken-\xe6.json")
    write_plan(folder, good, plan_id="GOP-NAME-1")
    (folder / bad).write_bytes(b"{not json")
    batch = _stage(runtime, folder)

    outcomes = runtime.intake.take_in(batch_files(batch), AS_OF)

    assert sorted(o.outcome for o in outcomes) == ["created", "quarantined"]
    with runtime.store.session() as session:
        assert session.scalars(select(PlanDocument.source_name)).one() == "plan-\\xff\\xfe.json"
        assert session.scalars(select(QuarantinedFile.source_name)).one() == "broken-\\xe6.json"


def test_a_file_the_store_refuses_is_quarantined_with_a_reference_and_the_others_recorded(
        runtime, tmp_path, monkeypatch):
    """A failing chunk is recorded file by file: only the culprit is quarantined."""
    folder = tmp_path / "in"
    for n in range(4):
        write_plan(folder, f"p{n}.json", plan_id=f"GOP-DB-{n}")
    create = _Recorder._create

    def refuse_one(self, item, case_number):  # noqa: ANN001, ANN202 - stands in for a store error
        if item.plan.plan_id == "GOP-DB-2":
            raise ValueError("the store cannot hold this plan's 010145-1234")
        return create(self, item, case_number)

    monkeypatch.setattr(_Recorder, "_create", refuse_one)
    batch = _stage(runtime, folder)

    outcomes = runtime.intake.take_in(batch_files(batch), AS_OF)

    assert sorted(o.outcome for o in outcomes) == ["created"] * 3 + ["quarantined"]
    with runtime.store.session() as session:
        row = session.scalars(select(QuarantinedFile)).one()
        plan_ids = set(session.scalars(select(Case.plan_id)))
    assert plan_ids == {"GOP-DB-0", "GOP-DB-1", "GOP-DB-3"}
    assert row.reason_code == "intake_error" and row.source_name == "p2.json"
    assert "reference" in row.reason and "errors.log" in row.reason
    assert "010145-1234" not in row.reason, "details stay in the private error log"
    assert "010145-1234" in runtime.settings.error_log.read_text(encoding="utf-8")


def test_a_batch_taken_in_again_after_a_crash_is_not_quarantined_twice(runtime, tmp_path):
    """A crash after the quarantine copy and its row, before the staged file was removed."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.xml").write_bytes(b"<Genoptraeningsplan><oops></Genoptraeningsplan>")
    write_plan(folder, "good.json")
    batch = _stage(runtime, folder)
    kept_back = tmp_path / "kept-back"
    shutil.copytree(batch, kept_back)

    first = runtime.intake.take_in(batch_files(batch), AS_OF)
    shutil.copy2(kept_back / "0001.xml", batch / "0001.xml")  # as if never removed
    second = runtime.intake.take_in(batch_files(batch), AS_OF)

    assert [o.quarantine_id for o in first if o.outcome == "quarantined"] == \
        [o.quarantine_id for o in second]
    assert _counts(runtime) == (1, 1)
    stored = [p.name for p in runtime.settings.quarantine_dir.rglob("*") if p.is_file()]
    assert sorted(stored) == ["0001.xml", "0001.xml.reason"]


def test_a_batch_that_failed_too_often_has_its_files_quarantined_not_retried(runtime, tmp_path):
    folder = tmp_path / "in"
    write_plan(folder, "p.json", plan_id="GOP-POISON")
    batch = _stage(runtime, folder)
    for _ in range(MAX_BATCH_ATTEMPTS + 1):
        attempts = count_attempt(batch)

    outcomes = runtime.intake.take_in(batch_files(batch), AS_OF, give_up=attempts > MAX_BATCH_ATTEMPTS)
    close_batch(batch)

    assert [(o.outcome, o.reason_code) for o in outcomes] == [("quarantined", "intake_gave_up")]
    assert _counts(runtime) == (0, 1)
    assert not batch.exists()
    with runtime.store.session() as session:
        row = session.scalars(select(QuarantinedFile)).one()
    assert Path(row.stored_path).exists() and "genop plan submit" in row.reason


def test_an_outage_of_the_store_does_not_use_up_a_batchs_attempts(runtime, tmp_path, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from genop.errors import GenopError
    from genop.inbox import batch_attempts
    from tasks.intake import take_in_plans

    folder = tmp_path / "in"
    write_plan(folder, "p.json", plan_id="GOP-OUTAGE")
    batch = _stage(runtime, folder)
    count_attempt(batch)

    def store_down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    from genop.intake import Intake

    monkeypatch.setattr(Intake, "take_in", store_down)
    try:
        take_in_plans.fn(str(batch), [p.name for p in batch_files(batch)], AS_OF)
    except GenopError:
        pass
    assert batch_attempts(batch) == 0
    assert [p.name for p in batch_files(batch)] == ["0001.json"]  # nothing quarantined, nothing lost


def test_two_overlapping_polls_never_take_the_same_left_behind_batch(runtime, tmp_path):
    """Two polls that both find a batch left behind: exactly one takes it up; it is not
    stale again while that one works on it, and can be taken again once it is."""
    from concurrent.futures import ThreadPoolExecutor

    from genop.inbox import stale_batches, take_stale

    folders = runtime.settings.folders
    folder = tmp_path / "in"
    write_plan(folder, "p.json")
    batch = _stage(runtime, folder)
    old = batch.stat().st_mtime - 3600
    os.utime(batch, (old, old))
    assert stale_batches(folders) == [batch]

    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = list(pool.map(lambda _: take_stale(batch), range(8)))
    assert taken.count(True) == 1
    assert stale_batches(folders) == []  # taking it refreshed its age

    os.utime(batch, (old, old))  # the run that took it crashed too
    assert take_stale(batch) is True
    assert take_stale(batch) is False

    for path in batch_files(batch):
        path.unlink()
    close_batch(batch)
    assert not batch.exists()
