"""Watching the cases (issue 11; sub-agreement §7, AGREEMENT.md "What 'at risk' means").

Every Danish working day at 07:30: scan what is at risk, record it in the trail (opened,
raised, lowered, closed) and compose its notices, in one transaction → deliver them
(exactly once, the outbox) → tell Prefect's Event Feed (and its automations) of each change
→ leave a table artifact. `genop escalate [--as-of D]` runs the same flow.

``risk-notices-deliver`` is the automation's deployment: a ``genop.risk.opened`` or
``genop.risk.raised`` event runs it (prefect.yaml ``triggers:``), and it delivers every risk
notice still waiting — those of a scan whose SMTP delivery failed, or of a scan run in a
process that stopped before delivering.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow

from flows.training import deliver_mail
from tasks.escalation import (
    decide_scan_day,
    emit_risk_events,
    pending_notices,
    publish_scan,
    scan_and_record,
)


@flow(name="escalation-scan", flow_run_name="escalation-scan", persist_result=False)
def escalation_scan(as_of: date | None = None) -> dict[str, Any]:
    """What is at risk today (or ``as_of``); each finding told once per level to the contacts in config."""
    day = decide_scan_day(as_of)
    if day is None:
        return {"day": None, "skipped": True, "changes": [], "notices": 0, "undelivered": 0, "open": []}
    recorded = scan_and_record(day)
    problems = deliver_mail(recorded["outbox_ids"])
    emit_risk_events(recorded["changes"])
    publish_scan(day, recorded)
    return {"day": day.isoformat(), "skipped": False, "changes": recorded["changes"],
            "notices": len(recorded["outbox_ids"]), "undelivered": len(problems), "open": recorded["open"]}


@flow(name="risk-notices-deliver", flow_run_name="risk-notices-deliver", persist_result=False)
def risk_notices_deliver() -> dict[str, int]:
    """Deliver the risk notices composed and not yet sent (never twice: the outbox claims each)."""
    ids = pending_notices()
    problems = deliver_mail(ids)
    return {"pending": len(ids), "undelivered": len(problems)}
