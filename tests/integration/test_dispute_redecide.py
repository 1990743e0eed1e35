"""Re-deciding a case for a dispute on its latest revision (SQLite and PostgreSQL): the old
decision kept in the case's trail and the redo record, the consent-driven state kept while the
case stays in scope, once per dispute, case and revision, and the refusals in one line."""

from __future__ import annotations

from datetime import date

import pytest

from genop.clock import now_utc
from genop.disputes import Action, RedoStatus, SubjectKind
from genop.disputes.records import DisputeError, get_dispute, open_dispute
from genop.disputes.redecide import redecide
from genop.store.repository import get_case
from tests.integration.test_forwarding import consented_case
from tests.integration.test_routing import take_in
from tests.integration.test_transport import set_case

DAY = date(2026, 11, 20)
REASON = "Hospitalet har rettet planen; Tårnby vil have sagen afgjort igen"
NOT_SERVED = "101"  # Copenhagen's own citizens: not served by this agreement, rejected


def _dispute(runtime, case_number: str) -> str:
    with runtime.store.session() as session:
        return open_dispute(session, runtime.agreement, subject=SubjectKind.CASE, reference=case_number,
                            about="other", reason=REASON, by="Sagsbehandler A", day=DAY, now=now_utc()).number


def _redecide(runtime, number: str, **options):  # noqa: ANN202
    with runtime.store.session() as session:
        return redecide(session, runtime.agreement, number, by="Sagsbehandler B", day=DAY, now=now_utc(), **options)


def _events(runtime, case_number: str) -> list:
    with runtime.store.session() as session:
        case = get_case(session, case_number, with_events=True)
        return [(event.kind, dict(event.data or {}), event.detail) for event in case.events]


def test_a_case_being_forwarded_is_redecided_out_of_scope_with_the_old_decision_in_the_trail(runtime, tmp_path):
    case_number = consented_case(runtime, tmp_path, "GOP-RD-1")
    assert take_in(runtime, tmp_path, "GOP-RD-1", citizen__municipality_code=NOT_SERVED) == case_number
    assert _events(runtime, case_number)[-1][0] == "revision_not_rerouted"
    number = _dispute(runtime, case_number)

    first = _redecide(runtime, number)
    again = _redecide(runtime, number)
    assert first.first and not again.first
    assert (first.state_before, first.state, first.route_before, first.route, first.revision) == \
        ("forwarding", "rejected", "copenhagen", "rejected", 2)
    assert again == type(first)(**{**first.__dict__, "first": False})
    assert not first.unchanged and not first.consent_wait and not first.forward

    with runtime.store.session() as session:
        case = get_case(session, case_number)
        assert (case.state, case.route, case.municipality_code, case.payer) == ("rejected", "rejected", NOT_SERVED,
                                                                                None)
        [redo] = get_dispute(session, number).redos
        assert redo.key == f"{number}:redecide:{case_number}:revision-2" and redo.status == RedoStatus.DONE.value
        assert redo.changes["before"]["revision"] == 1 and redo.changes["after"]["revision"] == 2
        assert redo.changes["before"]["payer"] == "tarnby" and redo.changes["before"]["state"] == "forwarding"
        assert [e.change for e in get_dispute(session, number).events] == ["opened", "redo"]
    redecided = [(data, detail) for kind, data, detail in _events(runtime, case_number) if kind == "redecided"]
    assert len(redecided) == 1
    data, detail = redecided[0]
    assert data["dispute"] == number and data["revision"] == 2
    assert data["before"] == {"state": "forwarding", "route": "copenhagen", "diagnosis_group": "hip_fracture",
                              "payer": "tarnby", "reasons": data["before"]["reasons"], "revision": 1}
    assert data["before"]["reasons"] and data["after"]["state"] == "rejected"
    assert number in detail and "was forwarding route copenhagen (revision 1), now rejected" in detail


def test_a_forwarded_case_in_scope_keeps_its_state_and_takes_the_corrected_plan(runtime, tmp_path):
    case_number = consented_case(runtime, tmp_path, "GOP-RD-2")
    set_case(runtime, case_number, first_session_at=None)
    with runtime.store.session() as session:
        forwarded_at = get_case(session, case_number).forwarded_at
    take_in(runtime, tmp_path, "GOP-RD-2", urgent=True, start_by="2026-11-05")
    number = _dispute(runtime, case_number)

    done = _redecide(runtime, number)
    assert (done.state_before, done.state, done.route) == ("forwarded", "forwarded", "copenhagen")
    assert not done.unchanged and not done.consent_wait
    with runtime.store.session() as session:
        case = get_case(session, case_number)
        assert (case.state, case.urgent, case.start_by, case.forwarded_at) == \
            ("forwarded", True, date(2026, 11, 5), forwarded_at)
    assert [kind for kind, _, _ in _events(runtime, case_number)][-1] == "redecided"
    assert _redecide(runtime, number).first is False
    assert [kind for kind, _, _ in _events(runtime, case_number)].count("redecided") == 1


def test_nothing_newer_is_recorded_as_unchanged_and_a_case_put_in_scope_awaits_consent(runtime, tmp_path):
    rejected = take_in(runtime, tmp_path, "GOP-RD-3", citizen__municipality_code=NOT_SERVED)
    number = _dispute(runtime, rejected)
    same = _redecide(runtime, number)
    assert (same.state_before, same.state, same.unchanged, same.revision) == ("rejected", "rejected", True, 1)
    with runtime.store.session() as session:
        [redo] = get_dispute(session, number).redos
        assert redo.changes["unchanged"] is True and redo.status == RedoStatus.DONE.value

    waiting = take_in(runtime, tmp_path, "GOP-RD-4")
    with runtime.store.session() as session:  # decided before the hospital's group was configured, say
        case = get_case(session, waiting)
        case.state, case.route = "incomplete", None
    other = _dispute(runtime, waiting)
    put = _redecide(runtime, other)
    assert (put.state_before, put.state, put.route, put.consent_wait) == \
        ("incomplete", "awaiting_consent", "copenhagen", True)


def test_training_begun_and_an_order_with_copenhagen_are_refused_in_one_line(runtime, tmp_path):
    forwarded = consented_case(runtime, tmp_path, "GOP-RD-5")
    set_case(runtime, forwarded, first_session_at=None)
    take_in(runtime, tmp_path, "GOP-RD-5", citizen__municipality_code=NOT_SERVED)
    number = _dispute(runtime, forwarded)
    with pytest.raises(DisputeError, match=f"case {forwarded} is forwarded to Copenhagen and revision 2 puts it "
                                           "out of scope .*withdraw the order") as error:
        _redecide(runtime, number)
    assert error.value.code == "not_redecidable" and "\n" not in str(error.value)

    training = consented_case(runtime, tmp_path, "GOP-RD-6")
    set_case(runtime, training, state="in_training")
    other = _dispute(runtime, training)
    with pytest.raises(DisputeError, match=f"case {training} is in training with Copenhagen: training has begun.*"
                                           "correct-settlement"):
        _redecide(runtime, other)
    with runtime.store.session() as session:
        assert get_dispute(session, number).redos == [] and get_dispute(session, other).redos == []
        assert get_case(session, forwarded).state == "forwarded"
    assert Action.REDECIDE.value == "redecide"


def test_a_refused_case_stays_closed_as_refused_with_the_new_decision(runtime, tmp_path):
    from genop.consent import ConsentAnswer, ConsentDecision, ConsentMethod, record_consent

    case_number = take_in(runtime, tmp_path, "GOP-RD-7")
    answer = ConsentAnswer(ConsentDecision.REFUSED, ConsentMethod.WRITTEN, date(2026, 11, 3), "Test")
    with runtime.store.session() as session:
        record_consent(session, case_number, answer, today=date(2026, 11, 3), now=now_utc())
    take_in(runtime, tmp_path, "GOP-RD-7", level="specialiseret")
    done = _redecide(runtime, _dispute(runtime, case_number))
    assert (done.state_before, done.state, done.route_before, done.route) == \
        ("consent_refused", "consent_refused", "copenhagen", "region")
    with runtime.store.session() as session:
        case = get_case(session, case_number)
        assert (case.state, case.route, case.level) == ("consent_refused", "region", "specialiseret")
    assert _events(runtime, case_number)[-1][0] == "redecided"


def test_an_order_in_the_outbox_is_never_left_behind_a_case_put_out_of_scope(certified, tmp_path):
    from genop.disputes.redecide import check_redecide
    from genop.forwarding import prepare_order
    from genop.store.models import OutboxMessage

    case_number = consented_case(certified, tmp_path, "GOP-RD-8")
    with certified.store.session() as session:
        row_id = prepare_order(session, case_number, agreement=certified.agreement, settings=certified.settings,
                               now=now_utc()).id
    take_in(certified, tmp_path, "GOP-RD-8", citizen__municipality_code=NOT_SERVED)
    number = _dispute(certified, case_number)
    with certified.store.session() as session, pytest.raises(DisputeError, match="is being sent \\(pending\\)"):
        check_redecide(session, certified.agreement, number)
    with pytest.raises(DisputeError, match="is being sent \\(pending\\): let it be delivered"):
        _redecide(certified, number)
    with certified.store.session() as session:
        session.get_one(OutboxMessage, row_id).status = "failed"
        get_case(session, case_number).state = "forward_failed"
    with pytest.raises(DisputeError, match="failed to send and is kept in the outbox.*does not withdraw an order"):
        _redecide(certified, number)
    with certified.store.session() as session:
        assert get_case(session, case_number).state == "forward_failed" and get_dispute(session, number).redos == []


def test_a_consented_case_put_out_of_scope_and_back_is_forwarded_again_not_asked_twice(runtime, tmp_path):
    case_number = consented_case(runtime, tmp_path, "GOP-RD-9")
    take_in(runtime, tmp_path, "GOP-RD-9", citizen__municipality_code=NOT_SERVED)
    assert _redecide(runtime, _dispute(runtime, case_number)).state == "rejected"

    take_in(runtime, tmp_path, "GOP-RD-9", urgent=True)  # corrected again: back in scope
    assert _events(runtime, case_number)[-1][0] == "revision_not_rerouted"  # consent is recorded: not intake's
    back = _redecide(runtime, _dispute(runtime, case_number))
    assert (back.state_before, back.state, back.revision, back.forward, back.consent_wait) == \
        ("rejected", "forwarding", 3, True, False)
    with runtime.store.session() as session:
        case = get_case(session, case_number)
        assert (case.state, case.route, case.consent_decision, case.urgent) == ("forwarding", "copenhagen", "given",
                                                                                True)
