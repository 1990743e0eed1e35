"""Cases at Løjtegårdsvej on the store (SQLite and PostgreSQL): first sessions, transport and
the free-choice letter (Health Act §140(4)); Tårnby's choice of Copenhagen for a geriatric case
(agreement §4) with who and why in the trail; no quota at intake; the capacity figure."""

from __future__ import annotations

from datetime import date

import pytest

from genop.clock import now_utc
from genop.forwarding import prepare_order
from genop.inbox import stage_copy
from genop.routing import ROUTE_CHOSEN, RoutingError, capacity, route_to_copenhagen
from genop.store.repository import get_case
from genop.training import (
    cases_due_free_choice,
    parse_session_time,
    prepare_free_choice_letter,
    record_offer,
    send_back,
)
from genop.transport import SecureMailTransportAdapter, plan_transport
from tests.factories import write_plan
from tests.integration.test_training import forwarded_case

AS_OF = date(2026, 11, 3)  # discharge 2 November: free choice from 9 November


def take_in(runtime, tmp_path, plan_id: str, **changes) -> str:
    folder = tmp_path / plan_id
    write_plan(folder, "plan.json", plan_id=plan_id, **changes)
    [outcome] = runtime.intake.take_in(sorted(stage_copy(folder, runtime.settings.folders).iterdir()), AS_OF)
    return outcome.case_number


def geriatric_case(runtime, tmp_path, plan_id: str = "GOP-GER-1", **changes) -> str:
    return take_in(runtime, tmp_path, plan_id, diagnosis_group="geriatric", **changes)


def offer_and_book(runtime, number: str, when: str) -> list:
    """What the case-offer flow does: record the offer, then plan transport to it."""
    with runtime.store.session() as session:
        changed = record_offer(session, number, parse_session_time(when), offered_on=AS_OF, now=now_utc())
    if not changed:
        return []
    with runtime.store.session() as session:
        return [row.key for row in plan_transport(
            session, number, agreement=runtime.agreement, settings=runtime.settings,
            adapter=SecureMailTransportAdapter(runtime.agreement, runtime.settings), now=now_utc())]


def scan(runtime, day: date) -> list[str]:
    """What the case-deadlines flow does: find the cases due, write each one's letter once."""
    written = []
    with runtime.store.session() as session:
        due = cases_due_free_choice(session, day)
    for number in due:
        with runtime.store.session() as session:
            if prepare_free_choice_letter(session, number, agreement=runtime.agreement,
                                          settings=runtime.settings, as_of=day, now=now_utc()):
                written.append(number)
    return written


def route(runtime, number: str, **options):
    values = {"by": "Sagsbehandler Hansen", "reason": "capacity", "note": None, **options}
    with runtime.store.session() as session:
        return route_to_copenhagen(session, number, agreement=runtime.agreement, now=now_utc(), **values)


# -- A: first sessions at Løjtegårdsvej and the free-choice letter ------------------------------------


def test_lojtegaardsvej_case_with_a_first_session_on_day_5_gets_no_letter(certified, tmp_path):
    number = geriatric_case(certified, tmp_path)
    booked = offer_and_book(certified, number, "2026-11-07T10:00")
    assert booked == [f"{number}:transport_booking_1"]  # the plan asks for transport
    with certified.store.session() as session:
        case = get_case(session, number, with_events=True)
        assert (case.state, case.route) == ("routed_elsewhere", "lojtegaardsvej")
        booking = next(e for e in case.events if e.kind == "transport_booked")
        assert booking.data["destination"] == "lojtegaardsvej"
        assert "within 7 days of discharge" in next(e.detail for e in case.events
                                                    if e.kind == "first_session_offered")
    assert scan(certified, date(2026, 11, 9)) == [] == scan(certified, date(2026, 11, 10))


def test_lojtegaardsvej_case_without_a_start_gets_exactly_one_letter(certified, tmp_path):
    number = geriatric_case(certified, tmp_path)
    assert scan(certified, date(2026, 11, 8)) == []  # not yet day 7
    assert scan(certified, date(2026, 11, 9)) == [number]
    assert scan(certified, date(2026, 11, 9)) == []
    with certified.store.session() as session:
        kinds = [e.kind for e in get_case(session, number, with_events=True).events]
    assert kinds.count("free_choice_announced") == 1


def test_a_first_session_after_day_7_at_lojtegaardsvej_still_gets_the_letter(certified, tmp_path):
    number = geriatric_case(certified, tmp_path)
    offer_and_book(certified, number, "2026-11-12")
    assert scan(certified, date(2026, 11, 9)) == [number]


def test_a_case_for_the_region_gets_no_first_session(certified, tmp_path):
    from genop.training import TrainingError

    number = take_in(certified, tmp_path, "GOP-REG-1", level="specialiseret")
    with pytest.raises(TrainingError) as error:
        offer_and_book(certified, number, "2026-11-05")
    assert error.value.code == "not_forwarded"
    assert scan(certified, date(2026, 11, 9)) == []


def test_a_case_copenhagen_sent_back_is_rebooked_to_lojtegaardsvej_when_it_offers_a_session(certified, tmp_path):
    number = forwarded_case(certified, tmp_path, "GOP-BACK-1")
    assert offer_and_book(certified, number, "2026-11-06T10:00") == [f"{number}:transport_booking_1"]
    with certified.store.session() as session:
        send_back(session, number, "Hører til Løjtegårdsvej", agreement=certified.agreement,
                  settings=certified.settings, now=now_utc())
    keys = offer_and_book(certified, number, "2026-11-07T09:00")
    assert keys == [f"{number}:transport_cancel_1", f"{number}:transport_booking_2"]


# -- B: Tårnby's choice of Copenhagen ---------------------------------------------------------------


def test_geriatric_case_sent_to_copenhagen_records_who_and_why_and_awaits_consent(runtime, tmp_path):
    number = geriatric_case(runtime, tmp_path)
    routed = route(runtime, number, reason="citizens_wish", note="Datteren bor på Nørrebro")
    assert (routed.state, routed.route, routed.changed) == ("awaiting_consent", "copenhagen", True)
    with runtime.store.session() as session:
        case = get_case(session, number, with_events=True)
        [event] = [e for e in case.events if e.kind == ROUTE_CHOSEN]
    assert event.data == {"from": "lojtegaardsvej", "route": "copenhagen", "by": "Sagsbehandler Hansen",
                          "reason": "citizens_wish", "note": "Datteren bor på Nørrebro"}
    assert "Sagsbehandler Hansen" in event.detail and "Borgerens ønske" in event.detail
    assert "consent" in event.detail
    assert (case.state, case.route) == ("awaiting_consent", "copenhagen")
    assert "Tårnby chose Copenhagen" in case.reasons[-1]
    again = route(runtime, number)  # the deployment run after `genop case route` recorded it
    assert (again.state, again.changed) == ("awaiting_consent", False)
    with runtime.store.session() as session:
        assert [e.kind for e in get_case(session, number, with_events=True).events].count(ROUTE_CHOSEN) == 1


def test_refusals_name_the_case(certified, tmp_path):
    runtime = certified
    other = take_in(runtime, tmp_path, "GOP-HIP-1")
    started = geriatric_case(runtime, tmp_path, "GOP-GER-2")
    offer_and_book(runtime, started, "2026-11-05")
    fresh = geriatric_case(runtime, tmp_path, "GOP-GER-3")
    for number, words in ((other, "its route follows the agreement"),
                          (started, "first session offered at Løjtegårdsvej")):
        with pytest.raises(RoutingError) as error:
            route(runtime, number)
        assert error.value.code == "not_reroutable" and number in error.value.message and words in error.value.message
    for options, code in (({"reason": "because"}, "unknown_reason"), ({"by": "  "}, "routing_invalid")):
        with pytest.raises(RoutingError) as error:
            route(runtime, fresh, **options)
        assert error.value.code == code
    with runtime.store.session() as session:
        assert get_case(session, fresh).route == "lojtegaardsvej"  # a refusal changes nothing


def test_with_consent_already_recorded_the_order_is_forwarded_exactly_once(certified, tmp_path):
    number = geriatric_case(certified, tmp_path)
    with certified.store.session() as session:  # consent to forward recorded earlier (§6)
        case = get_case(session, number)
        case.consent_decision, case.consent_method, case.consent_date = "given", "written", AS_OF
    assert route(certified, number).state == "forwarding"
    with certified.store.session() as session:
        first = prepare_order(session, number, agreement=certified.agreement, settings=certified.settings,
                              now=now_utc())
        first_id, first_key = first.id, first.key
    with certified.store.session() as session:
        assert prepare_order(session, number, agreement=certified.agreement, settings=certified.settings,
                             now=now_utc()).id == first_id
    assert first_key == f"{number}:order"


def test_an_incomplete_geriatric_plan_keeps_the_choice_when_the_complete_plan_arrives(runtime, tmp_path):
    number = geriatric_case(runtime, tmp_path, "GOP-GER-INC", rehab_need=None)
    assert route(runtime, number).state == "incomplete"
    assert take_in(runtime, tmp_path, "GOP-GER-INC", rehab_need="Gangfunktion og balance.") == number
    with runtime.store.session() as session:
        case = get_case(session, number)
    assert (case.state, case.route) == ("awaiting_consent", "copenhagen")


def test_no_quota_changes_a_route_at_intake_and_capacity_counts_the_choices(runtime, tmp_path):
    numbers = [geriatric_case(runtime, tmp_path, f"GOP-GER-Q{i}") for i in range(12)]
    take_in(runtime, tmp_path, "GOP-HIP-Q")
    with runtime.store.session() as session:
        assert {get_case(session, n).route for n in numbers} == {"lojtegaardsvej"}
    route(runtime, numbers[0])
    later = geriatric_case(runtime, tmp_path, "GOP-GER-LATER")
    with runtime.store.session() as session:
        assert get_case(session, later).route == "lojtegaardsvej"
        figure = capacity(session, runtime.agreement, 2026)
        assert (figure.cases, figure.to_copenhagen, str(figure.share)) == (13, 1, "0.077")
        assert capacity(session, runtime.agreement, 2025).cases == 0


# -- the CLI -------------------------------------------------------------------------------------


def test_case_route_cli_records_the_note_in_genop_and_gives_prefect_only_the_form_fields(runtime, tmp_path,
                                                                                          monkeypatch):
    import json

    from click.testing import CliRunner

    from genop_cli import routing as routing_cli
    from genop_cli.main import cli

    number = geriatric_case(runtime, tmp_path)
    runs: list[dict] = []
    monkeypatch.setattr(routing_cli, "require_server", lambda _settings: "http://127.0.0.1:1/api")
    monkeypatch.setattr(routing_cli, "run_flow", lambda _url, _flow, **parameters: runs.append(parameters))
    result = CliRunner().invoke(cli, ["case", "route", number.lower(), "--to", "copenhagen", "--by",
                                      "Sagsbehandler Hansen", "--reason", "needs_specialised_training",
                                      "--note", "Aftalt med Edith Rodes Vej", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["state"], shown["route"]) == ("awaiting_consent", "copenhagen")
    assert set(shown["capacity"]) == {"year", "cases", "to_copenhagen", "share", "expected_share"}
    assert any("Aftalt med Edith Rodes Vej" in e["detail"] for e in shown["events"])
    [parameters] = runs
    assert set(parameters) == {"case_number", "staff_name", "reason"}
    assert (parameters["case_number"], parameters["reason"].name) == (number, "needs_specialised_training")
    assert "Aftalt" not in json.dumps({k: str(v) for k, v in parameters.items()})

    refused = CliRunner().invoke(cli, ["case", "route", number, "--to", "copenhagen", "--by", "X",
                                       "--reason", "because"])
    assert refused.exit_code == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "capacity" in refused.stderr


def test_capacity_cli_prints_the_share_for_a_year(runtime, tmp_path):
    import json

    from click.testing import CliRunner

    from genop_cli.main import cli

    numbers = [geriatric_case(runtime, tmp_path, f"GOP-GER-C{i}") for i in range(3)]
    route(runtime, numbers[0])
    shown = json.loads(CliRunner().invoke(cli, ["capacity", "--year", "2026", "--json"]).stdout)
    assert shown == {"year": 2026, "cases": 3, "to_copenhagen": 1, "share": "0.333", "expected_share": "0.10"}
    line = CliRunner().invoke(cli, ["capacity", "--year", "2026"]).stdout
    assert "sent to Copenhagen 1 (33.3%); expected share 10%" in line


def test_a_revised_plan_never_takes_a_sent_back_case_back_to_copenhagen(certified, tmp_path):
    """Copenhagen's send-back is its visitation decision: a later revision of the plan is kept
    for the record and leaves the case at Løjtegårdsvej — also after staff chose Copenhagen."""
    number = geriatric_case(certified, tmp_path, "GOP-GER-BACK")
    route(certified, number)
    with certified.store.session() as session:  # consented and forwarded (as the flows do it)
        case = get_case(session, number)
        case.state, case.consent_decision, case.forwarded_at = "forwarded", "given", now_utc()
    with certified.store.session() as session:
        send_back(session, number, "Hører til Løjtegårdsvej", agreement=certified.agreement,
                  settings=certified.settings, now=now_utc())

    assert take_in(certified, tmp_path, "GOP-GER-BACK", diagnosis_group="geriatric",
                   rehab_need="Revideret: gang og balance.") == number

    with certified.store.session() as session:
        case = get_case(session, number, with_events=True)
    assert (case.state, case.route) == ("routed_elsewhere", "lojtegaardsvej")
    assert case.revision == 2 and case.events[-1].kind == "revision_not_rerouted"


def test_a_revised_plan_leaves_a_case_under_way_at_lojtegaardsvej_where_it_is(certified, tmp_path):
    number = geriatric_case(certified, tmp_path, "GOP-GER-UNDERWAY")
    offer_and_book(certified, number, "2026-11-06T10:00")

    assert take_in(certified, tmp_path, "GOP-GER-UNDERWAY", diagnosis_group="stroke") == number

    with certified.store.session() as session:
        case = get_case(session, number, with_events=True)
    assert (case.state, case.route) == ("routed_elsewhere", "lojtegaardsvej")
    assert case.events[-1].kind == "revision_not_rerouted"
