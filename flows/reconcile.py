"""Reconcile (scheduled every 10 minutes, deployment ``consent-reconcile``): genop's store is
the system of record; whatever a lost Prefect run or a killed process left undone is
finished from its facts (genop.reconcile):

1. every case awaiting consent has a live consent wait (re-opened if Prefect lost it), and
   a wait still open for a case whose decision genop already recorded is resumed with it;
2. every composed message not delivered (pending, or its worker's lease ran out) is delivered;
3. every sent message whose case does not say so yet is recorded (a sent order → forwarded);
4. every case whose run died between the consent and composing its order or letter is resumed;
5. every settlement document not handed to NemHandel is handed off.
"""

from __future__ import annotations

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from flows.forward import case_forward
from tasks.consent import start_consent_waits
from tasks.forwarding import write_refusal_letter
from tasks.reconcile import (
    cases_without_live_wait,
    deliver_undelivered_mail,
    hand_off_documents,
    record_sent_mail,
    resume_answered_waits,
    sent_not_recorded,
    stuck_after_consent,
    undelivered_mail,
)


@flow(name="consent-reconcile", flow_run_name="reconcile", persist_result=False)
def reconcile() -> dict[str, int]:
    """Finish every half-done step from genop's store (see the module docstring)."""
    missing = cases_without_live_wait()
    # a fresh idempotency suffix per reconcile run: one new wait per lost wait
    started = start_consent_waits(missing, attempt=str(flow_run.id)[:8]) if missing else []
    answered = resume_answered_waits()
    delivered = [deliver_undelivered_mail(outbox_id) for outbox_id in undelivered_mail()]
    recorded = [record_sent_mail(outbox_id) for outbox_id in sent_not_recorded()]
    unforwarded, unlettered = stuck_after_consent()
    for number in unforwarded:  # the run died between the consent and the order
        case_forward(number)
    for number in unlettered:
        write_refusal_letter(number)
    documents = hand_off_documents()
    summary = {"missing": len(missing), "started": len(started), "answered_waits_resumed": len(answered),
               "mail_delivered": sum(outcome in ("sent", "already_sent") for outcome in delivered),
               "mail_left_pending": sum(outcome not in ("sent", "already_sent") for outcome in delivered),
               "sent_recorded": len(recorded), "orders_resumed": len(unforwarded),
               "letters_resumed": len(unlettered), "documents_handed_off": len(documents["delivered"]),
               "documents_pending": len(documents["pending"])}
    get_run_logger().info("reconcile: %s", summary)
    return summary
