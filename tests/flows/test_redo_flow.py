"""An order re-send for a dispute, started from the deployment as the UI's Run form does and from
`genop dispute redo`: the same one extra mail over real SMTP, and no dispute text in Prefect."""

from __future__ import annotations

import json
import os

import httpx
from click.testing import CliRunner

from genop.clock import now_utc
from genop.disputes import SubjectKind
from genop.disputes.records import get_dispute, open_dispute
from genop.forwarding import prepare_order
from genop.mail.outbox import deliver, smtp_sender, smtp_settings_of
from genop_cli.main import cli
from tests.flows.helpers import AS_OF, OUTCOME_SECONDS, deployment_served, everything_prefect_holds, wait_for
from tests.integration.test_dispute_resend import by_message_id
from tests.integration.test_forwarding import consented_case

REASON = "Borgeren Karen Hansen siger at Københavns Kommune aldrig ringede"
DEPLOYMENT = "dispute-resend-order"


def test_each_resend_is_deployed_under_its_action_with_the_fixed_parameters():
    """DEPLOYMENTS[action] names the flow and its deployment; the Run form shows Danish titles."""
    from flows.serve import declared_deployments, load_flow
    from genop.disputes import DEPLOYMENTS
    from genop.disputes.resend import RESENDS

    specs = {spec["name"]: spec for spec in declared_deployments()}
    for action in RESENDS:
        spec = specs[DEPLOYMENTS[action]]
        flow = load_flow(spec["entrypoint"])
        schema = flow.parameters.model_dump()
        assert flow.name == DEPLOYMENTS[action] and "genop dispute redo" in spec["description"]
        extra = {"notice"} if action.value == "resend-notice" else set()
        assert set(schema["properties"]) == {"dispute", "by", "case", "as_of"} | extra
        assert set(schema["required"]) == {"dispute", "by"} | extra
        assert schema["properties"]["dispute"]["title"] == "Tvist"
        assert schema["properties"]["by"]["title"] == "Bestilt af"


def _sent_order(runtime, tmp_path, plan_id: str) -> tuple[str, str]:
    number = consented_case(runtime, tmp_path, plan_id)
    with runtime.store.session() as session:
        row = prepare_order(session, number, agreement=runtime.agreement, settings=runtime.settings, now=now_utc())
        row_id, message_id = row.id, row.message_id
    assert deliver(runtime.store, row_id, smtp_sender(smtp_settings_of(runtime.settings))).status == "sent"
    return number, message_id


def _open(runtime, case_number: str) -> str:
    with runtime.store.session() as session:
        return open_dispute(session, runtime.agreement, subject=SubjectKind.CASE, reference=case_number,
                            about="order_not_received", reason=REASON, by="Sagsbehandler A", day=AS_OF,
                            now=now_utc()).number


def _run_from_the_form(api: str, parameters: dict) -> dict:
    """What the UI's Run button does: create a run of the deployment; then wait for it to end."""
    wait_for(lambda: deployment_served(DEPLOYMENT), OUTCOME_SECONDS, f"{DEPLOYMENT} to be served")
    deployment = httpx.get(f"{api}/deployments/name/{DEPLOYMENT}/{DEPLOYMENT}", timeout=30).json()
    created = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters},
                         timeout=30)
    created.raise_for_status()
    run_id = created.json()["id"]

    def ended() -> dict | None:
        response = httpx.get(f"{api}/flow_runs/{run_id}", timeout=30)
        run = response.json() if response.status_code == 200 else None
        return run if run and run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    return wait_for(ended, OUTCOME_SECONDS, f"{DEPLOYMENT} run to end")


def test_a_resend_from_the_run_form_and_from_the_cli_is_one_mail(system, tmp_path):
    runtime, sink = system["runtime"], system["sink"]
    api = os.environ["PREFECT_API_URL"]
    case_number, original = _sent_order(runtime, tmp_path, "GOP-REDO-1")
    number = _open(runtime, case_number)

    run = _run_from_the_form(api, {"dispute": number, "by": "Sagsbehandler UI"})
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["name"] == f"{number}-resend-order"
    with runtime.store.session() as session:
        [redo] = get_dispute(session, number).redos
        produced = redo.produced
    [entry] = produced["outbox"]
    mails = by_message_id(sink)
    assert set(mails) == {original, entry["message_id"]}

    result = CliRunner().invoke(cli, ["dispute", "redo", number.lower(), "resend-order", "--by", "Sagsbehandler CLI",
                                      "--wait", str(OUTCOME_SECONDS), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["produced"] == produced and document["status"] == "done"
    assert document["requested_by"] == "Sagsbehandler UI"  # the first ask; the second produced nothing new
    assert set(by_message_id(sink)) == {original, entry["message_id"]}

    waiting = consented_case(runtime, tmp_path, "GOP-REDO-2")
    refused = CliRunner().invoke(cli, ["dispute", "redo", _open(runtime, waiting), "resend-order", "--by", "X"])
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (f"genop: no order was ever sent for case {waiting}: nothing to re-send "
                                      "(forward it: genop case forward)")

    held = everything_prefect_holds()
    assert f"{number}-resend-order" in held
    assert REASON not in held and "Karen" not in held


def test_redecide_is_deployed_with_the_fixed_parameters():
    from flows.serve import declared_deployments, load_flow
    from genop.disputes import DEPLOYMENTS, Action

    [spec] = [s for s in declared_deployments() if s["name"] == DEPLOYMENTS[Action.REDECIDE]]
    flow = load_flow(spec["entrypoint"])
    schema = flow.parameters.model_dump()
    assert flow.name == "dispute-redecide" and "genop dispute redo NUMBER redecide" in spec["description"]
    assert set(schema["properties"]) == {"dispute", "by", "case", "as_of"}
    assert set(schema["required"]) == {"dispute", "by"}
    assert schema["properties"]["dispute"]["title"] == "Tvist"


def test_a_redecide_from_the_cli_puts_a_case_in_scope_and_opens_its_consent_wait_once(system, tmp_path):
    from genop.store.repository import get_case
    from tests.integration.test_routing import take_in

    runtime = system["runtime"]
    case_number = take_in(runtime, tmp_path, "GOP-REDO-RD")
    with runtime.store.session() as session:  # decided before the hospital's group was configured, say
        case = get_case(session, case_number)
        case.state, case.route = "incomplete", None
    number = _open(runtime, case_number)
    wait_for(lambda: deployment_served("dispute-redecide"), OUTCOME_SECONDS, "dispute-redecide to be served")

    runs = [CliRunner().invoke(cli, ["dispute", "redo", number, "redecide", "--by", "Sagsbehandler CLI",
                                     "--wait", str(OUTCOME_SECONDS), "--json"]) for _ in range(2)]
    assert all(run.exit_code == 0 for run in runs), [run.output for run in runs]
    first, second = (json.loads(run.stdout) for run in runs)
    assert first["status"] == "done" and first["flow_run"] == f"{number}-redecide"
    assert first["produced"] == second["produced"]
    assert first["produced"]["state"] == "awaiting_consent" and first["produced"]["consent_wait"] is True
    assert first["changes"]["before"]["state"] == "incomplete"
    with runtime.store.session() as session:
        case = get_case(session, case_number, with_events=True)
        kinds = [event.kind for event in case.events]
        assert case.state == "awaiting_consent" and case.consent_run_id is not None
    assert kinds.count("redecided") == 1 and kinds[-1] == "consent_wait_opened"

    held = everything_prefect_holds()
    assert f"{number}-redecide" in held
    assert REASON not in held and "Karen" not in held and "010145" not in held
