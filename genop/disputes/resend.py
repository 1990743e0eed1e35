"""Re-sending a mail for a dispute (issue 12, agreement §10): the order Copenhagen says it never
got, the final status, a transport booking, a notice.

A re-send is a *new* mail: a new outbox row with its own Message-ID, the same content as the
original (read back from the original's encrypted row with its sender's key), a line at the top
of the body naming the original (its Message-ID and when it was sent) and the dispute, and the
original's Message-ID in In-Reply-To and References so the receiver's mail system threads them.
The original row is never changed. The re-send is recorded as the dispute's redo
(``begin_redo``/``finish_redo``), keyed by dispute, action and target, and its outbox key
(``<original key>:<action>:<dispute>``) makes it one mail however often the redo runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genop.clock import local
from genop.completion import FINAL_STATUS, final_status_copy
from genop.config import Agreement
from genop.disputes import Action, RedoStatus, SubjectKind
from genop.disputes.records import DisputeError, begin_redo, finish_redo, get_dispute, redo_key
from genop.forwarding import ORDER
from genop.mail.compose import SecureMail, compose, content_of, outbox_key
from genop.mail.outbox import Status, find
from genop.settings import Settings
from genop.store.models import Case, Dispute, DisputeRedo, OutboxMessage, TransportBooking
from genop.store.repository import get_case
from genop.templates import danish_date, render
from genop.transport import BOOKED

RESEND = "resend"
"""The outbox purpose family of re-sent mails: ``resend_<the original's purpose>``."""

RESENDS = frozenset({Action.RESEND_ORDER, Action.RESEND_FINAL_STATUS, Action.REBOOK_TRANSPORT,
                     Action.RESEND_NOTICE})
"""The redos that re-send a mail (this module); the others correct or re-decide."""


@dataclass(frozen=True)
class Resend:
    """What a re-send is about, checked: the dispute, its case, and the mails sent again."""

    dispute: Dispute
    action: Action
    case: Case | None
    originals: tuple[OutboxMessage, ...]
    target: str | None


@dataclass(frozen=True)
class Resent:
    dispute: str
    action: Action
    case_number: str | None
    outbox_ids: tuple[int, ...]
    produced: dict[str, Any]
    first: bool
    """Whether this call produced the mails (False: an earlier run did; nothing new)."""


def resend_key(original: OutboxMessage, dispute: Dispute, action: Action) -> str:
    """``GEN-2026-000001:order:resend-order:TV-2026-0001``: one mail per original, dispute and action."""
    return f"{original.key}:{action.value}:{dispute.number}"


def subject_case(session: Session, dispute: Dispute, case_number: str | None) -> Case | None:
    """The case a redo acts on: the dispute's own, or (a dispute about an invoice or a month) the
    one given, which must be the invoice's municipality's."""
    given = case_number.strip().upper() if case_number else None
    if dispute.case is not None:
        if given and given != dispute.case.case_number:
            raise DisputeError(f"{dispute.number} is about case {dispute.case.case_number}, not {given}",
                               code="dispute_other_case")
        return dispute.case
    if not given:
        return None
    case = get_case(session, given)
    if dispute.subject_kind == SubjectKind.INVOICE.value and case.payer and case.payer != dispute.municipality:
        raise DisputeError(f"{dispute.number} is about invoice {dispute.invoice_number} to {dispute.municipality}; "
                           f"case {case.case_number} is paid by {case.payer}", code="dispute_other_case")
    return case


def needs_case(dispute: Dispute, case: Case | None) -> Case:
    if case is None:
        about = f"invoice {dispute.invoice_number}" if dispute.invoice_number else f"month {dispute.month}"
        raise DisputeError(f"{dispute.number} is about {about}: say which case (--case GEN-YYYY-NNNNNN)",
                           code="case_missing")
    return case


def _sent(session: Session, key: str) -> OutboxMessage | None:
    row = find(session, key)
    return row if row is not None and row.status == Status.SENT else None


def _order(session: Session, dispute: Dispute, case: Case) -> list[OutboxMessage]:
    row = find(session, outbox_key(case.case_number, ORDER))
    if row is None:
        raise DisputeError(f"no order was ever sent for case {case.case_number}: nothing to re-send "
                           "(forward it: genop case forward)", code="nothing_to_resend")
    if row.status != Status.SENT:
        raise DisputeError(f"the order of case {case.case_number} is {row.status}, not sent: deliver it "
                           "(genop case deliver) instead of re-sending it", code="nothing_to_resend")
    return [row]


def _final_status(session: Session, agreement: Agreement, case: Case) -> list[OutboxMessage]:
    keys = [outbox_key(case.case_number, FINAL_STATUS)] + [
        outbox_key(case.case_number, final_status_copy(party.key)) for party in agreement.parties.values()
        if party.receives_final_status_copy]
    rows = [row for key in keys if (row := _sent(session, key)) is not None]
    if not rows:
        raise DisputeError(f"no final status was sent for case {case.case_number}: nothing to re-send "
                           "(without the citizen's consent none is sent, agreement §7)",
                           code="nothing_to_resend")
    return rows


def _booking(session: Session, case: Case) -> list[OutboxMessage]:
    booking = session.scalars(select(TransportBooking).where(TransportBooking.case_id == case.id)
                              .order_by(TransportBooking.sequence.desc())).first()
    if booking is None or booking.status != BOOKED:
        raise DisputeError(f"no transport is booked for case {case.case_number}: nothing to re-book",
                           code="nothing_to_resend")
    row = session.get(OutboxMessage, booking.outbox_id) if booking.outbox_id is not None else None
    if row is None or row.status != Status.SENT:
        raise DisputeError(f"transport booking {booking.sequence} of case {case.case_number} was not sent by mail "
                           "(or not yet): nothing to re-send", code="nothing_to_resend")
    return [row]


def _notice(session: Session, dispute: Dispute, case: Case | None, key: str | None) -> list[OutboxMessage]:
    if not key:
        raise DisputeError("say which mail to send again (--notice OUTBOX-KEY, see genop outbox list)",
                           code="notice_missing")
    row = find(session, key.strip())
    if row is None or row.channel != "smtp":
        raise DisputeError("no mail with the outbox key given (see genop outbox list)", code="nothing_to_resend")
    own = dispute.number in row.key.split(":")
    if not own and row.case_id is not None and (case is None or row.case_id != case.id):
        raise DisputeError(f"mail {row.key} is about another case than {dispute.number}", code="dispute_other_case")
    if not own and row.case_id is None and dispute.subject_kind == SubjectKind.CASE.value:
        raise DisputeError(f"mail {row.key} is not about {dispute.number}'s case", code="dispute_other_case")
    if row.status != Status.SENT:
        raise DisputeError(f"mail {row.key} is {row.status}, not sent: deliver it instead of re-sending it",
                           code="nothing_to_resend")
    return [row]


def plan_resend(session: Session, agreement: Agreement, number: str, action: Action, *,
                case_number: str | None = None, notice: str | None = None,
                for_update: bool = False) -> Resend:
    """The re-send asked for, or a ``DisputeError`` saying in one line why there is nothing to re-send."""
    if action not in RESENDS:
        raise DisputeError(f"{action.value} does not re-send a mail", code="not_a_resend")
    dispute = get_dispute(session, number, for_update=for_update)
    case = subject_case(session, dispute, case_number)
    if action is Action.RESEND_NOTICE:
        rows = _notice(session, dispute, case, notice)
        return Resend(dispute, action, case, tuple(rows), rows[0].key)
    case = needs_case(dispute, case)
    if action is Action.RESEND_ORDER:
        rows = _order(session, dispute, case)
    elif action is Action.RESEND_FINAL_STATUS:
        rows = _final_status(session, agreement, case)
    else:
        rows = _booking(session, case)
    return Resend(dispute, action, case, tuple(rows), case.case_number)


def find_redo(session: Session, plan: Resend) -> DisputeRedo | None:
    key = redo_key(plan.dispute, plan.action, plan.target)
    return session.scalar(select(DisputeRedo).where(DisputeRedo.key == key))


def resend(session: Session, agreement: Agreement, settings: Settings, number: str, action: Action, *, by: str,
           day: date, now: datetime, case_number: str | None = None, notice: str | None = None,
           flow_run_id: str | None = None) -> Resent:
    """Re-send for the dispute, once: the new mails composed into the outbox (the caller delivers
    ``outbox_ids``); asked again, the first re-send's mails are returned and nothing is composed."""
    plan = plan_resend(session, agreement, number, action, case_number=case_number, notice=notice,
                       for_update=True)
    redo, created = begin_redo(session, plan.dispute, action, target=plan.target, by=by, day=day, now=now,
                               flow_run_id=flow_run_id)
    if redo.status == RedoStatus.STARTED.value:
        rows = [_compose_resend(session, plan, original, agreement=agreement, settings=settings, now=now)
                for original in plan.originals]
        produced = {"outbox": [{"key": row.key, "message_id": row.message_id, "resends": original.key,
                                "original_message_id": original.message_id}
                               for row, original in zip(rows, plan.originals, strict=True)]}
        finish_redo(session, plan.dispute, redo, changes={"resent": [o.key for o in plan.originals]},
                    produced=produced, day=day, now=now)
    keys = [entry["key"] for entry in redo.produced.get("outbox", [])]
    ids = tuple(row.id for key in keys if (row := find(session, key)) is not None)
    return Resent(plan.dispute.number, action, plan.case.case_number if plan.case else None, ids,
                  dict(redo.produced), created)


def _compose_resend(session: Session, plan: Resend, original: OutboxMessage, *, agreement: Agreement,
                    settings: Settings, now: datetime) -> OutboxMessage:
    key = resend_key(original, plan.dispute, plan.action)
    existing = find(session, key)
    if existing is not None and existing.raw is not None:  # composed by a run that crashed before finishing
        return existing
    from_party, to_party, body, attachments = content_of(original, agreement=agreement, settings=settings, now=now)
    sent = local(original.sent_at or original.created_at)
    context = {"dispute": plan.dispute.number, "message_id": original.message_id,
               "sent_date": danish_date(sent.date()), "sent_time": f"{sent:%H.%M}",
               "subject": original.subject or ""}
    note = render("mail/resend_note.da.txt.j2", **context).strip()
    mail = SecureMail(purpose=f"{RESEND}_{original.purpose}"[:64], from_party=from_party, to_party=to_party,
                      subject=render("mail/resend.subject.da.txt.j2", **context).strip(),
                      body=f"{note}\n\n{body}", attachments=attachments, in_reply_to=original.message_id)
    return compose(session, original.case, mail, agreement=agreement, settings=settings, now=now, key=key)
