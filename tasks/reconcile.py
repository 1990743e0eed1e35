"""Reconciling genop's store (the system of record) with Prefect's runs."""

from __future__ import annotations

import uuid

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.exceptions import ObjectNotFound

from genop.runtime import current_runtime
from genop.states import CaseState
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
