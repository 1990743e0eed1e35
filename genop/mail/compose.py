"""Signed and encrypted mail between the parties (agreement §4: "krypteret/digital signatur").

One way to compose every mail genop sends — orders, transport bookings, notices, final
status: signed with the sending party's certificate, encrypted to the receiving party's
(and the sender's own, for its records), written once into the outbox under the key
(case, purpose) with a Message-ID derived from that key. Certificates are checked when
the mail is composed; any problem stops it. There is no plaintext path.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy.orm import Session

from genop.mail.certificates import load_ca, load_identity
from genop.config import Agreement, Contact
from genop.errors import GenopError
from genop.mail.outbox import Status, find
from genop.settings import Settings
from genop.mail.smime import build_message, make_message_id, open_message
from genop.store.models import Case, OutboxMessage
from genop.store.repository import append_event


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "octet-stream"


@dataclass(frozen=True)
class SecureMail:
    purpose: str
    from_party: str
    to_party: str
    subject: str
    body: str
    attachments: Sequence[Attachment] = ()
    in_reply_to: str | None = None
    """The Message-ID of the mail this one re-sends or answers (In-Reply-To and References)."""


def outbox_key(case_number: str, purpose: str) -> str:
    return f"{case_number}:{purpose}"


def address_overrides(settings: Settings) -> dict[str, str]:
    """The party addresses the deployment's settings give instead of config: Tårnby's sending
    address (``mail_from``) and Copenhagen's (``order_recipient``), where set."""
    given = {"tarnby": settings.mail_from, "copenhagen": settings.order_recipient}
    return {party: address for party, address in given.items() if address}


def address_of(party: str, agreement: Agreement, settings: Settings) -> str:
    """A party's mail address: the settings' override (``address_overrides``), else config."""
    override = address_overrides(settings).get(party)
    if override:
        return override
    contact = agreement.party(party).contact
    if contact is None or contact.email is None:
        raise GenopError(f"config/agreement.yaml: parties.{party}.contact.email is missing",
                         code="address_missing")
    return str(contact.email)


def contact_of(party: str, agreement: Agreement) -> Contact:
    found = agreement.party(party)
    return found.contact if found.contact is not None else Contact(name=found.name)


def compose(session: Session, case: Case | None, mail: SecureMail, *, agreement: Agreement,
            settings: Settings, now: datetime, key: str | None = None) -> OutboxMessage:
    """The mail's outbox row, composed once; an existing row with content is returned as is.

    ``key`` replaces the (case, purpose) key where one purpose has several rows per case or
    none (a notice per finding, level and recipient; a notice about a budget has no case)."""
    if key is None:
        if case is None:
            raise GenopError("a mail without a case needs its own outbox key", code="outbox_key_missing")
        key = outbox_key(case.case_number, mail.purpose)
    row = find(session, key)
    if row is not None and (row.status == Status.SENT or row.raw is not None):
        return row
    sender = address_of(mail.from_party, agreement, settings)
    recipient = address_of(mail.to_party, agreement, settings)
    certs = settings.certificates_dir
    ca = load_ca(certs)
    signer = load_identity(certs, mail.from_party, sender, with_key=True, at=now, ca=ca, role="sign")
    reader = load_identity(certs, mail.to_party, recipient, with_key=False, at=now, ca=ca, role="encrypt")
    inner = EmailMessage()
    inner.set_content(mail.body)
    for attachment in mail.attachments:
        inner.add_attachment(attachment.content, maintype=attachment.maintype,
                             subtype=attachment.subtype, filename=attachment.filename)
    # a fresh nonce per row: a reset case store (numbers from 1 again) never reuses a Message-ID;
    # the row keeps it, so every resend of this mail carries the same one
    message_id = row.message_id if row is not None else make_message_id(
        f"{key}:{uuid.uuid4()}", sender.rsplit("@", 1)[-1])
    raw = build_message(inner, sender=sender, to=[recipient], subject=mail.subject,
                        message_id=message_id, date=now, signer=signer, recipients=[reader],
                        in_reply_to=mail.in_reply_to, references=(mail.in_reply_to,) if mail.in_reply_to else ())
    if row is None:
        row = OutboxMessage(key=key, case=case, purpose=mail.purpose, channel="smtp", created_at=now,
                            message_id=message_id, attempts=0)
        session.add(row)
    row.sender, row.recipients, row.subject, row.raw = sender, [recipient], mail.subject, raw
    row.status, row.updated_at = Status.PENDING, now
    if case is not None:
        append_event(session, case, f"{mail.purpose}_prepared",
                     f"{mail.purpose.replace('_', ' ')} to {recipient} signed with {mail.from_party}'s "
                     f"certificate and encrypted to {mail.to_party}'s; Message-ID {message_id}", now,
                     {"message_id": message_id, "purpose": mail.purpose})
    session.flush()
    return row


def compose_letter(session: Session, case: Case, *, purpose: str, subject: str, html: str,
                   filename: str, settings: Settings, now: datetime) -> OutboxMessage:
    """A letter to the citizen (for print or Digital Post), as an outbox row written once:
    delivered by writing ``$GENOP_HOME/letters/<case>/<filename>``."""
    key = outbox_key(case.case_number, purpose)
    row = OutboxMessage(key=key, case=case, purpose=purpose, channel="letter", created_at=now,
                        updated_at=now, message_id=f"<{key}@letters.genop>", status=Status.PENDING,
                        attempts=0, recipients=["citizen (letter)"], subject=subject,
                        raw=html.encode("utf-8"),
                        document_path=str(settings.letters_dir / case.case_number / filename))
    session.add(row)
    return row


def party_at(address: str, agreement: Agreement, settings: Settings) -> str:
    """The party whose mail address ``address`` is (``address_of``, overrides included)."""
    wanted = address.strip().lower()
    for party in agreement.parties:
        try:
            if address_of(party, agreement, settings).lower() == wanted:
                return party
        except GenopError:
            continue
    raise GenopError(f"no party in config/agreement.yaml has the address {address}", code="address_unknown")


def content_of(row: OutboxMessage, *, agreement: Agreement, settings: Settings,
               now: datetime) -> tuple[str, str, str, tuple[Attachment, ...]]:
    """(from party, to party, body, attachments) of a composed mail, read back from its outbox row
    with its sender's key (every mail is encrypted to its sender too): what a re-send repeats."""
    if row.channel != "smtp" or row.raw is None or not row.sender or not row.recipients:
        raise GenopError(f"outbox message {row.key} is not a composed mail", code="not_a_mail")
    from_party = party_at(row.sender, agreement, settings)
    to_party = party_at(row.recipients[0], agreement, settings)
    certs = settings.certificates_dir
    sender = load_identity(certs, from_party, row.sender, with_key=True, at=now, ca=load_ca(certs), role="sign")
    inner = open_message(row.raw, reader=sender)
    body_part = inner.get_body(preferencelist=("plain",))
    body = body_part.get_content() if body_part is not None else ""
    attachments = tuple(
        Attachment(part.get_filename() or "bilag", _bytes(part.get_payload(decode=True)),
                   part.get_content_maintype(), part.get_content_subtype())
        for part in inner.iter_attachments())
    return from_party, to_party, body, attachments


def _bytes(payload: object) -> bytes:
    return payload if isinstance(payload, bytes) else b""
