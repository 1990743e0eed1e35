"""Settlement documents in the store (agreement §8): issued once per key, never changed.

Every a-conto request, monthly settlement, January refund and regulation is an
:class:`~genop.store.models.SettlementDocumentRecord` with a unique ``key`` (what it
settles, e.g. ``settlement:2026-11:tarnby``) and a gap-free number (``GEN-F-2026-00001``
for invoices, ``GEN-K-…`` for credit notes) taken in the same transaction. The OIOUBL
XML and its Danish HTML rendering are stored with the row; the files under
``$GENOP_HOME/invoices/<purpose>/<period>/`` are written from it after the commit, so a
crash in between only delays the files (:func:`write_files` writes what is missing).

Each document is also handed to NemHandel exactly once through the outbox (channel
``nemhandel``): its XML is placed in ``$GENOP_HOME/invoices/outgoing/``, the pickup folder
of the access point, and the outbox row records when.

All settlement work is serialised by :func:`lock_settlement` (a row lock on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` already admits one writer), so two workers or a re-trigger
racing a scheduled run never both issue a document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from genop.settlement import oioubl
from genop.config import Agreement
from genop.errors import GenopError, TemporaryDeliveryError
from genop.files import write_atomically
from genop.mail.outbox import deliver
from genop.settlement.rules import ZERO, SettlementError
from genop.store.db import Store
from genop.store.repository import bump_counter
from genop.store.models import (
    Counter,
    OutboxMessage,
    SettledCourse,
    SettlementDocumentRecord,
)

LOCK = "settlement:lock"
PREFIX = {"Invoice": "GEN-F", "CreditNote": "GEN-K"}
DANISH_MONTHS = ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september",
                 "oktober", "november", "december")
_POSTAL = re.compile(r"^(?P<street>.+),\s*(?P<postcode>\d{4})\s+(?P<city>.+)$")


def lock_settlement(session: Session) -> None:
    """Wait for, then hold until commit, the one settlement lock (see module docstring)."""
    found = session.execute(select(Counter.name).where(Counter.name == LOCK).with_for_update()).scalar()
    if found is None:
        raise SettlementError("the settlement lock row is missing: the case store is not migrated to 0004")


def month_in_danish(month: str) -> str:
    """"2026-11" → "november 2026"."""
    year, number = month.split("-")
    return f"{DANISH_MONTHS[int(number) - 1]} {year}"


def _address(text: str | None) -> tuple[str | None, str | None, str | None]:
    """"Edith Rodes Vej 4, Bygning V, 2200 København N" → (street, city, postcode)."""
    found = _POSTAL.match(text or "")
    if found is None:
        return (text, None, None)
    return found["street"], found["city"], found["postcode"]


def seller(agreement: Agreement) -> oioubl.Party:
    """The contractor (Copenhagen, agreement §1) issues every settlement document."""
    party = next((p for p in agreement.parties.values() if p.kind == "contractor"), None)
    if party is None:
        raise SettlementError("the agreement configuration names no contractor (kind: contractor) to invoice from")
    contact = party.contact
    street, city, postcode = _address(contact.address if contact else None)
    return oioubl.Party(name=party.name, ean=party.ean, street=street, city=city, postcode=postcode,
                        contact_email=str(contact.email) if contact and contact.email else None, cvr=party.cvr)


def buyer(agreement: Agreement, payer: str) -> oioubl.Party:
    """The paying municipality, addressed by its EAN (agreement §8)."""
    party = agreement.parties.get(payer)
    if party is None or party.kind != "municipality" or party.ean is None:
        raise SettlementError(f"{payer!r} is not a municipality with an EAN number in the agreement "
                              "configuration (parties): it cannot be invoiced")
    street, city, postcode = _address(party.contact.address if party.contact else None)
    return oioubl.Party(name=party.name, ean=party.ean, street=street, city=city, postcode=postcode)


def _next_number(session: Session, kind: str, year: int) -> str:
    value = bump_counter(session, f"settlement-document:{PREFIX[kind]}:{year}")
    return f"{PREFIX[kind]}-{year}-{value:05d}"


def find(session: Session, key: str) -> SettlementDocumentRecord | None:
    return session.scalar(select(SettlementDocumentRecord).where(SettlementDocumentRecord.key == key))


def documents_by_number(session: Session, numbers: Iterable[str]) -> list[SettlementDocumentRecord]:
    """The documents with these numbers, in number order (the ones a settlement step issued)."""
    return list(session.scalars(select(SettlementDocumentRecord)
                                .where(SettlementDocumentRecord.number.in_(list(numbers)))
                                .order_by(SettlementDocumentRecord.number)))


def list_documents(session: Session, *, period: str | None = None,
                   purpose: str | None = None) -> list[SettlementDocumentRecord]:
    """Every document issued, in number order; only a period's or a purpose's when given."""
    query = select(SettlementDocumentRecord).order_by(SettlementDocumentRecord.number)
    if period:
        query = query.where(SettlementDocumentRecord.period == period)
    if purpose:
        query = query.where(SettlementDocumentRecord.purpose == purpose)
    return list(session.scalars(query))


def issue(session: Session, agreement: Agreement, *, folder: Path, now: datetime, key: str, kind: oioubl.DocumentKind,
          purpose: str, payer: str, period: str, issue_date: date, due_date: date | None,
          lines: Sequence[oioubl.DocumentLine], prepaid: Decimal = ZERO, aconto: Decimal = ZERO,
          carried: Decimal = ZERO, note: str | None = None, order_references: tuple[str, ...] = (),
          corrects: tuple[str, ...] = ()) -> SettlementDocumentRecord:
    """Issue the document for ``key`` (the caller holds the settlement lock and checked it is new)."""
    if find(session, key) is not None:
        raise SettlementError(f"a settlement document for {key} exists already: nothing is issued twice")
    number = _next_number(session, kind, issue_date.year)
    document = oioubl.SettlementDocument(
        kind=kind, number=number, issue_date=issue_date, due_date=due_date, seller=seller(agreement),
        buyer=buyer(agreement, payer), lines=tuple(lines), prepaid=prepaid, note=note,
        order_references=order_references, billing_references=corrects)
    code = agreement.parties[payer].municipality_code or payer
    base = folder / purpose / period.replace(":", "-") / f"{number}-{code}"
    row = SettlementDocumentRecord(
        key=key, number=number, kind=kind, purpose=purpose, payer=payer, ean=document.buyer.ean or "",
        period=period, issue_date=issue_date, due_date=due_date, line_total=document.line_total,
        prepaid=prepaid, payable=document.payable, aconto=aconto, carried=carried, note=note,
        xml=oioubl.to_xml(document), html=oioubl.render_html(document),
        xml_path=str(base.with_suffix(".xml")), html_path=str(base.with_suffix(".html")), created_at=now)
    session.add(row)
    session.flush()
    session.add(_handoff(row, folder, now))
    return row


HANDOFF_FOLDER = "outgoing"
"""``$GENOP_HOME/invoices/outgoing/``: where the NemHandel access point picks documents up."""


def _handoff(row: SettlementDocumentRecord, folder: Path, now: datetime) -> OutboxMessage:
    """The hand-off to NemHandel as an outbox row, written with the document: delivered once
    (genop.mail.outbox), by placing the XML in the access point's pickup folder."""
    return OutboxMessage(
        key=handoff_key(row.number), case_id=None, purpose=f"oioubl_{row.purpose}", channel="nemhandel",
        sender=None, recipients=[f"EAN {row.ean}"], subject=f"{row.kind} {row.number}",
        message_id=f"<{row.number}@nemhandel.genop>", status="pending", attempts=0, raw=row.xml,
        document_path=str(folder / HANDOFF_FOLDER / f"{row.number}.xml"), created_at=now, updated_at=now)


def handoff_key(number: str) -> str:
    return f"oioubl:{number}"


@dataclass(frozen=True)
class HandOff:
    delivered: tuple[str, ...]
    pending: tuple[str, ...]
    """Document numbers not handed off (pickup folder unavailable): retried by the daily run."""


def hand_off(store: Store, numbers: Iterable[str] | None = None) -> HandOff:
    """Deliver the NemHandel hand-off of these documents (default: every one not yet handed
    off); each is placed in the pickup folder once, whatever the number of calls. A folder
    that cannot be written leaves the document pending; the others are still handed off."""
    query = select(OutboxMessage.id, OutboxMessage.key).where(
        OutboxMessage.channel == "nemhandel", OutboxMessage.status != "sent").order_by(OutboxMessage.id)
    if numbers is not None:
        query = query.where(OutboxMessage.key.in_([handoff_key(n) for n in numbers]))
    with store.session() as session:
        waiting = session.execute(query).all()
    delivered, pending = [], []
    for outbox_id, key in waiting:
        number = key.removeprefix("oioubl:")
        try:
            if deliver(store, outbox_id, _drop_in_pickup_folder).status == "sent":
                delivered.append(number)
        except GenopError:
            pending.append(number)
    return HandOff(tuple(delivered), tuple(pending))


def _drop_in_pickup_folder(row: OutboxMessage) -> str:
    """Write the XML beside the pickup folder, then move it in whole: the access point never
    sees half a file. The receiver can drop a duplicate (after a crash between the move and
    our commit) by the document's fixed ``cbc:UUID``."""
    if row.raw is None or row.document_path is None:
        raise GenopError(f"hand-off {row.key} has no document", code="outbox_empty")
    target = Path(row.document_path)
    try:
        write_atomically(target, row.raw, staging=target.parent.parent / f".{target.parent.name}-staging")
    except OSError as error:
        raise TemporaryDeliveryError(f"the NemHandel pickup folder {target.parent} cannot be written "
                                     f"({error.strerror or type(error).__name__}); {row.key} is retried daily",
                                     code="pickup_folder_unavailable") from None
    return f"placed in {target}"


def course_line(line_no: int, case_number: str, description: str, amount: Decimal) -> oioubl.DocumentLine:
    """One course as one line (unit EA, quantity 1): its amount is the course's price."""
    return oioubl.DocumentLine(line_id=str(line_no), description=description, quantity=Decimal(1),
                               unit_code="EA", unit_price=amount, amount=amount, case_number=case_number)


def single_line(description: str, amount: Decimal) -> oioubl.DocumentLine:
    """The one line of an a-conto request or a refund (no case)."""
    return oioubl.DocumentLine(line_id="1", description=description, quantity=Decimal(1), unit_code="EA",
                               unit_price=amount, amount=amount, case_number=None)


def write_files(rows: Iterable[SettlementDocumentRecord]) -> list[Path]:
    """Write each document's XML and HTML where they are missing or differ from the store."""
    written: list[Path] = []
    for row in rows:
        for path, content in ((Path(row.xml_path), row.xml), (Path(row.html_path), row.html.encode("utf-8"))):
            if not path.is_file() or path.read_bytes() != content:
                write_atomically(path, content)
                written.append(path)
    return written


def restore_missing_files(session: Session) -> list[Path]:
    """Write the files of every document whose XML or HTML file is missing (a crash between the
    commit and the writing, or a file deleted by mistake); the store holds the originals."""
    paths = session.execute(select(SettlementDocumentRecord.id, SettlementDocumentRecord.xml_path,
                                   SettlementDocumentRecord.html_path)).all()
    missing = [row.id for row in paths if not (Path(row.xml_path).is_file() and Path(row.html_path).is_file())]
    if not missing:
        return []
    return write_files(session.scalars(select(SettlementDocumentRecord)
                                       .where(SettlementDocumentRecord.id.in_(missing))))


def xml_lines(xml: bytes) -> list[dict[str, str | None]]:
    """The lines of a stored document as written (line id, case number, description, amount)."""
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    ns = oioubl.NS
    lines = root.findall("cac:InvoiceLine", ns) + root.findall("cac:CreditNoteLine", ns)
    return [{"line": line.findtext("cbc:ID", namespaces=ns),
             "case_number": line.findtext("cac:OrderLineReference/cbc:LineID", namespaces=ns),
             "description": line.findtext("cac:Item/cbc:Name", namespaces=ns),
             "amount": line.findtext("cbc:LineExtensionAmount", namespaces=ns)} for line in lines]


def money(value: Decimal) -> str:
    """Amounts in JSON and tables: a decimal string with two decimals ("449461.00")."""
    return f"{value.quantize(Decimal('0.01')):f}"


# -- views (for the CLI and artifacts) ----------------------------------------------------


def document_view(session: Session, agreement: Agreement, document: SettlementDocumentRecord) -> dict[str, object]:
    """A document as staff read it (``genop settle --json``): amounts as two-decimal strings."""
    party = agreement.parties[document.payer]
    courses = {row.line_no: row for row in session.scalars(
        select(SettledCourse).where(SettledCourse.document_id == document.id))}
    lines = []
    for line in xml_lines(document.xml):
        view: dict[str, object] = {"case_number": line["case_number"], "description": line["description"],
                                   "amount": line["amount"]}
        course = courses.get(int(line["line"] or 0)) if document.purpose == "settlement" else None
        if course is not None:
            view.update(diagnosis_group=course.case.diagnosis_group, visits=course.visits)
        lines.append(view)
    return {
        "number": document.number, "kind": document.kind, "purpose": document.purpose,
        "period": document.period, "municipality": party.municipality_code, "payer": document.payer,
        "ean": document.ean, "issue_date": document.issue_date.isoformat(),
        "due_date": document.due_date.isoformat() if document.due_date else None, "lines": lines,
        # "aconto" is the a-conto offset on this document (total - aconto = amount_due)
        "total": money(document.line_total), "aconto": money(document.prepaid),
        "amount_due": money(document.payable), "aconto_of_month": money(document.aconto),
        "carried_to_reconciliation": money(document.carried),
        "oioubl_path": document.xml_path, "html_path": document.html_path,
    }


def totals_row(agreement: Agreement, document: SettlementDocumentRecord) -> dict[str, str]:
    """One row of a Prefect table artifact: totals only, no case or citizen data."""
    party = agreement.parties[document.payer]
    return {"document": document.number, "kind": document.kind, "purpose": document.purpose,
            "period": document.period, "municipality": f"{party.municipality_code} {party.name}",
            "total": money(document.line_total), "aconto": money(document.prepaid),
            "amount_due": money(document.payable),
            "due_date": document.due_date.isoformat() if document.due_date else ""}
