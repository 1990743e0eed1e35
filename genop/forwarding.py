"""Forwarding the order to Copenhagen (agreement "Case lifecycle" 4, §4) and the refusal
letter (§6).

The order is the plan as received plus a readable rendering, in a Danish mail signed
with Tårnby's certificate and encrypted to Copenhagen's. It is prepared once into the
outbox (fixed Message-ID, exact bytes) and then delivered by ``genop.mail.outbox``. Any
certificate problem stops it — there is no plaintext fallback.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from genop.config import Agreement
from genop.cpr import parse_cpr
from genop.errors import GenopError
from genop.lifecycle import BEING_FORWARDED, FORWARDABLE, CaseState, move
from genop.mail.outbox import find
from genop.plans import Plan
from genop.mail.compose import Attachment, SecureMail, compose, compose_letter, contact_of, outbox_key
from genop.settings import Settings
from genop.store.models import Case, CaseEvent, OutboxMessage, PlanDocument
from genop.store.repository import append_event, get_case_for_update
from genop.templates import render

ORDER = "order"
REFUSAL_LETTER = "consent_refused_letter"
LETTER_SENT = "letter_sent"
"""The case event that records the refusal letter as sent."""


def latest_document(case: Case) -> PlanDocument:
    return max(case.documents, key=lambda doc: doc.revision)


def consented_document(session: Session, case: Case) -> PlanDocument:
    """The revision the citizen consented to forwarding (a later revision was not scope-checked)."""
    revision = session.scalars(
        select(CaseEvent.data).where(CaseEvent.case_id == case.id, CaseEvent.kind == "consent_recorded")
        .order_by(CaseEvent.id.desc())).first()
    wanted = (revision or {}).get("revision", case.revision)
    return next((doc for doc in case.documents if doc.revision == wanted), latest_document(case))


def prepare_order(session: Session, case_number: str, *, agreement: Agreement, settings: Settings,
                  now: datetime) -> OutboxMessage:
    """The order's outbox row, built once (certificates checked now, at build time)."""
    case = get_case_for_update(session, case_number)
    if case.state not in FORWARDABLE or case.consent_decision != "given":
        raise GenopError(f"case {case.case_number} is {case.state}: only a case with consent given "
                         "is forwarded", code="not_forwardable")
    document = consented_document(session, case)
    plan = Plan.model_validate(document.parsed)
    context = _order_context(case, agreement, document)
    readable = render("documents/plan.da.html.j2", plan=plan, case_number=case.case_number,
                      cpr=parse_cpr(plan.citizen.cpr).formatted, diagnosis_group=case.diagnosis_group)
    subtype = "xml" if document.encoding == "xml" else "json"
    mail = SecureMail(
        purpose=ORDER, from_party="tarnby", to_party="copenhagen",
        subject=render("mail/order_to_copenhagen.subject.da.txt.j2", case_number=case.case_number).strip(),
        body=render("mail/order_to_copenhagen.da.txt.j2", **context),
        attachments=(Attachment(context["plan_filename"], document.content, "application", subtype),
                     Attachment(context["readable_filename"], readable.encode("utf-8"), "text", "html")),
    )
    row = compose(session, case, mail, agreement=agreement, settings=settings, now=now)
    if case.state != CaseState.FORWARDED:
        move(session, case, CaseState.FORWARDING, at=now)
    return row


def _order_context(case: Case, agreement: Agreement, document: PlanDocument) -> dict:
    residence = agreement.municipality_for_code(case.municipality_code)
    payer = agreement.party(case.payer or "tarnby")
    handled_by = agreement.party(residence.handled_by) if residence and residence.handled_by else None
    suffix = "xml" if document.encoding == "xml" else "json"
    return {
        "case_number": case.case_number, "plan_id": case.plan_id, "revision": document.revision,
        "recipient": contact_of("copenhagen", agreement), "sender": contact_of("tarnby", agreement),
        "municipality_name": residence.name if residence else case.municipality_code,
        "municipality_code": case.municipality_code, "payer_name": payer.name, "payer_ean": payer.ean,
        "handled_by_name": handled_by.name if handled_by else None,
        "discharge_date": case.discharge_date, "start_by": case.start_by, "urgent": case.urgent,
        "transport_first_session": case.transport_first_session,
        "consent_date": case.consent_date, "consent_method": case.consent_method,
        "plan_filename": f"genoptraeningsplan-{case.case_number}.{suffix}",
        "readable_filename": f"genoptraeningsplan-{case.case_number}.html",
    }


def mark_forwarded(session: Session, case_number: str, row: OutboxMessage, now: datetime) -> Case:
    case = get_case_for_update(session, case_number)
    if case.state == CaseState.FORWARDED:
        return case
    move(session, case, CaseState.FORWARDED, at=now, occurred=row.sent_at,
         detail=f"order sent to {', '.join(row.recipients)} (Message-ID {row.message_id}; server: "
                f"{row.response}); Copenhagen is now bound to deliver (agreement §4)",
         data={"message_id": row.message_id, "outbox_id": row.id})
    return case


def mark_forward_failed(session: Session, case_number: str, reason: str, now: datetime) -> Case:
    """Only a case being forwarded can fail to be (a case without consent is never moved here)."""
    case = get_case_for_update(session, case_number)
    if case.state not in BEING_FORWARDED:
        return case
    move(session, case, CaseState.FORWARD_FAILED, at=now,
         detail=f"the order was not sent: {reason}. Nothing was sent unencrypted; fix the cause and "
                "re-run forwarding (genop case forward, or the case-forward deployment)",
         data={"reason": reason})
    return case


def refusal_letter_status(session: Session, case: Case) -> str | None:
    """The outbox status of the case's refusal letter (agreement §6); None until it is composed."""
    return session.scalar(select(OutboxMessage.status).where(
        OutboxMessage.key == outbox_key(case.case_number, REFUSAL_LETTER)))


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
                  sender=contact_of("tarnby", agreement), letter_date=letter_date.date(),
                  hospital_name=plan.hospital.name if plan.hospital else "hospitalet",
                  discharge_date=case.discharge_date, consent_date=case.consent_date,
                  municipality_name=residence.name if residence else "din kommune")
    row = compose_letter(session, case, purpose=REFUSAL_LETTER, subject="Din genoptræning", html=html,
                         filename="samtykke-afvist.da.html", settings=settings, now=now)
    append_event(session, case, "letter_prepared",
                 "letter to the citizen about the consequences of the refusal prepared", now)
    session.flush()
    return row


def letter_sent(session: Session, case_number: str, row: OutboxMessage, now: datetime) -> None:
    """The trail says once that the refusal letter went out (a re-run or reconcile adds nothing)."""
    case = get_case_for_update(session, case_number)
    if any(event.kind == LETTER_SENT for event in case.events):
        return
    append_event(session, case, LETTER_SENT, f"refusal letter {row.response}", now,
                 {"outbox_id": row.id})
