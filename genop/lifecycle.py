"""The case lifecycle (AGREEMENT.md "Case lifecycle"; STYLE.md "One lifecycle") as data.

The states a case passes through, every legal move between them with the event the move
writes to the case's trail, and the groups of states staff speak of ("with Copenhagen",
"closed"). A case's state changes here and nowhere else (``tests/unit/test_architecture.py``
checks): modules ask ``begin`` (intake) or ``move`` (everything after), and test membership
in a group instead of keeping their own sets of states. ``docs/lifecycle.md`` is drawn from
this data: ``python -m genop.lifecycle --write`` (``make diagram``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from genop.clock import local
from genop.errors import GenopError
from genop.store.models import Case, CaseEvent
from genop.store.repository import append_event


class CaseState(StrEnum):
    # end of intake (lifecycle 1–2)
    AWAITING_CONSENT = "awaiting_consent"
    ROUTED_ELSEWHERE = "routed_elsewhere"
    REJECTED = "rejected"
    INCOMPLETE = "incomplete"
    # consent and forwarding (lifecycle 3–4)
    CONSENT_REFUSED = "consent_refused"
    FORWARDING = "forwarding"
    FORWARD_FAILED = "forward_failed"
    FORWARDED = "forwarded"
    # training and completion (lifecycle 5–7)
    IN_TRAINING = "in_training"
    COMPLETED = "completed"


DESCRIPTIONS: dict[CaseState, str] = {
    CaseState.AWAITING_CONSENT: "waiting for the citizen's consent",
    CaseState.ROUTED_ELSEWHERE: "routed elsewhere (Løjtegårdsvej, the region or the residence municipality)",
    CaseState.REJECTED: "rejected (not under the agreement)",
    CaseState.INCOMPLETE: "waiting for a complete plan from the hospital",
    CaseState.CONSENT_REFUSED: "closed because the citizen refused consent",
    CaseState.FORWARDING: "being forwarded to Copenhagen",
    CaseState.FORWARD_FAILED: "not forwarded (sending the order failed)",
    CaseState.FORWARDED: "forwarded to Copenhagen",
    CaseState.IN_TRAINING: "in training with Copenhagen",
    CaseState.COMPLETED: "completed",
}
"""How a state reads in a caseworker's sentence: "GEN-2026-000123 is <description>"."""


class Group(frozenset[CaseState]):
    """A named group of states, named by what staff mean; ask ``case.state in GROUP``."""

    name: str
    meaning: str

    def __new__(cls, name: str, meaning: str, states: Iterable[CaseState]) -> Group:
        group = super().__new__(cls, states)
        group.name, group.meaning = name, meaning
        return group

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(sorted(self))})"


_S = CaseState

INTAKE_OUTCOMES = Group("INTAKE_OUTCOMES", "where the scope decision leaves a plan; a revised plan is decided "
                        "again only while the case is here (lifecycle 1–2)",
                        {_S.AWAITING_CONSENT, _S.ROUTED_ELSEWHERE, _S.REJECTED, _S.INCOMPLETE})
BEING_FORWARDED = Group("BEING_FORWARDED", "consent given, the order not yet recorded as sent (lifecycle 4)",
                        {_S.FORWARDING, _S.FORWARD_FAILED})
FORWARDABLE = Group("FORWARDABLE", "consent given and training not begun: the order may be prepared "
                    "(a forwarded case gets the same order, nothing new is sent)",
                    BEING_FORWARDED | {_S.FORWARDED})
WITH_COPENHAGEN = Group("WITH_COPENHAGEN", "the order is with Copenhagen's training unit (agreement §4): a "
                        "first session is offered, transport booked, the course completed or the citizen "
                        "sent back", {_S.FORWARDED, _S.IN_TRAINING})
TRAINED_BY_COPENHAGEN = Group("TRAINED_BY_COPENHAGEN", "Copenhagen trains or has trained the citizen: its "
                              "visits are recorded (up to the completion date)",
                              WITH_COPENHAGEN | {_S.COMPLETED})
WAITING_FOR_START = Group("WAITING_FOR_START", "an order or a Løjtegårdsvej case whose training has not "
                          "started: the free choice of provider applies after 7 days (Health Act §140(4))",
                          {_S.AWAITING_CONSENT, _S.FORWARDING, _S.FORWARD_FAILED, _S.FORWARDED, _S.ROUTED_ELSEWHERE})
CLOSED = Group("CLOSED", "nothing more is done with Copenhagen (a revised plan may still decide a "
               "rejected or routed case again)",
               {_S.ROUTED_ELSEWHERE, _S.REJECTED, _S.CONSENT_REFUSED, _S.COMPLETED})
OPEN = Group("OPEN", "someone must still act: the citizen (consent), the hospital (a complete plan), "
             "genop (the order) or Copenhagen (the training)", set(CaseState) - CLOSED)

GROUPS: tuple[Group, ...] = (INTAKE_OUTCOMES, OPEN, CLOSED, BEING_FORWARDED, FORWARDABLE, WITH_COPENHAGEN,
                             TRAINED_BY_COPENHAGEN, WAITING_FOR_START)


@dataclass(frozen=True)
class Move:
    """A legal change of state: from any of ``sources`` (none: a new case) to any of ``targets``.

    ``event`` is the kind of event the move writes to the case's trail (None: it writes none,
    the outbox row is the record); ``refusal`` ends the caseworker's sentence when the move is
    not legal: "GEN-2026-000123 is completed; <refusal>".
    """

    name: str
    sources: frozenset[CaseState]
    targets: frozenset[CaseState]
    event: str | None
    refusal: str
    by_name: bool = False
    """Made only when the caller names it (``move(..., via=name)``): a staff decision whose
    pairs of states other moves may also join (a geriatric case sent to Copenhagen)."""


def _move(name: str, sources: Iterable[CaseState], targets: Iterable[CaseState], event: str | None,
          refusal: str, *, by_name: bool = False) -> Move:
    return Move(name, frozenset(sources), frozenset(targets), event, refusal, by_name)


MOVES: tuple[Move, ...] = (
    _move("new_plan", (), INTAKE_OUTCOMES, "scope_decided", "a new plan cannot be decided for it"),
    _move("revised_plan", INTAKE_OUTCOMES, INTAKE_OUTCOMES, "scope_decided",
          "a revised plan cannot change its route"),
    _move("consent_given", {_S.AWAITING_CONSENT}, {_S.FORWARDING}, "consent_recorded",
          "consent cannot be recorded as given"),
    _move("consent_refused", {_S.AWAITING_CONSENT}, {_S.CONSENT_REFUSED}, "consent_recorded",
          "consent cannot be recorded as refused"),
    _move("order_prepared_again", {_S.FORWARD_FAILED}, {_S.FORWARDING}, None,
          "its order cannot be sent to Copenhagen"),
    _move("order_sent", BEING_FORWARDED, {_S.FORWARDED}, "forwarded", "its order cannot be recorded as sent"),
    _move("order_failed", BEING_FORWARDED, {_S.FORWARD_FAILED}, "forward_failed",
          "its order cannot be recorded as failed"),
    _move("first_visit", {_S.FORWARDED}, {_S.IN_TRAINING}, "training_started", "its training cannot start"),
    _move("sent_back", WITH_COPENHAGEN, {_S.ROUTED_ELSEWHERE}, "sent_back",
          "the citizen cannot be sent back to Løjtegårdsvej"),
    _move("course_completed", WITH_COPENHAGEN, {_S.COMPLETED}, "completed", "the course cannot be completed"),
    _move("copenhagen_chosen", {_S.ROUTED_ELSEWHERE}, {_S.AWAITING_CONSENT, _S.FORWARDING}, "route_chosen",
          "it cannot be sent to Copenhagen instead of Løjtegårdsvej", by_name=True),
    _move("copenhagen_chosen_for_incomplete", {_S.INCOMPLETE}, {_S.INCOMPLETE}, "route_chosen",
          "it cannot be sent to Copenhagen instead of Løjtegårdsvej", by_name=True),
    _move("redecide", INTAKE_OUTCOMES | BEING_FORWARDED, INTAKE_OUTCOMES | {_S.FORWARDING}, "redecided",
          "its plan cannot be decided again (training has begun, or the order is with Copenhagen)",
          by_name=True),
)
"""Every legal move. A pair (from, to) belongs to one move only among the moves not made by
name (tests/unit/test_lifecycle.py)."""
SCOPE_DECISIONS = MOVES[:2]
"""The moves ``begin`` makes: intake's, with the scope decision's reasons in their event."""
_MOVED = MOVES[2:]
"""The moves ``move`` makes: every one but intake's."""


class IllegalMove(GenopError):
    """The case is not in a state from which this change is allowed."""

    code = "illegal_move"


def find_move(source: CaseState | None, target: CaseState, among: tuple[Move, ...] = MOVES,
              name: str | None = None) -> Move | None:
    """The move from ``source`` (None: a new case) to ``target``, if there is one; with ``name``,
    only that move (the moves made by name are found only so)."""
    return next((m for m in among if (m.name == name if name is not None else not m.by_name)
                 and target in m.targets
                 and (source in m.sources if source is not None else not m.sources)), None)


def past_intake(case: Case) -> bool:
    """A revised plan no longer decides the case's route: it has left intake, or it is routed
    elsewhere only after Copenhagen had it (sent back: Copenhagen's visitation decision) or
    after Løjtegårdsvej offered its first session (its training is under way there), or it is back
    at an intake outcome with the citizen's consent already recorded (a dispute re-decided it out
    of scope: only a redecide, which knows the consent, takes it on)."""
    return (case.state not in INTAKE_OUTCOMES or case.forwarded_at is not None or case.first_session_at is not None
            or case.consent_decision is not None)


def begin(case: Case, to: CaseState) -> None:
    """The scope decision's state (lifecycle 1–2): a new case begins in it, and a case still at
    intake moves to it when a revised plan is decided again.

    Intake writes the ``scope_decided`` event itself, after the plan's receipt, with the
    decision's reasons; the case's timestamps are intake's too.
    """
    _legal(case, to, None, among=SCOPE_DECISIONS)
    case.state = to.value


def move(session: Session, case: Case, to: CaseState, *, at: datetime, detail: str | None = None,
         data: dict[str, Any] | None = None, occurred: datetime | date | None = None,
         refusal: str | None = None, via: str | None = None) -> CaseEvent | None:
    """Move the case to ``to`` in the caller's transaction (nothing is committed): state,
    ``updated_at``, the move's own dates, and its event with ``detail`` and ``data``.

    ``occurred`` is when it happened, where the case keeps it: the order's sending time
    (``forwarded_at``, default ``at``) or the completion date (``completed_on``, required).
    A case already in ``to`` is left as it is and nothing is written — a re-run changes
    nothing — unless staying is itself a move (a second failure to send is recorded).
    An illegal move raises ``IllegalMove``, ending with ``refusal`` or the move's own words.
    ``via`` names a move made only by name (a staff decision, e.g. ``copenhagen_chosen``).
    """
    if case.state == to and find_move(to, to, _MOVED, name=via) is None:
        return None
    found = _legal(case, to, refusal, _MOVED, name=via)
    if found.event is not None and not detail:
        raise ValueError(f"the move {found.name} writes {found.event!r}: give its detail")
    dates = _dates(to, at, occurred)
    case.state = to
    case.updated_at = at
    for name, value in dates.items():
        setattr(case, name, value)
    if found.event is None:
        return None
    return append_event(session, case, found.event, detail or "", at, data)


def _legal(case: Case, to: CaseState, refusal: str | None, among: tuple[Move, ...] = MOVES,
           name: str | None = None) -> Move:
    current = CaseState(case.state) if case.state is not None else None
    found = find_move(current, to, among, name)
    if found is None:
        into = next((m.refusal for m in MOVES if (m.name == name if name is not None else not m.by_name)
                     and to in m.targets and bool(m.sources) == (current is not None)),
                    f"it cannot become {to}")
        where = DESCRIPTIONS[current] if current is not None else "not yet taken in"
        raise IllegalMove(f"{case.case_number} is {where}; {refusal or into}")
    return found


def _dates(to: CaseState, at: datetime, occurred: datetime | date | None) -> dict[str, date | datetime]:
    """The dates a move sets with the state (forwarding: agreement §4; completion: §8)."""
    if to is CaseState.FORWARDED:
        sent = occurred if isinstance(occurred, datetime) else at
        return {"forwarded_at": sent, "forwarded_on": local(sent).date()}
    if to is CaseState.COMPLETED:
        if not isinstance(occurred, date) or isinstance(occurred, datetime):
            raise ValueError("completing a case needs its completion date (occurred=...)")
        return {"completed_on": occurred}
    return {}


# -- the drawing (docs/lifecycle.md) ----------------------------------------------------

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "lifecycle.md"
COMMAND = "make diagram"


def _ordered(states: Iterable[CaseState]) -> list[CaseState]:
    order = list(CaseState)
    return sorted(states, key=order.index)


def _label(m: Move) -> str:
    return m.event if m.event is not None else f"{m.name} (no event)"


def diagram() -> str:
    """The lifecycle as a Mermaid ``stateDiagram-v2``: every state with its description, every
    move labelled with its event (a move between many states through a choice named after it),
    start arrows into the intake outcomes and end arrows from the closed states."""
    lines = ["stateDiagram-v2"]
    lines += [f"    {state}: {DESCRIPTIONS[state]}" for state in CaseState]
    for m in MOVES:
        targets = _ordered(m.targets)
        if not m.sources:
            lines += [f"    [*] --> {target}: {_label(m)}" for target in targets]
        elif len(m.sources) > 1 and len(targets) > 1:
            lines.append(f"    state {m.name} <<choice>>")
            lines += [f"    {source} --> {m.name}: {m.name.replace('_', ' ')}" for source in _ordered(m.sources)]
            lines += [f"    {m.name} --> {target}: {_label(m)}" for target in targets]
        else:
            lines += [f"    {source} --> {target}: {_label(m)}"
                      for source in _ordered(m.sources) for target in targets]
    lines += [f"    {state} --> [*]" for state in _ordered(CLOSED)]
    return "\n".join(lines) + "\n"


def document() -> str:
    """docs/lifecycle.md: the diagram, then the groups and the moves as tables (the legend)."""
    def names(states: Iterable[CaseState]) -> str:
        return ", ".join(f"`{state}`" for state in _ordered(states)) or "— (a new case)"

    parts = [
        "# The case lifecycle",
        "",
        "Drawn from [`genop/lifecycle.py`](../genop/lifecycle.py), the one place that changes a "
        f"case's state; do not edit by hand — run `{COMMAND}` (`python -m genop.lifecycle --write`).",
        "",
        "```mermaid",
        diagram().rstrip("\n"),
        "```",
        "",
        "## Groups of states",
        "",
        "| group | states | meaning |",
        "|---|---|---|",
        *(f"| `{g.name}` | {names(g)} | {g.meaning} |" for g in GROUPS),
        "",
        "## Moves",
        "",
        "| move | from | to | event on the trail | when not allowed: \"GEN-… is …; …\" |",
        "|---|---|---|---|---|",
        *(f"| `{m.name}` | {names(m.sources)} | {names(m.targets)} | "
          f"{f'`{m.event}`' if m.event else 'none (the outbox row is the record)'} | {m.refusal} |"
          for m in MOVES),
        "",
    ]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        DOCUMENT.write_text(document(), encoding="utf-8")
        print(f"wrote {DOCUMENT}")
        return 0
    if not argv:
        sys.stdout.write(document())
        return 0
    print("usage: python -m genop.lifecycle [--write]  (--write updates docs/lifecycle.md)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
