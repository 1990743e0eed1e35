"""The case store's tables (SQLAlchemy 2 typed ORM).

genop's database, not Prefect's, is the system of record: every case, every plan
document as received (byte for byte), every decision (the append-only event log) and
every file that could not be read (quarantine).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as UTC; SQLite keeps no zone, so it is restored on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the case store; use an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Counter(Base):
    """Named counters, e.g. case numbers per year (allocated in blocks for bulk intake)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_number: Mapped[str] = mapped_column(String(32), unique=True)
    plan_id: Mapped[str] = mapped_column(String(128), unique=True)
    state: Mapped[str] = mapped_column(String(32))
    route: Mapped[str | None] = mapped_column(String(32))
    municipality_code: Mapped[str] = mapped_column(String(8))
    payer: Mapped[str | None] = mapped_column(String(32), doc="party key that pays (tarnby/dragor)")
    diagnosis_group: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(40))
    urgent: Mapped[bool] = mapped_column(default=False)
    transport_first_session: Mapped[bool] = mapped_column(default=False)
    discharge_date: Mapped[date] = mapped_column(Date)
    start_by: Mapped[date | None] = mapped_column(Date)
    free_choice_from: Mapped[date] = mapped_column(Date)
    cpr: Mapped[str] = mapped_column(String(10), doc="personal data: never leaves the case store")
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    received_on: Mapped[date] = mapped_column(Date, doc="business date of intake (as-of)")
    consent_decision: Mapped[str | None] = mapped_column(String(16))
    consent_method: Mapped[str | None] = mapped_column(String(64))
    consent_date: Mapped[date | None] = mapped_column(Date)
    consent_recorded_by: Mapped[str | None] = mapped_column(String(128))
    consent_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_run_id: Mapped[str | None] = mapped_column(
        String(64), doc="the Prefect flow run suspended waiting for this case's consent")
    forwarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    forwarded_on: Mapped[date | None] = mapped_column(
        Date, doc="business date of forwarding (as-of); visits before it are refused")
    first_session_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, doc="the first training session offered by the training unit")
    first_session_offered_on: Mapped[date | None] = mapped_column(Date)
    free_choice_letter_on: Mapped[date | None] = mapped_column(
        Date, doc="Health Act §140(4) letter produced (once)")
    completed_on: Mapped[date | None] = mapped_column(Date, doc="slutstatus date: settled in its month")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    documents: Mapped[list[PlanDocument]] = relationship(
        back_populates="case", order_by="PlanDocument.revision"
    )
    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.id")

    __table_args__ = (
        Index("ix_cases_state", "state"),
        Index("ix_cases_municipality_state", "municipality_code", "state"),
        Index("ix_cases_free_choice_from", "free_choice_from"),
        Index("ix_cases_start_by", "start_by"),
        Index("ix_cases_cpr", "cpr"),
        # the escalation scan (genop.escalation): one range per kind within a state
        Index("ix_cases_state_received_on", "state", "received_on"),
        Index("ix_cases_state_consent_recorded_at", "state", "consent_recorded_at"),
        Index("ix_cases_state_free_choice_from", "state", "free_choice_from"),
        Index("ix_cases_state_start_by", "state", "start_by"),
        Index("ix_cases_urgent_state_discharge_date", "urgent", "state", "discharge_date"),
        Index("ix_cases_state_completed_on", "state", "completed_on"),
    )


class PlanDocument(Base):
    """A plan exactly as received; a changed document under the same plan_id is a new revision."""

    __tablename__ = "plan_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    revision: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    encoding: Mapped[str] = mapped_column(String(8), doc="json or xml")
    source_name: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    parsed: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship(back_populates="documents")

    __table_args__ = (
        UniqueConstraint("case_id", "revision", name="uq_plan_documents_case_revision"),
        Index("ix_plan_documents_sha256", "sha256"),
    )


class CaseEvent(Base):
    """The audit trail: append-only; every decision with its explanation."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    case: Mapped[Case] = relationship(back_populates="events")

    __table_args__ = (
        Index("ix_case_events_case_id", "case_id", "id"),
        Index("ix_case_events_kind_at", "kind", "at"),
    )


class QuarantinedFile(Base):
    """A file that could not be taken in as a plan: kept, with the reason, never deleted."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_name: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    reason_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_quarantine_received_at", "received_at"),)


class OutboxMessage(Base):
    """Every side effect, recorded before and after it happens (exactly once per key).

    ``key`` is (case, purpose), e.g. ``GEN-2026-000001:order``. The row is written, with
    its fixed Message-ID, before anything is sent; it is marked ``sent`` with the
    server's reply afterwards. A delivery whose outcome is unknown (a crash between the
    SMTP server's 250 and our commit) is retried with the *same* Message-ID, which the
    receiving side uses to drop the duplicate.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16), doc="smtp or letter")
    sender: Mapped[str | None] = mapped_column(String(255))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16), doc="pending, sending, sent, failed")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, doc="exactly what is sent (encrypted)")
    document_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    case: Mapped[Case | None] = relationship()

    __table_args__ = (
        Index("ix_outbox_status", "status"),
        Index("ix_outbox_case_id", "case_id"),
    )


class Visit(Base):
    """A training visit delivered by Copenhagen, with its SKS code and tariff group (agreement §8)."""

    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    visit_date: Mapped[date] = mapped_column(Date)
    sks_code: Mapped[str] = mapped_column(String(16))
    tariff_group: Mapped[str] = mapped_column(String(16))
    minutes: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16), doc="individual or group")
    group_size: Mapped[int | None] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True,
                                             doc="sha256 of the visit's fields: duplicates are ignored")
    import_id: Mapped[int | None] = mapped_column(ForeignKey("visit_imports.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_document_id: Mapped[int | None] = mapped_column(
        ForeignKey("settlement_documents.id"), doc="the settlement document that invoiced this visit (once)")
    removed_by_redo_id: Mapped[int | None] = mapped_column(
        ForeignKey("dispute_redos.id"), doc="removed from its settled course by a dispute's correction (credited): "
        "no later settlement, regulation or budget counts it")
    priced_as: Mapped[str | None] = mapped_column(
        String(16), doc="the tariff group a dispute's correction prices it at instead of its SKS code's")

    case: Mapped[Case] = relationship()

    __table_args__ = (
        Index("ix_visits_case_id_date", "case_id", "visit_date"),
        Index("ix_visits_settled_document_id", "settled_document_id"),
    )


class VisitImport(Base):
    """One imported visits file: what was accepted, ignored as duplicate, rejected (and where)."""

    __tablename__ = "visit_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date] = mapped_column(Date)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    rejects_path: Mapped[str | None] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TransportBooking(Base):
    """Transport to the first session, booked with the citizen's municipality's provider (§9)."""

    __tablename__ = "transport_bookings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    sequence: Mapped[int] = mapped_column(Integer, doc="1 for the first booking, +1 per re-booking")
    provider: Mapped[str] = mapped_column(String(64), doc="party key of the transport provider")
    status: Mapped[str] = mapped_column(String(16), doc="booked or cancelled")
    session_at: Mapped[datetime] = mapped_column(UTCDateTime)
    destination: Mapped[str] = mapped_column(String(64), doc="party key of the training unit")
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    cancel_outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship()

    __table_args__ = (UniqueConstraint("case_id", "sequence", name="uq_transport_bookings_case_sequence"),)


class FinalStatus(Base):
    """Slutstatus: the training unit's assessment at the end of a course (agreement §7)."""

    __tablename__ = "final_statuses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    completed_on: Mapped[date] = mapped_column(Date)
    assessment: Mapped[str] = mapped_column(Text, doc="health data: never leaves the store unencrypted")
    consent_to_share: Mapped[bool] = mapped_column()
    document: Mapped[bytes] = mapped_column(LargeBinary, doc="the slutstatus file as received")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship()


class Money(TypeDecorator[Decimal]):
    """DKK as a whole number of øre (BIGINT) on every database: exact, never a float."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> int | None:
        if value is None:
            return None
        ore = Decimal(value) * 100
        if ore != ore.to_integral_value():
            raise ValueError(f"DKK {value} is not a whole number of øre")
        return int(ore)

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        return None if value is None else (Decimal(value) / 100).quantize(Decimal("0.01"))


class SettlementDocumentRecord(Base):
    """An issued settlement document (agreement §8): a-conto, monthly settlement, January
    refund or regulation — exactly one per ``key``, never changed once issued.

    The OIOUBL XML is kept here byte for byte (the system of record); the files under
    ``$GENOP_HOME/settlement`` are copies written from it.
    """

    __tablename__ = "settlement_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True,
                                     doc="what it settles, e.g. settlement:2026-11:tarnby")
    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16), doc="Invoice or CreditNote")
    purpose: Mapped[str] = mapped_column(String(16), doc="aconto, settlement, refund, regulation")
    payer: Mapped[str] = mapped_column(String(32))
    ean: Mapped[str] = mapped_column(String(13))
    period: Mapped[str] = mapped_column(String(32), doc="YYYY-MM, YYYY, or the regulation's from date")
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    line_total: Mapped[Decimal] = mapped_column(Money)
    prepaid: Mapped[Decimal] = mapped_column(Money)
    payable: Mapped[Decimal] = mapped_column(Money)
    aconto: Mapped[Decimal] = mapped_column(Money, doc="the month's a-conto (settlement documents)")
    carried: Mapped[Decimal] = mapped_column(Money, doc="unused a-conto carried to the January reconciliation")
    note: Mapped[str | None] = mapped_column(Text)
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    html: Mapped[str] = mapped_column(Text)
    xml_path: Mapped[str] = mapped_column(Text)
    html_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_settlement_documents_purpose_period", "purpose", "period"),)


class AcontoRecord(Base):
    """A municipality's monthly a-conto prepayment, recorded once per month (agreement §8)."""

    __tablename__ = "aconto_payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    payer: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal] = mapped_column(Money)
    due_on: Mapped[date] = mapped_column(Date, doc="first Danish working day of the month")
    document_id: Mapped[int] = mapped_column(ForeignKey("settlement_documents.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    document: Mapped[SettlementDocumentRecord] = relationship()

    __table_args__ = (UniqueConstraint("month", "payer", name="uq_aconto_payments_month_payer"),)


class SettledMonth(Base):
    """A month whose settlement has run: its documents are final; a course recorded later goes
    into the next month's settlement."""

    __tablename__ = "settled_months"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    invoice_date: Mapped[date] = mapped_column(Date)
    settled_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SettledCourse(Base):
    """A completed course on a monthly settlement document — once per case; visits recorded
    after that are invoiced later on ``supplement`` lines (each visit once, see Visit)."""

    __tablename__ = "settled_courses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    supplement: Mapped[bool] = mapped_column(default=False, doc="visits recorded after the course was settled")
    document_id: Mapped[int] = mapped_column(ForeignKey("settlement_documents.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    month: Mapped[str] = mapped_column(String(7))
    completed_on: Mapped[date] = mapped_column(Date)
    visits: Mapped[dict[str, int]] = mapped_column(JSON, doc="visits per tariff group as priced")
    amount: Mapped[Decimal] = mapped_column(Money, doc="as invoiced; regulations are separate rows")

    case: Mapped[Case] = relationship()
    document: Mapped[SettlementDocumentRecord] = relationship()

    __table_args__ = (
        Index("ix_settled_courses_document_id", "document_id"),
        Index("ix_settled_courses_completed_on", "completed_on"),
        Index("uq_settled_courses_case_id", "case_id", unique=True,
              sqlite_where=text("NOT supplement"), postgresql_where=text("NOT supplement")),
    )


class CourseAdjustment(Base):
    """Retro-regulation of a settled course: the difference invoiced or credited (agreement §8)."""

    __tablename__ = "course_adjustments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    document_id: Mapped[int] = mapped_column(ForeignKey("settlement_documents.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    regulation: Mapped[str] = mapped_column(String(96), doc="from date and tariff set regulated to")
    original: Mapped[Decimal] = mapped_column(Money, doc="what had been invoiced before this regulation")
    repriced: Mapped[Decimal] = mapped_column(Money)
    difference: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship()
    document: Mapped[SettlementDocumentRecord] = relationship()

    __table_args__ = (UniqueConstraint("case_id", "regulation", name="uq_course_adjustments_case_regulation"),)


class YearReconciliationRecord(Base):
    """The January reconciliation of a financial year, per municipality (agreement §8)."""

    __tablename__ = "year_reconciliations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    payer: Mapped[str] = mapped_column(String(32))
    aconto_paid: Mapped[Decimal] = mapped_column(Money)
    settled: Mapped[Decimal] = mapped_column(Money)
    prepaid_used: Mapped[Decimal] = mapped_column(Money)
    refund: Mapped[Decimal] = mapped_column(Money)
    readiness_clause: Mapped[bool] = mapped_column(doc="orders fell below the a-conto level (cost guarantee)")
    document_id: Mapped[int | None] = mapped_column(ForeignKey("settlement_documents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    document: Mapped[SettlementDocumentRecord | None] = relationship()

    __table_args__ = (UniqueConstraint("year", "payer", name="uq_year_reconciliations_year_payer"),)


class RiskFinding(Base):
    """A case or budget at risk (genop.escalation), open from the scan that first found it until
    the first scan that no longer does. At most one open row per ``key``; a finding found again
    after it closed is a new row."""

    __tablename__ = "risk_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), doc="escalation.Finding.key: kind:subject[:instance]")
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(40), doc="a case number or budget:<municipality>")
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    municipality: Mapped[str] = mapped_column(String(32), doc="party key it concerns, or 'total'")
    level: Mapped[str] = mapped_column(String(16), doc="warning, breach or persisting")
    since: Mapped[date] = mapped_column(Date, doc="the day the condition began")
    level_since: Mapped[date] = mapped_column(Date, doc="the scan day the current level was reached")
    opened_on: Mapped[date] = mapped_column(Date, doc="the scan day that first found it")
    closed_on: Mapped[date | None] = mapped_column(Date, doc="the first scan day that no longer found it")
    reason: Mapped[str] = mapped_column(Text, doc="figures only: no CPR, name or diagnosis text")
    figures: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    case: Mapped[Case | None] = relationship()

    __table_args__ = (
        Index("uq_risk_findings_open_key", "key", unique=True,
              sqlite_where=text("closed_on IS NULL"), postgresql_where=text("closed_on IS NULL")),
        Index("ix_risk_findings_case_id", "case_id"),
        Index("ix_risk_findings_kind_closed_on", "kind", "closed_on"),
    )


class RiskEvent(Base):
    """The trail of a finding: opened, raised (a higher level), lowered, closed — each with the scan
    day, the level after it and the figures of that scan."""

    __tablename__ = "risk_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("risk_findings.id"))
    change: Mapped[str] = mapped_column(String(16), doc="opened, raised, lowered or closed")
    level: Mapped[str] = mapped_column(String(16))
    scan_on: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    figures: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)

    finding: Mapped[RiskFinding] = relationship()

    __table_args__ = (Index("ix_risk_events_finding_id", "finding_id"),)


class Dispute(Base):
    """A disagreement between the parties (agreement §10, genop.disputes) about exactly one case,
    invoice (a settlement document's number) or settled month. ``reason`` and the timeline's
    notes are free text that stays in genop's store; Prefect sees only ``number``."""

    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True, doc="TV-YYYY-NNNN")
    about: Mapped[str] = mapped_column(String(40), doc="a key of disputes.kinds in config")
    subject_kind: Mapped[str] = mapped_column(String(16), doc="case, invoice or month")
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    invoice_number: Mapped[str | None] = mapped_column(String(32), doc="a settlement document's number")
    month: Mapped[str | None] = mapped_column(String(7), doc="YYYY-MM of a settled month")
    municipality: Mapped[str] = mapped_column(
        String(32), doc="party key of the municipality it concerns, or 'total' (a month: both)")
    reason: Mapped[str] = mapped_column(Text, doc="free text: genop's store only, never Prefect")
    state: Mapped[str] = mapped_column(String(20))
    opened_by: Mapped[str] = mapped_column(String(128))
    opened_on: Mapped[date] = mapped_column(Date, doc="business date it was opened (as-of)")
    mediation_called_on: Mapped[date | None] = mapped_column(Date, doc="the date of the written call (§10)")
    mediation_on: Mapped[date | None] = mapped_column(Date, doc="the meeting: within 8 days of the call")
    closed_on: Mapped[date | None] = mapped_column(Date, doc="resolved or sent to court on")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    case: Mapped[Case | None] = relationship()
    events: Mapped[list[DisputeEvent]] = relationship(back_populates="dispute", order_by="DisputeEvent.id")
    redos: Mapped[list[DisputeRedo]] = relationship(back_populates="dispute", order_by="DisputeRedo.id")

    __table_args__ = (
        Index("ix_disputes_state", "state"),
        Index("ix_disputes_case_id", "case_id"),
        Index("ix_disputes_invoice_number", "invoice_number"),
    )


class DisputeEvent(Base):
    """A line of a dispute's timeline: opened, a move (who, when, why) or a redo."""

    __tablename__ = "dispute_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id"))
    change: Mapped[str] = mapped_column(String(20), doc="genop.disputes.Change")
    state: Mapped[str] = mapped_column(String(20), doc="the dispute's state after it")
    day: Mapped[date] = mapped_column(Date, doc="business date")
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text, doc="why: free text, genop's store only")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    dispute: Mapped[Dispute] = relationship(back_populates="events")

    __table_args__ = (Index("ix_dispute_events_dispute_id", "dispute_id"),)


class DisputeRedo(Base):
    """One redo for a dispute (genop.disputes.Action), exactly once per ``key``
    (``<number>:<action>[:<target>]``): who asked, when, what changed and what it produced."""

    __tablename__ = "dispute_redos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id"))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(200), doc="what it redoes, e.g. a visit id; no personal data")
    status: Mapped[str] = mapped_column(String(16), doc="started or done")
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_on: Mapped[date] = mapped_column(Date, doc="business date")
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, doc="what changed (before/after)")
    produced: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, doc="what it produced: outbox keys and Message-IDs, document numbers")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    dispute: Mapped[Dispute] = relationship(back_populates="redos")

    __table_args__ = (Index("ix_dispute_redos_dispute_id", "dispute_id"),)
