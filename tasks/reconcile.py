"""Reconciling genop's store (the system of record) with Prefect's runs."""

from __future__ import annotations

import uuid
from datetime import timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.exceptions import ObjectNotFound
from sqlalchemy import select

from genop.clock import now_utc
from genop.forwarding import ORDER, REFUSAL_LETTER
from genop.outbox import Status
from genop.runtime import current_runtime
from genop.securemail import outbox_key
from genop.states import CaseState
from genop.store.models import Case, OutboxMessage
from genop.store.repository import list_cases


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
        waiting = [(c.case_number, c.consent_run_id)
                   for c in list_cases(session, state=CaseState.AWAITING_CONSENT)]
    with get_client(sync_client=True) as client:
        return [number for number, run_id in waiting if not _is_live(client, run_id)]


STUCK_AFTER = timedelta(minutes=15)
"""Longer than a forward with all its SMTP retries takes; a case idle this long was abandoned."""


@task(name="find-cases-stuck-after-consent", cache_policy=NO_CACHE)
def stuck_after_consent() -> tuple[list[str], list[str]]:
    """Cases whose consent is recorded but whose order (or refusal letter) was never sent."""
    runtime = current_runtime()
    cutoff = now_utc() - STUCK_AFTER
    with runtime.store.session() as session:
        sent = set(session.scalars(select(OutboxMessage.key).where(OutboxMessage.status == Status.SENT)))
        forwarding = [c.case_number for c in session.scalars(select(Case).where(
            Case.state == CaseState.FORWARDING, Case.updated_at < cutoff))
            if outbox_key(c.case_number, ORDER) not in sent]
        refused = [c.case_number for c in session.scalars(select(Case).where(
            Case.state == CaseState.CONSENT_REFUSED, Case.updated_at < cutoff))
            if outbox_key(c.case_number, REFUSAL_LETTER) not in sent]
    return forwarding, refused
