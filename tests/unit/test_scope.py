"""The scope check (agreement "Case lifecycle" 2): route, state and the reasons for them."""

from __future__ import annotations

from datetime import date

import pytest

from genop.config import load_agreement
from genop.errors import PlanError
from genop.lifecycle import CaseState
from genop.scope import (
    Route,
    decide_scope,
    validate_for_intake,
)
from tests.factories import CHILD_CPR, make_plan


@pytest.fixture(scope="module")
def agreement():
    return load_agreement()


def test_example_plan_goes_to_copenhagen_awaiting_consent(agreement):
    decision = decide_scope(make_plan(), agreement)
    assert decision.route is Route.COPENHAGEN
    assert decision.state is CaseState.AWAITING_CONSENT
    assert decision.diagnosis_group == "hip_fracture"
    assert decision.payer == "tarnby"
    assert any("adult (81 at discharge)" in r for r in decision.reasons)


def test_dragor_citizen_is_handled_by_tarnby_and_dragor_pays(agreement):
    decision = decide_scope(make_plan(citizen__municipality_code="155"), agreement)
    assert decision.route is Route.COPENHAGEN
    assert decision.payer == "dragor"
    assert any("Dragør" in r and "Tårnby" in r and "pays" in r for r in decision.reasons)


@pytest.mark.parametrize("code", ["101", "147", "999"])
def test_citizen_of_another_municipality_is_rejected_with_reason(agreement, code):
    decision = decide_scope(make_plan(citizen__municipality_code=code), agreement)
    assert decision.route is Route.REJECTED
    assert decision.state is CaseState.REJECTED
    assert decision.payer is None
    assert any(f"municipality {code}" in r and "not served" in r for r in decision.reasons)


def test_child_is_out_of_scope_as_paediatrics(agreement):
    decision = decide_scope(make_plan(citizen__cpr=CHILD_CPR), agreement)
    assert decision.route is Route.REJECTED
    assert any("under 18" in r and "paediatrics" in r for r in decision.reasons)


def test_citizen_turning_18_on_discharge_day_is_adult(agreement):
    decision = decide_scope(make_plan(citizen__cpr="021108-4000", discharge_date="2026-11-02",
                                      start_by=None), agreement)
    assert decision.route is Route.COPENHAGEN
    assert any("adult (18 at discharge)" in r for r in decision.reasons)


def test_specialised_rehabilitation_stays_with_the_region(agreement):
    decision = decide_scope(make_plan(level="specialiseret"), agreement)
    assert decision.route is Route.REGION
    assert decision.state is CaseState.ROUTED_ELSEWHERE
    assert any("genoptræning på specialiseret niveau" in r and "stays with the region" in r
               for r in decision.reasons)


@pytest.mark.parametrize("code, municipality", [("185", "Tårnby Kommune"), ("155", "Dragør Kommune")])
def test_rehabilitation_at_specialised_level_is_the_residence_municipalitys_own_task(agreement, code,
                                                                                      municipality):
    decision = decide_scope(make_plan(level="rehabilitering_specialiseret", citizen__municipality_code=code),
                            agreement)
    assert decision.route is Route.RESIDENCE_MUNICIPALITY
    assert decision.route.value == "residence_municipality"
    assert decision.state is CaseState.ROUTED_ELSEWHERE
    [reason] = [r for r in decision.reasons if r.startswith("level ")]
    assert "rehabilitering på specialiseret niveau" in reason and "not under this agreement" in reason
    assert f"the residence municipality's ({municipality}) own task" in reason
    assert "stays with the region" not in reason and "rejected" not in reason


def test_lymphoedema_is_covered_and_goes_to_copenhagen(agreement):
    for plan in (make_plan(diagnosis_group="lymphoedema"),
                 make_plan(diagnosis_group=None, diagnoses=[{"system": "ICD-10", "code": "DI890"}])):
        decision = decide_scope(plan, agreement)
        assert decision.diagnosis_group == "lymphoedema"
        assert (decision.route, decision.state) == (Route.COPENHAGEN, CaseState.AWAITING_CONSENT)
        assert not any("not covered" in r for r in decision.reasons)


def test_self_training_plan_is_not_forwarded(agreement):
    decision = decide_scope(make_plan(level="selvtraening"), agreement)
    assert decision.route is Route.REJECTED
    assert any("not forwarded" in r for r in decision.reasons)


@pytest.mark.parametrize("level", ["basal", "avanceret"])
def test_non_specialised_levels_go_on(agreement, level):
    assert decide_scope(make_plan(level=level), agreement).route is Route.COPENHAGEN


@pytest.mark.parametrize("group", ["gynaecology", "obstetrics", "paediatrics"])
def test_groups_never_delivered_under_the_agreement_are_rejected(agreement, group):
    decision = decide_scope(make_plan(diagnosis_group=group), agreement)
    assert decision.route is Route.REJECTED
    assert decision.diagnosis_group == group
    assert any("not covered" in r for r in decision.reasons)


def test_geriatric_plan_goes_to_lojtegaardsvej(agreement):
    decision = decide_scope(make_plan(diagnosis_group="geriatric"), agreement)
    assert decision.route is Route.LOJTEGAARDSVEJ
    assert decision.state is CaseState.ROUTED_ELSEWHERE
    assert any("Løjtegårdsvej" in r for r in decision.reasons)


def test_geriatric_plan_goes_to_copenhagen_only_when_tarnby_chose_it_for_the_case(agreement):
    """Agreement §4 "hvor Tårnby Kommune vælger": a choice per case, not a quota."""
    chosen = decide_scope(make_plan(diagnosis_group="geriatric"), agreement, chosen_route=Route.COPENHAGEN)
    assert (chosen.route, chosen.state) == (Route.COPENHAGEN, CaseState.AWAITING_CONSENT)
    assert any("Tårnby chose for this case" in r for r in chosen.reasons)
    default = decide_scope(make_plan(diagnosis_group="geriatric"), agreement)
    assert default.route is Route.LOJTEGAARDSVEJ
    assert any("Tårnby may choose Copenhagen" in r for r in default.reasons)


def test_a_chosen_route_counts_only_for_a_group_with_a_choice(agreement):
    assert decide_scope(make_plan(), agreement, chosen_route=Route.LOJTEGAARDSVEJ).route is Route.COPENHAGEN
    assert decide_scope(make_plan(diagnosis_group="gynaecology"), agreement,
                        chosen_route=Route.COPENHAGEN).route is Route.REJECTED


def test_the_choice_comes_from_config_so_a_new_group_with_a_choice_is_a_data_change(agreement):
    groups = dict(agreement.diagnosis_groups)
    groups["stroke"] = groups["stroke"].model_copy(update={"default_route": "lojtegaardsvej", "choice": "tarnby"})
    changed = agreement.model_copy(update={"diagnosis_groups": groups})
    assert changed.chosen_groups == ("geriatric", "stroke")
    plan = make_plan(diagnosis_group="stroke")
    assert decide_scope(plan, changed).route is Route.LOJTEGAARDSVEJ
    assert decide_scope(plan, changed, chosen_route=Route.COPENHAGEN).route is Route.COPENHAGEN


def test_diagnosis_group_is_derived_from_icd10_prefix(agreement):
    decision = decide_scope(make_plan(diagnosis_group=None, diagnoses=[
        {"system": "ICD-10", "code": "DI639", "text": "Apopleksi"}]), agreement)
    assert decision.diagnosis_group == "stroke"
    assert decision.route is Route.COPENHAGEN
    assert any("derived from ICD-10 DI639" in r for r in decision.reasons)


def test_unknown_icd10_code_without_group_leaves_case_incomplete(agreement):
    decision = decide_scope(make_plan(diagnosis_group=None, diagnoses=[
        {"system": "ICD-10", "code": "DZ999"}]), agreement)
    assert decision.state is CaseState.INCOMPLETE
    assert decision.route is None
    assert any("DZ999 matches no prefix" in r for r in decision.reasons)


@pytest.mark.parametrize("field", ["function_before", "function_at_discharge", "rehab_need"])
def test_plan_without_annex4_description_is_not_an_order(agreement, field):
    decision = decide_scope(make_plan(**{field: "   "}), agreement)
    assert decision.state is CaseState.INCOMPLETE
    assert any("not an order" in r and field in r for r in decision.reasons)


def test_out_of_scope_plan_is_rejected_even_when_incomplete(agreement):
    decision = decide_scope(make_plan(citizen__municipality_code="101", rehab_need=""), agreement)
    assert decision.state is CaseState.REJECTED


def test_discharge_in_the_future_is_a_contract_error(agreement):
    with pytest.raises(PlanError) as err:
        validate_for_intake(make_plan(), agreement, as_of=date(2026, 11, 1))
    assert err.value.code == "discharge_in_future"
    assert "2026-11-02" in err.value.message


def test_unknown_diagnosis_group_key_is_a_contract_error(agreement):
    with pytest.raises(PlanError) as err:
        validate_for_intake(make_plan(diagnosis_group="broken_heart"), agreement, as_of=date(2026, 11, 3))
    assert err.value.code == "unknown_diagnosis_group"
    assert "broken_heart" in err.value.message


# --- reasons say what happens in the state the plan ends in ---------------------------

@pytest.mark.parametrize("changes", [
    {"citizen__municipality_code": "101"},
    {"citizen__cpr": CHILD_CPR},
    {"level": "selvtraening"},
    {"level": "specialiseret"},
    {"level": "rehabilitering_specialiseret"},
])
def test_a_plan_not_for_copenhagen_is_never_told_its_order_goes_there(agreement, changes):
    decision = decide_scope(make_plan(**changes), agreement)
    assert decision.state in (CaseState.REJECTED, CaseState.ROUTED_ELSEWHERE)
    assert not any("Copenhagen" in r or "consent" in r for r in decision.reasons), decision.reasons


def test_rejected_plan_of_a_covered_group_names_the_group_without_routing_it(agreement):
    decision = decide_scope(make_plan(citizen__municipality_code="101"), agreement)
    assert decision.reasons[-1] == "diagnosis group hip_fracture as stated by the hospital"


def test_incomplete_plan_says_it_goes_to_copenhagen_once_complete_not_once_consent_is_given(agreement):
    decision = decide_scope(make_plan(rehab_need=""), agreement)
    assert decision.state is CaseState.INCOMPLETE
    assert not any("consent" in r for r in decision.reasons)
    assert any("once the plan is complete" in r for r in decision.reasons)
    assert any("revised plan" in r for r in decision.reasons)


def test_awaiting_consent_plan_says_the_order_goes_once_consent_is_given(agreement):
    decision = decide_scope(make_plan(), agreement)
    assert any("order to Copenhagen once consent is given" in r for r in decision.reasons)


# --- implausible input (limits in config/agreement.yaml) -----------------------------

def test_cpr_read_as_born_in_1858_is_an_implausible_age(agreement):
    plan = make_plan(citizen__cpr="010158-5234")
    assert plan.citizen.birth_date == date(1858, 1, 1)
    with pytest.raises(PlanError) as err:
        validate_for_intake(plan, agreement, as_of=date(2026, 11, 3))
    assert err.value.code == "implausible_age"
    assert "168" in err.value.message and "limits.max_age_years" in err.value.message
    assert "010158" not in err.value.message and "5234" not in err.value.message


def test_a_citizen_of_exactly_the_maximum_age_is_taken_in(agreement):
    oldest = agreement.limits.max_age_years
    born = 2026 - oldest  # 1901: 7th digit 0-3 gives the 1900s
    validate_for_intake(make_plan(citizen__cpr=f"0101{born % 100:02d}-1234"), agreement, as_of=date(2026, 11, 3))


@pytest.mark.parametrize("field, kind", [
    ("plan_id", "plan_id"), ("citizen__name", "short_text"), ("hospital__department", "short_text"),
    ("rehab_need", "description"), ("ward_note", "other_text"),
])
def test_text_longer_than_its_configured_bound_is_refused(agreement, field, kind):
    bound = getattr(agreement.limits.max_chars, kind)
    validate_for_intake(make_plan(**{field: "x" * bound}), agreement, as_of=date(2026, 11, 3))
    with pytest.raises(PlanError) as err:
        validate_for_intake(make_plan(**{field: "x" * (bound + 1)}), agreement, as_of=date(2026, 11, 3))
    assert err.value.code == "field_too_long"
    assert f"limits.max_chars.{kind}" in err.value.message
    assert "xxxxx" not in err.value.message


def test_a_100000_character_plan_id_is_refused(agreement):
    with pytest.raises(PlanError) as err:
        validate_for_intake(make_plan(plan_id="P" * 100_000), agreement, as_of=date(2026, 11, 3))
    assert err.value.code == "field_too_long"
    assert "plan_id is 100,000 characters long" in err.value.message


def test_a_regional_plan_of_an_uncovered_group_is_not_told_it_is_rejected(agreement):
    decision = decide_scope(make_plan(level="specialiseret", diagnosis_group="gynaecology"), agreement)
    assert decision.route is Route.REGION
    assert not any("rejected" in r for r in decision.reasons), decision.reasons
