"""`genop consent`: resume the case's suspended consent run with the decision.

The same run the Prefect UI's Resume form answers: whichever comes first wins, the
second is refused with the first answer named.
"""

from __future__ import annotations

import time
import uuid
from datetime import date
from typing import Any

from genop.consent import (
    ConsentAlreadyRecorded,
    ConsentAnswer,
    ensure_awaiting_consent,
    validate_answer,
)
from genop.clock import today
from genop.errors import GenopError
from genop.runtime import Runtime
from genop.store.repository import get_case


def answer_payload(answer: ConsentAnswer) -> dict[str, Any]:
    return {"decision": answer.decision.value, "method": answer.method.value,
            "decided_on": answer.decided_on.isoformat(), "recorded_by": answer.recorded_by}


def consent_run_id(runtime: Runtime, case_number: str, answer: ConsentAnswer) -> str:
    """The open wait for this case, after the store says an answer is still wanted."""
    validate_answer(answer, today=today())
    with runtime.store.session() as session:
        case = get_case(session, case_number)
        ensure_awaiting_consent(case)
        if not case.consent_run_id:
            raise GenopError(
                f"no consent wait is open for {case.case_number} in Prefect yet; run the "
                "consent-reconcile deployment (or `genop consent-reconcile`) and try again",
                code="no_consent_wait")
        return case.consent_run_id


def resume_with(run_id: str, payload: dict[str, Any], case_number: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(uuid.UUID(run_id))
        except ObjectNotFound as exc:
            raise GenopError(f"the consent run {run_id} of {case_number} is not in Prefect; run "
                             "consent-reconcile to open a new wait", code="no_consent_wait") from exc
        if run.state is None or not run.state.is_paused():
            state = run.state.name if run.state else "unknown"
            raise ConsentAlreadyRecorded(
                f"the consent wait of {case_number} is no longer open (run {run.name} is {state}): "
                "it has already been answered, e.g. in the Prefect UI")
        result = client.resume_flow_run(run.id, run_input=payload)
    if result.status != SetStateStatus.ACCEPT:
        reason = getattr(result.details, "reason", None) or result.status.value
        raise GenopError(f"Prefect refused the consent answer for {case_number}: {reason}",
                         code="consent_rejected_by_prefect")


def wait_for_outcome(runtime: Runtime, case_number: str, seconds: float) -> str:
    """The case's state once the resumed run has acted (or still awaiting_consent on timeout)."""
    deadline = time.monotonic() + seconds
    state = "awaiting_consent"
    while time.monotonic() < deadline:
        with runtime.store.session() as session:
            state = get_case(session, case_number).state
        if state not in ("awaiting_consent", "forwarding"):
            return state
        time.sleep(0.5)
    return state


def parse_date(value: str | None) -> date:
    if value is None:
        return today()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise GenopError(f"date {value!r} is not a date (use YYYY-MM-DD)", code="invalid_date") from exc
