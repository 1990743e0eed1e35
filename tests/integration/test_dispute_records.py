"""Disputes in the store (SQLite and PostgreSQL): numbered, moved only as §10 allows, the
mediation meeting within 8 days of the call, a redo recorded once however often it is asked."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from genop.clock import now_utc
from genop.disputes import Action, Change, RedoStatus, State, SubjectKind
from genop.disputes.records import (DisputeError, begin_redo, call_mediation, finish_redo, get_dispute, move,
                                    open_dispute)
from genop.errors import CaseNotFound
from tests.integration.test_escalation_trail import awaiting_case

DAY = date(2026, 11, 20)


def _open(runtime, session, case_number: str, **overrides):  # noqa: ANN001, ANN202
    fields = {"subject": SubjectKind.CASE, "reference": case_number, "about": "order_not_received",
              "reason": "Københavns Kommune har ikke modtaget bestillingen", "by": "Sagsbehandler A",
              "day": DAY, "now": now_utc(), **overrides}
    return open_dispute(session, runtime.agreement, **fields)


def test_a_dispute_is_numbered_and_moves_as_section_10_allows(runtime, tmp_path: Path):
    case_number = awaiting_case(runtime, tmp_path, "GOP-DSP-1", municipality_code="155")
    with runtime.store.session() as session:
        first = _open(runtime, session, case_number)
        second = _open(runtime, session, case_number, about="transport")
        assert (first.number, second.number) == ("TV-2026-0001", "TV-2026-0002")
        assert first.municipality == "dragor" and first.state == State.OPEN.value
        with pytest.raises(DisputeError, match="cannot move to to_court"):
            move(session, first, State.TO_COURT, by="A", why="no", day=DAY, now=now_utc())
        with pytest.raises(DisputeError, match="within 8 days of the call"):
            call_mediation(session, runtime.agreement, first, meeting_on=DAY + timedelta(days=9), by="A",
                           why="ikke enige", day=DAY, now=now_utc())
        call_mediation(session, runtime.agreement, first, meeting_on=DAY + timedelta(days=8), by="A",
                       why="ikke enige", day=DAY, now=now_utc())
        move(session, first, State.RESOLVED, by="B", why="enige på mødet", day=DAY + timedelta(days=8),
             now=now_utc())
    with runtime.store.session() as session:
        dispute = get_dispute(session, "tv-2026-0001")
        assert [(e.change, e.state, e.by) for e in dispute.events] == [
            (Change.OPENED.value, "open", "Sagsbehandler A"), (Change.MEDIATION_CALLED.value, "mediation_called", "A"),
            (Change.RESOLVED.value, "resolved", "B")]
        assert dispute.mediation_on == DAY + timedelta(days=8) and dispute.closed_on == DAY + timedelta(days=8)
        with pytest.raises(DisputeError, match="closed"):
            move(session, dispute, State.TO_COURT, by="A", why="x", day=DAY, now=now_utc())


def test_a_dispute_refuses_what_it_cannot_be_about(runtime, tmp_path: Path):
    case_number = awaiting_case(runtime, tmp_path, "GOP-DSP-2")
    with runtime.store.session() as session:
        with pytest.raises(DisputeError, match="not a kind of dispute"):
            _open(runtime, session, case_number, about="weather")
        with pytest.raises(DisputeError, match="reason is empty"):
            _open(runtime, session, case_number, reason="  ")
        with pytest.raises(CaseNotFound):
            _open(runtime, session, "GEN-2026-999999")
        with pytest.raises(DisputeError, match="no settlement document"):
            _open(runtime, session, "", subject=SubjectKind.INVOICE, reference="FAK-2026-00001")
        with pytest.raises(DisputeError, match="has not been settled"):
            _open(runtime, session, "", subject=SubjectKind.MONTH, reference="2026-10")


def test_a_redo_is_recorded_once_and_finished_once(runtime, tmp_path: Path):
    case_number = awaiting_case(runtime, tmp_path, "GOP-DSP-3")
    with runtime.store.session() as session:
        dispute = _open(runtime, session, case_number)
        redo, created = begin_redo(session, dispute, Action.RESEND_ORDER, target=None, by="A", day=DAY,
                                   now=now_utc())
        again, created_again = begin_redo(session, dispute, Action.RESEND_ORDER, target=None, by="B", day=DAY,
                                          now=now_utc())
        assert created and not created_again and again.id == redo.id and redo.status == RedoStatus.STARTED.value
        finish_redo(session, dispute, redo, changes={}, produced={"outbox": ["k"]}, day=DAY, now=now_utc())
        finish_redo(session, dispute, redo, changes={}, produced={"outbox": ["other"]}, day=DAY, now=now_utc())
        assert redo.status == RedoStatus.DONE.value and redo.produced == {"outbox": ["k"]}
        assert [e.change for e in dispute.events] == [Change.OPENED.value, Change.REDO.value]
