"""Disputes (agreement §10, Tvister; issue 12): a disagreement between the parties about a case,
an invoice or a settled month, with a life of its own.

A dispute is opened by staff (``genop dispute open``), numbered ``TV-YYYY-NNNN``, and moves
``open`` → ``mediation_called`` → ``resolved`` | ``to_court`` (an ``open`` dispute settled
amicably goes straight to ``resolved``, as §10 wants it settled as early as possible). Each
move is recorded with who, when and why. What it is about is a closed list of keys in
``config/agreement.yaml`` (``disputes.kinds``); the free-text reason stays in genop's store:
Prefect only ever sees the dispute's number.

A dispute is corrected by *redos* (``Action``): each is a deployment whose parameters are the
dispute's number and what to redo, so staff start it from the Prefect UI's Run form or with
``genop dispute redo``. A redo is recorded once per dispute, action and target
(``DisputeRedo.key``): running it again returns what the first run produced and has no
second effect.

This module is the vocabulary the parts share; it imports nothing of Prefect.
"""

from __future__ import annotations

import re
from enum import StrEnum

NUMBER_PREFIX = "TV"
_NUMBER = re.compile(r"^TV-\d{4}-\d{4,}$")


def is_dispute_number(value: object) -> bool:
    """Whether ``value`` has the shape of a dispute number (``TV-2026-0001``)."""
    return isinstance(value, str) and bool(_NUMBER.match(value))


class State(StrEnum):
    """Where a dispute is (§10). The value is what staff read."""

    OPEN = "open"
    MEDIATION_CALLED = "mediation_called"
    RESOLVED = "resolved"
    TO_COURT = "to_court"


MOVES: dict[State, frozenset[State]] = {
    State.OPEN: frozenset({State.MEDIATION_CALLED, State.RESOLVED}),
    State.MEDIATION_CALLED: frozenset({State.RESOLVED, State.TO_COURT}),
    State.RESOLVED: frozenset(),
    State.TO_COURT: frozenset(),
}
"""The moves §10 allows: settled amicably (resolved) at any point before the courts; the courts
only after a mediation meeting has been called."""

CLOSED = frozenset({State.RESOLVED, State.TO_COURT})


class SubjectKind(StrEnum):
    """What a dispute concerns: exactly one of a case, an invoice (a settlement document's
    number) or a settled month."""

    CASE = "case"
    INVOICE = "invoice"
    MONTH = "month"


class Change(StrEnum):
    """A line of a dispute's timeline."""

    OPENED = "opened"
    MEDIATION_CALLED = "mediation_called"
    RESOLVED = "resolved"
    TO_COURT = "to_court"
    REDO = "redo"


class Action(StrEnum):
    """What can be redone for a dispute; each is its own deployment (``DEPLOYMENTS``)."""

    RESEND_ORDER = "resend-order"
    RESEND_FINAL_STATUS = "resend-final-status"
    REBOOK_TRANSPORT = "rebook-transport"
    RESEND_NOTICE = "resend-notice"
    CORRECT_SETTLEMENT = "correct-settlement"
    REDECIDE = "redecide"


DEPLOYMENTS: dict[Action, str] = {action: f"dispute-{action.value}" for action in Action}
"""The deployment that carries out each action (the flow's name is the same)."""


class RedoStatus(StrEnum):
    STARTED = "started"
    """Recorded, its effects not yet all recorded (a crashed run: the next run finishes it)."""
    DONE = "done"
