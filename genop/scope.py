"""Is this plan ours, where does it go, and why (agreement "Case lifecycle" 1–2).

``decide_scope`` is a pure function: a plan and the agreement in, a decision with its
reasons out. Nothing is stored or sent here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from genop.config import Agreement
from genop.cpr import parse_cpr
from genop.errors import PlanError
from genop.lifecycle import CaseState
from genop.plans import Plan, check_plan_limits

__all__ = ["Route", "ScopeDecision", "decide_scope"]


class Route(StrEnum):
    COPENHAGEN = "copenhagen"
    LOJTEGAARDSVEJ = "lojtegaardsvej"
    REGION = "region"
    RESIDENCE_MUNICIPALITY = "residence_municipality"
    """Not under this agreement: the residence municipality's own task (rehabilitering på
    specialiseret niveau, sub-agreement §1)."""
    REJECTED = "rejected"


@dataclass(frozen=True)
class ScopeDecision:
    state: CaseState
    route: Route | None
    diagnosis_group: str | None
    payer: str | None
    """Party key of the municipality that pays: the citizen's own (Dragør pays for its citizens)."""
    reasons: tuple[str, ...] = field(default_factory=tuple)


def validate_for_intake(plan: Plan, agreement: Agreement, as_of: date) -> None:
    """Contract checks that need the business date or the configuration.

    A plan failing these is quarantined: it is not a document we can make a case of.
    Besides the agreement's own rules these are genop's plausibility bounds
    (``limits``): a text longer than ``max_chars`` allows, or a citizen older than
    ``max_age_years`` at discharge — a CPR number read by the century rule as born in
    1858 is a typing error, not a 168-year-old.
    """
    check_plan_limits(plan, agreement.limits)
    age = parse_cpr(plan.citizen.cpr).age_on(plan.discharge_date)
    oldest = agreement.limits.max_age_years
    if age > oldest:
        raise PlanError(
            f"The citizen's CPR number gives an age of {age} at discharge (born in "
            f"{plan.citizen.birth_date.year} by the century rule of its 7th digit); more than "
            f"{oldest} (limits.max_age_years) is implausible: check the CPR number with the hospital",
            code="implausible_age",
        )
    if plan.discharge_date > as_of:
        raise PlanError(
            f"discharge_date {plan.discharge_date.isoformat()} is in the future "
            f"(today is {as_of.isoformat()}); a plan is written at discharge",
            code="discharge_in_future",
        )
    group = plan.diagnosis_group
    if group is not None and group not in agreement.diagnosis_groups:
        known = ", ".join(sorted(agreement.diagnosis_groups))
        raise PlanError(
            f"diagnosis_group {group!r} is not a diagnosis group of the agreement (known: {known})",
            code="unknown_diagnosis_group",
        )


def derive_diagnosis_group(plan: Plan, agreement: Agreement) -> tuple[str | None, str]:
    """The plan's own group, else the first diagnosis whose ICD-10 code has a configured prefix."""
    if plan.diagnosis_group:
        return plan.diagnosis_group, f"diagnosis group {plan.diagnosis_group} as stated by the hospital"
    for diagnosis in plan.diagnoses:
        group = agreement.group_for_icd10(diagnosis.code)
        if group is not None:
            return group, f"diagnosis group {group} derived from ICD-10 {diagnosis.code} (config prefix table)"
    codes = ", ".join(d.code for d in plan.diagnoses)
    return None, (
        f"no diagnosis group: ICD-10 {codes} matches no prefix in config/agreement.yaml and the plan "
        "states no diagnosis_group; add the prefix or ask the hospital for a revised plan"
    )


def decide_scope(plan: Plan, agreement: Agreement, *, chosen_route: Route | None = None) -> ScopeDecision:
    """Route a plan; the reasons explain every criterion that decided it.

    ``chosen_route`` is the route staff chose for this case (agreement §4 "hvor Tårnby
    Kommune vælger", see genop.routing); it counts only for a group with a ``choice``. No
    count of earlier cases ever changes a route: the expected share is a capacity figure.
    """
    rules = agreement.scope
    reasons: list[str] = []
    blocked: Route | None = None

    code = plan.citizen.municipality_code
    party = agreement.municipality_for_code(code)
    payer: str | None = None
    if code not in rules.served_municipalities or party is None:
        name = f" ({party.name})" if party else ""
        reasons.append(
            f"municipality {code}{name} is not served by this agreement "
            f"(only {', '.join(rules.served_municipalities)}): rejected"
        )
        blocked = Route.REJECTED
    else:
        payer = party.key
        if party.handled_by:
            actor = agreement.party(party.handled_by)
            reasons.append(
                f"{party.name} citizen ({code}): {actor.name} handles the case on its behalf, "
                f"{party.name} pays (sub-agreement 2021)"
            )
        else:
            reasons.append(f"{party.name} citizen ({code})")

    age = parse_cpr(plan.citizen.cpr).age_on(plan.discharge_date)
    if age < rules.adult_age:
        reasons.append(
            f"citizen is {age} at discharge, under {rules.adult_age}: paediatrics is never "
            "delivered under the agreement: rejected"
        )
        blocked = blocked or Route.REJECTED
    else:
        reasons.append(f"adult ({age} at discharge)")

    level = plan.level
    if level in rules.region_levels:
        reasons.append(f"level {level} is specialised rehabilitation (genoptræning på specialiseret niveau, "
                       "agreement §4, Bilag 2): stays with the region")
        blocked = blocked or Route.REGION
    elif level in rules.residence_municipality_levels:
        own = f" ({party.name})" if payer is not None and party is not None else ""
        reasons.append(f"level {level} is rehabilitation at specialised level (rehabilitering på specialiseret "
                       "niveau, sub-agreement §1): not under this agreement (§3 covers non-specialised "
                       f"ambulant rehabilitation only) and not the region's; the residence municipality's{own} "
                       "own task")
        blocked = blocked or Route.RESIDENCE_MUNICIPALITY
    elif level in rules.not_forwarded_levels:
        reasons.append(f"level {level} (self-training) plans are not forwarded (agreement §4): rejected")
        blocked = blocked or Route.REJECTED
    else:
        reasons.append(f"level {level} is non-specialised (almen) ambulant rehabilitation")

    group_key, group_reason = derive_diagnosis_group(plan, agreement)
    reasons.append(group_reason)
    missing = plan.missing_descriptions()
    route: Route | None = None
    if group_key is not None:
        group = agreement.diagnosis_groups[group_key]
        if blocked is None:
            route = _route_for_group(group_key, group.covered, group.default_route, agreement,
                                     chosen_route, reasons, complete=not missing)
        elif not group.covered and blocked is Route.REJECTED:  # one more reason to reject it
            route = _route_for_group(group_key, False, group.default_route, agreement, None, reasons)

    if blocked is not None:
        route = blocked
    state = _state_for(route)
    if missing and route in (Route.COPENHAGEN, Route.LOJTEGAARDSVEJ):
        reasons.append(
            "not an order: annex 4 requires " + ", ".join(missing) + " to be described (Bilag 4); "
            "a revised plan from the hospital completes it"
        )
        state = CaseState.INCOMPLETE
    return ScopeDecision(state=state, route=route, diagnosis_group=group_key, payer=payer,
                         reasons=tuple(reasons))


def _route_for_group(key: str, covered: bool, default_route: str, agreement: Agreement,
                     chosen_route: Route | None, reasons: list[str], *, complete: bool = True) -> Route:
    """The group's route, with a reason saying what happens next in the state it leads to.

    Called only when nothing else (municipality, age, level) has decided the plan, so that
    a rejected, regional or residence-municipality case is never told its order goes to Copenhagen.
    """
    group = agreement.diagnosis_groups[key]
    if not covered:
        note = f" ({group.note})" if group.note else ""
        reasons.append(f"{group.name_en} is not covered by the agreement{note}: rejected")
        return Route.REJECTED
    if group.choice is not None and chosen_route is Route.COPENHAGEN:
        reasons.append(f"{group.name_en}: Copenhagen, as Tårnby chose for this case (agreement §4)"
                       + (": order to Copenhagen once consent is given" if complete else ""))
        return Route.COPENHAGEN
    if default_route == Route.LOJTEGAARDSVEJ:
        reasons.append(f"{group.name_en}: Tårnby's own centre at Løjtegårdsvej (agreement §3.1)"
                       + ("; Tårnby may choose Copenhagen for this case (genop case route)"
                          if group.choice is not None else ""))
        return Route.LOJTEGAARDSVEJ
    reasons.append(f"{group.name_en} is covered (Bilag 3): "
                   + ("order to Copenhagen once consent is given" if complete
                      else "for Copenhagen once the plan is complete"))
    return Route.COPENHAGEN


def _state_for(route: Route | None) -> CaseState:
    if route is Route.COPENHAGEN:
        return CaseState.AWAITING_CONSENT
    if route in (Route.LOJTEGAARDSVEJ, Route.REGION, Route.RESIDENCE_MUNICIPALITY):
        return CaseState.ROUTED_ELSEWHERE
    if route is Route.REJECTED:
        return CaseState.REJECTED
    return CaseState.INCOMPLETE
