"""`genop consent`: record the citizen's decision in genop's store, then see it acted on.

genop's store is the system of record: the decision is recorded there first (row lock,
the first answer wins, a second one is told which answer stands). Then, if the case's
consent run is waiting (Paused in Prefect), it is resumed so it forwards the order or
writes the refusal letter at once; if the run is still starting (Scheduled, Pending,
Running) it finds the decision when it reaches the consent step and acts on it without
waiting. Prefect being slow or busy never refuses a consent: it is recorded either way.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from genop.clock import now_utc, today
from genop.consent import ConsentAnswer, record_consent
from genop.errors import GenopError
from genop.forwarding import refusal_letter_status
from genop.mail.outbox import Status
from genop.runtime import Runtime
from genop.lifecycle import CaseState
from genop.store.repository import get_case

POLL_SECONDS = 0.5
PREFECT_CHECK_SECONDS = 2.0
"""How often the CLI asks Prefect whether the wait has opened (the store is read more often)."""


@dataclass(frozen=True)
class Recorded:
    case_number: str
    state: str
    run_id: str | None


def answer_payload(answer: ConsentAnswer) -> dict[str, Any]:
    return {"decision": answer.decision.value, "method": answer.method.value,
            "decided_on": answer.decided_on.isoformat(), "recorded_by": answer.recorded_by}


def record_answer(runtime: Runtime, case_number: str, answer: ConsentAnswer) -> Recorded:
    """The decision in genop's store (first answer wins), whatever state Prefect is in."""
    with runtime.store.session() as session:
        case = record_consent(session, case_number, answer, today=today(), now=now_utc())
        return Recorded(case.case_number, case.state, case.consent_run_id)


def acted_on(runtime: Runtime, case_number: str) -> str | None:
    """The case's state once its recorded decision has been acted on (order sent / letter written)."""
    with runtime.store.session() as session:
        case = get_case(session, case_number)
        if case.state == CaseState.FORWARDING:
            return None
        if case.state == CaseState.CONSENT_REFUSED:
            return case.state if refusal_letter_status(session, case) == Status.SENT else None
        return case.state


def resume_with(run_id: str, payload: dict[str, Any], case_number: str) -> bool:
    """Resume the run if its wait is open; False when it is not (yet, or any more) paused."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(uuid.UUID(run_id))
        except ObjectNotFound:
            return False
        if run.state is None or not run.state.is_paused():
            return False
        result = client.resume_flow_run(run.id, run_input=payload)
    if result.status == SetStateStatus.ACCEPT:
        return True
    reason = getattr(result.details, "reason", None) or result.status.value
    if "not paused" in reason:
        return False  # answered in the same instant through the UI: the run replays and acts
    raise GenopError(f"Prefect refused the consent answer for {case_number}: {reason}",
                     code="consent_rejected_by_prefect")


def run_is_final(run_id: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(uuid.UUID(run_id))
        except ObjectNotFound:
            return True
    return run.state is not None and run.state.is_final()


def see_it_acted_on(runtime: Runtime, recorded: Recorded, payload: dict[str, Any],
                    seconds: float) -> str | None:
    """Wake the case's consent run when its wait is open, and wait for the outcome.

    Returns the case's state once acted on, or None when the deadline passes first (the
    decision stays recorded; the run acts on it when it gets there, or consent-reconcile does).
    Prefect errors here are transient by assumption: the next round asks again.
    """
    deadline = time.monotonic() + seconds
    next_check = 0.0
    woken = False
    while True:
        state = acted_on(runtime, recorded.case_number)
        if state is not None:
            return state
        if time.monotonic() >= deadline:
            return None
        if not woken and time.monotonic() >= next_check:
            next_check = time.monotonic() + PREFECT_CHECK_SECONDS
            woken = _wake(runtime, recorded, payload)
        time.sleep(POLL_SECONDS)


def start_consent_run_again(case_number: str, ended_run_id: str) -> None:
    """The case's consent run ended without acting on the decision (cancelled in the UI,
    crashed): start a new consent run now, which finds the recorded decision and acts on it
    without suspending, rather than leave the case to consent-reconcile. One new run per
    case and ended run (idempotency key), however often `genop consent` is run."""
    from prefect.client.orchestration import get_client

    from tasks.consent import CONSENT_DEPLOYMENT, consent_key

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(CONSENT_DEPLOYMENT)
        client.create_flow_run_from_deployment(deployment.id, parameters={"case_number": case_number},
                                               idempotency_key=f"{consent_key(case_number)}-after-{ended_run_id}")


def _wake(runtime: Runtime, recorded: Recorded, payload: dict[str, Any]) -> bool:
    """True once nothing more is needed from the CLI: the run was resumed, or has ended and
    a new consent run was started to act on the decision instead."""
    from prefect.exceptions import ObjectNotFound

    with runtime.store.session() as session:
        run_id = get_case(session, recorded.case_number).consent_run_id
    if not run_id:
        return False  # the run is being created; it finds the decision when it starts
    try:
        if resume_with(run_id, payload, recorded.case_number):
            return True
        if not run_is_final(run_id) or acted_on(runtime, recorded.case_number) is not None:
            return False
        start_consent_run_again(recorded.case_number, run_id)
        return True
    except (httpx.HTTPError, OSError, ObjectNotFound):
        return False  # busy or briefly unreachable (after Prefect's own retries): ask again


def parse_date(value: str | None) -> date:
    if value is None:
        return today()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise GenopError(f"date {value!r} is not a date (use YYYY-MM-DD)", code="invalid_date") from exc
