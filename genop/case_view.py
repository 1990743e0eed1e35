"""How a case is shown to staff (CLI tables, ``--json``): case numbers, never CPR or names."""

from __future__ import annotations

from typing import Any

from genop.clock import local
from genop.config import Agreement
from genop.store.models import Case


def case_view(case: Case, agreement: Agreement, *, events: bool = False) -> dict[str, Any]:
    party = agreement.municipality_for_code(case.municipality_code)
    view: dict[str, Any] = {
        "case_number": case.case_number,
        "plan_id": case.plan_id,
        "state": case.state,
        "route": case.route,
        "municipality": case.municipality_code,
        "municipality_name": party.name if party else None,
        "payer": case.payer,
        "diagnosis_group": case.diagnosis_group,
        "level": case.level,
        "urgent": case.urgent,
        "transport_first_session": case.transport_first_session,
        "discharge_date": case.discharge_date.isoformat(),
        "received_on": case.received_on.isoformat(),
        "revision": case.revision,
        "reasons": list(case.reasons),
        "deadlines": {
            "free_choice_from": case.free_choice_from.isoformat(),
            "start_by": case.start_by.isoformat() if case.start_by else None,
        },
    }
    if events:
        view["events"] = [
            {"time": local(event.at).isoformat(timespec="seconds"), "kind": event.kind,
             "detail": event.detail}
            for event in case.events
        ]
    return view
