"""Transport to the first session (agreement §9; sub-agreement §2) through the outbox, a real
SMTP sink and openssl (SQLite and PostgreSQL), and the HTTP adapter against a local server."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from datetime import datetime, timedelta
from functools import partial
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from genop.clock import COPENHAGEN, now_utc
from genop.errors import GenopError
from genop.mail.smtp import SmtpSettings
from genop.mail.outbox import deliver, smtp_sender
from genop.lifecycle import CaseState
from genop.store.models import CaseEvent, OutboxMessage, TransportBooking
from genop.store.repository import get_case
from genop.transport import (
    HttpTransportAdapter,
    SecureMailTransportAdapter,
    TransportOrder,
    cancel_transport,
    plan_transport,
    transport_order,
)
from tests.factories import write_plan
from tests.integration import test_forwarding
from tests.integration.test_forwarding import AS_OF, consented_case

SESSION = datetime(2026, 12, 2, 10, 0, tzinfo=COPENHAGEN)
TARNBY_PROVIDER, DRAGOR_PROVIDER = "befordring.taarnby@example.org", "befordring.dragoer@example.org"
BORGERSERVICE = "borgerservice.dragoer@example.org"


def consented_with(runtime, tmp_path: Path, plan_id: str, **changes) -> str:
    """``consented_case`` for a plan with fields changed (tests.factories.plan_dict)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_forwarding, "write_plan", partial(write_plan, **changes))
        return consented_case(runtime, tmp_path, plan_id)


def set_case(runtime, number: str, *, state: str = CaseState.FORWARDED,
             first_session_at: datetime | None = SESSION) -> None:
    with runtime.store.session() as session:
        case = get_case(session, number)
        case.state, case.first_session_at = state, first_session_at
        if state == CaseState.FORWARDED and case.forwarded_at is None:
            case.forwarded_at, case.forwarded_on = now_utc(), AS_OF


def plan(runtime, number: str, adapter=None) -> list[OutboxMessage]:
    with runtime.store.session() as session:
        adapter = adapter or SecureMailTransportAdapter(runtime.agreement, runtime.settings)
        return plan_transport(session, number, agreement=runtime.agreement, settings=runtime.settings,
                              adapter=adapter, now=now_utc())


def bookings(runtime, number: str) -> list[TransportBooking]:
    with runtime.store.session() as session:
        case = get_case(session, number)
        return list(session.scalars(select(TransportBooking).where(TransportBooking.case_id == case.id)
                                    .order_by(TransportBooking.sequence)))


def events(runtime, number: str, kind: str) -> list[str]:
    with runtime.store.session() as session:
        case = get_case(session, number)
        return list(session.scalars(select(CaseEvent.detail).where(CaseEvent.case_id == case.id,
                                                                   CaseEvent.kind == kind)
                                    .order_by(CaseEvent.id)))


def outbox_keys(runtime) -> list[str]:
    with runtime.store.session() as session:
        return list(session.scalars(select(OutboxMessage.key).order_by(OutboxMessage.id)))


def deliver_all(runtime, rows: list[OutboxMessage], sink) -> dict[str, Path]:
    """Deliver through the real SMTP sink; the stored mails by Message-ID."""
    send = smtp_sender(SmtpSettings(port=sink.port))
    assert [deliver(runtime.store, row.id, send).status for row in rows] == ["sent"] * len(rows)
    stored = {}
    for path in sink.handler.stored():
        stored[message_from_bytes(path.read_bytes(), policy=policy.default)["Message-ID"]] = path
    return stored


def read_as(party: str, mail: Path, runtime, tmp_path: Path) -> str:
    """The body as the party reads it: openssl decrypts with its key and verifies Tårnby's signature."""
    return open_as(party, mail, runtime, tmp_path).get_body(("plain",)).get_content()


def open_as(party: str, mail: Path, runtime, tmp_path: Path) -> EmailMessage:
    """The whole message as the party reads it (``read_as``), attachments and all."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line is not installed; the provider's decryption is not checked")
    certs = runtime.settings.certificates_dir
    decrypted, content = tmp_path / f"{mail.stem}.dec", tmp_path / f"{mail.stem}.txt"
    for args in (["-decrypt", "-in", mail, "-recip", certs / f"{party}.crt", "-inkey", certs / f"{party}.key",
                  "-out", decrypted],
                 ["-verify", "-in", decrypted, "-CAfile", certs / "ca.crt", "-out", content]):
        result = subprocess.run(["openssl", "smime", *map(str, args)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    return message_from_bytes(content.read_bytes(), policy=policy.default)


def test_tarnby_citizen_is_booked_with_tarnbys_provider_and_paid_directly(certified, tmp_path, sink):
    number = consented_case(certified, tmp_path)
    set_case(certified, number)

    [row] = plan(certified, number)

    assert row.key == f"{number}:transport_booking_1"
    assert row.recipients == [TARNBY_PROVIDER]
    assert row.subject == f"Bestilling af befordring – sag {number}"
    for secret in ("Karen", "010145", "Englandsvej", "rollator"):
        assert secret.encode() not in row.raw
    [booking] = bookings(certified, number)
    assert (booking.sequence, booking.status, booking.provider, booking.destination, booking.outbox_id) == \
        (1, "booked", "transport_tarnby", "copenhagen_training", row.id)
    assert booking.session_at == SESSION
    [booked] = events(certified, number, "transport_booked")
    assert "for 2026-12-02 10:00 (Copenhagen time) (sequence 1" in booked
    assert "transport costs are Tårnby Kommune's, settled directly with the provider (agreement §9)" in booked
    assert "later transport is arranged by the training unit" in booked

    stored = deliver_all(certified, [row], sink)
    body = read_as("transport_tarnby", stored[row.message_id], certified, tmp_path)
    assert "Afhentning:      Englandsvej 12, 2770 Kastrup" in body
    assert "Fremmøde:        2. december 2026 kl. 10.00" in body
    assert "Genoptræning København, Edith Rodes Vej 4" in body
    assert "Behov:           Ikke angivet i genoptræningsplanen." in body  # the plan states no transport needs
    assert "Går med rollator" not in body  # function at discharge is not the driver's (agreement §6)
    assert "afregnes direkte mellem Tårnby Kommune og leverandøren" in body
    assert "efterfølgende træninger vurderes og bestilles af træningsenheden" in body


NEEDS = "Kørestolsbruger; skal hjælpes fra lejligheden (2. sal, ingen elevator) og ind i bilen."
FUNCTION_TEXTS = ("Selvhjulpen, gik ture dagligt.", "Svært ved at rejse sig fra stol efter faldet.",
                  "Gangfunktion, balance og styrke i højre underekstremitet.")


def test_booking_holds_what_the_driver_needs_and_no_diagnosis_function_text_or_plan(certified, tmp_path, sink):
    """Agreement §6: personal data are passed on only as the law allows; the driver gets name,
    address, phone, time, place and the mobility needs the plan states — nothing of the health record."""
    before, at_discharge, need = FUNCTION_TEXTS
    number = consented_with(
        certified, tmp_path, "GOP-TR-DATA", citizen__phone="3251 7788", transport_needs=NEEDS,
        diagnoses=[{"system": "ICD-10", "code": "DS72.0", "text": "Brud på lårbenshals"},
                   {"system": "ICD-10", "code": "DE119", "text": "Type 2-diabetes uden komplikationer"}],
        function_before=before, function_at_discharge=at_discharge, rehab_need=need)
    set_case(certified, number)
    [row] = plan(certified, number)

    message = open_as("transport_tarnby", deliver_all(certified, [row], sink)[row.message_id], certified, tmp_path)

    assert not list(message.iter_attachments())  # no plan, no readable rendering of it
    body = message.get_body(("plain",)).get_content()
    assert "Borger:          Karen Jensen" in body
    assert "Afhentning:      Englandsvej 12, 2770 Kastrup" in body
    assert "Telefon:         3251 7788" in body
    assert "Fremmøde:        2. december 2026 kl. 10.00" in body
    assert "Destination:     Genoptræning København, Edith Rodes Vej 4, Bygning V, 1. sal, 2200 København N" in body
    assert f"Behov:           {NEEDS}" in body
    for code in ("DS720", "DS72.0", "DS72", "S72", "DE119", "E11"):
        assert code not in body, code
    for text in ("Brud på lårbenshals", "lårbenshals", "diabetes", "hip_fracture", "Hoftenær", *FUNCTION_TEXTS):
        assert text not in body, text
    assert "010145" not in body


def test_dragor_citizen_is_booked_with_dragors_provider_and_borgerservice_told(
        certified, tmp_path, sink):
    number = consented_with(certified, tmp_path, "GOP-TR-DRAGOR", citizen__municipality_code="155")
    set_case(certified, number)

    booking_row, notice_row = plan(certified, number)

    assert (booking_row.key, booking_row.recipients) == (f"{number}:transport_booking_1", [DRAGOR_PROVIDER])
    assert (notice_row.key, notice_row.recipients) == (f"{number}:transport_notice_dragor_1", [BORGERSERVICE])
    assert notice_row.subject == f"Orientering om befordring – sag {number}"
    assert bookings(certified, number)[0].provider == "transport_dragor"
    [booked] = events(certified, number, "transport_booked")
    assert "transport costs are Dragør Kommune's" in booked

    stored = deliver_all(certified, [booking_row, notice_row], sink)
    assert len(stored) == 2
    order = read_as("transport_dragor", stored[booking_row.message_id], certified, tmp_path)
    assert "afregnes direkte mellem Dragør Kommune og leverandøren" in order
    notice = read_as("dragor_borgerservice", stored[notice_row.message_id], certified, tmp_path)
    assert "Til Dragør Borgerservice" in notice
    assert "sundhedslovens §171" in notice
    assert "Englandsvej 12, 2770 Kastrup" in notice and "2. december 2026 kl. 10.00" in notice


def test_planning_transport_twice_books_once(certified, tmp_path):
    number = consented_case(certified, tmp_path)
    set_case(certified, number)

    first, second = plan(certified, number), plan(certified, number)

    assert len(first) == 1 and second == []
    assert len(bookings(certified, number)) == 1
    assert outbox_keys(certified) == [f"{number}:transport_booking_1"]
    assert len(events(certified, number, "transport_booked")) == 1


def test_moved_first_session_cancels_and_books_anew(certified, tmp_path, sink):
    number = consented_case(certified, tmp_path)
    set_case(certified, number)
    [first] = plan(certified, number)
    moved = SESSION + timedelta(days=7, hours=3)
    set_case(certified, number, first_session_at=moved)

    cancel_row, booking_row = plan(certified, number)

    assert cancel_row.key == f"{number}:transport_cancel_1"
    assert booking_row.key == f"{number}:transport_booking_2"
    assert cancel_row.recipients == booking_row.recipients == [TARNBY_PROVIDER]
    old, new = bookings(certified, number)
    assert (old.status, old.cancel_outbox_id, old.session_at) == ("cancelled", cancel_row.id, SESSION)
    assert (new.sequence, new.status, new.outbox_id, new.session_at) == (2, "booked", booking_row.id, moved)
    [cancelled] = events(certified, number, "transport_cancelled")
    assert "booking 1" in cancelled and "first session moved to 2026-12-09 13:00" in cancelled
    first_booked, rebooked = events(certified, number, "transport_booked")
    assert "for 2026-12-02 10:00 (Copenhagen time) (sequence 1" in first_booked
    assert "for 2026-12-09 13:00 (Copenhagen time) (sequence 2" in rebooked
    assert plan(certified, number) == []

    stored = deliver_all(certified, [first, cancel_row, booking_row], sink)
    assert len(stored) == 3
    cancellation = read_as("transport_tarnby", stored[cancel_row.message_id], certified, tmp_path)
    assert "annullerer hermed bestilling nr. 1" in cancellation
    assert "Første træning er flyttet til 9. december 2026 kl. 13.00" in cancellation
    rebooking = read_as("transport_tarnby", stored[booking_row.message_id], certified, tmp_path)
    assert "erstatter bestilling nr. 1" in rebooking and "9. december 2026 kl. 13.00" in rebooking


def test_cancelled_first_session_cancels_transport_and_tells_borgerservice(certified, tmp_path):
    number = consented_with(certified, tmp_path, "GOP-TR-CANCEL", citizen__municipality_code="155")
    set_case(certified, number)
    plan(certified, number)

    with certified.store.session() as session:
        rows = cancel_transport(session, number, reason="Første træning er aflyst af træningsenheden.",
                                agreement=certified.agreement, settings=certified.settings,
                                adapter=SecureMailTransportAdapter(certified.agreement, certified.settings),
                                now=now_utc())

    assert [(r.key, r.recipients) for r in rows] == [
        (f"{number}:transport_cancel_1", [DRAGOR_PROVIDER]),
        (f"{number}:transport_notice_dragor_cancel_1", [BORGERSERVICE])]
    assert [b.status for b in bookings(certified, number)] == ["cancelled"]
    assert plan(certified, number) == []  # same session time: not booked again
    assert plan(certified, number) == []
    [explained] = events(certified, number, "transport_not_booked")
    assert "booking 1 for 2026-12-02 10:00 (Copenhagen time) was cancelled" in explained


def test_no_transport_needed_books_nothing_and_says_why_once(certified, tmp_path):
    number = consented_with(certified, tmp_path, "GOP-TR-NONE", transport_first_session=False)
    set_case(certified, number)

    assert plan(certified, number) == [] and plan(certified, number) == []

    assert bookings(certified, number) == []
    assert not [key for key in outbox_keys(certified) if "transport" in key]
    [explained] = events(certified, number, "transport_not_booked")
    assert "the hospital's plan says none is needed to the first session" in explained


def test_transport_waits_for_forwarding_and_a_first_session_time(certified, tmp_path):
    number = consented_case(certified, tmp_path)  # consent given: state forwarding
    set_case(certified, number, state=CaseState.FORWARDING)
    assert plan(certified, number) == []
    set_case(certified, number, first_session_at=None)
    assert plan(certified, number) == [] and plan(certified, number) == []
    assert events(certified, number, "transport_not_booked") == [
        "no transport booked now: the case is forwarding; transport to the first session is booked while "
        "the order is with the training unit",
        "no transport booked yet: no first session time is known"]

    set_case(certified, number)
    assert [row.key for row in plan(certified, number)] == [f"{number}:transport_booking_1"]


# --- the HTTP adapter ------------------------------------------------------------------


class _Provider(BaseHTTPRequestHandler):
    requests: list[dict] = []
    status = 201

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "headers": dict(self.headers), "json": body})
        answer = json.dumps({"reference": f"R-{len(self.requests)}"} if self.status < 400 else {}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def provider():
    handler = type("Provider", (_Provider,), {"requests": [], "status": 201})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


ORDER = TransportOrder(case_number="GEN-2026-000001", provider="transport_tarnby", passenger="Test Borger",
                       pickup="Englandsvej 12, 2770 Kastrup", destination="copenhagen_training",
                       destination_address="Edith Rodes Vej 4, Bygning V, 1. sal, 2200 København N",
                       session_at=SESSION, needs="Går med rollator.", payer="tarnby", sequence=1,
                       phone="3251 0000")


def test_http_adapter_posts_the_order_with_its_idempotency_key(provider):
    handler, url = provider
    adapter = HttpTransportAdapter(url, "secret-token")

    assert adapter.send_booking(ORDER) == "HTTP 201 Created; provider reference R-1"
    assert adapter.send_cancellation(ORDER) == "HTTP 201 Created; provider reference R-2"

    booking, cancellation = handler.requests
    assert booking["path"] == "/api/bookings" and cancellation["path"] == "/api/cancellations"
    assert booking["headers"]["Idempotency-Key"] == "GEN-2026-000001:transport_booking_1"
    assert cancellation["headers"]["Idempotency-Key"] == "GEN-2026-000001:transport_cancel_1"
    assert booking["headers"]["Authorization"] == "Bearer secret-token"
    assert booking["json"] == {
        "case_number": "GEN-2026-000001", "sequence": 1, "provider": "transport_tarnby",
        "passenger": "Test Borger",
        "pickup": "Englandsvej 12, 2770 Kastrup", "destination": "copenhagen_training",
        "destination_address": "Edith Rodes Vej 4, Bygning V, 1. sal, 2200 København N",
        "session_at": "2026-12-02T10:00:00+01:00", "needs": "Går med rollator.", "payer": "tarnby",
        "phone": "3251 0000", "settlement": "direct_with_payer", "reason": None}


def test_http_adapter_reports_a_provider_failure_clearly(provider):
    handler, url = provider
    handler.status = 503

    with pytest.raises(GenopError) as error:
        HttpTransportAdapter(url, "secret-token").send_booking(ORDER)

    assert error.value.code == "transport_provider_unavailable"
    assert "HTTP 503" in error.value.message and "GEN-2026-000001 (sequence 1)" in error.value.message
    assert "same Idempotency-Key GEN-2026-000001:transport_booking_1" in error.value.message
    assert len(handler.requests) == 1


def test_http_adapter_books_without_outbox_rows_and_sends_the_recorded_booking(runtime, tmp_path, provider):
    handler, url = provider
    number = consented_case(runtime, tmp_path)
    set_case(runtime, number)
    adapter = HttpTransportAdapter(url, "secret-token")

    assert plan(runtime, number, adapter) == []

    with runtime.store.session() as session:
        [booking] = session.scalars(select(TransportBooking))
        assert booking.outbox_id is None
        order = transport_order(get_case(session, number), booking, runtime.agreement)
    adapter.send_booking(order)
    [sent] = handler.requests
    assert sent["headers"]["Idempotency-Key"] == f"{number}:transport_booking_1"
    assert sent["json"]["pickup"] == "Englandsvej 12, 2770 Kastrup"
    assert "(sequence 1, by http)" in events(runtime, number, "transport_booked")[0]
