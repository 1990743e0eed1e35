"""How a case is shown to staff (CLI tables, ``--json``): case numbers, never CPR or names."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from genop.clock import local
from genop.config import Agreement
from genop.disputes.records import list_disputes
from genop.disputes.views import dispute_summary
from genop.escalation.trail import findings_of_case
from genop.store.models import Case, RiskFinding, SettlementDocumentRecord, Visit


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
        session = object_session(case)
        view["findings"] = [finding_view(f) for f in findings_of_case(session, case)] if session else []
        view["visits"] = visit_views(session, case) if session else []
        view["disputes"] = [dispute_summary(d) for d in list_disputes(session, case=case)] if session else []
    return view


def visit_views(session: Session, case: Case) -> list[dict[str, Any]]:
    """A case's visits with their ids (what a dispute's correction names), the invoice each is on,
    and whether a correction removed or repriced it."""
    invoice = SettlementDocumentRecord
    rows = session.execute(select(Visit, invoice.number)
                           .outerjoin(invoice, invoice.id == Visit.settled_document_id)
                           .where(Visit.case_id == case.id).order_by(Visit.visit_date, Visit.id))
    return [{"id": visit.id, "visit_date": visit.visit_date.isoformat(), "sks_code": visit.sks_code,
             "tariff_group": visit.priced_as or visit.tariff_group, "invoiced_on": number,
             "removed": visit.removed_by_redo_id is not None} for visit, number in rows]


def finding_view(finding: RiskFinding) -> dict[str, Any]:
    """A finding at risk as staff see it (`genop case show`, `genop risks`): figures only."""
    return {"id": finding.id, "kind": finding.kind, "subject": finding.subject,
            "municipality": finding.municipality, "level": finding.level,
            "since": finding.since.isoformat(), "level_since": finding.level_since.isoformat(),
            "opened_on": finding.opened_on.isoformat(),
            "closed_on": finding.closed_on.isoformat() if finding.closed_on else None,
            "reason": finding.reason, "figures": dict(finding.figures)}
