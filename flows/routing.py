"""Tårnby's choice of training unit (agreement §4 "hvor Tårnby Kommune vælger"): staff send
a case from Løjtegårdsvej to Copenhagen from the UI's Run form (or `genop case route`).
Then the case goes on as any case for Copenhagen: it waits for the citizen's consent, or,
with consent already recorded, its order is forwarded (exactly once, through the outbox).

The run is named by the case number; its parameters are the case number, the staff
member's name and a reason from the closed list in config — never a free-text note.
"""

from __future__ import annotations

from enum import StrEnum
from typing import cast

from prefect import flow
from prefect.logging import get_run_logger

from flows.forward import case_forward
from genop.config import load_agreement
from genop.settings import load_settings
from genop.lifecycle import CaseState
from tasks.consent import start_consent_waits
from tasks.routing import route_to_copenhagen_task


def _reasons() -> type[StrEnum]:
    """The reasons of config/agreement.yaml as an enum whose values are what staff read (the
    Run form shows the values); the member's name is the config key."""
    reasons = load_agreement(load_settings().agreement_file).geriatric_routing.reasons
    return cast("type[StrEnum]", StrEnum("RouteReason", dict(reasons)))  # the functional API makes a class


RouteReason = _reasons()


@flow(name="case-route", flow_run_name="route-{case_number}", persist_result=False)
def case_route(case_number: str, staff_name: str,
               reason: RouteReason) -> dict[str, object]:  # type: ignore[valid-type]
    """Send a case from Løjtegårdsvej to Copenhagen (Tårnby's choice), recording who and why;
    then open its consent wait, or forward its order if consent is already recorded."""
    routed = route_to_copenhagen_task(case_number, staff_name, RouteReason(reason).name)
    state = routed["state"]
    if state == CaseState.AWAITING_CONSENT:
        start_consent_waits([case_number])
    elif state == CaseState.FORWARDING:
        state = case_forward(case_number)
    get_run_logger().info("%s: route %s, case is %s", case_number, routed["route"], state)
    return {**routed, "state": str(state)}
