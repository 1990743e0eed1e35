"""Consent halt → forwarding, end to end through a served deployment (SQLite and PostgreSQL).

The consent run really suspends in Prefect, is resumed by `genop consent` (or, like the
UI's form, through Prefect's API with run input), and the order arrives over SMTP in
the mail sink, where the openssl command line decrypts and verifies it.
"""

from __future__ import annotations

import email
import email.policy
import json

import pytest
from click.testing import CliRunner

from genop.store.repository import get_case
from genop_cli.main import cli
from tests.conftest import EXAMPLES
from tests.flows.helpers import (
    OUTCOME_SECONDS,
    consent,
    openssl_decrypt_and_verify,
    run_input,
    submit,
    suspended_run,
    wait_for,
)



def test_consent_given_in_cli_forwards_one_verified_order(system, tmp_path):
    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-example.json")
    run = suspended_run(runtime, number)
    assert run.name == f"consent-{number}"
    assert run.state.name == "Suspended"
    keyset = run.state.state_details.run_input_keyset
    assert keyset, "the UI needs an input schema to show the form"
    schema = run_input(run.id, keyset["schema"])
    assert {"decision", "method", "decided_on", "recorded_by"} <= set(schema["properties"])

    done = consent(number, "--given")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["state"] == "forwarded"

    [mail] = sorted(system["mail"].glob("*.eml"))
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == f"Bestilling af genoptræning – sag {number}"
    raw_text = mail.read_bytes().decode("ascii", "replace")
    for secret in ("010145", "Karen", "Jensen", "DS720", "lårbenshals"):
        assert secret not in raw_text, f"{secret} visible outside the encryption"
    content = openssl_decrypt_and_verify(mail, system["certs"], tmp_path)
    attachments = {part.get_filename(): part.get_payload(decode=True)
                   for part in content.walk() if part.get_filename()}
    assert attachments[f"genoptraeningsplan-{number}.json"] == (EXAMPLES / "plan-example.json").read_bytes()
    assert b"Gangfunktion" in attachments[f"genoptraeningsplan-{number}.html"]

    with runtime.store.session() as session:
        case = get_case(session, number, with_events=True)
        assert case.state == "forwarded" and case.forwarded_at is not None
        assert case.consent_decision == "given" and case.consent_recorded_by == "Sagsbehandler Test"
        kinds = [e.kind for e in case.events]
        assert kinds[-4:] == ["consent_wait_opened", "consent_recorded", "order_prepared", "forwarded"]

    again = consent(number, "--given")
    assert again.exit_code == 1
    assert "already recorded" in again.stderr

    retrigger = CliRunner().invoke(cli, ["case", "forward", number, "--json"])
    assert retrigger.exit_code == 0, retrigger.output
    assert len(list(system["mail"].glob("*.eml"))) == 1
    outbox = json.loads(CliRunner().invoke(cli, ["outbox", "list", "--json"]).stdout)["outbox"]
    assert [(o["key"], o["status"], o["attempts"]) for o in outbox] == [(f"{number}:order", "sent", 1)]


def test_consent_refused_writes_the_letter_and_closes_the_case(system):
    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-dragor.json")
    suspended_run(runtime, number)

    done = consent(number, "--refused", "--method", "phone_with_written_confirmation")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["state"] == "consent_refused"
    assert list(system["mail"].glob("*.eml")) == []
    [letter] = wait_for(lambda: list((runtime.settings.letters_dir / number).glob("*.html")), 30,
                        "the refusal letter (written right after the decision is recorded)")
    text = letter.read_text(encoding="utf-8")
    assert "kan kommunen som udgangspunkt ikke give dig genoptræningen" in text
    assert "Du kan altid ombestemme dig" in text
    with runtime.store.session() as session:
        case = get_case(session, number, with_events=True)
        assert case.state == "consent_refused" and case.payer == "dragor"
        assert "letter_sent" in [e.kind for e in case.events]


def test_answer_given_like_the_ui_form_wins_and_the_cli_answer_is_refused(system):
    from prefect.flow_runs import resume_flow_run

    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-example.json")
    run = suspended_run(runtime, number)
    resume_flow_run(run.id, run_input={"decision": "given", "method": "digital",
                                       "decided_on": "2026-11-03", "recorded_by": "UI Bruger"})
    wait_for(lambda: _recorded_by(runtime, number), OUTCOME_SECONDS, "the form's answer to be recorded")
    late = consent(number, "--refused")
    assert late.exit_code == 1
    assert "already recorded: given (digital) on 2026-11-03, recorded by UI Bruger" in late.stderr
    wait_for(lambda: _state(runtime, number) == "forwarded", OUTCOME_SECONDS, "forwarding after the UI answer")
    with runtime.store.session() as session:
        assert get_case(session, number).consent_recorded_by == "UI Bruger"
    assert len(list(system["mail"].glob("*.eml"))) == 1


def test_consent_given_while_the_run_is_still_starting_is_recorded_and_forwarded(system):
    """Seconds after `plan submit` the run is still Scheduled/Pending/Running: never refused."""
    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-example.json")
    done = consent(number, "--given")
    assert done.exit_code == 0, done.output
    assert "Traceback" not in done.output
    assert json.loads(done.stdout)["state"] == "forwarded"
    assert len(list(system["mail"].glob("*.eml"))) == 1
    with runtime.store.session() as session:
        case = get_case(session, number, with_events=True)
        assert case.consent_recorded_by == "Sagsbehandler Test"
        assert [e.kind for e in case.events].count("forwarded") == 1
    run = wait_for(lambda: _final_run(runtime, number), OUTCOME_SECONDS, "the consent run to finish")
    assert run.state.is_completed()
    assert "consent given (written, 2026-11-03) recorded in genop" in run.state.message


def test_consent_recorded_without_prefect_is_acted_on_and_a_form_answer_does_not_forward_twice(
        system, monkeypatch):
    """The CLI records while no server answers; the form is answered afterwards with another
    decision: the recorded consent stands, is forwarded once, and Prefect names it."""
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-example.json")
    run = suspended_run(runtime, number)
    with monkeypatch.context() as offline:
        offline.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
        recorded = consent(number, "--given")
    assert recorded.exit_code == 0, recorded.output
    assert json.loads(recorded.stdout) == {"case_number": number, "decision": "given",
                                           "state": "forwarding", "acted_on": False}
    assert list(system["mail"].glob("*.eml")) == []

    resume_flow_run(run.id, run_input={"decision": "refused", "method": "digital",
                                       "decided_on": "2026-11-02", "recorded_by": "UI Bruger"})
    wait_for(lambda: _state(runtime, number) == "forwarded", OUTCOME_SECONDS, "the recorded consent to be forwarded")
    assert len(list(system["mail"].glob("*.eml"))) == 1
    with runtime.store.session() as session:
        case = get_case(session, number)
        assert (case.consent_decision, case.consent_recorded_by) == ("given", "Sagsbehandler Test")
    finished = wait_for(lambda: _final_run(runtime, number), OUTCOME_SECONDS, "the consent run to finish")
    assert "consent given (written, 2026-11-03) recorded in genop" in finished.state.message
    assert "that first answer stands" in finished.state.message

    # a second answer through the form: Prefect refuses it; the run's message names the first
    with get_client(sync_client=True) as client:
        second = client.resume_flow_run(run.id, run_input={
            "decision": "refused", "method": "digital", "decided_on": "2026-11-03", "recorded_by": "X"})
    assert second.status.value != "ACCEPT"
    assert len(list(system["mail"].glob("*.eml"))) == 1


def test_malformed_run_input_is_refused_and_the_wait_stays_open(system):
    from genop.errors import GenopError
    from genop_cli.consent import resume_with

    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-example.json")
    run = suspended_run(runtime, number)
    with pytest.raises(GenopError) as refused:
        resume_with(str(run.id), {"decision": "maybe", "method": "written", "decided_on": "yesterday",
                                  "recorded_by": ""}, number)
    assert refused.value.code == "consent_rejected_by_prefect"
    assert suspended_run(runtime, number).id == run.id
    assert _state(runtime, number) == "awaiting_consent"


def test_consent_for_unknown_or_closed_case_is_refused(system, tmp_path):
    from tests.factories import write_plan

    unknown = CliRunner().invoke(cli, ["consent", "GEN-2026-999999", "--given", "--by", "X"])
    assert unknown.exit_code == 4 and "no case" in unknown.stderr
    closed = submit(write_plan(tmp_path, "kbh.json", plan_id="GOP-KBH-1", citizen__municipality_code="101"))
    refused = CliRunner().invoke(cli, ["consent", closed, "--given", "--by", "X"])
    assert refused.exit_code == 1 and "not waiting for consent" in refused.stderr


def test_reconcile_reopens_a_wait_prefect_lost(system):
    from prefect.client.orchestration import get_client

    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-example.json")
    lost = suspended_run(runtime, number)
    with get_client(sync_client=True) as client:
        client.delete_flow_run(lost.id)
    listed = json.loads(CliRunner().invoke(cli, ["case", "list", "--state", "awaiting_consent",
                                                 "--json"]).stdout)["cases"]
    assert [c["case_number"] for c in listed] == [number]
    result = CliRunner().invoke(cli, ["consent-reconcile"])
    assert result.exit_code == 0, result.output
    assert "1 wait(s) opened" in result.stdout
    reopened = wait_for(lambda: (r := suspended_run(runtime, number)).id != lost.id and r, OUTCOME_SECONDS,
                         "a new consent wait")
    assert reopened.name == f"consent-{number}"


def _recorded_by(runtime, number: str) -> str | None:
    with runtime.store.session() as session:
        return get_case(session, number).consent_recorded_by


def _final_run(runtime, number: str):
    """The case's consent run (as genop's store knows it) once it is in a final state."""
    import uuid

    from prefect.client.orchestration import get_client

    with runtime.store.session() as session:
        run_id = get_case(session, number).consent_run_id
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(uuid.UUID(run_id))
    return run if run.state and run.state.is_final() else None


def _state(runtime, number: str) -> str:
    with runtime.store.session() as session:
        return get_case(session, number).state


def test_consent_given_after_the_consent_run_was_cancelled_is_acted_on_at_once(system):
    """A wait cancelled in the UI (or a run that crashed): `genop consent` does not sit out
    its --wait; it starts a new consent run, which acts on the recorded decision."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-example.json")
    run = suspended_run(runtime, number)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Cancelled(), force=True)
    wait_for(lambda: _final_run(runtime, number), OUTCOME_SECONDS, "the consent run to be cancelled")

    result = consent(number, "--given")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"case_number": number, "decision": "given", "state": "forwarded",
                                         "acted_on": True}
    assert len(list(system["mail"].glob("*.eml"))) == 1


def test_reconcile_closes_a_wait_whose_decision_was_recorded_without_prefect(system, monkeypatch):
    """Consent recorded while no server answered: reconcile resumes the open wait with it, so
    the order goes out once and no Resume form stays open for an answered case."""
    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-example.json")
    suspended_run(runtime, number)
    with monkeypatch.context() as offline:
        offline.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
        recorded = consent(number, "--given")
    assert json.loads(recorded.stdout)["acted_on"] is False

    result = CliRunner().invoke(cli, ["consent-reconcile"])

    assert result.exit_code == 0, result.output
    assert "1 answered wait(s) closed" in result.stdout
    finished = wait_for(lambda: _final_run(runtime, number), OUTCOME_SECONDS, "the answered wait to finish")
    assert "that first answer stands" in finished.state.message
    wait_for(lambda: _state(runtime, number) == "forwarded", OUTCOME_SECONDS, "the order to be sent")
    assert len(list(system["mail"].glob("*.eml"))) == 1
    again = CliRunner().invoke(cli, ["consent-reconcile"])
    assert "0 answered wait(s) closed" in again.stdout
