"""Transport to the first training session (agreement §9, "Case lifecycle" 5; sub-agreement §2).

The hospital decides in the plan whether the citizen needs transport to the *first*
session; later needs are assessed and arranged by the training unit, not by genop.
Tårnby books the transport — for its own citizens and, acting for Dragør, for Dragør's —
with the provider of the citizen's own municipality (Bilag 6). The residence
municipality pays (Health Act §263) and settles directly with its provider (agreement
§9): transport never enters the settlement with Copenhagen. For a Dragør citizen, Dragør
Borgerservice, which handles transport cases under Health Act §171 (sub-agreement §2),
is told of every booking and cancellation.

A booking carries only what the driver needs (agreement §6: "Videregivelse af persondata
skal ske i overensstemmelse med persondataloven"): the citizen's name, pickup address and
phone, the time and place of the session, and the mobility needs the plan states for
transport (``Plan.transport_needs``). Never the diagnosis, the annex-4 function
descriptions or the plan itself: those go to the training unit with the order, not to a
driver.

Bookings are numbered 1, 2, … per case (``TransportBooking.sequence``). A moved first
session cancels the current booking and books the next number. Every message goes
through the outbox under the key (case, purpose + number), so it is sent exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from genop.clock import local
from genop.config import Agreement, Party
from genop.errors import ConfigError, GenopError
from genop.forwarding import latest_document
from genop.lifecycle import WITH_COPENHAGEN
from genop.plans import Plan
from genop.routing import at_own_centre
from genop.mail.compose import SecureMail, compose, contact_of, outbox_key
from genop.settings import Settings
from genop.store.models import Case, OutboxMessage, TransportBooking
from genop.store.repository import append_event, get_case_for_update
from genop.templates import danish_date, render

BOOKING = "transport_booking"
CANCELLATION = "transport_cancel"
NOTICE = "transport_notice"
NOT_BOOKED = "transport_not_booked"
BOOKED, CANCELLED = "booked", "cancelled"


@dataclass(frozen=True)
class TransportOrder:
    """One booking as the provider sees it; provider, destination and payer are party keys."""

    case_number: str
    provider: str
    passenger: str
    """Who to pick up: the driver needs the name (the order itself is encrypted)."""
    pickup: str
    destination: str
    destination_address: str | None
    session_at: datetime
    needs: str
    """The mobility needs the plan states for transport; never diagnosis or function text (§6)."""
    payer: str
    sequence: int
    phone: str | None = None
    """The citizen's phone, when the plan gives one: the driver calls on arrival."""
    reason: str | None = None
    """Why the booking is cancelled (Danish, as told to the provider); None on a booking."""

    @property
    def booking_key(self) -> str:
        return outbox_key(self.case_number, f"{BOOKING}_{self.sequence}")

    @property
    def cancellation_key(self) -> str:
        return outbox_key(self.case_number, f"{CANCELLATION}_{self.sequence}")

    def as_json(self) -> dict[str, Any]:
        """For a provider's API; the payer settles directly with the provider (agreement §9)."""
        return {**asdict(self), "session_at": self.session_at.isoformat(), "settlement": "direct_with_payer"}


class TransportAdapter(Protocol):
    """How a booking reaches a provider: a prepared outbox row, or None if sent otherwise."""

    name: str

    def prepare_booking(self, session: Session, case: Case, booking: TransportBooking,
                        order: TransportOrder) -> OutboxMessage | None: ...

    def prepare_cancellation(self, session: Session, case: Case, booking: TransportBooking,
                             order: TransportOrder) -> OutboxMessage | None: ...


class SecureMailTransportAdapter:
    """The order as mail signed by Tårnby and encrypted to the provider (agreement §4, §9).

    Tårnby books for both municipalities (sub-agreement §2). Each mail is composed into
    the outbox as of the booking's own time (``created_at`` / ``cancelled_at``); the
    caller delivers the returned rows.
    """

    name = "secure mail"

    def __init__(self, agreement: Agreement, settings: Settings) -> None:
        self.agreement, self.settings = agreement, settings

    def prepare_booking(self, session: Session, case: Case, booking: TransportBooking,
                        order: TransportOrder) -> OutboxMessage:
        return self._compose(session, case, order, f"{BOOKING}_{order.sequence}",
                             "transport_booking", booking.created_at)

    def prepare_cancellation(self, session: Session, case: Case, booking: TransportBooking,
                             order: TransportOrder) -> OutboxMessage:
        return self._compose(session, case, order, f"{CANCELLATION}_{order.sequence}",
                             "transport_cancellation", booking.cancelled_at or booking.created_at)

    def _compose(self, session: Session, case: Case, order: TransportOrder, purpose: str,
                 template: str, at: datetime) -> OutboxMessage:
        mail = SecureMail(
            purpose=purpose, from_party="tarnby", to_party=order.provider,
            subject=render(f"mail/{template}.subject.da.txt.j2", case_number=order.case_number).strip(),
            body=render(f"mail/{template}.da.txt.j2", **mail_context(order, self.agreement)))
        return compose(session, case, mail, agreement=self.agreement, settings=self.settings, now=at)


class HttpTransportAdapter:
    """A provider with an HTTP API: the order POSTed as JSON, once per ``Idempotency-Key``.

    Not wired to config yet: Bilag 6 names no provider, let alone an API. When one is,
    ``plan_transport`` records the bookings (``prepare_*`` put nothing in the outbox) and
    the task that ran it sends each with ``send_booking`` / ``send_cancellation``
    (``transport_order`` rebuilds the order from its booking). The key is the outbox key
    (``GEN-2026-000001:transport_booking_1``), so a retry never books twice.
    """

    name = "http"

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0) -> None:
        self.base_url, self.token, self.timeout = base_url.rstrip("/"), token, timeout

    def prepare_booking(self, session: Session, case: Case, booking: TransportBooking,
                        order: TransportOrder) -> None:
        return None

    def prepare_cancellation(self, session: Session, case: Case, booking: TransportBooking,
                             order: TransportOrder) -> None:
        return None

    def send_booking(self, order: TransportOrder) -> str:
        return self._post("bookings", order, order.booking_key, "booking")

    def send_cancellation(self, order: TransportOrder) -> str:
        return self._post("cancellations", order, order.cancellation_key, "cancellation")

    def _post(self, path: str, order: TransportOrder, key: str, what: str) -> str:
        url = f"{self.base_url}/{path}"
        where = f"the {what} of transport for case {order.case_number} (sequence {order.sequence}) at {url}"
        retry = f"try again later: the same Idempotency-Key {key} keeps it from being booked twice"
        try:
            response = httpx.post(url, json=order.as_json(), timeout=self.timeout,
                                  headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key})
        except httpx.HTTPError as exc:
            raise GenopError(f"{where} could not reach the provider ({exc.__class__.__name__}); {retry}",
                             code="transport_provider_unreachable") from exc
        status = f"HTTP {response.status_code} {response.reason_phrase}".strip()
        if response.status_code >= 500:
            raise GenopError(f"the transport provider failed {where} ({status}); nothing is confirmed; {retry}",
                             code="transport_provider_unavailable")
        if response.status_code >= 400:
            raise GenopError(f"the transport provider refused {where} ({status}); check the order and "
                             "the provider's API token", code="transport_provider_refused")
        try:
            reference = response.json().get("reference")
        except ValueError:
            reference = None
        return f"{status}; provider reference {reference}" if reference else status


def mail_context(order: TransportOrder, agreement: Agreement) -> dict[str, Any]:
    payer = agreement.party(order.payer)
    return {"order": order, "case_number": order.case_number,
            "provider_name": agreement.party(order.provider).name,
            "destination_name": agreement.party(order.destination).name,
            "session_date": danish_date(order.session_at.date()), "session_time": f"{order.session_at:%H.%M}",
            "payer_name": payer.name, "payer_ean": payer.ean, "sender": contact_of("tarnby", agreement)}


def transport_order(case: Case, booking: TransportBooking, agreement: Agreement) -> TransportOrder:
    """The order for one booking: from the citizen's address in the latest plan (agreement §9)."""
    plan = Plan.model_validate(latest_document(case).parsed)
    address = plan.citizen.address
    if address is None or not address.street:
        raise GenopError(f"case {case.case_number}: the plan gives no street address for the citizen, so "
                         "transport cannot be booked; book it by hand or ask the hospital for the address",
                         code="pickup_address_missing")
    place = " ".join(part for part in (address.postcode, address.city) if part)
    destination = agreement.party(booking.destination)
    return TransportOrder(
        case_number=case.case_number, provider=booking.provider, passenger=plan.citizen.name,
        pickup=", ".join(part for part in (address.street, place) if part),
        destination=booking.destination,
        destination_address=destination.contact.address if destination.contact else None,
        session_at=local(booking.session_at),
        needs=plan.transport_needs or "Ikke angivet i genoptræningsplanen.",
        payer=_residence(case, agreement).key, sequence=booking.sequence, phone=plan.citizen.phone)


@dataclass
class _Run:
    session: Session
    case: Case
    agreement: Agreement
    settings: Settings
    adapter: TransportAdapter
    now: datetime


def plan_transport(session: Session, case_number: str, *, agreement: Agreement, settings: Settings,
                   adapter: TransportAdapter, now: datetime) -> list[OutboxMessage]:
    """Book, re-book or leave alone the transport to a case's first session (agreement §9).

    Returns the outbox rows prepared now (for the caller to deliver); [] when nothing is
    to be done, with the reason in the trail once.
    """
    run = _Run(session, get_case_for_update(session, case_number), agreement, settings, adapter, now)
    bookings = _bookings(session, run.case)
    active = _active(bookings)
    why_not = _why_not(run.case, active)
    if why_not is not None:
        _explain_once(run, *why_not)
        return []
    assert run.case.first_session_at is not None  # _why_not said there is a first session
    target = (run.case.first_session_at, _destination(run.case, agreement), _provider(run.case, agreement))
    if active is not None and _target_of(active) == target:
        return []
    last = bookings[-1] if bookings else None
    if active is None and last is not None and _target_of(last) == target:
        _explain_once(run, "cancelled_for_this_session",
                      f"no transport booked: booking {last.sequence} for {_when(last.session_at)} was "
                      "cancelled and the first session has not moved since")
        return []
    sequence = last.sequence + 1 if last else 1
    cancelled = None
    if active is not None:
        cancelled, _ = _cancel(run, active, *_rebooking_reasons(active, target, sequence, agreement))
    booked, order = _book(run, target, sequence)
    return [r for r in (cancelled, booked, _notify_office(run, order, cancelled=False)) if r is not None]


_Target = tuple[datetime, str, str]
"""What a booking is for (first session, training unit, provider): never booked twice."""


def _target_of(booking: TransportBooking) -> _Target:
    return booking.session_at, booking.destination, booking.provider


def _book(run: _Run, target: _Target, sequence: int) -> tuple[OutboxMessage | None, TransportOrder]:
    session_at, destination, provider = target
    booking = TransportBooking(case=run.case, sequence=sequence, provider=provider, status=BOOKED,
                               session_at=session_at, destination=destination, created_at=run.now)
    run.session.add(booking)
    run.session.flush()
    order = transport_order(run.case, booking, run.agreement)
    row = run.adapter.prepare_booking(run.session, run.case, booking, order)
    booking.outbox_id = row.id if row is not None else None
    append_event(run.session, run.case, "transport_booked",
                 f"transport booked with {run.agreement.party(provider).name} for "
                 f"{_when(session_at)} (sequence {sequence}, by {run.adapter.name}); transport costs "
                 f"are {run.agreement.party(order.payer).name}'s, settled directly with the provider "
                 "(agreement §9), not in the settlement with Copenhagen; later transport is arranged by "
                 "the training unit", run.now,
                 {"sequence": sequence, "provider": provider, "destination": destination,
                  "session_at": session_at.isoformat(), "outbox_id": booking.outbox_id})
    return row, order


def cancel_transport(session: Session, case_number: str, *, reason: str, agreement: Agreement,
                     settings: Settings, adapter: TransportAdapter, now: datetime) -> list[OutboxMessage]:
    """Cancel the booked transport when the first session is cancelled with no new time.

    ``reason`` is told to the provider (Danish) and kept in the trail. A later
    ``plan_transport`` books again only when the first session moves.
    """
    run = _Run(session, get_case_for_update(session, case_number), agreement, settings, adapter, now)
    active = _active(_bookings(session, run.case))
    if active is None:
        _explain_once(run, "nothing_to_cancel", f"no transport to cancel ({reason}): none is booked")
        return []
    row, order = _cancel(run, active, reason, reason)
    return [r for r in (row, _notify_office(run, order, cancelled=True)) if r is not None]


def _cancel(run: _Run, booking: TransportBooking, reason_da: str,
            reason_en: str) -> tuple[OutboxMessage | None, TransportOrder]:
    booking.status, booking.cancelled_at = CANCELLED, run.now
    order = replace(transport_order(run.case, booking, run.agreement), reason=reason_da)
    row = run.adapter.prepare_cancellation(run.session, run.case, booking, order)
    booking.cancel_outbox_id = row.id if row is not None else None
    append_event(run.session, run.case, "transport_cancelled",
                 f"transport booking {booking.sequence} with {run.agreement.party(booking.provider).name} "
                 f"for {_when(booking.session_at)} cancelled (by {run.adapter.name}): {reason_en}", run.now,
                 {"sequence": booking.sequence, "reason": reason_en, "outbox_id": booking.cancel_outbox_id})
    return row, order


def _notify_office(run: _Run, order: TransportOrder, *, cancelled: bool) -> OutboxMessage | None:
    """Dragør Borgerservice handles Dragør's transport cases (Health Act §171, sub-agreement §2)."""
    residence = run.agreement.party(order.payer)
    office = residence.transport_cases_office
    if office is None:
        return None
    template = f"mail/{NOTICE}_{residence.key}"
    purpose = f"{NOTICE}_{residence.key}_{'cancel_' if cancelled else ''}{order.sequence}"
    mail = SecureMail(
        purpose=purpose, from_party="tarnby", to_party=office,
        subject=render(f"{template}.subject.da.txt.j2", case_number=order.case_number).strip(),
        body=render(f"{template}.da.txt.j2", **mail_context(order, run.agreement), cancelled=cancelled,
                    office_name=run.agreement.party(office).name))
    return compose(run.session, run.case, mail, agreement=run.agreement, settings=run.settings, now=run.now)


def _rebooking_reasons(active: TransportBooking, target: _Target, sequence: int,
                       agreement: Agreement) -> tuple[str, str]:
    """Why booking n is cancelled, for the provider (Danish) and for the trail."""
    session_at, destination, provider = target
    moved = local(session_at)
    if active.session_at != session_at:
        danish = f"Første træning er flyttet til {danish_date(moved.date())} kl. {moved:%H.%M}."
        english = f"first session moved to {_when(moved)}"
    else:
        danish = f"Træningssted eller leverandør er ændret ({agreement.party(destination).name})."
        english = f"training unit or provider changed (now {destination}, {provider})"
    return f"{danish} Ny bestilling (nr. {sequence}) sendes i en særskilt mail.", english


def _why_not(case: Case, active: TransportBooking | None) -> tuple[str, str] | None:
    """(reason code, explanation) when no transport is to be booked now; None otherwise."""
    if case.state not in WITH_COPENHAGEN and not at_own_centre(case):
        return "not_forwarded", (f"no transport booked now: the case is {case.state}; transport to the first "
                                 "session is booked while the order is with the training unit")
    if not case.transport_first_session:
        code, detail = "not_needed", ("no transport booked: the hospital's plan says none is needed to the "
                                      "first session (agreement §9); later needs are the training unit's")
    elif case.first_session_at is None:
        code, detail = "no_first_session", "no transport booked yet: no first session time is known"
    else:
        return None
    if active is not None:
        detail += f"; booking {active.sequence} for {_when(active.session_at)} stands until it is cancelled"
    return code, detail


def _explain_once(run: _Run, code: str, detail: str) -> None:
    """The trail says why once; the same reason is not repeated on every run."""
    last = next((e for e in reversed(run.case.events) if e.kind.startswith("transport")), None)
    if last is not None and last.kind == NOT_BOOKED and (last.data or {}).get("reason") == code:
        return
    append_event(run.session, run.case, NOT_BOOKED, detail, run.now, {"reason": code})


def _bookings(session: Session, case: Case) -> Sequence[TransportBooking]:
    return session.scalars(select(TransportBooking).where(TransportBooking.case_id == case.id)
                           .order_by(TransportBooking.sequence)).all()


def _active(bookings: Sequence[TransportBooking]) -> TransportBooking | None:
    return next((b for b in reversed(bookings) if b.status == BOOKED), None)


def _residence(case: Case, agreement: Agreement) -> Party:
    residence = agreement.municipality_for_code(case.municipality_code)
    if residence is None:
        raise ConfigError(f"case {case.case_number}: no municipality with code {case.municipality_code} in "
                          "config/agreement.yaml parties")
    return residence


def _provider(case: Case, agreement: Agreement) -> str:
    """The citizen's own municipality's provider (agreement §9, Bilag 6)."""
    residence = _residence(case, agreement)
    if residence.transport_provider is None:
        raise ConfigError(f"config/agreement.yaml: parties.{residence.key}.transport_provider is missing")
    return residence.transport_provider


def _destination(case: Case, agreement: Agreement) -> str:
    """The training unit of the case's route: its party's ``training_unit`` (agreement §1, §3.1)."""
    party = agreement.parties.get(case.route) if case.route else None
    if party is None or party.training_unit is None:
        raise GenopError(f"case {case.case_number} has route {case.route}: transport goes only to "
                         "Copenhagen's training unit or Løjtegårdsvej", code="no_training_unit")
    return party.training_unit


def _when(at: datetime) -> str:
    return f"{local(at):%Y-%m-%d %H:%M} (Copenhagen time)"
