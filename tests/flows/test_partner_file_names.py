"""No partner-chosen file name reaches Prefect (issue 17, point 3): an offers, a visits and a
slutstatus file named with a CPR number and a name, driven through `genop offers import`,
`genop visits import` and `genop complete` against the served system, leave neither in any
run's parameters or name, task run, log, artifact or event, nor in Prefect's database; genop
still shows the name where staff look (the command's output, the import record, the case's
trail). A path typed into the UI's Run form is refused with what to run instead."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from genop.clock import today
from genop.staged import uploads_dir
from genop.store.models import VisitImport
from genop.store.repository import get_case
from genop_cli.main import cli
from tests.conftest import EXAMPLES
from tests.flows.helpers import (
    consent,
    everything_prefect_holds,
    prefect_database_bytes,
    submit,
    suspended_run,
)

CPR, NAME = "010145-1234", "Karen Jensen"
SECRETS = ("010145", "0101451234", "Karen", "Jensen")


def _run(*args: str):  # noqa: ANN202 - click's Result
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def _flat(text: str) -> str:
    """The console wraps long lines; staff read the words."""
    return " ".join(text.split())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # Prefect is what is searched, not the store
def test_partner_file_names_with_a_cpr_and_a_name_never_reach_prefect(system, tmp_path):
    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-example.json")
    suspended_run(runtime, number)
    assert json.loads(consent(number, "--given").stdout)["state"] == "forwarded"
    day = today()
    first, later = day + timedelta(days=2), day + timedelta(days=12)

    offers = tmp_path / f"offers_{CPR}_{NAME}.csv"
    offers.write_text(f"case_number,first_session\n{number},{first}T10:00\n", encoding="utf-8")
    offered = json.loads(_run("offers", "import", str(offers), "--as-of", day.isoformat(), "--json").stdout)
    assert [o["status"] for o in offered["offers"]] == ["recorded"]
    assert offered["source_name"] == offers.name

    visits = tmp_path / f"visits_{CPR}_{NAME}.csv"
    visits.write_text("case_number,visit_date,sks_code,minutes,mode,group_size\n"
                      f"{number},{first},BLNR1,60,individual,\n"
                      f"{number},{first + timedelta(days=2)},BLNR1,abc,individual,\n", encoding="utf-8")
    report = json.loads(_run("visits", "import", str(visits), "--as-of", later.isoformat(), "--json").stdout)
    assert (report["accepted"], report["rejected"], report["source_name"]) == (1, 1, visits.name)
    assert not any(secret in report["rejects_path"] for secret in SECRETS), report["rejects_path"]
    again = _run("visits", "import", str(visits), "--as-of", later.isoformat())
    assert f"{visits.name} (import" in _flat(again.stdout)  # what staff read: their file's name

    status = tmp_path / f"slutstatus_{CPR}_{NAME}.json"
    status.write_text(json.dumps({"case_number": number, "completed_on": later.isoformat(),
                                  "assessment": "Går selv.", "consent_to_share": True}), encoding="utf-8")
    done = json.loads(_run("complete", number, "--status", str(status), "--as-of", later.isoformat(),
                           "--json").stdout)
    assert done["state"] == "completed"

    with runtime.store.session() as session:  # genop's own store keeps the names
        assert set(session.scalars(select(VisitImport.source_name))) == {visits.name}
        trail = [e.detail for e in get_case(session, number, with_events=True).events if e.kind == "completed"]
    assert any(status.name in detail for detail in trail), trail
    uploads = uploads_dir(runtime.settings.home_dir)
    assert uploads.is_dir() and not any(uploads.iterdir()), "a staged copy outlived its run"

    haystack = everything_prefect_holds()
    assert "visits-import-visits-" in haystack and "offers-import-offers-" in haystack  # runs by reference
    assert f"complete-{number}" in haystack and '"staged":"slutstatus-' in haystack.replace(" ", "")
    for secret in SECRETS:
        assert secret not in haystack, f"{secret!r} found in Prefect"
        assert secret.encode() not in prefect_database_bytes(), f"{secret!r} in Prefect's database"


def test_a_path_typed_into_a_partner_file_deployment_is_refused_with_the_command_to_run(runtime, prefect_server,
                                                                                       tmp_path):
    from flows.training import case_complete, offers_import, visits_import

    typed = tmp_path / "typed-in-the-ui.csv"
    typed.write_text("case_number,first_session\n", encoding="utf-8")
    from prefect.client.orchestration import get_client

    for state, command, run_name in (
            (visits_import(staged=str(typed), return_state=True), "genop visits import FILE", "visits-import"),
            (offers_import(staged=str(typed), return_state=True), "genop offers import FILE", "offers-import"),
            (case_complete(case_number="GEN-2026-000001", staged=str(typed), return_state=True),
             "genop complete CASE --status FILE", "complete-GEN-2026-000001")):
        assert state.is_failed()
        assert command in state.message and "not a path" in state.message, state.message
        assert str(typed) not in state.message
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(state.state_details.flow_run_id).name == run_name  # not the path
    assert typed.exists() and not (runtime.settings.home_dir / "uploads").exists()
