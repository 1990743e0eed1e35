"""Consent (agreement "Case lifecycle" 3): the case halts until the citizen's decision is
recorded — a suspended flow run per case, answered in the Prefect UI (a form) or with
`genop consent`. Given → forwarding starts at once; refused → a letter, case closed.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect import flow
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from prefect.states import Completed, State
from pydantic import Field

from flows.forward import case_forward
from genop.consent import ConsentMethod
from genop.runtime import current_runtime
from genop.lifecycle import CaseState
from tasks.consent import (
    INVALID_ANSWER,
    consent_key,
    open_consent_wait,
    record_consent_answer,
)
from tasks.forwarding import write_refusal_letter


MAX_ANSWERS = 5
"""An answer the domain refuses (a future date, a blank name) re-opens the form, up to this often."""


class ConsentForm(RunInput):
    """Borgerens samtykke til at sende genoptræningsplanen videre til Københavns Kommune."""

    decision: Literal["given", "refused"] = Field(
        title="Beslutning", description="given = samtykke givet, refused = borgeren siger nej")
    method: ConsentMethod = Field(
        title="Indhentet som", description="skriftligt, digitalt, telefonisk/personligt med skriftlig bekræftelse")
    decided_on: date = Field(title="Dato for borgerens beslutning")
    recorded_by: str = Field(title="Registreret af", min_length=1, max_length=128,
                             description="medarbejderens navn")


@flow(name="case-consent", flow_run_name="consent-{case_number}", persist_result=False)
def case_consent(case_number: str) -> State:
    """Wait (suspended, holding no worker) for the consent decision, then act on it.

    genop's store is the system of record: a decision recorded before this run got here
    (`genop consent` while the run was still starting) is acted on at once, without
    suspending. On resume the flow replays from the top, so that check comes first.
    """
    state, first = open_consent_wait(case_number, str(flow_run.id))
    if state == CaseState.AWAITING_CONSENT:
        if _ask_for_consent(case_number) == INVALID_ANSWER:
            return Completed(message=f"no valid consent answer after {MAX_ANSWERS} tries; record it "
                                     "with `genop consent`", data=INVALID_ANSWER)
        state, first = open_consent_wait(case_number, str(flow_run.id))
    return _act_on_decision(case_number, state, first)


def _ask_for_consent(case_number: str) -> str:
    days = current_runtime().settings.consent_wait_days
    outcome = INVALID_ANSWER
    for attempt in range(MAX_ANSWERS):
        # on resume the flow replays from the top: earlier answers are read back, not asked again
        answer = suspend_flow_run(wait_for_input=ConsentForm, key=consent_key(case_number, attempt),
                                  timeout=days * 24 * 3600)
        outcome = record_consent_answer(case_number, answer.decision, answer.method.value,
                                        answer.decided_on, answer.recorded_by)
        if outcome != INVALID_ANSWER:
            break
    return outcome


def _act_on_decision(case_number: str, state: str, first: str | None) -> State:
    """Forward or write the letter for the recorded decision (both exactly once via the outbox).

    The final state's message names the first answer, so whoever answers the form again sees
    in the UI which answer stands.
    """
    if state == CaseState.FORWARDING:
        state = case_forward(case_number)
    elif state == CaseState.CONSENT_REFUSED:
        write_refusal_letter(case_number)
    if first is None:
        message = f"{case_number} no longer waits for consent (case is {state})"
    else:
        message = f"{first}; that first answer stands (later answers are ignored); case is {state}"
    get_run_logger().info("%s", message)
    return Completed(message=message, data=str(state))

