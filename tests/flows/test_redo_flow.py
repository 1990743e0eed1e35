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
