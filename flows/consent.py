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
from pydantic import Field

from flows.forward import case_forward
from genop.consent import ConsentMethod
from genop.runtime import current_runtime
from genop.states import CaseState
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
def case_consent(case_number: str) -> str:
    """Wait (suspended, holding no worker) for the consent decision, then act on it."""
    if not open_consent_wait(case_number, str(flow_run.id)):
        get_run_logger().info("%s no longer waits for consent", case_number)
        return "no_wait"
    days = current_runtime().settings.consent_wait_days
    for attempt in range(MAX_ANSWERS):
        # on resume the flow replays from the top: earlier answers are read back, not asked again
        answer = suspend_flow_run(wait_for_input=ConsentForm, key=consent_key(case_number, attempt),
                                  timeout=days * 24 * 3600)
        outcome = record_consent_answer(case_number, answer.decision, answer.method.value,
                                        answer.decided_on, answer.recorded_by)
        if outcome != INVALID_ANSWER:
            break
    else:
        return INVALID_ANSWER
    if outcome == CaseState.FORWARDING:
        return case_forward(case_number)
    if outcome == CaseState.CONSENT_REFUSED:
        write_refusal_letter(case_number)
    return outcome  # already recorded by another answer, or no longer awaited: nothing to do here

