"""`genop agreement notice` and `make run`'s term warning (agreement §12), through the CLI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from genop.config import DEFAULT_AGREEMENT_FILE, load_agreement
from genop_cli.main import EXIT_ERROR, cli


def notice(*args: str):
    return CliRunner().invoke(cli, ["agreement", "notice", *args])


@pytest.fixture
def prolonged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The agreement with an open prolongation from 2010 recorded (GENOP_AGREEMENT_FILE)."""
    data = yaml.safe_load(DEFAULT_AGREEMENT_FILE.read_text(encoding="utf-8"))
    data["terms"]["periods"].append({"valid_from": "2010-01-01", "valid_to": None,
                                     "basis": "prolonged (test)"})
    path = tmp_path / "agreement.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("GENOP_AGREEMENT_FILE", str(path))
    return path


@pytest.mark.parametrize("given, end", [("2027-06-30", "2027-12-31"), ("2027-07-01", "2028-12-31")])
def test_notice_prints_the_earliest_end_of_a_budget_year(prolonged, given, end):
    result = notice("--given", given)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"a termination notice given on {given} ends the agreement on {end} at the earliest (6 months' "
        f"written notice to the end of a budget year, agreement §12; the last day to give notice for that "
        f"end is {end[:4]}-06-30)")
    assert result.stderr == ""


def test_notice_as_json_is_one_document(prolonged):
    result = notice("--given", "2028-02-29", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "given": "2028-02-29", "earliest_end": "2028-12-31", "latest_notice_day": "2028-06-30",
        "notice_months": 6, "in_term": True, "term_runs_until": None, "term_ends_first": False,
        "term": "2028-02-29 is inside a recorded term of the agreement, until terminated by notice (agreement §12)"}


def test_notice_outside_any_recorded_term_answers_and_warns_in_one_line():
    result = notice("--given", "2026-12-02")  # the configuration records no prolongation after 2009
    assert result.exit_code == 0
    assert "ends the agreement on 2027-12-31 at the earliest" in result.stdout
    [warning] = result.stderr.strip().splitlines()
    assert warning.startswith("genop: warning: 2026-12-02 is outside any recorded term of the agreement")
    assert "terms.periods" in warning


def test_notice_in_the_original_term_notes_that_the_term_expires_first():
    result = notice("--given", "2009-07-01", "--json")
    document = json.loads(result.stdout)
    assert (document["earliest_end"], document["term_runs_until"], document["term_ends_first"]) == (
        "2010-12-31", "2009-12-31", True)


@pytest.mark.parametrize("args", [["--given", "30-06-2027"], ["--given", "2027-02-30"]])
def test_a_bad_date_is_one_line_and_exit_1(args):
    result = notice(*args)
    assert result.exit_code == EXIT_ERROR
    assert result.stderr.strip() == f"genop: --given {args[1]!r} is not a date (use YYYY-MM-DD)"
    assert "Traceback" not in result.output


def test_make_run_warns_in_one_line_when_today_is_outside_a_recorded_term(capsys):
    from genop_cli.system import warn_outside_term

    agreement = load_agreement()
    assert warn_outside_term(agreement, date(2008, 5, 1)) is False
    assert capsys.readouterr().err == ""
    assert warn_outside_term(agreement, date(2026, 12, 2)) is True
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == ("genop: warning: 2026-12-02 is outside any recorded term of the agreement (the last recorded "
                    "term ended 2009-12-31): record the prolongation in config/agreement.yaml, terms.periods "
                    "(agreement §12)")
