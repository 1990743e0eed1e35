"""Routing tasks: Tårnby's choice of Copenhagen for a case (agreement §4).

Results are case numbers and states only; the staff member's note never reaches Prefect.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from genop.clock import now_utc
from genop.routing import route_to_copenhagen
from genop.runtime import current_runtime
from tasks.privacy import private_errors


@task(name="route-to-copenhagen", cache_policy=NO_CACHE)
@private_errors
def route_to_copenhagen_task(case_number: str, staff_name: str, reason: str) -> dict[str, object]:
    runtime = current_runtime()
    with runtime.store.session() as session:
        return route_to_copenhagen(session, case_number, by=staff_name, reason=reason, note=None,
                                   agreement=runtime.agreement, now=now_utc()).as_dict()
