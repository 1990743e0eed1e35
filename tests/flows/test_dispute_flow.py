"""A dispute through Prefect (SQLite and PostgreSQL), agreement §10: opened about a Dragør citizen's
case, a mediation call later than 8 days refused, the call mailed once over SMTP to Tårnby,
Copenhagen and Dragør (signed and encrypted, the dispute's number in the subject), a second call
refused with nothing sent, the deployment run again (as from the UI) sending nothing more, then
resolved; and nothing of the dispute's text, the citizen's CPR or name reaches Prefect."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner

from genop_cli.main import cli
from tests.factories import write_plan
from tests.flows.helpers import (
    OUTCOME_SECONDS,
    deployment_served,
    everything_prefect_holds,
    openssl_decrypt_and_verify,
    prefect_database_bytes,
    wait_for,
)

DAY = date(2026, 11, 20)
REASON = "Borgeren Karen Jensen mener at have fået for få træningsgange"
WHY = "Parterne er uenige om antallet af besøg"
BY = "Tvistmedarbejder Åse Tvistesen"
TARNBY, COPENHAGEN, DRAGOR = ("FLI.PLLOJ.SF@taarnby.dk", "genoptraeningkbh@suf.kk.dk",
                              "afdelingsleder.dragoer@example.org")


def _cli(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _calls(folder: Path) -> list[Path]:
    """The mediation calls the mail sink received."""
    return sorted(path for path in folder.glob("*.eml")
                  if "mediationsmøde" in str(email.message_from_bytes(path.read_bytes(),
                                                                      policy=email.policy.default)["Subject"]))


def _dragor_case(runtime, tmp_path: Path) -> str:  # noqa: ANN001 - genop.runtime.Runtime
    """A Dragør citizen's case in genop's store (intake itself is tested elsewhere)."""
    from genop.inbox import stage_copy

    write_plan(tmp_path / "plan", "plan.json", plan_id="GOP-DSP-FLOW-1", citizen__municipality_code="155")
    batch = stage_copy(tmp_path / "plan", runtime.settings.folders)
    [outcome] = runtime.intake.take_in(sorted(batch.iterdir()), DAY)
    return outcome.case_number


def _run_deployment(name: str, **parameters: object) -> str:
    """Run a served deployment as the UI's Run form does; the run's name once it completed."""
    from prefect.deployments import run_deployment

    run = run_deployment(name, parameters=parameters, timeout=OUTCOME_SECONDS)
    assert run.state is not None and run.state.is_completed(), run.state
    return run.name


def test_a_dispute_is_called_to_mediation_once_and_resolved_with_nothing_personal_in_prefect(system, tmp_path):
    runtime = system["runtime"]
    case_number = _dragor_case(runtime, tmp_path)
    opened = _cli("dispute", "open", "--case", case_number, "--about", "visits_disputed", "--reason", REASON,
                  "--by", BY, "--as-of", DAY.isoformat())
    number = opened["number"]
    assert (opened["state"], opened["municipality"]) == ("open", "dragor")

    late = CliRunner().invoke(cli, ["dispute", "call-mediation", number, "--on",
                                    (DAY + timedelta(days=9)).isoformat(), "--by", BY,
                                    "--why", WHY, "--as-of", DAY.isoformat()])
    assert late.exit_code == 1 and "within 8 days of the call (§10)" in late.stderr
    assert "Traceback" not in late.output

    meeting = DAY + timedelta(days=8)
    called = _cli("dispute", "call-mediation", number, "--on", meeting.isoformat(), "--by", BY,
                  "--why", WHY, "--as-of", DAY.isoformat())
    assert (called["state"], called["mediation_on"]) == ("mediation_called", meeting.isoformat())
    assert called["delivery"] == {"composed": 3, "undelivered": 0}
    assert sorted(m["status"] for m in called["mail"]) == ["sent", "sent", "sent"]
    calls = wait_for(lambda: len(_calls(system["mail"])) >= 3 and _calls(system["mail"]), OUTCOME_SECONDS,
                     "the three mediation calls")
    heads = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in calls]
    assert sorted(str(m["To"]) for m in heads) == sorted([TARNBY, COPENHAGEN, DRAGOR])
    assert {str(m["Subject"]) for m in heads} == {
        f"Indkaldelse til mediationsmøde – tvist {number} (visits_disputed) – sag {case_number}"}
    [to_copenhagen] = [p for p, m in zip(calls, heads, strict=True) if str(m["To"]) == COPENHAGEN]
    inner = openssl_decrypt_and_verify(to_copenhagen, system["certs"], tmp_path)
    body = inner.get_payload(decode=True).decode("utf-8") if not inner.is_multipart() else \
        inner.get_payload(0).get_payload(decode=True).decode("utf-8")
    assert number in body and "28. november 2026" in body and REASON in body and WHY in body

    again = CliRunner().invoke(cli, ["dispute", "call-mediation", number, "--on", meeting.isoformat(), "--by", BY,
                                     "--why", WHY, "--as-of", DAY.isoformat()])
    assert again.exit_code == 1 and "cannot move to mediation_called" in again.stderr
    wait_for(lambda: deployment_served("dispute-mail-deliver"), OUTCOME_SECONDS, "dispute-mail-deliver served")
    assert _run_deployment("dispute-mail-deliver/dispute-mail-deliver", dispute=number) == f"dispute-mail-{number}"
    assert len(_calls(system["mail"])) == 3  # exactly once per party, however often it is asked

    resolved = _cli("dispute", "resolve", number, "--by", BY, "--why", "Enige på mødet",
                    "--as-of", meeting.isoformat())
    assert resolved["state"] == "resolved"
    assert [e["change"] for e in _cli("dispute", "show", number)["timeline"]] == [
        "opened", "mediation_called", "resolved"]

    haystack = everything_prefect_holds()
    assert f"dispute-mail-{number}" in haystack and f"dispute-{number.lower()}" in haystack
    for secret in (REASON, WHY, "Karen Jensen", "010145-1234", "0101451234", "Enige på mødet", BY):
        assert secret not in haystack, f"{secret!r} found in Prefect"
        assert secret.encode() not in prefect_database_bytes(), f"{secret!r} in Prefect's database"


def test_dispute_mail_deliver_asks_the_run_form_for_the_dispute_number_only():
    """prefect.yaml declares it (a failed delivery is re-run from the UI); its one parameter is the number."""
    from flows.serve import declared_deployments, load_flow

    [spec] = [spec for spec in declared_deployments() if spec["name"] == "dispute-mail-deliver"]
    schema = load_flow(spec["entrypoint"]).parameters.model_dump()
    assert schema["required"] == ["dispute"] and list(schema["properties"]) == ["dispute"]
    # Prefect 3.8.8 titles a parameter by its name whatever Field says; the description is the form's help
    assert "TV-YYYY-NNNN" in schema["properties"]["dispute"]["description"]
