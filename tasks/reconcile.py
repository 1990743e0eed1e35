"""Reconciling genop's store (the system of record) with Prefect's runs, and finishing
the steps a crash left half-done (the rules are in genop.reconcile)."""

from __future__ import annotations

import uuid

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.exceptions import ObjectNotFound
from prefect.logging import get_run_logger

from genop.clock import now_utc
from genop.reconcile import (
    answered_waits,
    cases_awaiting_consent,
    cases_stuck_after_consent,
    deliver_undelivered,
    record_sent,
    sent_but_unrecorded,
    undelivered,
)
from genop.runtime import current_runtime
from genop.settlement.documents import hand_off
from tasks.privacy import private_errors


def _is_live(client: SyncPrefectClient, run_id: str | None) -> bool:
    """A wait is live while its run is not in a final state (Suspended, Scheduled, Running…)."""
    if not run_id:
        return False
    try:
        run = client.read_flow_run(uuid.UUID(run_id))
    except (ObjectNotFound, ValueError):
        return False
    return run.state is not None and not run.state.is_final()


@task(name="find-cases-without-wait", cache_policy=NO_CACHE)
def cases_without_live_wait() -> list[str]:
    runtime = current_runtime()
    with runtime.store.session() as session:
        waiting = cases_awaiting_consent(session)
    with get_client(sync_client=True) as client:
        return [number for number, run_id in waiting if not _is_live(client, run_id)]


CONSENT_FLOW = "case-consent"
PAGE = 200


def _paused_consent_runs(client: SyncPrefectClient) -> list[str]:
    """Ids of every case-consent run that is Paused (waiting for its form), page by page."""
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    ids: list[str] = []
    while True:
        page = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[CONSENT_FLOW])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                any_=[StateType.PAUSED]))),
            limit=PAGE, offset=len(ids))
        ids += [str(run.id) for run in page]
        if len(page) < PAGE:
            return ids


@task(name="resume-answered-waits", cache_policy=NO_CACHE)
@private_errors
def resume_answered_waits() -> list[str]:
    """Consent waits still open for a case whose decision genop already recorded (given while
    Prefect could not be reached): resumed with that decision, so the run acts on it and no
    Resume form stays open for an answered case. Returns their case numbers."""
    from prefect.client.schemas.responses import SetStateStatus

    logger = get_run_logger()
    resumed: list[str] = []
    with get_client(sync_client=True) as client:
        paused = _paused_consent_runs(client)
        with current_runtime().store.session() as session:
            answered = answered_waits(session, paused)
        for wait in answered:
            result = client.resume_flow_run(uuid.UUID(wait.run_id), run_input=wait.answer)
            if result.status == SetStateStatus.ACCEPT:
                resumed.append(wait.case_number)
            else:
                logger.warning("%s: its open consent wait could not be resumed (%s); the next reconcile "
                               "run tries again", wait.case_number, result.status.value)
    return resumed


@task(name="find-undelivered-mail", cache_policy=NO_CACHE)
@private_errors
def undelivered_mail() -> list[int]:
    """Outbox rows composed but never delivered (a run died before or while sending)."""
    with current_runtime().store.session() as session:
        return undelivered(session, now_utc())


@task(name="deliver-undelivered-mail", cache_policy=NO_CACHE, retries=0)
@private_errors
def deliver_undelivered_mail(outbox_id: int) -> str:
    """No retries here: a temporary failure leaves the row pending for the next reconcile run."""
    runtime = current_runtime()
    outcome = deliver_undelivered(runtime.store, runtime.settings, outbox_id, now_utc)
    get_run_logger().info("outbox %d: %s", outbox_id, outcome)
    return outcome


@task(name="find-sent-not-recorded", cache_policy=NO_CACHE)
@private_errors
def sent_not_recorded() -> list[int]:
    """Sent rows whose case does not say so yet (a run died between sending and recording)."""
    with current_runtime().store.session() as session:
        return sent_but_unrecorded(session)


@task(name="record-sent", cache_policy=NO_CACHE)
@private_errors
def record_sent_mail(outbox_id: int) -> str | None:
    with current_runtime().store.session() as session:
        return record_sent(session, outbox_id, now_utc())


@task(name="find-cases-stuck-after-consent", cache_policy=NO_CACHE)
@private_errors
def stuck_after_consent() -> tuple[list[str], list[str]]:
    """Cases whose consent is recorded but whose order (or refusal letter) was never composed or sent."""
    with current_runtime().store.session() as session:
        stuck = cases_stuck_after_consent(session, now_utc())
    return stuck.unforwarded, stuck.unlettered


@task(name="hand-off-documents", cache_policy=NO_CACHE)
@private_errors
def hand_off_documents() -> dict[str, list[str]]:
    """Settlement documents whose NemHandel hand-off a crash or a full folder left (document numbers)."""
    handed = hand_off(current_runtime().store)
    return {"delivered": list(handed.delivered), "pending": list(handed.pending)}
