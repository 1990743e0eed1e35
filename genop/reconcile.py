"""Reconcile: finish, from the store's facts, every step a crash left half-done.

A step that touches the world leaves three facts in genop's store, in this order: its
outbox row is composed (``pending``, fixed Message-ID), the row is ``sent`` (with the
receiver's reply), and the case says what the sent message means (an order sent → the
case is ``forwarded``). A process killed between any two leaves the step half-done;
reconcile finishes it without sending anything twice:

- a row composed but not delivered — ``pending``, or claimed by a worker whose lease
  ran out — is delivered (``genop.mail.outbox``: the claim lets one worker send; a retry after
  the SMTP server's 250 carries the same Message-ID, which the receiver drops);
- a row ``sent`` whose consequence the case does not show yet gets it (``AFTER_SENT``).
  That is idempotent and needs no waiting: the row says it was sent.

A row within its lease belongs to the run that claimed it (still sending), so reconcile
never races a run in flight. Steps that stopped before their row was composed are
resumed by case (``cases_stuck_after_consent``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from genop.completion import FINAL_STATUS
from genop.errorlog import record_private_error
from genop.errors import GenopError, TemporaryDeliveryError
from genop.forwarding import LETTER_SENT, ORDER, REFUSAL_LETTER, letter_sent, mark_forward_failed, mark_forwarded
from genop.lifecycle import BEING_FORWARDED, CaseState
from genop.mail.outbox import Status, awaiting_delivery, deliver, letter_writer, smtp_sender, smtp_settings_of
from genop.settings import Settings
from genop.store.db import Store
from genop.store.models import Case, CaseEvent, OutboxMessage
from genop.store.repository import list_cases
from genop.training import CANNOT_FOLLOW, FREE_CHOICE_LETTER, SENT_BACK
from genop.transport import BOOKING, CANCELLATION, NOTICE
from genop.disputes.resend import RESEND

STUCK_AFTER = timedelta(minutes=15)
"""Longer than a forward with all its SMTP retries takes; a case idle this long was abandoned."""

RECONCILED_CHANNELS = ("smtp", "letter")
"""Delivered here; NemHandel hand-offs (channel ``nemhandel``) have their own catch-up,
``genop.settlement.documents.hand_off``, which reconcile runs as well."""


class AfterSent(StrEnum):
    """What the store must say once a message of a purpose is sent."""

    CASE_FORWARDED = "case_forwarded"
    """The order (agreement §4): the case is forwarded, Copenhagen is bound to deliver."""
    LETTER_SENT = "letter_sent"
    """The refusal letter (agreement §6): the trail records it as sent."""
    ROW_IS_THE_RECORD = "row_is_the_record"
    """Everything the message means was recorded when it was composed (a booking, a
    notice, the final status, a free-choice letter, a settlement document): its row
    being ``sent`` is the whole record."""


AFTER_SENT: dict[str, AfterSent] = {
    ORDER: AfterSent.CASE_FORWARDED,
    REFUSAL_LETTER: AfterSent.LETTER_SENT,
    FREE_CHOICE_LETTER: AfterSent.ROW_IS_THE_RECORD,
    BOOKING: AfterSent.ROW_IS_THE_RECORD,          # transport_booking_<n>
    CANCELLATION: AfterSent.ROW_IS_THE_RECORD,     # transport_cancel_<n>
    NOTICE: AfterSent.ROW_IS_THE_RECORD,           # transport_notice_<party>[_cancel]_<n>
    FINAL_STATUS: AfterSent.ROW_IS_THE_RECORD,     # final_status, and final_status_<party> (a copy)
    CANNOT_FOLLOW: AfterSent.ROW_IS_THE_RECORD,    # cannot_follow_<n>
    SENT_BACK: AfterSent.ROW_IS_THE_RECORD,
    "oioubl": AfterSent.ROW_IS_THE_RECORD,         # oioubl_<document purpose>, NemHandel
    RESEND: AfterSent.ROW_IS_THE_RECORD,           # resend_<purpose>: a dispute's re-send, recorded as its redo
    "mediation_call": AfterSent.ROW_IS_THE_RECORD,  # a dispute's call to mediation: the move is its record
    "risk_notice": AfterSent.ROW_IS_THE_RECORD,    # an escalation notice: the finding's trail is its record
}
"""Every outbox purpose: by its name, or by its family (see ``SUFFIXED``)."""

SUFFIXED = frozenset({BOOKING, CANCELLATION, NOTICE, FINAL_STATUS, CANNOT_FOLLOW, "oioubl", RESEND})
"""Families whose purposes carry a ``_<suffix>`` (a sequence number, a party, a document kind)."""


class UnknownPurpose(GenopError):
    code = "unknown_outbox_purpose"


def after_sent(purpose: str) -> AfterSent:
    """A purpose is listed by name, or belongs to the longest suffixed family it starts with."""
    families = [f for f in AFTER_SENT if purpose == f or (f in SUFFIXED and purpose.startswith(f + "_"))]
    if not families:
        raise UnknownPurpose(f"outbox purpose {purpose!r} is not in genop.reconcile.AFTER_SENT: say what "
                             "the store must record once such a message is sent")
    return AFTER_SENT[max(families, key=len)]


def undelivered(session: Session, now: datetime) -> list[int]:
    """Outbox rows composed but not delivered, that no live worker is delivering."""
    return awaiting_delivery(session, now, channels=RECONCILED_CHANNELS)


def sent_but_unrecorded(session: Session) -> list[int]:
    """Sent rows whose case does not say so yet: a sent order of a case still forwarding
    (or marked failed), a sent refusal letter without its ``letter_sent`` event."""
    orders = select(OutboxMessage.id).join(Case, OutboxMessage.case_id == Case.id).where(
        OutboxMessage.purpose == ORDER, OutboxMessage.status == Status.SENT,
        Case.state.in_([s.value for s in BEING_FORWARDED]))
    letters = select(OutboxMessage.id).where(
        OutboxMessage.purpose == REFUSAL_LETTER, OutboxMessage.status == Status.SENT,
        ~exists().where(CaseEvent.case_id == OutboxMessage.case_id, CaseEvent.kind == LETTER_SENT))
    return sorted(set(session.scalars(orders)) | set(session.scalars(letters)))


def record_sent(session: Session, outbox_id: int, now: datetime) -> AfterSent | None:
    """Make the case say what its sent message means; None when the row is not sent."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None or row.status != Status.SENT:
        return None
    consequence = after_sent(row.purpose)
    if row.case is None or consequence == AfterSent.ROW_IS_THE_RECORD:
        return consequence
    if consequence == AfterSent.CASE_FORWARDED:
        if row.case.state in BEING_FORWARDED:
            mark_forwarded(session, row.case.case_number, row, now)
    else:
        letter_sent(session, row.case.case_number, row, now)
    return consequence


def record_undeliverable(session: Session, outbox_id: int, error: GenopError, now: datetime) -> None:
    """A permanent refusal of an order (a 5xx, a certificate): the case is forward_failed,
    as when its own run hit it; other purposes keep the row ``failed`` for staff."""
    row = session.get(OutboxMessage, outbox_id)
    if row is not None and row.case is not None and after_sent(row.purpose) == AfterSent.CASE_FORWARDED:
        mark_forward_failed(session, row.case.case_number, f"{error.code}: {error.message}", now)


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"
    IN_PROGRESS = "in_progress"
    LEFT_PENDING = "left_pending"
    """A temporary failure (mail server down): the next reconcile tries again."""
    FAILED = "failed"


def deliver_undelivered(store: Store, settings: Settings, outbox_id: int,
                        now: Callable[[], datetime]) -> DeliveryOutcome:
    """Deliver one half-done row through the outbox (at most once), by its channel."""
    with store.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        channel = row.channel if row is not None else None
    send = letter_writer(settings.letters_dir) if channel == "letter" else smtp_sender(smtp_settings_of(settings))
    try:
        return DeliveryOutcome(deliver(store, outbox_id, send, now=now).status)
    except TemporaryDeliveryError:
        return DeliveryOutcome.LEFT_PENDING
    except GenopError as error:
        with store.session() as session:
            record_undeliverable(session, outbox_id, error, now())
        return DeliveryOutcome.FAILED
    except Exception as exc:  # noqa: BLE001 - one row's surprise must not stop reconcile for every case
        record_private_error(settings.error_log, f"reconcile delivery of outbox {outbox_id}", exc)
        return DeliveryOutcome.LEFT_PENDING


def cases_awaiting_consent(session: Session) -> list[tuple[str, str | None]]:
    """(case number, consent run id) of every case awaiting consent: each must have a live
    consent wait in Prefect (reconcile step 1)."""
    return [(case.case_number, case.consent_run_id)
            for case in list_cases(session, state=CaseState.AWAITING_CONSENT)]


@dataclass(frozen=True)
class AnsweredWait:
    case_number: str
    run_id: str
    answer: dict[str, str]
    """The recorded decision as the consent form's input (what the run would have been told)."""


def answered_waits(session: Session, run_ids: Collection[str]) -> list[AnsweredWait]:
    """Of these open consent waits (Paused runs), the ones whose case's decision genop has
    already recorded (`genop consent` while Prefect could not be reached, or before the wait
    opened): each is resumed with that decision, so no Resume form stays open for a case
    that was answered (reconcile step 1b)."""
    if not run_ids:
        return []
    cases = session.scalars(select(Case).where(Case.consent_run_id.in_(list(run_ids)),
                                               Case.consent_decision.is_not(None)).order_by(Case.id))
    return [AnsweredWait(case.case_number, str(case.consent_run_id), {
        "decision": str(case.consent_decision), "method": str(case.consent_method),
        "decided_on": case.consent_date.isoformat() if case.consent_date else "",
        "recorded_by": str(case.consent_recorded_by or "")}) for case in cases]


@dataclass(frozen=True)
class StuckCases:
    unforwarded: list[str]
    """Consent given, the order never composed: the run died before or while preparing it."""
    unlettered: list[str]
    """Consent refused, the refusal letter never composed."""


def cases_stuck_after_consent(session: Session, now: datetime) -> StuckCases:
    """Cases idle for ``STUCK_AFTER`` since the consent whose next message was never composed."""
    cutoff = now - STUCK_AFTER

    def not_sent(purpose: str):  # noqa: ANN202 - a SQL condition
        # never composed: a composed row, pending or failing, is delivering's job, not a new run's
        return ~exists().where(OutboxMessage.case_id == Case.id, OutboxMessage.purpose == purpose)

    def numbers(state: CaseState, purpose: str) -> list[str]:
        return list(session.scalars(select(Case.case_number).where(
            Case.state == state, Case.updated_at < cutoff, not_sent(purpose)).order_by(Case.id)))

    return StuckCases(numbers(CaseState.FORWARDING, ORDER), numbers(CaseState.CONSENT_REFUSED, REFUSAL_LETTER))
