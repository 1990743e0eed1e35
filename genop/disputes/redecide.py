"""Re-deciding a case's scope for a dispute (issue 12, agreement §10): a corrected plan (a
revision) that intake kept "for the record, route unchanged", or a decision the hospital or
Copenhagen disputes, is decided again on the case's latest revision.

The decision is intake's own (``genop.intake.decide``: the route staff chose for a geriatric
case is kept). What the case's state becomes follows the consent (agreement §6):

- consent given and still in scope for Copenhagen: the consent-driven state stays (being
  forwarded, forwarded); only the plan's fields and the decision change;
- consent refused: the case stays closed as refused, whatever the new decision (a finished
  case has no way on in the lifecycle); its route and reasons are the new decision's;
- not yet consented and in scope: it awaits consent (the caller opens the consent wait);
- out of scope: it moves to the new intake outcome — except a case whose order exists (with
  Copenhagen, being sent, or failed and kept in the outbox): that is refused in one line, staff
  ask Copenhagen to withdraw the order (genop never withdraws one).

Refused as well: a case whose training has begun (in training, completed: its money side is
``correct-settlement``), one Copenhagen sent back (its visitation decision) and one whose
training is under way at Løjtegårdsvej.

The old decision (state, route, diagnosis group, payer, reasons, the revision it was made on)
is kept in the case's trail (event ``redecided``, with the new one and the dispute's number) and
in the redo record's ``changes``. Both stay in genop's store; Prefect gets numbers, states and
routes only. The redo is once per dispute, case and revision (target ``<case>:revision-<n>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from genop.config import Agreement
from genop.disputes import Action, RedoStatus
from genop.disputes.records import DisputeError, begin_redo, finish_redo, get_dispute, redo_key
from genop.disputes.resend import needs_case, subject_case
from genop.forwarding import ORDER, latest_document
from genop.intake import apply_decision, decide, plan_deadlines, take_plan
from genop.lifecycle import (
    DESCRIPTIONS,
    FORWARDABLE,
    INTAKE_OUTCOMES,
    CaseState,
    find_move,
    move,
)
from genop.mail.compose import outbox_key
from genop.mail.outbox import Status, find
from genop.plans import Plan
from genop.scope import ScopeDecision
from genop.store.models import Case, Dispute, DisputeRedo
from genop.store.repository import append_event, get_case_for_update

REDECIDE = "redecide"
"""The lifecycle's move (made by name) and the case event's kind (``redecided``)."""
EVENT = "redecided"
REDECIDABLE = INTAKE_OUTCOMES | {CaseState.CONSENT_REFUSED} | FORWARDABLE
"""Where a case may be decided again: at intake, closed by a refusal, or with consent given and
training not begun."""
_PLAN_FIELDS = ("municipality_code", "level", "urgent", "transport_first_session", "discharge_date", "start_by",
                "free_choice_from", "cpr")


@dataclass(frozen=True)
class Redecided:
    """What the redo did. ``before``/``after`` hold the decisions (kept in genop's store: the
    reasons may name a diagnosis code); the flow passes on numbers, states and routes only."""

    dispute: str
    case_number: str
    revision: int
    state_before: str
    state: str
    route_before: str | None
    route: str | None
    unchanged: bool
    first: bool
    """Whether this call re-decided (False: an earlier run did for this revision; nothing new)."""
    consent_wait: bool
    """The case moved to awaiting consent: its consent wait must be opened."""
    forward: bool
    """The case moved to being forwarded (consent was given before): its order must be prepared."""


def redo_target(case: Case) -> str:
    return f"{case.case_number}:revision-{case.revision}"


def why_not_redecided(case: Case) -> str | None:
    """Why the case's plan cannot be decided again now (a caseworker's line); None if it can."""
    number = case.case_number
    if case.state not in REDECIDABLE:
        return (f"case {number} is {DESCRIPTIONS[CaseState(case.state)]}: training has begun, so its decision "
                "stands; a disputed visit, price or completion date is corrected with correct-settlement")
    if case.state == CaseState.ROUTED_ELSEWHERE and case.forwarded_at is not None:
        return (f"case {number} was sent back to Løjtegårdsvej by Copenhagen: that is Copenhagen's visitation "
                "decision (agreement §3.1); agree a new referral with Copenhagen's contact person")
    if case.first_session_at is not None and case.state not in FORWARDABLE:
        return (f"case {number} has a first session offered at Løjtegårdsvej: its training is under way "
                "there and its decision stands")
    return None


def decided_revision(case: Case) -> int:
    """The revision the case's current decision was made on (intake's or an earlier redo's)."""
    current, decided = 1, 1
    for event in case.events:
        data = event.data or {}
        if event.kind in ("plan_received", "plan_revised") and "revision" in data:
            current = int(data["revision"])
        elif event.kind == "scope_decided":
            decided = current
        elif event.kind == EVENT and "revision" in data:
            decided = int(data["revision"])
    return decided


def _decision_of(case: Case, revision: int) -> dict[str, Any]:
    return {"state": str(case.state), "route": case.route, "diagnosis_group": case.diagnosis_group,
            "payer": case.payer, "reasons": list(case.reasons or []), "revision": revision}


def _new_state(session: Session, case: Case, decision: ScopeDecision) -> CaseState:
    """What the state becomes, or a ``DisputeError`` when the order is already on its way."""
    current = CaseState(case.state)
    in_scope = decision.state == CaseState.AWAITING_CONSENT
    if case.consent_decision == "given":
        if in_scope:
            return current if current in FORWARDABLE else CaseState.FORWARDING
        order = find(session, outbox_key(case.case_number, ORDER))
        if current == CaseState.FORWARDED or (order is not None and order.status == Status.SENT):
            raise DisputeError(
                f"case {case.case_number} is forwarded to Copenhagen and revision {case.revision} puts it out of "
                f"scope ({decision.state}): ask Copenhagen's contact person to withdraw the order, then resolve "
                "the dispute (genop dispute resolve); genop does not withdraw an order by itself",
                code="not_redecidable")
        if order is not None and order.status in (Status.PENDING, Status.SENDING):
            raise DisputeError(
                f"case {case.case_number}'s order to Copenhagen is being sent ({order.status}): let it be "
                "delivered (genop case deliver), then ask Copenhagen's contact person to withdraw it",
                code="not_redecidable")
        if order is not None:  # failed: kept in the outbox, where genop case deliver would send it again
            raise DisputeError(
                f"case {case.case_number}'s order to Copenhagen failed to send and is kept in the outbox; "
                f"revision {case.revision} puts the case out of scope ({decision.state}), but genop does not "
                "withdraw an order: do not deliver it, and settle the case with Copenhagen's contact person",
                code="not_redecidable")
        return decision.state
    if case.consent_decision == "refused":
        return current if current == CaseState.CONSENT_REFUSED else decision.state
    return decision.state


def check_redecide(session: Session, agreement: Agreement, number: str, *, case_number: str | None = None) -> None:
    """Refuse in one line (``DisputeError``), changing nothing, what ``redecide`` would refuse."""
    dispute = get_dispute(session, number)
    case = needs_case(dispute, subject_case(session, dispute, case_number))
    key = redo_key(dispute, Action.REDECIDE, redo_target(case))
    if any(r.key == key and r.status == RedoStatus.DONE.value for r in dispute.redos):
        return
    refusal = why_not_redecided(case)
    if refusal is not None:
        raise DisputeError(refusal, code="not_redecidable")
    _new_state(session, case, decide(session, agreement, Plan.model_validate(latest_document(case).parsed), case))


def redecide(session: Session, agreement: Agreement, number: str, *, by: str, day: date, now: datetime,
             case_number: str | None = None, flow_run_id: str | None = None) -> Redecided:
    """Decide the dispute's case again on its latest revision, once per dispute, case and revision;
    asked again, the first redo's result is returned and nothing changes."""
    dispute = get_dispute(session, number, for_update=True)
    subject = needs_case(dispute, subject_case(session, dispute, case_number))
    case = get_case_for_update(session, subject.case_number)
    key = redo_key(dispute, Action.REDECIDE, redo_target(case))
    done = next((r for r in dispute.redos if r.key == key and r.status == RedoStatus.DONE.value), None)
    if done is not None:
        return _result(dispute, case, done, first=False)
    refusal = why_not_redecided(case)
    if refusal is not None:
        raise DisputeError(refusal, code="not_redecidable")
    document = latest_document(case)
    plan = Plan.model_validate(document.parsed)
    decision = decide(session, agreement, plan, case)
    state = _new_state(session, case, decision)
    before = _decision_of(case, decided_revision(case))
    fields_before = {name: getattr(case, name) for name in _PLAN_FIELDS}

    redo, _ = begin_redo(session, dispute, Action.REDECIDE, target=redo_target(case), by=by, day=day, now=now,
                         flow_run_id=flow_run_id)
    current = CaseState(case.state)
    take_plan(case, plan, plan_deadlines(plan, agreement))
    apply_decision(case, decision)
    after = {**_decision_of(case, case.revision), "state": state.value}
    plan_changed = any(getattr(case, name) != value for name, value in fields_before.items())
    unchanged = not plan_changed and all(before[k] == after[k] for k in before if k != "revision")
    detail = (f"decided again for dispute {dispute.number} on revision {case.revision} (asked by {redo.requested_by}): "
              + ("unchanged, " if unchanged else
                 f"was {before['state']} route {before['route'] or 'none'} (revision {before['revision']}), now ")
              + f"{state.value} route {after['route'] or 'none'}: " + "; ".join(decision.reasons))
    data = {"dispute": dispute.number, "revision": case.revision, "before": before, "after": after,
            "unchanged": unchanged, "plan_changed": plan_changed}
    if find_move(current, state, name=REDECIDE) is not None:
        move(session, case, state, at=now, via=REDECIDE, detail=detail, data=data)
    else:  # a consent-driven state kept (forward failed, forwarded, refused): the decision changes, not the state
        case.updated_at = now
        append_event(session, case, EVENT, detail, now, data)
    session.flush()
    produced = {"case": case.case_number, "revision": case.revision, "state": state.value, "route": case.route,
                "consent_wait": current != state and state == CaseState.AWAITING_CONSENT,
                "forward": current != state and state == CaseState.FORWARDING}
    finish_redo(session, dispute, redo, changes={"unchanged": unchanged, "before": before, "after": after},
                produced=produced, day=day, now=now)
    return _result(dispute, case, redo, first=True)


def _result(dispute: Dispute, case: Case, redo: DisputeRedo, *, first: bool) -> Redecided:
    before, after, produced = redo.changes["before"], redo.changes["after"], redo.produced
    return Redecided(dispute.number, case.case_number, int(produced["revision"]), before["state"], after["state"],
                     before["route"], after["route"], bool(redo.changes["unchanged"]), first,
                     bool(produced["consent_wait"]), bool(produced["forward"]))
