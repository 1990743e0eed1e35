"""Escalation without I/O: who is told per concern and level (config), the scheduled day, the
notice's Danish text (case number and kind in the subject, the figures in the body)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml

from genop.config import DEFAULT_AGREEMENT_FILE, load_agreement
from genop.errors import ConfigError
from genop.escalation.schedule import scan_day
from genop.templates import render
from tests.unit.test_config import write_mutated


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_AGREEMENT_FILE.read_text(encoding="utf-8"))


def test_a_consent_reminder_goes_to_tarnby_only_and_a_breach_also_to_the_citizens_municipality():
    notices = load_agreement().escalation_notices
    assert notices.recipients("case_time", "warning") == ("tarnby",)
    assert notices.recipients("case_time", "breach") == ("tarnby", "concerned")
    assert "copenhagen" in notices.recipients("service_level", "breach")


def test_an_unknown_recipient_is_a_config_error_naming_the_key(raw, tmp_path):
    path = write_mutated(raw, tmp_path, lambda d: d["escalation_notices"]["budget"].update(breach=["tarnbyy"]))
    with pytest.raises(ConfigError) as caught:
        load_agreement(path)
    assert "escalation_notices.budget.breach.0: 'tarnbyy' is neither a party nor 'concerned'" in str(caught.value)


def test_the_scheduled_scan_skips_weekends_and_danish_holidays_but_a_given_day_is_scanned():
    assert scan_day(None, on=date(2026, 12, 7)) == date(2026, 12, 7)   # a Monday
    assert scan_day(None, on=date(2026, 12, 5)) is None                # a Saturday
    assert scan_day(None, on=date(2026, 12, 25)) is None               # Christmas Day, a Friday
    assert scan_day(date(2026, 12, 25), on=date(2026, 12, 25)) == date(2026, 12, 25)


def test_the_notice_subject_names_the_case_and_kind_and_the_body_its_figures():
    context = {"kind": "consent_missing", "level": "breach", "case_number": "GEN-2026-000007", "budget": ""}
    subject = render("notices/risk.subject.da.txt.j2", **context).strip()
    assert subject == "Overskredet: samtykke mangler – sag GEN-2026-000007"
    contact = load_agreement().parties["tarnby"].contact
    body = render("notices/risk.da.txt.j2", **context, concern="case_time", municipality="dragor",
                  since=date(2026, 11, 8), scan_on=date(2026, 11, 9), previous="warning",
                  figures={"days_waiting": "6"}, sender=contact, recipient=contact)
    assert "Sag GEN-2026-000007 (Dragør Kommune) er i risiko på sagsbehandlingstid" in body
    assert "Niveau: overskredet (før: varsel), siden 8. november 2026" in body
    assert "days_waiting: 6" in body
    budget = render("notices/risk.subject.da.txt.j2", kind="budget_forecast", level="warning", case_number=None,
                    budget="dragor").strip()
    assert budget == "Varsel: budgettet forventes overskredet – budget Dragør Kommune"
