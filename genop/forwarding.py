"""Forwarding the order to Copenhagen (agreement "Case lifecycle" 4, §4) and the refusal
letter (§6).

The order is the plan as received plus a readable rendering, in a Danish mail signed
with Tårnby's certificate and encrypted to Copenhagen's. It is prepared once into the
outbox (fixed Message-ID, exact bytes) and then delivered by ``genop.outbox``. Any
certificate problem stops it — there is no plaintext fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from sqlalchemy.orm import Session

from genop.certs import load_ca, load_identity
from genop.config import Agreement, Contact
from genop.cpr import parse_cpr
from genop.errors import GenopError
from genop.outbox import Status, find
from genop.plans import Plan
from genop.settings import Settings
from genop.smime import build_message, make_message_id
from genop.states import CaseState
from genop.store.models import Case, OutboxMessage, PlanDocument
from genop.store.repository import append_event, get_case_for_update
from genop.templates import render

ORDER = "order"
REFUSAL_LETTER = "consent_refused_letter"
FORWARDABLE = {CaseState.FORWARDING, CaseState.FORWARD_FAILED, CaseState.FORWARDED}


@dataclass(frozen=True)
class Addresses:
    sender: str
    order_recipient: str

    @classmethod
    def from_settings(cls, settings: Settings, agreement: Agreement) -> Addresses:
        return cls(
            sender=settings.mail_from or _email(agreement, "tarnby"),
            order_recipient=settings.order_recipient or _email(agreement, "copenhagen"),
        )


def _email(agreement: Agreement, party: str) -> str:
    contact = agreement.party(party).contact
    if contact is None or contact.email is None:
        raise GenopError(f"config/agreement.yaml: parties.{party}.contact.email is missing",
                         code="address_missing")
    return str(contact.email)


def outbox_key(case_number: str, purpose: str) -> str:
    return f"{case_number}:{purpose}"


def latest_document(case: Case) -> PlanDocument:
    return max(case.documents, key=lambda doc: doc.revision)


def prepare_order(session: Session, case_number: str, *, agreement: Agreement, settings: Settings,
                  now: datetime) -> OutboxMessage:
    """The order's outbox row, built once (certificates checked now, at build time)."""
    case = get_case_for_update(session, case_number)
    if case.state not in FORWARDABLE:
        raise GenopError(f"case {case.case_number} is {case.state}: only a case with consent given "
                         "is forwarded", code="not_forwardable")
    key = outbox_key(case.case_number, ORDER)
    row = find(session, key)
    if row is not None and (row.status == Status.SENT or row.raw is not None):
        return row
    addresses = Addresses.from_settings(settings, agreement)
    raw, subject, message_id = _build_order(case, agreement, settings, addresses, now)
    if row is None:
        row = OutboxMessage(key=key, case=case, purpose=ORDER, channel="smtp", created_at=now,
                            message_id=message_id, attempts=0)
        session.add(row)
    row.sender = addresses.sender
    row.recipients = [addresses.order_recipient]
    row.subject = subject
    row.raw = raw
    row.status = Status.PENDING
    row.updated_at = now
    case.state = CaseState.FORWARDING
    case.updated_at = now
    append_event(session, case, "order_prepared",
                 f"order to {addresses.order_recipient} signed with Tårnby's certificate and encrypted "
                 f"to Copenhagen's; Message-ID {message_id}", now, {"message_id": message_id})
    session.flush()
    return row


def _build_order(case: Case, agreement: Agreement, settings: Settings, addresses: Addresses,
                 now: datetime) -> tuple[bytes, str, str]:
    certs = settings.certificates_dir
    ca = load_ca(certs)
    signer = load_identity(certs, "tarnby", addresses.sender, with_key=True, at=now, ca=ca, role="sign")
    recipient = load_identity(certs, "copenhagen", addresses.order_recipient, with_key=False, at=now,
                              ca=ca, role="encrypt")
    document = latest_document(case)
    plan = Plan.model_validate(document.parsed)
    context = _order_context(case, agreement, plan, document)
    subject = render("mail/order_to_copenhagen.subject.da.txt.j2", case_number=case.case_number).strip()
    inner = EmailMessage()
    inner.set_content(render("mail/order_to_copenhagen.da.txt.j2", **context))
    maintype, subtype = ("application", "xml") if document.encoding == "xml" else ("application", "json")
    inner.add_attachment(document.content, maintype=maintype, subtype=subtype,
                         filename=context["plan_filename"])
    readable = render("documents/plan.da.html.j2", plan=plan, case_number=case.case_number,
                      cpr=parse_cpr(plan.citizen.cpr).formatted, diagnosis_group=case.diagnosis_group)
    inner.add_attachment(readable.encode("utf-8"), maintype="text", subtype="html",
                         filename=context["readable_filename"])
    domain = addresses.sender.rsplit("@", 1)[-1]
    message_id = make_message_id(outbox_key(case.case_number, ORDER), domain)
    raw = build_message(inner, sender=addresses.sender, to=[addresses.order_recipient], subject=subject,
                        message_id=message_id, date=now, signer=signer, recipients=[recipient])
    return raw, subject, message_id


def _order_context(case: Case, agreement: Agreement, plan: Plan, document: PlanDocument) -> dict:
    residence = agreement.municipality_for_code(case.municipality_code)
    payer = agreement.party(case.payer or "tarnby")
    handled_by = agreement.party(residence.handled_by) if residence and residence.handled_by else None
    suffix = "xml" if document.encoding == "xml" else "json"
    return {
        "case_number": case.case_number, "plan_id": case.plan_id, "revision": document.revision,
        "recipient": _contact(agreement, "copenhagen"), "sender": _contact(agreement, "tarnby"),
        "municipality_name": residence.name if residence else case.municipality_code,
        "municipality_code": case.municipality_code, "payer_name": payer.name, "payer_ean": payer.ean,
        "handled_by_name": handled_by.name if handled_by else None,
        "discharge_date": case.discharge_date, "start_by": case.start_by, "urgent": case.urgent,
        "transport_first_session": case.transport_first_session,
        "consent_date": case.consent_date, "consent_method": case.consent_method,
        "plan_filename": f"genoptraeningsplan-{case.case_number}.{suffix}",
        "readable_filename": f"genoptraeningsplan-{case.case_number}.html",
    }


def _contact(agreement: Agreement, party: str) -> Contact:
    contact = agreement.party(party).contact
    return contact if contact is not None else Contact(name=agreement.party(party).name)


def mark_forwarded(session: Session, case_number: str, row: OutboxMessage, now: datetime) -> Case:
    case = get_case_for_update(session, case_number)
    if case.state == CaseState.FORWARDED:
        return case
    case.state = CaseState.FORWARDED
    case.forwarded_at = row.sent_at or now
    case.updated_at = now
    append_event(session, case, "forwarded",
                 f"order sent to {', '.join(row.recipients)} (Message-ID {row.message_id}; server: "
                 f"{row.response}); Copenhagen is now bound to deliver (agreement §4)", now,
                 {"message_id": row.message_id, "outbox_id": row.id})
    return case


def mark_forward_failed(session: Session, case_number: str, reason: str, now: datetime) -> Case:
    case = get_case_for_update(session, case_number)
    if case.state == CaseState.FORWARDED:
        return case
    case.state = CaseState.FORWARD_FAILED
    case.updated_at = now
    append_event(session, case, "forward_failed",
                 f"the order was not sent: {reason}. Nothing was sent unencrypted; fix the cause and "
                 "re-run forwarding (genop case forward, or the case-forward deployment)", now,
                 {"reason": reason})
    return case


def prepare_refusal_letter(session: Session, case_number: str, *, agreement: Agreement,
                           settings: Settings, letter_date: datetime, now: datetime) -> OutboxMessage:
    """The letter telling the citizen what a refusal means (agreement §6), written once."""
    case = get_case_for_update(session, case_number)
    if case.state != CaseState.CONSENT_REFUSED:
        raise GenopError(f"case {case.case_number} is {case.state}, not consent_refused",
                         code="not_refused")
    key = outbox_key(case.case_number, REFUSAL_LETTER)
    row = find(session, key)
    if row is not None:
        return row
    plan = Plan.model_validate(latest_document(case).parsed)
    residence = agreement.municipality_for_code(case.municipality_code)
    html = render("letters/consent_refused.da.html.j2", citizen=plan.citizen, case_number=case.case_number,
                  sender=_contact(agreement, "tarnby"), letter_date=letter_date.date(),
                  hospital_name=plan.hospital.name if plan.hospital else "hospitalet",
                  discharge_date=case.discharge_date, consent_date=case.consent_date,
                  municipality_name=residence.name if residence else "din kommune")
    path = Path(settings.letters_dir) / case.case_number / "samtykke-afvist.da.html"
    row = OutboxMessage(key=key, case=case, purpose=REFUSAL_LETTER, channel="letter", created_at=now,
                        updated_at=now, message_id=f"<{key}@letters.genop>", status=Status.PENDING,
                        attempts=0, recipients=["citizen (letter)"], subject="Din genoptræning",
                        raw=html.encode("utf-8"), document_path=str(path))
    session.add(row)
    append_event(session, case, "letter_prepared",
                 "letter to the citizen about the consequences of the refusal prepared", now)
    session.flush()
    return row


def letter_sent(session: Session, case_number: str, row: OutboxMessage, now: datetime) -> None:
    case = get_case_for_update(session, case_number)
    append_event(session, case, "letter_sent", f"refusal letter {row.response}", now,
                 {"outbox_id": row.id})
