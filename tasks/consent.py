"""Consent tasks: opening the wait (a suspended run per case) and recording the answer."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from genop.clock import now_utc, today
from genop.consent import (
    ConsentAlreadyRecorded,
    ConsentAnswer,
    ConsentDecision,
    ConsentError,
    ConsentMethod,
    first_answer_for_prefect,
    record_consent,
    register_wait,
)
from genop.lifecycle import CaseState
from genop.runtime import current_runtime
from tasks.privacy import private_errors
from genop.store.repository import get_case

CONSENT_DEPLOYMENT = "case-consent/case-consent"
ALREADY_RECORDED = "already_recorded"
NOT_AWAITED = "not_awaited"
INVALID_ANSWER = "invalid_answer"


def consent_key(case_number: str, attempt: int = 0) -> str:
    """Prefect's input key must be lowercase letters, digits and dashes, or the UI shows no form.

    ``attempt`` > 0: the wait re-opened after an answer the domain could not accept.
    """
    return "consent-" + case_number.lower() + (f"-{attempt}" if attempt else "")


@task(name="open-consent-wait", cache_policy=NO_CACHE)
def open_consent_wait(case_number: str, flow_run_id: str) -> tuple[str, str | None]:
    """Record which run waits for this case, or read the decision already recorded.

    Returns the case's state and, once a decision is recorded (by `genop consent` before the
    wait opened, or by an earlier answer), that first answer as Prefect may show it.
    ``awaiting_consent`` with no answer means: suspend and ask.
    """
    runtime = current_runtime()
    with runtime.store.session() as session:
        if register_wait(session, case_number, flow_run_id, now_utc()):
            return CaseState.AWAITING_CONSENT.value, None
        case = get_case(session, case_number)
        first = first_answer_for_prefect(case) if case.consent_decision is not None else None
        return case.state, first


@task(name="record-consent", cache_policy=NO_CACHE)
@private_errors
def record_consent_answer(case_number: str, decision: str, method: str, decided_on: date,
                          recorded_by: str) -> str:
    """The answer, recorded once; a second answer is refused and the first one stands."""
    runtime = current_runtime()
    answer = ConsentAnswer(ConsentDecision(decision), ConsentMethod(method), decided_on, recorded_by)
    try:
        with runtime.store.session() as session:
            return record_consent(session, case_number, answer, today=today(), now=now_utc()).state
    except ConsentAlreadyRecorded:
        with runtime.store.session() as session:
            first = first_answer_for_prefect(get_case(session, case_number))
        get_run_logger().warning("this answer (%s, %s, %s) is ignored: %s was first and stands",
                                 decision, method, decided_on, first)
        return ALREADY_RECORDED
    except ConsentError as error:
        get_run_logger().warning("consent answer for %s not accepted: %s", case_number, error.code)
        return NOT_AWAITED if error.code == "consent_not_awaited" else INVALID_ANSWER


@task(name="start-consent-waits", cache_policy=NO_CACHE)
def start_consent_waits(case_numbers: list[str], attempt: str = "0") -> list[str]:
    """One suspended consent run per case (idempotent per case and attempt).

    One API call per case (the deployment is read once): a batch of 2,000 plans must not
    triple the load on a busy server.
    """
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    logger = get_run_logger()
    runtime = current_runtime()
    with runtime.store.session() as session:
        # the case's creation time makes the key unique even if a case store is ever reset
        created = {n: int(get_case(session, n).created_at.timestamp()) for n in case_numbers}
    started: list[str] = []
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(CONSENT_DEPLOYMENT)
        except ObjectNotFound:
            logger.warning("deployment %s is not served; consent waits for %d case(s) will be opened "
                           "by the consent-reconcile flow", CONSENT_DEPLOYMENT, len(case_numbers))
            return started
        for number in case_numbers:
            try:
                run = client.create_flow_run_from_deployment(
                    deployment.id, parameters={"case_number": number},
                    idempotency_key=f"{consent_key(number)}-{created[number]}-{attempt}")
            except httpx.HTTPError as error:  # still busy after the client's own retries
                logger.warning("Prefect did not take the consent wait for %s (%s); it and the %d after "
                               "it are opened by the consent-reconcile flow; a consent given meanwhile "
                               "is recorded and acted on", number, type(error).__name__,
                               len(case_numbers) - len(started) - 1)
                break
            started.append(str(run.id))
            with runtime.store.session() as session:  # known at once: reconcile must not start another
                register_wait(session, number, str(run.id), now_utc())
    if started:
        logger.info("opened %d consent wait(s)", len(started))
    return started
