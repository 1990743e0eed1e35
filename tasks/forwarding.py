"""Forwarding tasks: build the order into the outbox, deliver it, record the outcome."""

from __future__ import annotations

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.logging import get_run_logger
from prefect.states import State

from genop.clock import now_utc
from genop.errors import SmtpTemporaryError
from genop.forwarding import letter_sent, mark_forward_failed, mark_forwarded, prepare_order, prepare_refusal_letter
from genop.mail.smtp import SmtpSettings
from genop.mail.outbox import Delivery, deliver, letter_writer, smtp_sender, smtp_settings_of
from genop.runtime import current_runtime
from tasks.privacy import private_errors
from genop.store.models import OutboxMessage


def _only_temporary(_task: Task, _run: TaskRun, state: State) -> bool:
    """Retry what may succeed later (refused connection, 4xx); a 5xx or a certificate never will."""
    return isinstance(state.data, SmtpTemporaryError)


@task(name="prepare-order", cache_policy=NO_CACHE)
@private_errors
def prepare_order_task(case_number: str) -> int:
    runtime = current_runtime()
    with runtime.store.session() as session:
        return prepare_order(session, case_number, agreement=runtime.agreement,
                             settings=runtime.settings, now=now_utc()).id


def smtp_settings() -> SmtpSettings:
    return smtp_settings_of(current_runtime().settings)


@task(name="send-mail", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[10, 60, 300],
      retry_condition_fn=_only_temporary)
def send_mail(outbox_id: int) -> Delivery:
    """Deliver one outbox row over SMTP, at most once (see genop.mail.outbox)."""
    delivery = deliver(current_runtime().store, outbox_id, smtp_sender(smtp_settings()))
    get_run_logger().info("outbox %d: %s %s", outbox_id, delivery.status, delivery.message_id)
    return delivery


@task(name="record-forwarded", cache_policy=NO_CACHE)
def record_forwarded(case_number: str, outbox_id: int) -> str:
    runtime = current_runtime()
    with runtime.store.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        assert row is not None
        return mark_forwarded(session, case_number, row, now_utc()).state


@task(name="record-forward-failed", cache_policy=NO_CACHE)
def record_forward_failed(case_number: str, reason: str) -> str:
    runtime = current_runtime()
    with runtime.store.session() as session:
        return mark_forward_failed(session, case_number, reason, now_utc()).state


@task(name="write-refusal-letter", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
@private_errors
def write_refusal_letter(case_number: str) -> Delivery:
    runtime = current_runtime()
    now = now_utc()
    with runtime.store.session() as session:
        row_id = prepare_refusal_letter(session, case_number, agreement=runtime.agreement,
                                        settings=runtime.settings, letter_date=now, now=now).id
    delivery = deliver(runtime.store, row_id, letter_writer(runtime.settings.letters_dir))
    if delivery.status == "sent":
        with runtime.store.session() as session:
            letter_sent(session, case_number, session.get_one(OutboxMessage, row_id), now_utc())
    return delivery
