"""Intake through Prefect: the flows, the CLI against the server, and privacy in Prefect."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from genop.inbox import stage_copy
from genop.store.models import Case, PlanDocument, QuarantinedFile
from genop_cli.main import cli
from tests.conftest import EXAMPLES
from tests.factories import write_plan
from tests.flows.helpers import everything_prefect_holds, prefect_database_bytes

AS_OF = date(2026, 11, 3)

pytestmark = pytest.mark.usefixtures("prefect_server")


def _flow_runs(**filters):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    async def read():
        async with get_client() as client:
            flow_filter = FlowRunFilter(name=FlowRunFilterName(any_=[filters["name"]])) if filters else None
            return await client.read_flow_runs(flow_run_filter=flow_filter, limit=200)

    return asyncio.run(read())


def test_intake_flow_records_the_example_plan_in_one_named_run(runtime):
    from flows.intake import plan_intake

    batch = stage_copy(EXAMPLES / "plan-example.json", runtime.settings.folders)
    result = plan_intake(path=batch.name, as_of=AS_OF)  # the batch id, as the UI's Run form takes it
    assert result["counts"] == {"awaiting_consent": 1}
    [number] = result["case_numbers"]
    with runtime.store.session() as session:
        case = session.scalars(select(Case).where(Case.case_number == number)).one()
        assert (case.state, case.route) == ("awaiting_consent", "copenhagen")
    [run] = _flow_runs(name=f"intake-{batch.name}-1-file")
    assert run.state.is_completed() and run.parameters["path"] == batch.name


def test_a_path_typed_into_plan_intake_is_refused_with_what_to_do_instead(runtime, tmp_path):
    """The UI's Run form: a typed path would put a hospital's file names into Prefect, so it is
    not taken in; the message says to use the inbox or `genop plan submit`, without the path."""
    from flows.intake import plan_intake

    typed = tmp_path / "typed-in-the-ui"
    write_plan(typed, "plan.json", plan_id="GOP-TYPED-1")
    state = plan_intake(path=str(typed), as_of=AS_OF, return_state=True)
    assert state.is_failed()
    assert "inbox folder" in state.message and "genop plan submit" in state.message
    assert str(typed) not in state.message
    [run] = [r for r in _flow_runs(name="intake-not-staged") if r.parameters.get("path") == str(typed)]
    assert run.state.is_failed()
    with runtime.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 0
    assert not any(runtime.settings.staging_dir.glob("*"))
    assert (typed / "plan.json").exists()


def test_inbox_poll_takes_in_a_folder_in_one_run_and_quarantines_the_bad_file(runtime):
    from flows.intake import inbox_poll

    inbox = runtime.settings.inbox_dir
    lymphoedema = {"diagnosis_group": None, "diagnoses": [{"system": "ICD-10", "code": "DI890"}]}
    for n in range(30):  # the first three are lymphoedema plans: covered, like any group (agreement §3)
        write_plan(inbox, f"plan-{n:02d}.json", plan_id=f"GOP-BATCH-{n:02d}", **(lymphoedema if n < 3 else {}))
    (inbox / "broken.xml").write_bytes(b"<Genoptraeningsplan><oops></Genoptraeningsplan>")
    (inbox / "still-writing.json.part").write_bytes(b"{")

    result = inbox_poll(as_of=AS_OF)

    assert result["files"] == 31
    assert result["counts"] == {"awaiting_consent": 30, "quarantined": 1}
    assert sorted(p.name for p in inbox.iterdir()) == ["still-writing.json.part"]
    with runtime.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 30
        lymph = session.execute(select(Case.state, Case.route).where(Case.diagnosis_group == "lymphoedema")).all()
        assert lymph == [("awaiting_consent", "copenhagen")] * 3
        quarantined = session.scalars(select(QuarantinedFile)).one()
    assert quarantined.reason_code == "malformed_xml"
    kept = Path(quarantined.stored_path)
    assert kept.exists() and kept.with_name(kept.name + ".reason").exists()
    assert len(list(runtime.settings.processed_dir.rglob("*.json"))) == 30

    again = inbox_poll(as_of=AS_OF)
    assert again["files"] == 0


def test_cli_submit_runs_intake_through_the_server_and_prints_the_case(runtime):
    runner = CliRunner()
    result = runner.invoke(cli, ["plan", "submit", str(EXAMPLES / "plan-example.json"),
                                 "--as-of", "2026-11-03", "--json"])
    assert result.exit_code == 0, result.output
    case = json.loads(result.stdout)
    assert case["state"] == "awaiting_consent"
    assert case["route"] == "copenhagen"
    assert case["municipality"] == "185"
    assert case["diagnosis_group"] == "hip_fracture"
    assert case["deadlines"] == {"free_choice_from": "2026-11-09", "start_by": "2026-11-09"}
    assert any("covered" in reason for reason in case["reasons"])

    shown = runner.invoke(cli, ["case", "show", case["case_number"], "--json"])
    assert shown.exit_code == 0, shown.output
    trail = json.loads(shown.stdout)["events"]
    assert [e["kind"] for e in trail][:3] == ["plan_received", "scope_decided", "deadlines_set"]

    listed = runner.invoke(cli, ["case", "list", "--state", "awaiting_consent", "--municipality", "185",
                                 "--json"])
    assert [c["case_number"] for c in json.loads(listed.stdout)["cases"]] == [case["case_number"]]
    assert json.loads(runner.invoke(cli, ["case", "list", "--municipality", "155", "--json"]).stdout) == {
        "cases": []}


def test_cli_submit_of_xml_plan_gives_the_same_case_as_json(runtime):
    runner = CliRunner()
    result = runner.invoke(cli, ["plan", "submit", str(EXAMPLES / "plan-example.xml"),
                                 "--as-of", "2026-11-03", "--json"])
    assert result.exit_code == 0, result.output
    case = json.loads(result.stdout)
    assert (case["state"], case["route"], case["diagnosis_group"]) == (
        "awaiting_consent", "copenhagen", "hip_fracture")


def test_cli_submit_of_invalid_plan_names_the_problem_and_keeps_the_file(runtime, tmp_path):
    bad = write_plan(tmp_path, "bad-cpr.json", citizen__cpr="310445-1234")
    result = CliRunner().invoke(cli, ["plan", "submit", str(bad), "--as-of", "2026-11-03"])
    assert result.exit_code == 5
    assert "invalid_cpr" in result.stderr and "April" in result.stderr
    assert "quarantine" in result.stderr
    assert bad.exists()


def test_cli_submit_of_a_folder_is_one_flow_run(runtime, tmp_path):
    folder = tmp_path / "many"
    for n in range(12):
        write_plan(folder, f"p{n}.json", plan_id=f"GOP-DIR-{n}")
    result = CliRunner().invoke(cli, ["plan", "submit", str(folder), "--as-of", "2026-11-03", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["files"] == 12 and len(document["cases"]) == 12
    [run] = [r for r in _flow_runs() if r.name.startswith("intake-") and r.name.endswith("-12-files")
             and r.parameters["path"].startswith(str(runtime.settings.staging_dir))]
    assert run.name == f"intake-{Path(run.parameters['path']).name}-12-files"  # the batch, not a file


# Hospital file names seen in the wild: a name, and CPR numbers written with "_", "." and " ".
PRIVATE_FILE_NAMES = ["plan_120356_1118_Zorbanella Quexwick.json", "010145.1234.json", "010145 1234.json",
                      "Gudrun Privatsen 240352-4118.xml"]
FILE_NAME_SECRETS = ["Zorbanella", "Quexwick", "120356", "1118_", "010145", "0101451234", "Gudrun"]


def test_no_personal_data_reaches_prefect(runtime, tmp_path, prefect_server):
    """Run intake (good plans, one with a bad CPR, files named with names and CPR numbers) by
    the flow, by `genop plan submit` and by the inbox poll; then search Prefect's API (runs,
    task runs, logs, artifacts, events) and its database."""
    from flows.intake import inbox_poll, plan_intake

    name, cpr, bad_cpr = "Gudrun Privatsen", "240352-4118", "320152-4118"
    folder = tmp_path / "private"
    write_plan(folder, "plan-a.json", plan_id="GOP-PRIV-1", citizen__name=name, citizen__cpr=cpr,
               diagnoses=[{"system": "ICD-10", "code": "DI639", "text": "Hjerneblødning"}],
               diagnosis_group=None)
    write_plan(folder, "plan-b.json", plan_id="GOP-PRIV-2", citizen__name=name, citizen__cpr=bad_cpr)
    result = plan_intake(path=str(stage_copy(folder, runtime.settings.folders)), as_of=AS_OF)
    assert result["counts"] == {"awaiting_consent": 1, "quarantined": 1}
    named = tmp_path / "named"
    for n, file_name in enumerate(PRIVATE_FILE_NAMES[:3]):
        write_plan(named, file_name, plan_id=f"GOP-PRIV-NAMED-{n}")
    (named / PRIVATE_FILE_NAMES[3]).write_bytes(b"<Genoptraeningsplan><oops></Genoptraeningsplan>")
    assert plan_intake(path=str(stage_copy(named, runtime.settings.folders)), as_of=AS_OF)["files"] == 4
    submitted = CliRunner().invoke(cli, ["plan", "submit", str(named / PRIVATE_FILE_NAMES[0]),
                                         "--as-of", "2026-11-03", "--json"])
    assert submitted.exit_code == 0, submitted.output
    for n, file_name in enumerate(PRIVATE_FILE_NAMES[:3]):
        write_plan(runtime.settings.inbox_dir, file_name, plan_id=f"GOP-PRIV-INBOX-{n}")
    assert inbox_poll(as_of=AS_OF)["counts"] == {"awaiting_consent": 3}
    with runtime.store.session() as session:  # genop's own store keeps the names
        kept = set(session.scalars(select(PlanDocument.source_name)))
    assert set(PRIVATE_FILE_NAMES[:3]) <= kept

    secrets = [name, "Privatsen", cpr, cpr.replace("-", ""), bad_cpr, bad_cpr.replace("-", ""),
               "Hjerneblødning", "DI639", *FILE_NAME_SECRETS]
    haystack = everything_prefect_holds()
    assert '"event":"prefect.flow-run.Completed"' in haystack.replace(" ", ""), "the scan must see events"
    assert "intake finished" in haystack, "the scan must see the run's logs to mean anything"
    assert "GEN-2026-" in haystack
    for secret in secrets:
        assert secret not in haystack, f"{secret!r} found in Prefect"
    raw_db = prefect_database_bytes()
    for secret in secrets:
        assert secret.encode() not in raw_db


def test_cli_without_server_says_so_in_one_line(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "GENOP_HOME": str(tmp_path), "HOME": str(tmp_path),
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    genop = shutil.which("genop", path=str(Path(sys.executable).parent))
    done = subprocess.run([genop, "plan", "submit", str(EXAMPLES / "plan-example.json")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "make run" in lines[0] and f"127.0.0.1:{port}" in lines[0]


def test_a_batch_that_keeps_failing_never_holds_up_new_inbox_files_and_is_given_up(runtime, tmp_path,
                                                                                 monkeypatch):
    import os
    import time

    import tasks.intake
    from flows.intake import inbox_poll
    from genop.inbox import MAX_BATCH_ATTEMPTS, batch_attempts, stage_copy

    for n in range(2):
        write_plan(tmp_path / "old", f"old-{n}.json", plan_id=f"GOP-POISON-{n}")
    poison = stage_copy(tmp_path / "old", runtime.settings.folders)
    real_batch_files = tasks.intake.batch_files

    def failing_for_the_poison_batch(batch: Path) -> list[Path]:
        if batch == poison and batch_attempts(batch) <= MAX_BATCH_ATTEMPTS:
            raise OSError("stands in for whatever keeps breaking this batch")
        return real_batch_files(batch)

    monkeypatch.setattr(tasks.intake, "batch_files", failing_for_the_poison_batch)
    for attempt in range(1, MAX_BATCH_ATTEMPTS + 1):
        os.utime(poison, (time.time() - 3600, time.time() - 3600))  # left behind: stale
        write_plan(runtime.settings.inbox_dir, f"new-{attempt}.json", plan_id=f"GOP-NEW-{attempt}")
        state = inbox_poll(as_of=AS_OF, return_state=True)
        assert state.is_failed() and "could not be taken in" in state.message
        with runtime.store.session() as session:
            plan_ids = set(session.scalars(select(Case.plan_id)))
        assert f"GOP-NEW-{attempt}" in plan_ids, "the new file was taken in despite the stale batch"
        assert not any(p.startswith("GOP-POISON") for p in plan_ids)

    os.utime(poison, (time.time() - 3600, time.time() - 3600))
    result = inbox_poll(as_of=AS_OF)

    assert result["counts"] == {"quarantined": 2}
    with runtime.store.session() as session:
        reasons = set(session.scalars(select(QuarantinedFile.reason_code)))
    assert reasons == {"intake_gave_up"}
    assert not poison.exists()
    assert inbox_poll(as_of=AS_OF)["files"] == 0, "the given-up batch is not taken up again"


def test_a_failing_chunk_keeps_the_earlier_chunks_cases_in_the_report_and_their_consent_waits(
        runtime, monkeypatch):
    import flows.intake
    from flows.intake import inbox_poll
    from genop.intake import Intake

    for n in range(4):
        write_plan(runtime.settings.inbox_dir, f"p{n}.json", plan_id=f"GOP-CHUNK-{n}")
    monkeypatch.setattr(flows.intake, "CHUNK_SIZE", 2)
    real_take_in = Intake.take_in
    first: list[str] = []

    def second_chunk_breaks(self, paths, as_of, **options):
        first[:] = first or [paths[0].name]
        if paths[0].name != first[0]:
            raise RuntimeError("stands in for whatever breaks the second chunk")
        return real_take_in(self, paths, as_of, **options)

    monkeypatch.setattr(Intake, "take_in", second_chunk_breaks)
    waits: list[str] = []
    monkeypatch.setattr(flows.intake, "start_consent_waits", lambda numbers: waits.extend(numbers))
    reports: list[int] = []
    monkeypatch.setattr(flows.intake, "publish_intake_report", lambda outcomes: reports.append(len(outcomes)))

    state = inbox_poll(as_of=AS_OF, return_state=True)

    assert state.is_failed() and "could not be taken in" in state.message
    with runtime.store.session() as session:
        made = sorted(session.scalars(select(Case.case_number)))
    assert len(made) == 2, "the first chunk was recorded"
    assert sorted(waits) == made, "the first chunk's cases got their consent waits"
    assert reports == [2]
