"""The case lifecycle (AGREEMENT.md "Case lifecycle"): every legal move, the refusal of the rest
in a caseworker's words, the groups of states, and docs/lifecycle.md drawn from them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import product

import pytest

from genop import lifecycle
from genop.lifecycle import (
    CLOSED,
    GROUPS,
    INTAKE_OUTCOMES,
    MOVES,
    SCOPE_DECISIONS,
    OPEN,
    CaseState,
    IllegalMove,
    begin,
    find_move,
    move,
)
from genop.store.models import Case

NOW = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
EARLIER = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
NUMBER = "GEN-2026-000123"
LEGAL = [(m, source, target) for m in MOVES for source in sorted(m.sources) for target in sorted(m.targets)]
ILLEGAL = [(source, target) for source, target in product(CaseState, CaseState)
           if source != target and find_move(source, target) is None]


class RecordingSession:
    """What ``move`` needs of a session: somewhere to add the event (no database)."""

    def __init__(self) -> None:
        self.added: list[object] = []

    def add(self, item: object) -> None:
        self.added.append(item)


def a_case(state: CaseState | None) -> Case:
    return Case(case_number=NUMBER, state=state.value if state else None, updated_at=EARLIER)


def _move(case: Case, to: CaseState, **extra: object):  # noqa: ANN202 - CaseEvent | None
    occurred = date(2026, 11, 30) if to is CaseState.COMPLETED else None
    return move(RecordingSession(), case, to, at=NOW, detail="what happened", data={"n": 1},  # type: ignore[arg-type]
                occurred=occurred, **extra)


@pytest.mark.parametrize(("step", "source", "target"),
                         [item for item in LEGAL if item[0] not in SCOPE_DECISIONS],
                         ids=[f"{m.name}:{s}->{t}" for m, s, t in LEGAL if m not in SCOPE_DECISIONS])
def test_every_legal_move_sets_the_state_and_writes_its_event(step, source, target):
    case = a_case(source)
    event = _move(case, target, via=step.name if step.by_name else None)
    assert case.state == target and case.updated_at == NOW
    if step.event is None:
        assert event is None and case.events == []
    else:
        assert [(e.kind, e.detail, e.at, e.data) for e in case.events] == [(step.event, "what happened", NOW, {"n": 1})]


@pytest.mark.parametrize("state", sorted(INTAKE_OUTCOMES))
def test_a_new_case_begins_in_its_scope_decision_state_and_intake_writes_the_event(state):
    case = a_case(None)
    begin(case, state)
    assert case.state == state and case.events == [] and case.updated_at == EARLIER


@pytest.mark.parametrize(("source", "target"), list(product(sorted(INTAKE_OUTCOMES), repeat=2)))
def test_a_revised_plan_at_intake_is_decided_again(source, target):
    case = a_case(source)
    begin(case, target)
    assert case.state == target


def test_a_revised_plan_cannot_reroute_a_case_past_intake():
    case = a_case(CaseState.FORWARDED)
    with pytest.raises(IllegalMove) as refused:
        begin(case, CaseState.ROUTED_ELSEWHERE)
    assert refused.value.message == (f"{NUMBER} is forwarded to Copenhagen; a revised plan cannot change its route")
    assert case.state == CaseState.FORWARDED


def test_an_illegal_move_is_refused_in_a_caseworkers_words():
    case = a_case(CaseState.COMPLETED)
    with pytest.raises(IllegalMove) as refused:
        _move(case, CaseState.IN_TRAINING)
    assert refused.value.message == f"{NUMBER} is completed; its training cannot start"
    assert refused.value.code == "illegal_move"
    with pytest.raises(IllegalMove) as refused:
        _move(case, CaseState.IN_TRAINING, refusal="a first session cannot be recorded")
    assert refused.value.message == f"{NUMBER} is completed; a first session cannot be recorded"


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=[f"{s}->{t}" for s, t in ILLEGAL])
def test_every_other_move_is_refused_and_changes_nothing(source, target):
    case = a_case(source)
    with pytest.raises(IllegalMove) as refused:
        _move(case, target)
    assert refused.value.message.startswith(f"{NUMBER} is {lifecycle.DESCRIPTIONS[source]}; ")
    assert "\n" not in refused.value.message and "_" not in refused.value.message.split("; ", 1)[1]
    assert case.state == source and case.updated_at == EARLIER and case.events == []


def test_a_case_already_where_the_move_leads_is_left_as_it_is():
    case = a_case(CaseState.FORWARDING)
    assert _move(case, CaseState.FORWARDING) is None
    assert case.state == CaseState.FORWARDING and case.updated_at == EARLIER and case.events == []


def test_a_second_failure_to_send_the_order_is_recorded_again():
    case = a_case(CaseState.FORWARD_FAILED)
    _move(case, CaseState.FORWARD_FAILED)
    assert [e.kind for e in case.events] == ["forward_failed"]


def test_forwarding_keeps_the_sending_time_and_its_danish_day():
    case = a_case(CaseState.FORWARDING)
    sent = datetime(2026, 11, 3, 23, 30, tzinfo=UTC)
    move(RecordingSession(), case, CaseState.FORWARDED, at=NOW, detail="sent", occurred=sent)  # type: ignore[arg-type]
    assert case.forwarded_at == sent and case.forwarded_on == date(2026, 11, 4)
    unstamped = a_case(CaseState.FORWARDING)
    move(RecordingSession(), unstamped, CaseState.FORWARDED, at=NOW, detail="sent")  # type: ignore[arg-type]
    assert unstamped.forwarded_at == NOW and unstamped.forwarded_on == date(2026, 11, 3)


def test_completion_keeps_the_completion_date_and_needs_it():
    case = a_case(CaseState.IN_TRAINING)
    _move(case, CaseState.COMPLETED)
    assert case.completed_on == date(2026, 11, 30)
    with pytest.raises(ValueError, match="completion date"):
        move(RecordingSession(), a_case(CaseState.IN_TRAINING), CaseState.COMPLETED, at=NOW,  # type: ignore[arg-type]
             detail="done")


def test_a_move_that_writes_an_event_needs_its_detail():
    with pytest.raises(ValueError, match="training_started"):
        move(RecordingSession(), a_case(CaseState.FORWARDED), CaseState.IN_TRAINING, at=NOW)  # type: ignore[arg-type]


def test_a_pair_of_states_belongs_to_one_move_only():
    pairs = [(source, target) for m in MOVES if not m.by_name
             for source in (m.sources or {None}) for target in m.targets]
    assert len(pairs) == len(set(pairs))
    assert len({m.name for m in MOVES}) == len(MOVES)


def test_every_state_is_open_or_closed_and_never_both():
    assert OPEN | CLOSED == set(CaseState) and not OPEN & CLOSED


def test_every_state_can_be_reached_from_a_new_plan():
    reached = set(INTAKE_OUTCOMES)
    while grown := {t for m in MOVES if m.sources & reached for t in m.targets} - reached:
        reached |= grown
    assert reached == set(CaseState)


def test_an_open_case_has_a_way_on_and_a_finished_one_has_none():
    for state in OPEN:
        assert any(state in m.sources and m.targets - {state} for m in MOVES), state
    for state in (CaseState.COMPLETED, CaseState.CONSENT_REFUSED):
        assert not any(state in m.sources for m in MOVES), state


def test_every_group_is_named_as_in_the_module_and_explained():
    for group in GROUPS:
        assert getattr(lifecycle, group.name) is group and group.meaning and group <= set(CaseState)
    assert {state for group in GROUPS for state in group} == set(CaseState)
    assert set(lifecycle.DESCRIPTIONS) == set(CaseState)


def test_the_diagram_draws_every_state_move_start_and_end():
    drawn = lifecycle.diagram()
    assert drawn.startswith("stateDiagram-v2\n")
    for state in CaseState:
        assert f"    {state}: {lifecycle.DESCRIPTIONS[state]}\n" in drawn
    for state in INTAKE_OUTCOMES:
        assert f"    [*] --> {state}: scope_decided\n" in drawn
    for state in CLOSED:
        assert f"    {state} --> [*]\n" in drawn
    assert "    forwarded --> in_training: training_started\n" in drawn
    assert "    forward_failed --> forward_failed: forward_failed\n" in drawn
    assert "    revised_plan --> incomplete: scope_decided\n" in drawn
    assert all(m.event in drawn for m in MOVES if m.event)


def test_docs_lifecycle_md_is_the_drawing_of_the_lifecycle():
    committed = lifecycle.DOCUMENT.read_text(encoding="utf-8") if lifecycle.DOCUMENT.exists() else ""
    assert committed == lifecycle.document(), (
        "docs/lifecycle.md differs from genop/lifecycle.py: run `make diagram` "
        "(python -m genop.lifecycle --write) and commit docs/lifecycle.md")


def test_a_move_made_by_name_is_legal_only_when_named():
    """Staff sending a geriatric case to Copenhagen: routed_elsewhere → forwarding is no move
    of its own, and a Løjtegårdsvej case that stays incomplete still records the choice."""
    with pytest.raises(IllegalMove):
        _move(a_case(CaseState.ROUTED_ELSEWHERE), CaseState.FORWARDING)
    case = a_case(CaseState.ROUTED_ELSEWHERE)
    _move(case, CaseState.FORWARDING, via="copenhagen_chosen")
    assert case.state == CaseState.FORWARDING and [e.kind for e in case.events] == ["route_chosen"]
    incomplete = a_case(CaseState.INCOMPLETE)
    _move(incomplete, CaseState.INCOMPLETE, via="copenhagen_chosen_for_incomplete")
    assert [e.kind for e in incomplete.events] == ["route_chosen"]


def test_move_never_makes_intakes_moves_those_are_begins():
    """``move`` on a case at intake cannot stand in for a scope decision (no scope_decided event
    without its reasons): a revised plan is decided again through ``begin`` only."""
    with pytest.raises(IllegalMove):
        _move(a_case(CaseState.INCOMPLETE), CaseState.AWAITING_CONSENT)
    case = a_case(CaseState.ROUTED_ELSEWHERE)
    assert _move(case, CaseState.ROUTED_ELSEWHERE) is None and case.events == []


def test_an_incomplete_case_sent_to_copenhagen_is_not_forwarded():
    with pytest.raises(IllegalMove):
        _move(a_case(CaseState.INCOMPLETE), CaseState.FORWARDING, via="copenhagen_chosen_for_incomplete")
    with pytest.raises(IllegalMove):
        _move(a_case(CaseState.INCOMPLETE), CaseState.FORWARDING, via="copenhagen_chosen")


@pytest.mark.parametrize(("state", "forwarded", "offered", "past"), [
    (CaseState.ROUTED_ELSEWHERE, False, False, False),
    (CaseState.ROUTED_ELSEWHERE, True, False, True),   # sent back by Copenhagen
    (CaseState.ROUTED_ELSEWHERE, False, True, True),   # under way at Løjtegårdsvej
    (CaseState.AWAITING_CONSENT, False, False, False),
    (CaseState.FORWARDED, True, False, True),
])
def test_a_case_is_past_intake_once_it_left_it_or_its_training_began_elsewhere(state, forwarded, offered, past):
    case = a_case(state)
    case.forwarded_at = NOW if forwarded else None
    case.first_session_at = NOW if offered else None
    assert lifecycle.past_intake(case) is past
