"""First session, free choice, notices, send-back and completion on the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from genop.clock import COPENHAGEN, now_utc
from genop.completion import CompletionError, complete_case
from genop.store.repository import get_case
from genop.training import (
    TrainingError,
    cases_due_free_choice,
    note_cannot_follow,
    parse_session_time,
    prepare_free_choice_letter,
    record_offer,
    send_back,
)
from tests.integration.test_forwarding import consented_case

FORWARDED_ON = date(2026, 11, 4)


def forwarded_case(runtime, tmp_path, plan_id: str = "GOP-TR-1") -> str:
    number = consented_case(runtime, tmp_path, plan_id)
    with runtime.store.session() as session:
        case = get_case(session, number)
        case.state, case.forwarded_on = "forwarded", FORWARDED_ON
    return number


def _offer(runtime, number: str, when: str) -> bool:
    with runtime.store.session() as session:
        return record_offer(session, number, parse_session_time(when), offered_on=FORWARDED_ON, now=now_utc())


def test_session_time_is_danish_time_and_defaults_to_nine():
    assert parse_session_time("2026-11-25") == datetime(2026, 11, 25, 9, 0, tzinfo=COPENHAGEN)
    assert parse_session_time("2026-11-25T10:30").hour == 10
    with pytest.raises(TrainingError):
        parse_session_time("next tuesday")


def test_offer_is_recorded_once_and_a_move_is_recorded_as_such(runtime, tmp_path):
    number = forwarded_case(runtime, tmp_path)
    assert _offer(runtime, number, "2026-11-06T10:00") is True
    assert _offer(runtime, number, "2026-11-06T10:00") is False
    assert _offer(runtime, number, "2026-11-12T10:00") is True
    with runtime.store.session() as session:
        case = get_case(session, number, with_events=True)
        kinds = [e.kind for e in case.events]
        assert kinds.count("first_session_offered") == 1 and kinds.count("first_session_moved") == 1
        assert "later than the free-choice day 2026-11-09" in case.events[-1].detail


def test_offer_for_a_case_not_forwarded_is_refused(runtime, tmp_path):
    number = consented_case(runtime, tmp_path)
    with pytest.raises(TrainingError) as error:
        _offer(runtime, number, "2026-11-06")
    assert error.value.code == "not_forwarded"


def test_free_choice_letter_when_no_start_within_seven_days_once(certified, tmp_path):
    runtime = certified
    late = forwarded_case(runtime, tmp_path, "GOP-LATE")
    early = forwarded_case(runtime, tmp_path, "GOP-EARLY")
    _offer(runtime, late, "2026-11-16")
    _offer(runtime, early, "2026-11-08")
    with runtime.store.session() as session:
        assert cases_due_free_choice(session, date(2026, 11, 8)) == []  # not yet day 7
        assert cases_due_free_choice(session, date(2026, 11, 9)) == [late]
        row = prepare_free_choice_letter(session, late, agreement=runtime.agreement,
                                         settings=runtime.settings, as_of=date(2026, 11, 9), now=now_utc())
        text = row.raw.decode("utf-8")
        assert "privat leverandør" in text and "16. november 2026" in text and "Karen Jensen" in text
    with runtime.store.session() as session:
        assert cases_due_free_choice(session, date(2026, 11, 10)) == []
        assert prepare_free_choice_letter(session, late, agreement=runtime.agreement, settings=runtime.settings,
                                          as_of=date(2026, 11, 10), now=now_utc()) is None


def test_cannot_follow_is_recorded_and_tarnby_gets_an_encrypted_notice(certified, tmp_path):
    number = forwarded_case(certified, tmp_path)
    with certified.store.session() as session:
        row = note_cannot_follow(session, number, "Borgeren er genindlagt", agreement=certified.agreement,
                                 settings=certified.settings, now=now_utc())
        assert row.key == f"{number}:cannot_follow_1"
        assert row.recipients == ["FLI.PLLOJ.SF@taarnby.dk"]
        assert b"genindlagt" not in row.raw  # only inside the encryption
        assert number in row.subject
    with certified.store.session() as session:
        case = get_case(session, number, with_events=True)
        assert any(e.kind == "cannot_follow" and "genindlagt" in e.detail for e in case.events)


def test_send_back_moves_the_route_to_lojtegaardsvej(certified, tmp_path):
    number = forwarded_case(certified, tmp_path)
    with certified.store.session() as session:
        send_back(session, number, "Hører ikke til specialfunktionerne", agreement=certified.agreement,
                  settings=certified.settings, now=now_utc())
    with certified.store.session() as session:
        case = get_case(session, number, with_events=True)
        assert (case.route, case.state) == ("lojtegaardsvej", "routed_elsewhere")
        assert case.events[-2].kind == "sent_back"
    with pytest.raises(TrainingError), certified.store.session() as session:
        send_back(session, number, "again", agreement=certified.agreement, settings=certified.settings,
                  now=now_utc())


def _status(number: str, **changes) -> bytes:
    document = {"case_number": number, "completed_on": "2026-11-30", "assessment": "Selvhjulpen.",
                "consent_to_share": True, **changes}
    return json.dumps(document).encode()


def _complete(runtime, number: str, content: bytes, as_of: date = date(2026, 12, 1)):
    with runtime.store.session() as session:
        return complete_case(session, number, content, agreement=runtime.agreement, settings=runtime.settings,
                             as_of=as_of, now=now_utc())


def test_completion_with_consent_composes_the_final_status_once(certified, tmp_path):
    number = forwarded_case(certified, tmp_path)
    first = _complete(certified, number, _status(number))
    assert first.settlement_month == "2026-11" and len(first.outbox_ids) == 1
    assert _complete(certified, number, _status(number)).outbox_ids == first.outbox_ids
    with pytest.raises(CompletionError) as error:
        _complete(certified, number, _status(number, assessment="changed"))
    assert error.value.code == "already_completed"


def test_a_party_with_a_final_status_copy_is_told_of_its_citizens_completion(certified, tmp_path):
    """Sub-agreement §7: Dragør (receives_final_status_copy in config) is told; Tårnby's own
    citizens' final status goes to Tårnby only."""
    from genop.store.models import OutboxMessage
    from tests.integration.test_transport import consented_with

    dragor = consented_with(certified, tmp_path, "GOP-TR-DR", citizen__municipality_code="155")
    with certified.store.session() as session:
        case = get_case(session, dragor)
        case.state, case.forwarded_on = "forwarded", FORWARDED_ON
    tarnby = forwarded_case(certified, tmp_path, "GOP-TR-TA")
    sent = {number: _complete(certified, number, _status(number)).outbox_ids for number in (dragor, tarnby)}
    with certified.store.session() as session:
        rows = {number: [(row.purpose, row.recipients) for row in (session.get(OutboxMessage, i) for i in ids)]
                for number, ids in sent.items()}
    tarnby_address = certified.settings.mail_from or certified.agreement.parties["tarnby"].contact.email
    dragor_address = certified.agreement.parties["dragor"].contact.email
    assert rows[dragor] == [("final_status", [tarnby_address]), ("final_status_dragor", [dragor_address])]
    assert rows[tarnby] == [("final_status", [tarnby_address])]


@pytest.mark.parametrize(("content", "code"), [
    (b"{not json", "malformed_json"),
    (None, "invalid_final_status"),
    ("other", "case_mismatch"),
    ("future", "completed_in_future"),
    ("early", "completed_before_forwarded"),
])
def test_bad_final_status_gets_a_specific_error(certified, tmp_path, content, code):
    number = forwarded_case(certified, tmp_path)
    documents = {
        None: json.dumps({"case_number": number, "completed_on": "2026-11-30"}).encode(),
        "other": _status("GEN-2026-999999"),
        "future": _status(number, completed_on="2026-12-24"),
        "early": _status(number, completed_on="2026-11-01"),
    }
    with pytest.raises(CompletionError) as error:
        _complete(certified, number, documents.get(content, content))
    assert error.value.code == code
