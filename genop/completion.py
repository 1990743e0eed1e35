"""Completion (agreement "Case lifecycle" 7, §7): the final status (*slutstatus*).

With the citizen's consent it is sent to Tårnby (signed by Copenhagen, encrypted to
Tårnby), and Dragør is informed for its citizens; without consent nothing is sent and
the trail says why. The course is then completed and eligible for settlement in the
month of ``completed_on`` (agreement §8: settlement is always on completed courses).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from sqlalchemy.orm import Session

from genop.config import Agreement
from genop.errors import GenopError
from genop.lifecycle import WITH_COPENHAGEN, CaseState, move
from genop.plans import IsoDate
from genop.mail.compose import Attachment, SecureMail, compose, contact_of
from genop.settings import Settings
from genop.store.models import Case, FinalStatus, OutboxMessage
from genop.store.repository import append_event, get_case_for_update
from genop.templates import render

FINAL_STATUS = "final_status"
"""Outbox purposes: the final status to Tårnby (``final_status``), and the payer told of its
citizen's completion when it receives a copy (``final_status_<party>``, see ``final_status_copy``)."""


def final_status_copy(party: str) -> str:
    """The outbox purpose of the copy a party receives (``receives_final_status_copy`` in config)."""
    return f"{FINAL_STATUS}_{party}"


class CompletionError(GenopError):
    code = "completion_error"


class FinalStatusDocument(BaseModel):
    """The slutstatus file (PLAN_FORMAT.md "Final status")."""

    model_config = ConfigDict(extra="allow")

    case_number: str = Field(min_length=1)
    completed_on: IsoDate
    assessment: str = Field(min_length=1)
    consent_to_share: StrictBool
    """The citizen's consent (agreement §7) is JSON ``true`` or ``false``, never guessed from "yes"."""


FIELDS = "case_number, completed_on, assessment, consent_to_share"
_REASONS = {"string_type": "must be text", "bool_type": "must be true or false (JSON true/false, no quotes)",
            "bool_parsing": "must be true or false (JSON true/false, no quotes)",
            "string_too_short": "is empty"}
_JSON_KINDS = {list: "a JSON list", str: "a JSON text string", int: "a JSON number", float: "a JSON number",
               bool: "JSON true/false", type(None): "JSON null"}


@dataclass(frozen=True)
class Completion:
    case_number: str
    completed_on: date
    settlement_month: str
    outbox_ids: tuple[int, ...]
    shared: bool


def parse_final_status(content: bytes) -> FinalStatusDocument:
    """The slutstatus file, or a ``CompletionError`` naming its problem in a caseworker's words.

    Messages quote no value of the file (the assessment is health information).
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CompletionError(f"the final status file is not UTF-8 text (byte {content[exc.start]:#04x} at "
                              f"position {exc.start}); save it as UTF-8", code="malformed_json") from None
    if not text.strip():
        raise CompletionError(f"the final status file is empty; it must be one JSON object with {FIELDS}",
                              code="invalid_final_status")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CompletionError(f"the final status file is not valid JSON: {exc.msg} (line {exc.lineno}, "
                              f"column {exc.colno})", code="malformed_json") from None
    except (ValueError, RecursionError):
        raise CompletionError("the final status file is not usable JSON (a number too long or nesting too deep)",
                              code="malformed_json") from None
    if not isinstance(data, dict):
        raise CompletionError(f"the final status file is {_JSON_KINDS.get(type(data), 'not an object')}, not "
                              f"one JSON object with {FIELDS}", code="invalid_final_status")
    try:
        return FinalStatusDocument.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"])
    if first["type"] == "missing":
        message = f"the final status has no {field} (it needs {FIELDS})"
    elif first["type"] == "value_error":
        message = f"the final status's {field} {first['ctx']['error']}"
    else:
        message = f"the final status's {field} {_REASONS.get(first['type'], 'is invalid')}"
    raise CompletionError(message, code="invalid_final_status")


def complete_case(session: Session, case_number: str, content: bytes, *, agreement: Agreement,
                  settings: Settings, as_of: date, now: datetime, source_name: str | None = None) -> Completion:
    """Record the final status once; a second, identical submission changes nothing.

    ``source_name``, the name the file came with, is kept in the case's trail (genop's store;
    Prefect sees only a staged file's neutral reference, see genop.staged)."""
    status = parse_final_status(content)
    if status.case_number.strip().upper() != case_number.strip().upper():
        raise CompletionError(f"the final status is for {status.case_number}, not {case_number}",
                              code="case_mismatch")
    case = get_case_for_update(session, case_number)
    existing = session.query(FinalStatus).filter_by(case_id=case.id).one_or_none()
    if existing is not None:
        if existing.document != content:
            raise CompletionError(f"case {case.case_number} already has a different final status "
                                  f"(completed {existing.completed_on})", code="already_completed")
        return _completion(case, existing, _mails(session, case, existing, agreement, settings, now))
    _check(case, status, as_of)
    final = FinalStatus(case=case, completed_on=status.completed_on, assessment=status.assessment,
                        consent_to_share=status.consent_to_share, document=content, received_at=now)
    session.add(final)
    month = f"{status.completed_on:%Y-%m}"
    received = f"final status received ({source_name})" if source_name else "final status received"
    move(session, case, CaseState.COMPLETED, at=now, occurred=status.completed_on,
         detail=f"course completed {status.completed_on}; {received}; eligible for "
                f"settlement in {month} (agreement §8)",
         data={"completed_on": status.completed_on.isoformat(),
               **({"source_name": source_name} if source_name else {})})
    if not status.consent_to_share:
        append_event(session, case, "final_status_not_shared",
                     "the citizen did not consent to share the final status: nothing was sent "
                     "(agreement §7: sent to Tårnby only with the citizen's consent)", now)
    session.flush()
    return _completion(case, final, _mails(session, case, final, agreement, settings, now))


def _check(case: Case, status: FinalStatusDocument, as_of: date) -> None:
    if case.state not in WITH_COPENHAGEN:
        raise CompletionError(f"case {case.case_number} is {case.state}: only a forwarded case in "
                              "training can be completed", code="not_in_training")
    if status.completed_on > as_of:
        raise CompletionError(f"completed_on {status.completed_on} is after the as-of day {as_of}",
                              code="completed_in_future")
    if case.forwarded_on and status.completed_on < case.forwarded_on:
        raise CompletionError(f"completed_on {status.completed_on} is before the case was forwarded "
                              f"({case.forwarded_on})", code="completed_before_forwarded")


def _mails(session: Session, case: Case, final: FinalStatus, agreement: Agreement, settings: Settings,
           now: datetime) -> list[OutboxMessage]:
    if not final.consent_to_share:
        return []
    context = {"case_number": case.case_number, "completed_on": final.completed_on,
               "sender": contact_of("copenhagen", agreement), "recipient": contact_of("tarnby", agreement)}
    report = render("documents/final_status.da.html.j2", assessment=final.assessment, **context)
    mails = [SecureMail(
        FINAL_STATUS, "copenhagen", "tarnby",
        render("mail/final_status.subject.da.txt.j2", case_number=case.case_number).strip(),
        render("mail/final_status.da.txt.j2", **context),
        (Attachment(f"slutstatus-{case.case_number}.html", report.encode("utf-8"), "text", "html"),))]
    payer = agreement.parties.get(case.payer) if case.payer else None
    if payer is not None and payer.receives_final_status_copy:
        template = f"mail/completed_{payer.key}"
        mails.append(SecureMail(
            final_status_copy(payer.key), "tarnby", payer.key,
            render(f"{template}.subject.da.txt.j2", case_number=case.case_number).strip(),
            render(f"{template}.da.txt.j2", **{**context, "sender": contact_of("tarnby", agreement),
                                               "recipient": contact_of(payer.key, agreement)})))
    return [compose(session, case, mail, agreement=agreement, settings=settings, now=now) for mail in mails]


def _completion(case: Case, final: FinalStatus, rows: list[OutboxMessage]) -> Completion:
    return Completion(case.case_number, final.completed_on, f"{final.completed_on:%Y-%m}",
                      tuple(row.id for row in rows), final.consent_to_share)
