"""Sending one outbox mail over SMTP, exactly once per outbox entry.

The mail arrives here finished (signed and encrypted S/MIME, agreement §4); this module
only delivers its bytes. "Exactly once" rests on the receiving side deduplicating on
Message-ID: when we cannot know whether the server accepted a mail (a crash between
its 250 and our commit), the outbox sends it again with the *same* Message-ID. So
``send_message`` refuses bytes whose Message-ID header is not the one it is given.

Failures are sorted for the outbox's retry policy: ``SmtpTemporaryError`` (network,
timeout, dropped connection, 4xx) may pass on a later attempt; ``SmtpPermanentError``
(5xx, an untrusted TLS certificate, a broken configuration) needs a person. Messages
name the server as host:port and never contain the mail itself.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Literal

import aiosmtplib
from aiosmtplib import (
    SMTPConnectError,
    SMTPException,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPStatus,
)
from aiosmtplib.email import parse_address

from genop.errors import GenopError, SmtpPermanentError, SmtpTemporaryError

Security = Literal["none", "starttls", "tls"]
_SECURITY_MODES: tuple[str, ...] = ("none", "starttls", "tls")


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to deliver. ``tls`` is implicit TLS (SMTPS, usually port 465).

    Certificate verification is always on for ``starttls`` and ``tls``; ``ca_file``
    adds a CA bundle to the system's trusted CAs, it never replaces verification.
    """

    host: str = "127.0.0.1"
    port: int = 8025
    security: Security = "none"
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.security not in _SECURITY_MODES:
            raise ValueError(f"SMTP security must be one of {_SECURITY_MODES}, not {self.security!r}")

    @property
    def address(self) -> str:
        """host:port as an operator would type it (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class SmtpReceipt:
    """Proof of delivery to be stored on the outbox entry."""

    response: str
    message_id: str


def send_message(
    raw: bytes,
    *,
    sender: str,
    recipients: Sequence[str],
    message_id: str,
    settings: SmtpSettings,
) -> SmtpReceipt:
    """Deliver ``raw`` (CRLF line endings; sent as is) to ``recipients`` in one SMTP transaction.

    Synchronous for the outbox task, and callable from any thread, also one with a
    running event loop (which then waits for the delivery). The SMTP conversation
    always runs on a short-lived worker thread with its own loop: ``asyncio.run`` in
    the caller's thread would clear an event loop the caller had set there.
    """
    _check_message_id(raw, message_id)
    _check_addresses(sender, recipients)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="genop-smtp") as pool:
        future = pool.submit(lambda: asyncio.run(_deliver(raw, sender, list(recipients), settings)))
        response = future.result()
    return SmtpReceipt(response=response, message_id=message_id)


async def _deliver(raw: bytes, sender: str, recipients: list[str], settings: SmtpSettings) -> str:
    tls_context = _tls_context(settings) if settings.security != "none" else None
    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        username=settings.username,
        password=settings.password,
        use_tls=settings.security == "tls",
        # False (not None) for "none": aiosmtplib's None means "upgrade if offered".
        start_tls=settings.security == "starttls",
        validate_certs=True,
        tls_context=tls_context,
        timeout=settings.timeout,
    )
    try:
        # Leaving the block sends QUIT; aiosmtplib ignores a failing QUIT, so once
        # DATA got its 250 nothing can turn the delivery into an error.
        async with client:
            refused, message = await client.sendmail(sender, recipients, raw)
    except (SMTPException, OSError) as exc:
        raise _translate(exc, settings) from exc
    if refused:
        raise _partly_refused(refused, recipients, settings)
    # sendmail raises unless DATA was answered 250, and hands back only the text.
    return f"{int(SMTPStatus.completed)} {message}"


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(settings.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise SmtpPermanentError(
                f"The CA file {settings.ca_file} for the mail server {settings.address} "
                f"cannot be used ({exc}); the mail was not sent."
            ) from exc
    return context


def _translate(exc: BaseException, settings: SmtpSettings) -> GenopError:
    """Sort a failure into temporary and permanent, in words an operator understands."""
    where = settings.address
    if (untrusted := _cert_failure(exc)) is not None:
        return SmtpPermanentError(
            f"The TLS certificate of the mail server {where} could not be verified "
            f"({untrusted.verify_message}); the mail was not sent. Certificate "
            "verification is never turned off: give the CA that issued the server's "
            "certificate as the SMTP CA file, or fix the server's certificate.",
            code="smtp_tls_untrusted",
        )
    if isinstance(exc, SMTPRecipientsRefused):
        codes = [refusal.code for refusal in exc.recipients]
        details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        return _by_reply_code(max(codes), f"The mail server {where} refused every recipient ({details})")
    if isinstance(exc, SMTPResponseException):
        return _by_reply_code(exc.code, f"The mail server {where} answered {exc.code} {exc.message}")
    if isinstance(exc, TimeoutError):  # aiosmtplib's timeouts derive from it
        return SmtpTemporaryError(
            f"The mail server {where} did not answer within {settings.timeout:g} s; the mail may "
            "or may not have arrived, and sending it again (same Message-ID) is safe.")
    if isinstance(exc, SMTPConnectError):
        return _connect_failure(exc, settings)
    if isinstance(exc, ssl.SSLError):
        return SmtpPermanentError(
            f"The TLS handshake with the mail server {where} failed ({exc.reason or exc}); "
            f"check that security '{settings.security}' is what the server speaks.")
    if isinstance(exc, (SMTPServerDisconnected, OSError)):
        return SmtpTemporaryError(
            f"The mail server {where} dropped the connection before it confirmed the mail "
            f"({exc}); sending it again (same Message-ID) is safe.")
    return SmtpPermanentError(f"The mail server {where} does not offer what the SMTP settings "
                              f"require: {exc}")


def _by_reply_code(code: int, what: str) -> GenopError:
    if 500 <= code <= 599:
        return SmtpPermanentError(f"{what}; the refusal is final, sending again will not help.")
    return SmtpTemporaryError(f"{what}; the refusal is temporary, a later attempt may succeed.")


def _connect_failure(exc: SMTPConnectError, settings: SmtpSettings) -> GenopError:
    cause = exc.__cause__
    where = settings.address
    if isinstance(cause, socket.gaierror):
        reason = f"the name {settings.host!r} could not be resolved"
    elif isinstance(cause, ConnectionRefusedError):
        reason = "the connection was refused (is the mail server running on that port?)"
    elif isinstance(cause, ssl.SSLError):
        return _translate(cause, settings)
    else:
        reason = str(cause or exc)
    return SmtpTemporaryError(f"Cannot connect to the mail server {where}: {reason}.")


def _cert_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _partly_refused(refused: dict[str, aiosmtplib.SMTPResponse], recipients: list[str],
                    settings: SmtpSettings) -> GenopError:
    """Some recipients got the mail, some did not: the entry is not delivered.

    Sending again is safe (same Message-ID), so a 4xx refusal stays retryable.
    """
    accepted = ", ".join(r for r in recipients if r not in refused)
    details = "; ".join(f"{rcpt}: {reply.code} {reply.message}" for rcpt, reply in refused.items())
    return _by_reply_code(
        max(reply.code for reply in refused.values()),
        f"The mail server {settings.address} accepted the mail for {accepted} but refused {details}",
    )


def _check_message_id(raw: bytes, message_id: str) -> None:
    header = BytesHeaderParser().parsebytes(raw).get("Message-ID")
    found = _bare_message_id(str(header)) if header is not None else ""
    if not found or found != _bare_message_id(message_id):
        raise SmtpPermanentError(
            f"The mail for Message-ID {message_id} carries Message-ID "
            f"{f'<{found}>' if found else '(none)'}; "
            "it was not sent, because the receiver could not recognise a resend.",
            code="smtp_message_id_mismatch",
        )


def _bare_message_id(value: str) -> str:
    return " ".join(value.split()).strip().removeprefix("<").removesuffix(">")


def _check_addresses(sender: str, recipients: Sequence[str]) -> None:
    if isinstance(recipients, str) or not recipients:
        raise SmtpPermanentError(f"The mail has no usable list of recipients ({recipients!r}); "
                                 "it was not sent.", code="smtp_invalid_address")
    for address in (sender, *recipients):
        try:
            if not address.strip():
                raise ValueError("empty address")
            parse_address(address)  # what aiosmtplib checks, before any connection is made
        except ValueError as exc:
            raise SmtpPermanentError(f"{address!r} is not a usable mail address ({exc}); "
                                     "the mail was not sent.", code="smtp_invalid_address") from exc
