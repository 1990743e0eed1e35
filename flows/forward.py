"""Forwarding (agreement "Case lifecycle" 4): the order to Copenhagen, signed and
encrypted, exactly once. Re-running it for a case already forwarded sends nothing.
"""

from __future__ import annotations

from prefect import flow
from prefect.logging import get_run_logger

from genop.errors import GenopError
from genop.runtime import current_runtime
from tasks.forwarding import prepare_order_task, record_forward_failed, record_forwarded, send_mail


@flow(name="case-forward", flow_run_name="forward-{case_number}", persist_result=False)
def case_forward(case_number: str) -> str:
    """Build the order into the outbox, deliver it (retrying temporary SMTP failures), record it."""
    delays = current_runtime().settings.smtp_retry_delays
    try:
        outbox_id = prepare_order_task(case_number)
        delivery = send_mail.with_options(retries=len(delays),
                                          retry_delay_seconds=[float(d) for d in delays] or 0)(outbox_id)
    except GenopError as error:
        if error.code == "not_forwardable":
            raise
        return record_forward_failed(case_number, f"{error.code}: {error.message}")
    if delivery.status == "in_progress":
        get_run_logger().warning("%s: another worker is sending the order right now", case_number)
        return "forwarding"
    return record_forwarded(case_number, outbox_id)
