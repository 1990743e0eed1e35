"""Consent (agreement "Case lifecycle" 3, §6): the case halts until the citizen's decision
is recorded by Tårnby. A refusal is respected; the citizen is told the consequences.

The decision is recorded once: a second answer (from the UI and the CLI at once, or
twice from either) is refused with the first answer named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from genop.errors import GenopError
from genop.lifecycle import CaseState, move
from genop.store.models import Case
from genop.store.repository import append_event, get_case_for_update


class ConsentDecision(StrEnum):
    GIVEN = "given"
    REFUSED = "refused"


class ConsentMethod(StrEnum):
    """How the consent (samtykkeerklæring) was obtained."""

    WRITTEN = "written"
    DIGITAL = "digital"
    PHONE_WITH_WRITTEN_CONFIRMATION = "phone_with_written_confirmation"
    IN_PERSON_WITH_WRITTEN_CONFIRMATION = "in_person_with_written_confirmation"


RECORDED_BY_MAX = 128
"""As the store's column and the consent form allow."""


class ConsentError(GenopError):
    code = "consent_error"


class ConsentAlreadyRecorded(ConsentError):
    code = "consent_already_recorded"


@dataclass(frozen=True)
class ConsentAnswer:
    decision: ConsentDecision
    method: ConsentMethod
    decided_on: date
    recorded_by: str


def validate_answer(answer: ConsentAnswer, *, today: date) -> None:
    if not answer.recorded_by.strip():
        raise ConsentError("consent must name the person recording it (recorded by)",
                           code="consent_invalid")
    if len(answer.recorded_by.strip()) > RECORDED_BY_MAX:
        raise ConsentError(f"the name of the person recording the consent is longer than {RECORDED_BY_MAX} "
                           "characters", code="consent_invalid")
    if answer.decided_on > today:
        raise ConsentError(f"consent date {answer.decided_on} is in the future (today is {today})",
                           code="consent_invalid")


def describe_recorded(case: Case) -> str:
    return (f"consent for {case.case_number} was already recorded: {case.consent_decision} "
            f"({case.consent_method}) on {case.consent_date}, recorded by {case.consent_recorded_by}; "
            f"the case is {case.state}")


def first_answer_for_prefect(case: Case) -> str:
    """The recorded decision as Prefect may show it: no names (staff names stay in genop's store)."""
    return (f"consent {case.consent_decision} ({case.consent_method}, {case.consent_date}) "
            "recorded in genop")


def ensure_awaiting_consent(case: Case) -> None:
    if case.consent_decision is not None:
        raise ConsentAlreadyRecorded(describe_recorded(case))
    if case.state != CaseState.AWAITING_CONSENT:
        raise ConsentError(f"case {case.case_number} is {case.state}: it is not waiting for consent",
                           code="consent_not_awaited")


def record_consent(session: Session, case_number: str, answer: ConsentAnswer, *, today: date,
                   now: datetime) -> Case:
    """Record the decision once; the row is locked so two answers cannot both win."""
    validate_answer(answer, today=today)
    case = get_case_for_update(session, case_number)
    ensure_awaiting_consent(case)
    case.consent_decision = answer.decision.value
    case.consent_method = answer.method.value
    case.consent_date = answer.decided_on
    case.consent_recorded_by = answer.recorded_by.strip()
    case.consent_recorded_at = now
    case.updated_at = now
    if answer.decision is ConsentDecision.GIVEN:
        to = CaseState.FORWARDING
        detail = "consent given: the plan is forwarded to Copenhagen as an order (agreement §4)"
    else:
        to = CaseState.CONSENT_REFUSED
        detail = ("consent refused: the refusal is respected (agreement §6); the citizen is told "
                  "that as a rule the training cannot be delivered without the plan")
    move(session, case, to, at=now,
         detail=f"{detail} — {answer.method.value}, dated {answer.decided_on}, recorded by "
                f"{case.consent_recorded_by}",
         data={"decision": answer.decision.value, "method": answer.method.value,
               "date": answer.decided_on.isoformat(), "revision": case.revision})
    return case


def register_wait(session: Session, case_number: str, flow_run_id: str, now: datetime) -> bool:
    """Note which Prefect run waits for this case's consent; False when no wait is needed."""
    case = get_case_for_update(session, case_number)
    if case.state != CaseState.AWAITING_CONSENT or case.consent_decision is not None:
        return False
    if case.consent_run_id != flow_run_id:
        previous = case.consent_run_id
        case.consent_run_id = flow_run_id
        append_event(session, case, "consent_wait_opened",
                     "waiting for the citizen's consent in Prefect run " + flow_run_id
                     + (f" (replaces {previous})" if previous else ""), now,
                     {"flow_run_id": flow_run_id})
    return True
