"""The agreement as data: config/agreement.yaml loads, holds the agreement's figures, and
every broken configuration is refused with a message that names the key."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from genop.config import DEFAULT_AGREEMENT_FILE, Agreement, load_agreement
from genop.errors import ConfigError
from genop.settlement.rules import aconto_split, tariff_group, tariff_table_on

Mutation = Callable[[dict[str, Any]], None]


def price(agreement: Agreement, group: str, on: date) -> Decimal:
    """The price of a tariff group in the table in force on a day (genop.settlement.rules)."""
    table = tariff_table_on(agreement.tariffs, on)
    assert table is not None, f"no tariff table in force on {on}"
    return table.groups[group].price


def sks_group(agreement: Agreement, sks_code: str, on: date) -> str | None:
    table = tariff_table_on(agreement.tariffs, on)
    assert table is not None, f"no tariff table in force on {on}"
    return tariff_group(table, sks_code)


@pytest.fixture(scope="module")
def agreement() -> Agreement:
    return load_agreement()


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_AGREEMENT_FILE.read_text(encoding="utf-8"))


def write_mutated(raw: dict[str, Any], tmp_path: Path, mutate: Mutation) -> Path:
    data = copy.deepcopy(raw)
    mutate(data)
    path = tmp_path / "agreement.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_agreement(path)
    return str(caught.value)


# -- the shipped file -----------------------------------------------------------------------


def test_shipped_agreement_loads_from_the_repository_config() -> None:
    agreement = load_agreement()
    assert set(agreement.parties) >= {
        "tarnby", "dragor", "copenhagen", "transport_tarnby", "transport_dragor", "dragor_borgerservice",
    }
    assert len(agreement.diagnosis_groups) == 23


def test_bilag3_stroke_figures_are_in_the_config(agreement: Agreement) -> None:
    stroke = agreement.diagnosis_groups["stroke"]
    assert stroke.expected_visits == {"GEN1A": 175, "GEN2A": 385, "GEN3A": 6}
    assert (stroke.expected_patients, stroke.sessions_per_course) == (31, 18)
    assert stroke.service_level_group == 5


def test_dags_2007_prices_are_exact_decimals(agreement: Agreement) -> None:
    day = date(2026, 1, 1)
    assert price(agreement, "GEN1A", day) == Decimal("640.00")
    assert price(agreement, "GEN2A", day) == Decimal("855.00")
    assert price(agreement, "GEN3A", day) == Decimal("1381.00")
    assert isinstance(price(agreement, "GEN1A", day), Decimal)


def test_dags_2007_table_is_in_force_from_1_january_2007_only(agreement: Agreement) -> None:
    table = tariff_table_on(agreement.tariffs, date(2007, 1, 1))
    assert table is not None and table.valid_from == date(2007, 1, 1)
    assert tariff_table_on(agreement.tariffs, date(2006, 12, 31)) is None


@pytest.mark.parametrize(
    ("code", "group"),
    [("DS720", "hip_fracture"), ("DS72.0", "hip_fracture"), ("ds720", "hip_fracture"), ("S72.0", "hip_fracture"),
     ("DI639", "stroke"), ("DG450", "stroke"), ("DG35", "other_neurological"), ("DM161", "hip_replacement"),
     ("DM171", "knee_replacement"), ("DS525", "fracture_shoulder_arm_ankle"), ("DO800", "obstetrics"),
     ("DI890", "lymphoedema"), ("DQ820", "lymphoedema"), ("DM485", "spinal_osteoporosis"),
     ("DM480", "back_not_operated"), ("DR54", "geriatric")],
)
def test_diagnosis_group_is_derived_from_the_longest_icd10_prefix(agreement: Agreement, code: str, group: str) -> None:
    assert agreement.group_for_icd10(code) == group


def test_unknown_icd10_code_has_no_group(agreement: Agreement) -> None:
    assert agreement.group_for_icd10("DX999") is None
    assert agreement.group_for_icd10("") is None


def test_registered_sks_subcode_is_priced_by_its_parent_code(agreement: Agreement) -> None:
    day = date(2026, 1, 1)
    assert sks_group(agreement, "BLNR1", day) == "GEN2A"
    assert sks_group(agreement, "AAF6", day) == "GEN3A"
    assert sks_group(agreement, "blkz0", day) == "GEN1A"
    assert sks_group(agreement, "ZZZ99", day) is None


def test_aconto_splits_200000_into_150000_for_tarnby_and_50000_for_dragor(agreement: Agreement) -> None:
    assert agreement.aconto.monthly_total == Decimal("200000")
    assert aconto_split(agreement) == {"tarnby": Decimal("150000"), "dragor": Decimal("50000")}
    assert agreement.aconto.annual_level == Decimal("2400000")


def test_dragor_alone_receives_a_copy_of_the_final_status(agreement: Agreement) -> None:
    assert [key for key, party in agreement.parties.items() if party.receives_final_status_copy] == ["dragor"]


def test_each_route_has_its_training_unit(agreement: Agreement) -> None:
    assert agreement.parties["copenhagen"].training_unit == "copenhagen_training"
    assert agreement.parties["lojtegaardsvej"].training_unit == "lojtegaardsvej"


def test_dragor_is_handled_by_tarnby_and_pays_by_its_own_ean(agreement: Agreement) -> None:
    dragor = agreement.party("dragor")
    assert dragor.handled_by == "tarnby"
    assert dragor.ean == "5798009933423"
    assert agreement.municipality_for_code("155") == dragor
    assert agreement.municipality_for_code("999") is None


def test_unknown_party_key_is_a_config_error_naming_the_key(agreement: Agreement) -> None:
    with pytest.raises(ConfigError, match="frederiksberg"):
        agreement.party("frederiksberg")


def test_uncovered_groups_are_rejected_and_geriatric_goes_to_lojtegaardsvej(agreement: Agreement) -> None:
    groups = agreement.diagnosis_groups
    uncovered = {key for key, group in groups.items() if not group.covered}
    assert uncovered == {"gynaecology", "obstetrics", "paediatrics"}  # agreement §3: only these three
    assert groups["lymphoedema"].covered and groups["lymphoedema"].default_route == "copenhagen"
    assert {groups[key].default_route for key in uncovered} == {"rejected"}
    assert groups["geriatric"].default_route == "lojtegaardsvej"
    assert agreement.chosen_groups == ("geriatric",)  # agreement §4: Tårnby chooses per case
    assert agreement.geriatric_routing.copenhagen_share == Decimal("0.10")  # a capacity figure
    assert set(agreement.geriatric_routing.reasons) == {"capacity", "needs_specialised_training",
                                                        "citizens_wish", "other"}


def test_municipality_budgets_default_to_the_aconto_split(agreement: Agreement) -> None:
    assert agreement.annual_budget("tarnby", date(2026, 1, 1)) == Decimal("1800000")
    assert agreement.annual_budget("dragor", date(2026, 1, 1)) == Decimal("600000")


# -- broken configurations ------------------------------------------------------------------


def _append_overlapping_table(data: dict[str, Any]) -> None:
    data["tariffs"].append({**copy.deepcopy(data["tariffs"][0]), "name": "DAGS 2026", "valid_from": "2026-01-01"})


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(lambda d: d["aconto"]["split"].update(dragor="0.20"),
                     "aconto.split: shares must sum to 1 (got 0.95)", id="split-does-not-sum-to-1"),
        pytest.param(lambda d: d["tariffs"][0]["groups"]["GEN1A"].update(price=640.1),
                     "tariffs.0.groups.GEN1A.price", id="money-as-float"),
        pytest.param(lambda d: d["tariffs"][0]["groups"]["GEN1A"].update(price="six hundred"),
                     "tariffs.0.groups.GEN1A.price: Input should be a valid decimal", id="money-not-a-number"),
        pytest.param(lambda d: d["aconto"].update(split={"tarnby": "0.75", "dragoer": "0.25"}),
                     "aconto.split.dragoer", id="unknown-party-in-split"),
        pytest.param(_append_overlapping_table, "tariffs.1.valid_from", id="overlapping-tariff-tables"),
        pytest.param(lambda d: d["diagnosis_groups"]["stroke"]["icd10_prefixes"].append("ds72"),
                     "diagnosis_groups.hip_fracture.icd10_prefixes.0: DS72 is also in stroke",
                     id="duplicate-icd-prefix"),
        pytest.param(lambda d: d["aconto"].pop("monthly_total"),
                     "aconto.monthly_total: Field required", id="missing-required-key"),
        pytest.param(lambda d: d["aconto"].update(montly_total="1"),
                     "aconto.montly_total: Extra inputs are not permitted", id="misspelt-key"),
        pytest.param(lambda d: d["diagnosis_groups"]["gynaecology"].update(default_route="copenhagen"),
                     "diagnosis_groups.gynaecology.default_route", id="route-contradicts-covered"),
        pytest.param(lambda d: d["diagnosis_groups"]["stroke"].update(service_level_group=9),
                     "diagnosis_groups.stroke.service_level_group", id="unknown-service-level-group"),
        pytest.param(lambda d: d["parties"]["dragor"].update(handled_by="hvidovre"),
                     "parties.dragor.handled_by", id="unknown-handled-by"),
        pytest.param(lambda d: d["parties"]["copenhagen"].update(training_unit="tarnby"),
                     "parties.copenhagen.training_unit: 'tarnby' is not a party of kind training_centre",
                     id="training-unit-not-a-training-centre"),
        pytest.param(lambda d: d["parties"]["dragor"].update(receives_final_status_copy="sometimes"),
                     "parties.dragor.receives_final_status_copy", id="final-status-copy-not-a-flag"),
        pytest.param(lambda d: d["tariffs"][0]["groups"]["GEN2A"]["sks_codes"].append("BLNA"),
                     "tariffs.0.groups.GEN2A.sks_codes: BLNA is also in GEN1A", id="sks-code-in-two-groups"),
        pytest.param(lambda d: d["parties"]["tarnby"].update(ean="5798009884382"),
                     "parties.tarnby.ean", id="ean-check-digit"),
        pytest.param(lambda d: d["service_levels"][1].update(training_hours_per_patient="3.0"),
                     "service_levels.1.training_hours_per_patient", id="training-time-not-printed-formula"),
    ],
)
def test_broken_config_is_refused_with_the_file_and_key_named(
    raw: dict[str, Any], tmp_path: Path, mutate: Mutation, expected: str
) -> None:
    path = write_mutated(raw, tmp_path, mutate)
    message = config_error(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_tariff_change_with_a_later_validity_date_is_accepted(raw: dict[str, Any], tmp_path: Path) -> None:
    def add_2026_table(data: dict[str, Any]) -> None:
        _append_overlapping_table(data)
        data["tariffs"][0]["valid_to"] = "2025-12-31"
        data["tariffs"][1]["groups"]["GEN1A"]["price"] = "700.00"

    agreement = load_agreement(write_mutated(raw, tmp_path, add_2026_table))
    assert price(agreement, "GEN1A", date(2025, 12, 31)) == Decimal("640.00")
    assert price(agreement, "GEN1A", date(2026, 1, 1)) == Decimal("700.00")


def test_missing_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert config_error(missing) == f"{missing}: file not found"


def test_invalid_yaml_is_a_config_error_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "agreement.yaml"
    path.write_text("parties:\n  tarnby: [unclosed\n", encoding="utf-8")
    message = config_error(path)
    assert message.startswith(f"{path}: invalid YAML at line ")


def test_yaml_that_is_not_a_mapping_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "agreement.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    assert "must be a YAML mapping" in config_error(path)


def test_file_inside_the_repository_is_named_by_its_repository_path(
    raw: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("genop.config.REPO_ROOT", tmp_path)
    (tmp_path / "config").mkdir()
    path = write_mutated(raw, tmp_path / "config", lambda d: d["aconto"]["split"].update(dragor="0.20"))
    assert config_error(path) == "config/agreement.yaml: aconto.split: shares must sum to 1 (got 0.95)"


def test_bilag3_visit_columns_add_up_to_the_printed_totals():
    """The seed wins over AGREEMENT.md: geriatric's 132 visits sit in the first (GEN1A) column."""
    agreement = load_agreement()
    totals = {
        group: sum(d.expected_visits.get(group, 0) for d in agreement.diagnosis_groups.values())
        for group in ("GEN1A", "GEN2A", "GEN3A")
    }
    assert totals == {"GEN1A": 2819, "GEN2A": 2067, "GEN3A": 16}


def test_the_old_quota_mode_is_refused_naming_the_key(raw: dict[str, Any], tmp_path: Path) -> None:
    """The expected share is a capacity figure (agreement §3.1), never a quota: no mode to set."""
    path = write_mutated(raw, tmp_path, lambda d: d["geriatric_routing"].update(mode="quota"))
    assert "geriatric_routing.mode" in config_error(path)


def test_a_choice_needs_a_group_that_does_not_already_go_to_copenhagen(raw: dict[str, Any], tmp_path: Path) -> None:
    path = write_mutated(raw, tmp_path, lambda d: d["diagnosis_groups"]["stroke"].update(choice="tarnby"))
    assert "diagnosis_groups.stroke.choice" in config_error(path)



def test_escalation_thresholds_are_effective_dated(raw: dict[str, Any], tmp_path: Path) -> None:
    def add_2027_entry(data: dict[str, Any]) -> None:
        data["escalation"].append({**copy.deepcopy(data["escalation"][0]), "valid_from": "2027-01-01",
                                   "consent_missing_after_days": 9})

    agreement = load_agreement(write_mutated(raw, tmp_path, add_2027_entry))
    assert agreement.escalation_on(date(2026, 12, 31)).consent_missing_after_days == 5
    assert agreement.escalation_on(date(2027, 1, 1)).consent_missing_after_days == 9


def test_escalation_entries_out_of_order_are_refused(raw: dict[str, Any], tmp_path: Path) -> None:
    def add_earlier_entry(data: dict[str, Any]) -> None:
        data["escalation"].append({**copy.deepcopy(data["escalation"][0]), "valid_from": "2006-01-01"})

    message = config_error(write_mutated(raw, tmp_path, add_earlier_entry))
    assert "escalation.1.valid_from: must be later than escalation.0.valid_from (2007-01-01)" in message
