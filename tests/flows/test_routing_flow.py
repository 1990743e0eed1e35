"""Løjtegårdsvej and Tårnby's choice through the flows the deployments run (SQLite and
PostgreSQL): a first session offered at Løjtegårdsvej books transport there and stops the
free-choice letter; a geriatric case sent to Copenhagen with the case-route flow is recorded
with who and why, and nothing personal reaches Prefect."""

from __future__ import annotations

from datetime import date

import pytest

from genop.errors import GenopError
from genop.mail.sink import MailSink, SinkController
from genop.store.repository import get_case
from tests.flows.helpers import everything_prefect_holds
from tests.flows.test_forward_flow import _use_port, forwarding_env  # noqa: F401 - fixture
from tests.integration.test_routing import geriatric_case, take_in

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def mail(forwarding_env, tmp_path):  # noqa: F811
    handler = MailSink(tmp_path / "mail")
    controller = SinkController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield handler, _use_port(forwarding_env, controller.port)
    finally:
        controller.stop()


def test_lojtegaardsvej_offer_and_deadlines_through_the_flows(mail, tmp_path):
    from flows.training import case_deadlines, case_offer

    handler, runtime = mail
    offered = geriatric_case(runtime, tmp_path, "GOP-GER-OFFER")
    waiting = geriatric_case(runtime, tmp_path, "GOP-GER-WAIT")
    result = case_offer(case_number=offered, first_session="2026-11-07T10:00", as_of=date(2026, 11, 5))
    assert (result["changed"], result["transport_messages"], result["undelivered"]) == (True, 1, 0)
    assert len(handler.stored()) == 1  # the booking to Løjtegårdsvej, sent once
    first = case_deadlines(as_of=date(2026, 11, 9))
    second = case_deadlines(as_of=date(2026, 11, 10))
    assert first["case_numbers"] == [waiting] and second["case_numbers"] == []
    with runtime.store.session() as session:
        assert get_case(session, offered).free_choice_letter_on is None


def test_case_route_flow_sends_a_geriatric_case_to_copenhagen_with_who_and_why(mail, tmp_path):
    from flows.routing import RouteReason, case_route

    _, runtime = mail
    number = geriatric_case(runtime, tmp_path, "GOP-GER-ROUTE")
    result = case_route(case_number=number, staff_name="Sagsbehandler Hansen",
                        reason=RouteReason("Ikke plads på Løjtegårdsvej"))
    assert (result["state"], result["route"], result["changed"]) == ("awaiting_consent", "copenhagen", True)
    with runtime.store.session() as session:
        case = get_case(session, number, with_events=True)
        [event] = [e for e in case.events if e.kind == "route_chosen"]
    assert (event.data["by"], event.data["reason"]) == ("Sagsbehandler Hansen", "capacity")
    again = case_route(case_number=number, staff_name="Sagsbehandler Hansen", reason=RouteReason.capacity)
    assert (again["state"], again["changed"]) == ("awaiting_consent", False)
    other = take_in(runtime, tmp_path, "GOP-HIP-ROUTE")
    with pytest.raises(GenopError, match=f"case {other} cannot be sent to Copenhagen"):
        case_route(case_number=other, staff_name="Sagsbehandler Hansen", reason=RouteReason.citizens_wish)
    haystack = everything_prefect_holds()
    assert f"route-{number}" in haystack
    for secret in ("010145-1234", "Karen Jensen", "geriatric", "Geriatri"):
        assert secret not in haystack, secret


def test_case_route_flow_forwards_once_when_consent_is_already_recorded(mail, tmp_path):
    from flows.routing import RouteReason, case_route

    handler, runtime = mail
    number = geriatric_case(runtime, tmp_path, "GOP-GER-CONSENTED")
    with runtime.store.session() as session:  # consent to forward already recorded (agreement §6)
        case = get_case(session, number)
        case.consent_decision, case.consent_method, case.consent_date = "given", "written", date(2026, 11, 3)
    first = case_route(case_number=number, staff_name="Sagsbehandler Hansen", reason=RouteReason.other)
    again = case_route(case_number=number, staff_name="Sagsbehandler Hansen", reason=RouteReason.other)
    assert (first["state"], first["changed"]) == ("forwarded", True)
    assert (again["state"], again["changed"]) == ("forwarded", False)
    assert len(handler.stored()) == 1  # the order to Copenhagen, once
