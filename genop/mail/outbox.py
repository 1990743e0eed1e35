"""Exactly-once side effects: the outbox.

Every mail or letter is a row keyed by (case, purpose), written with its fixed
Message-ID *before* anything is sent, and marked ``sent`` with the server's reply
*after*. Delivery claims the row with a conditional update, so two workers never send
the same row at once. The one window no database can close — the SMTP server has said
250 but we crashed before committing ``sent`` — is closed on the receiving side: the
retry (after the claim's lease runs out) carries the same Message-ID, and the receiver
(Copenhagen's mail system; our mail sink) drops a Message-ID it already has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, or_, select, update
from sqlalchemy.orm import Session, defer

from genop.clock import now_utc
from genop.errors import GenopError, SmtpPermanentError, TemporaryDeliveryError
from genop.files import write_atomically
from genop.mail.smtp import SmtpSettings, send_message
from genop.settings import Settings
from genop.store.db import Store
from genop.store.models import Case, OutboxMessage

LEASE = timedelta(minutes=2)
"""How long a claimed row is left to its worker before another may retry it (> SMTP timeout)."""


class Status:
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    outbox_id: int
    status: str  # sent | already_sent | in_progress
    response: str | None
    message_id: str


def find(session: Session, key: str) -> OutboxMessage | None:
    return session.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).one_or_none()


def _lease_expired(now: datetime) -> ColumnElement[bool]:
    """A claimed row whose worker had its lease and did not mark it: it died, or hangs."""
    return (OutboxMessage.status == Status.SENDING) & (OutboxMessage.claimed_at < now - LEASE)


def awaiting_delivery(session: Session, now: datetime, *, channels: Iterable[str]) -> list[int]:
    """Rows composed but not delivered that nobody is delivering: pending (never tried, or a
    temporary failure) for longer than a lease — the run that composed it had its chance —
    or claimed by a worker whose lease ran out. Failed rows (a permanent refusal, a
    certificate) wait for staff; a row within its lease is its worker's."""
    left = (OutboxMessage.status == Status.PENDING) & (OutboxMessage.updated_at < now - LEASE)
    return list(session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.channel.in_(list(channels)), or_(left, _lease_expired(now)))
        .order_by(OutboxMessage.id)))


def unsent_mail_of(session: Session, case: Case) -> list[int]:
    """A case's mails not sent yet, failed ones included: what `genop case deliver` (re-)tries."""
    return list(session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.case_id == case.id, OutboxMessage.channel == "smtp",
               OutboxMessage.status.in_([Status.PENDING, Status.FAILED, Status.SENDING]))
        .order_by(OutboxMessage.id)))


def _claim(store: Store, outbox_id: int, now: datetime) -> OutboxMessage | None:
    """Take the row for sending; None when it is sent already or another worker holds it."""
    with store.session() as session:
        claimed = cast("CursorResult[Any]", session.execute(  # an UPDATE's result has a rowcount
            update(OutboxMessage)
            .where(OutboxMessage.id == outbox_id,
                   or_(OutboxMessage.status.in_([Status.PENDING, Status.FAILED]), _lease_expired(now)))
            .values(status=Status.SENDING, claimed_at=now, updated_at=now,
                    attempts=OutboxMessage.attempts + 1)
        )).rowcount
        row = session.get(OutboxMessage, outbox_id)
        if row is None:
            raise GenopError(f"no outbox message {outbox_id}", code="outbox_not_found")
        session.expunge(row)
        return row if claimed == 1 else None


def _mark_sent(store: Store, outbox_id: int, response: str, now: datetime) -> None:
    with store.session() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(
            status=Status.SENT, response=response, sent_at=now, updated_at=now, last_error=None))


def _mark_failed(store: Store, outbox_id: int, error: GenopError, *, permanent: bool, now: datetime) -> None:
    with store.session() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(
            status=Status.FAILED if permanent else Status.PENDING,
            last_error=f"{error.code}: {error.message}", updated_at=now, claimed_at=None))


def deliver(store: Store, outbox_id: int, send: Callable[[OutboxMessage], str],
            *, now: Callable[[], datetime] = now_utc) -> Delivery:
    """Send one outbox row at most once; ``send`` performs the effect and returns its receipt."""
    row = _claim(store, outbox_id, now())
    if row is None:
        with store.session() as session:
            current = session.get(OutboxMessage, outbox_id)
            assert current is not None
            status = "already_sent" if current.status == Status.SENT else "in_progress"
            return Delivery(outbox_id, status, current.response, current.message_id)
    try:
        response = send(row)
    except TemporaryDeliveryError as error:
        _mark_failed(store, outbox_id, error, permanent=False, now=now())
        raise
    except GenopError as error:
        _mark_failed(store, outbox_id, error, permanent=True, now=now())
        raise
    _mark_sent(store, outbox_id, response, now())
    return Delivery(outbox_id, "sent", response, row.message_id)


def smtp_settings_of(settings: Settings) -> SmtpSettings:
    return SmtpSettings(host=settings.smtp_host, port=settings.smtp_port, security=settings.smtp_security,
                        username=settings.smtp_username, password=settings.smtp_password,
                        ca_file=settings.smtp_ca_file)


def smtp_sender(settings: SmtpSettings) -> Callable[[OutboxMessage], str]:
    def send(row: OutboxMessage) -> str:
        if row.raw is None:
            raise SmtpPermanentError(f"outbox message {row.key} has no content to send",
                                     code="outbox_empty")
        receipt = send_message(row.raw, sender=row.sender or "", recipients=row.recipients,
                               message_id=row.message_id, settings=settings)
        return receipt.response
    return send


def letter_writer(folder: Path) -> Callable[[OutboxMessage], str]:
    """Letters are written as files (for print or Digital Post); rewriting is harmless."""
    def write(row: OutboxMessage) -> str:
        if row.raw is None or row.document_path is None:
            raise GenopError(f"letter {row.key} has no content", code="outbox_empty")
        target = Path(row.document_path)
        try:
            if not target.exists() or target.read_bytes() != row.raw:
                write_atomically(target, row.raw)
        except OSError as exc:
            raise TemporaryDeliveryError(f"letter {row.key} could not be written ({exc.strerror}); "
                                         "it is tried again", code="letter_unwritable") from exc
        return f"written to {target}"
    return write


def list_messages(session: Session, *, status: str | None = None) -> Sequence[OutboxMessage]:
    query = select(OutboxMessage).options(defer(OutboxMessage.raw)).order_by(OutboxMessage.id)
    if status:
        query = query.where(OutboxMessage.status == status)
    return session.scalars(query).all()


def outbox_view(row: OutboxMessage) -> dict[str, object]:
    """For `genop outbox list`: no content, no personal data."""
    return {
        "id": row.id, "key": row.key, "purpose": row.purpose, "channel": row.channel,
        "status": row.status, "attempts": row.attempts, "message_id": row.message_id,
        "recipients": list(row.recipients), "subject": row.subject, "response": row.response,
        "last_error": row.last_error,
        "sent_at": row.sent_at.isoformat(timespec="seconds") if row.sent_at else None,
    }
