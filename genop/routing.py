"""Tårnby's choice of training unit for a case (agreement §3.1, §4), and the capacity figure.

Geriatric cases go to Tårnby's own centre at Løjtegårdsvej by default; the agreement lets
Tårnby choose per case ("hvor Tårnby Kommune vælger", §4), and staff may send one to
Copenhagen. Which groups are chosen so is configuration (``diagnosis_groups.*.choice``).
The ~10% of geriatric cases Copenhagen expects (§3.1) is a capacity-planning figure: it is
shown (``capacity``), never enforced.

The rule for sending a case to Copenhagen (``why_not_to_copenhagen``): the case's group has
a choice, its route is Løjtegårdsvej, it is still at the end of intake (routed there, or
waiting for a complete plan), it was never forwarded (a case Copenhagen sent back stays
Copenhagen's visitation decision, §3.1) and no first session was offered at Løjtegårdsvej
(so nothing — no transport booking — was sent for it there). The order then needs the
citizen's consent (§6), unless consent to forward it is already recorded: then it is
forwarded through the outbox, exactly once.

Who chose and why are kept in genop's store (the case's trail). Prefect sees the case number,
the staff member's name and the reason (the `case-route` Run form's fields, as the consent
form's `recorded_by`); the free-text note never leaves genop's store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from genop.config import Agreement
from genop.errors import GenopError
from genop.scope import Route
from genop.lifecycle import MOVES, CaseState, move
from genop.store.models import Case, CaseEvent
from genop.store.repository import chosen_group_counts, get_case_for_update

ROUTE_CHOSEN = "route_chosen"
"""The case event that records staff's choice of route: who, why (reason key), and a note."""
CHOOSABLE_STATES = frozenset(state for m in MOVES if m.name.startswith("copenhagen_chosen") for state in m.sources)
"""The states from which staff may choose Copenhagen: the sources of the lifecycle's move."""
STAFF_NAME_MAX = 128
NOTE_MAX = 2000


class RoutingError(GenopError):
    code = "routing_error"


@dataclass(frozen=True)
class Rerouted:
    """What became of the case: its state says what follows (consent, forwarding, a plan)."""

    case_number: str
    state: str
    route: str
    changed: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def at_own_centre(case: Case) -> bool:
    """Routed to Tårnby's own centre at Løjtegårdsvej: no order or consent is needed there, the
    centre offers the first session itself (agreement §3.1, §4)."""
    return case.state == CaseState.ROUTED_ELSEWHERE and case.route == Route.LOJTEGAARDSVEJ


def why_not_to_copenhagen(case: Case, agreement: Agreement) -> str | None:
    """Why this case cannot be sent to Copenhagen now (a caseworker's sentence); None if it can."""
    number = case.case_number
    if case.diagnosis_group not in agreement.chosen_groups:
        return (f"case {number} cannot be sent to Copenhagen: its route follows the agreement, "
                "Tårnby chooses only for the groups marked with a choice in config/agreement.yaml")
    if case.route != Route.LOJTEGAARDSVEJ or case.state not in CHOOSABLE_STATES:
        return (f"case {number} is {case.state} with route {case.route}: only an open case routed to "
                "Løjtegårdsvej can be sent to Copenhagen")
    if case.forwarded_at is not None:
        return (f"case {number} was sent back to Løjtegårdsvej by Copenhagen (agreement §3.1): that is "
                "Copenhagen's decision; agree a new referral with Copenhagen's contact person")
    if case.first_session_at is not None:
        return (f"case {number} already has a first session offered at Løjtegårdsvej: its training is "
                "under way there and it stays at Løjtegårdsvej")
    return None


def reason_text(agreement: Agreement, reason: str) -> str:
    """The text staff read for a reason key; an unknown key is refused with the known ones."""
    reasons = agreement.geriatric_routing.reasons
    if reason not in reasons:
        raise RoutingError(f"reason {reason!r} is not one of {', '.join(reasons)} "
                           "(geriatric_routing.reasons in config/agreement.yaml)", code="unknown_reason")
    return reasons[reason]


def route_to_copenhagen(session: Session, case_number: str, *, by: str, reason: str, note: str | None,
                        agreement: Agreement, now: datetime) -> Rerouted:
    """Send one case from Løjtegårdsvej to Copenhagen, recording who chose it and why.

    Asked again for a case already sent to Copenhagen by staff, nothing changes (the caller
    may still open its consent wait or forward it: both are idempotent).
    """
    by, note = by.strip(), (note or "").strip() or None
    if not by or len(by) > STAFF_NAME_MAX:
        raise RoutingError(f"give your name (at most {STAFF_NAME_MAX} characters) as the one who "
                           "chooses Copenhagen", code="routing_invalid")
    if note is not None and len(note) > NOTE_MAX:
        raise RoutingError(f"the note is longer than {NOTE_MAX} characters", code="routing_invalid")
    label = reason_text(agreement, reason)
    case = get_case_for_update(session, case_number)
    if case.route == Route.COPENHAGEN and chosen_route(session, case) is Route.COPENHAGEN:
        return Rerouted(case.case_number, case.state, case.route, changed=False)
    refusal = why_not_to_copenhagen(case, agreement)
    if refusal is not None:
        raise RoutingError(refusal, code="not_reroutable")
    if case.state == CaseState.INCOMPLETE:
        state, then = CaseState.INCOMPLETE, "the order goes to Copenhagen once a complete plan is received"
    elif case.consent_decision == "given":
        state, then = CaseState.FORWARDING, "consent is already recorded: the order is forwarded now"
    else:
        state, then = CaseState.AWAITING_CONSENT, "the citizen's consent to forward the plan is needed (§6)"
    case.route = Route.COPENHAGEN.value
    case.reasons = [*case.reasons, f"Tårnby chose Copenhagen for this case (agreement §4): {label}"]
    move(session, case, state, at=now,
         via="copenhagen_chosen_for_incomplete" if state == CaseState.INCOMPLETE else "copenhagen_chosen",
         detail=(f"sent to Copenhagen instead of Løjtegårdsvej by {by} (agreement §4, Tårnby's choice): "
                 f"{label}" + (f"; note: {note}" if note else "") + f"; {then}"),
         data={"from": Route.LOJTEGAARDSVEJ.value, "route": Route.COPENHAGEN.value, "by": by,
               "reason": reason, "note": note})
    return Rerouted(case.case_number, case.state, case.route, changed=True)


def chosen_route(session: Session, case: Case) -> Route | None:
    """The route staff last chose for the case, if any (a revised plan keeps it)."""
    data = session.scalars(select(CaseEvent.data).where(CaseEvent.case_id == case.id,
                                                        CaseEvent.kind == ROUTE_CHOSEN)
                           .order_by(CaseEvent.id.desc())).first()
    return Route(data["route"]) if data else None


@dataclass(frozen=True)
class Capacity:
    """The year's cases of the chosen groups and how many went to Copenhagen (agreement §3.1)."""

    year: int
    cases: int
    to_copenhagen: int
    expected_share: Decimal

    @property
    def share(self) -> Decimal | None:
        if not self.cases:
            return None
        return (Decimal(self.to_copenhagen) / Decimal(self.cases)).quantize(Decimal("0.001"), ROUND_HALF_UP)

    def as_dict(self) -> dict[str, object]:
        return {"year": self.year, "cases": self.cases, "to_copenhagen": self.to_copenhagen,
                "share": str(self.share) if self.share is not None else None,
                "expected_share": str(self.expected_share)}

    def line(self) -> str:
        share = f"{self.share * 100:.1f}%" if self.share is not None else "no share yet"
        return (f"geriatric cases {self.year}: {self.cases}, sent to Copenhagen {self.to_copenhagen} "
                f"({share}); expected share {self.expected_share * 100:.0f}% (capacity planning, "
                "agreement §3.1, not a quota)")


def capacity(session: Session, agreement: Agreement, year: int) -> Capacity:
    """Cases received in ``year`` in the groups Tårnby chooses for, and those now routed to
    Copenhagen (a case Copenhagen sent back counts at Løjtegårdsvej)."""
    cases, to_copenhagen = chosen_group_counts(session, agreement.chosen_groups, year)
    return Capacity(year, cases, to_copenhagen, agreement.geriatric_routing.copenhagen_share)
