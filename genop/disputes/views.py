"""How a dispute is shown to staff (``genop dispute …``, ``--json``, ``genop case show``).

For genop's own CLI: the reason and the notes are shown here (they are genop's store's, read
by staff at their desk); nothing of this reaches Prefect, whose artifacts carry numbers,
states and dates only (``artifact_markdown``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from genop.clock import local
from genop.config import Agreement
from genop.store.models import Dispute, DisputeEvent, DisputeRedo, OutboxMessage


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: datetime | None) -> str | None:
    """Europe/Copenhagen with its offset: ``2026-11-20T10:15:00+01:00``."""
    return local(value).isoformat(timespec="seconds") if value is not None else None


def subject_of(dispute: Dispute) -> str:
    """What it is about, as one reference: the case, invoice or month."""
    if dispute.case is not None:
        return dispute.case.case_number
    return dispute.invoice_number or dispute.month or ""


def dispute_summary(dispute: Dispute) -> dict[str, Any]:
    """One line of a list (`genop dispute list`, `genop case show`): no free text."""
    return {"number": dispute.number, "state": dispute.state, "about": dispute.about,
            "subject_kind": dispute.subject_kind, "subject": subject_of(dispute),
            "municipality": dispute.municipality, "opened_on": _day(dispute.opened_on),
            "mediation_on": _day(dispute.mediation_on), "closed_on": _day(dispute.closed_on)}


def dispute_view(dispute: Dispute, agreement: Agreement, *, timeline: bool = True) -> dict[str, Any]:
    view = {**dispute_summary(dispute),
            "about_label": agreement.disputes.kinds.get(dispute.about, dispute.about),
            "case_number": dispute.case.case_number if dispute.case is not None else None,
            "invoice_number": dispute.invoice_number, "month": dispute.month, "reason": dispute.reason,
            "opened_by": dispute.opened_by, "mediation_called_on": _day(dispute.mediation_called_on),
            "created_at": _time(dispute.created_at), "updated_at": _time(dispute.updated_at)}
    if timeline:
        view["timeline"] = [event_view(event) for event in dispute.events]
        view["redos"] = [redo_view(redo) for redo in dispute.redos]
    return view


def event_view(event: DisputeEvent) -> dict[str, Any]:
    return {"change": event.change, "state": event.state, "day": _day(event.day), "at": _time(event.at),
            "by": event.by, "why": event.note, "details": dict(event.details or {})}


def redo_view(redo: DisputeRedo) -> dict[str, Any]:
    return {"action": redo.action, "target": redo.target, "status": redo.status, "key": redo.key,
            "requested_by": redo.requested_by, "requested_on": _day(redo.requested_on),
            "created_at": _time(redo.created_at), "finished_at": _time(redo.finished_at),
            "changes": dict(redo.changes or {}), "produced": dict(redo.produced or {})}


def mail_view(row: OutboxMessage) -> dict[str, Any]:
    """A dispute's mail: its key, status and Message-ID (the recipient is a party's address)."""
    return {"outbox_id": row.id, "key": row.key, "status": row.status, "message_id": row.message_id,
            "recipients": list(row.recipients or []), "sent_at": _time(row.sent_at)}


def artifact_markdown(dispute: Dispute, mails: Sequence[OutboxMessage]) -> str:
    """The markdown artifact a dispute run leaves in Prefect: numbers, states and dates only."""
    lines = [f"# Tvist {dispute.number}", "",
             "| | |", "|---|---|",
             f"| state | {dispute.state} |", f"| about | {dispute.about} |",
             f"| subject | {dispute.subject_kind} {subject_of(dispute)} |",
             f"| opened on | {_day(dispute.opened_on)} |",
             f"| mediation called on | {_day(dispute.mediation_called_on) or ''} |",
             f"| mediation on | {_day(dispute.mediation_on) or ''} |",
             f"| closed on | {_day(dispute.closed_on) or ''} |", ""]
    if mails:
        lines += ["| outbox | status |", "|---|---|"]
        lines += [f"| {row.id} | {row.status} |" for row in mails]
    return "\n".join(lines) + "\n"
