"""The written call to a mediation meeting (agreement §10: "skriftlig anmodning … Mødet afholdes
inden 8 dage fra dato for indkaldelsen"): the move and its mails in one transaction.

The call goes to ``disputes.mediation_parties`` (``concerned``: the municipality the dispute is
about; both for a settled month), each once: its outbox key is
``dispute:<number>:mediation-call:<party>``. As for a risk notice, a municipality is never called
about the other one's citizen (genop.escalation.notices.may_be_told). The subject names the
dispute's number, its kind key and its case or invoice only; the body (signed and encrypted,
genop.mail.compose) gives the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from genop.config import CONCERNED, Agreement
from genop.disputes.records import call_mediation
from genop.escalation.notices import may_be_told, municipalities_concerned
from genop.mail.compose import SecureMail, compose, contact_of
from genop.mail.outbox import Status
from genop.settings import Settings
from genop.store.models import Dispute, DisputeEvent, OutboxMessage
from genop.templates import render

PURPOSE = "mediation_call"


def mail_prefix(number: str) -> str:
    """Every outbox key of a dispute's own mail starts so (what `dispute-mail-deliver` delivers)."""
    return f"dispute:{number}:"


def call_key(number: str, party: str) -> str:
    return f"{mail_prefix(number)}mediation-call:{party}"


def parties_called(dispute: Dispute, agreement: Agreement) -> list[str]:
    """The parties called to mediation, in config order, each once."""
    concerned = municipalities_concerned(dispute.municipality, agreement)
    parties: list[str] = []
    for entry in agreement.disputes.mediation_parties:
        for party in (concerned if entry == CONCERNED else (entry,)):
            if party not in parties and may_be_told(party, concerned, agreement):
                parties.append(party)
    return parties


@dataclass(frozen=True)
class MediationCall:
    event: DisputeEvent
    mails: list[OutboxMessage]


def call_and_compose(session: Session, agreement: Agreement, settings: Settings, dispute: Dispute, *,
                     meeting_on: date, by: str, why: str, day: date, now: datetime) -> MediationCall:
    """Move the dispute to ``mediation_called`` (the 8-day rule, genop.disputes.records) and compose
    the call to every party, in the caller's transaction: refused, nothing is composed."""
    event = call_mediation(session, agreement, dispute, meeting_on=meeting_on, by=by, why=why, day=day, now=now)
    mails = [_compose_call(session, agreement, settings, dispute, party, why=event.note or "", now=now)
             for party in parties_called(dispute, agreement)]
    return MediationCall(event, mails)


def _compose_call(session: Session, agreement: Agreement, settings: Settings, dispute: Dispute, party: str, *,
                  why: str, now: datetime) -> OutboxMessage:
    sender = agreement.disputes.sender
    case_number = dispute.case.case_number if dispute.case is not None else None
    context = {"number": dispute.number, "about": dispute.about, "case_number": case_number,
               "invoice_number": dispute.invoice_number, "month": dispute.month}
    subject = render("mail/mediation_call.subject.da.txt.j2", **context).strip()
    body = render("mail/mediation_call.da.txt.j2", **context, about_label=agreement.disputes.kinds[dispute.about],
                  municipality=dispute.municipality, called_on=dispute.mediation_called_on,
                  meeting_on=dispute.mediation_on, within_days=agreement.disputes.mediation_within_days,
                  reason=dispute.reason, why=why, sender=contact_of(sender, agreement),
                  recipient=contact_of(party, agreement))
    return compose(session, dispute.case, SecureMail(PURPOSE, sender, party, subject, body),
                   agreement=agreement, settings=settings, now=now, key=call_key(dispute.number, party))


def unsent_mail_of_dispute(session: Session, number: str) -> list[int]:
    """The dispute's own mails not sent yet, failed ones included (what a re-run delivers)."""
    return list(session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.key.startswith(mail_prefix(number), autoescape=True), OutboxMessage.channel == "smtp",
               OutboxMessage.status.in_([Status.PENDING, Status.FAILED, Status.SENDING]))
        .order_by(OutboxMessage.id)))


def mail_of_dispute(session: Session, number: str) -> list[OutboxMessage]:
    """Every mail of the dispute's own (its outbox rows), oldest first."""
    return list(session.scalars(select(OutboxMessage)
                                .where(OutboxMessage.key.startswith(mail_prefix(number), autoescape=True))
                                .order_by(OutboxMessage.id)))
