"""The malformed-input corpus (tests/data/malformed, issue 17): every file through intake's own
read-and-check step gets its expected code and a message that names the problem without
quoting a CPR number or the citizen's name."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from datetime import date
from pathlib import Path

import pytest

from genop.config import load_agreement
from genop.cpr import has_cpr_shape
from genop.errors import PLAN_ERROR_CODES
from genop.intake import read_plan_file

CORPUS = Path(__file__).resolve().parents[1] / "data" / "malformed"
AS_OF = date(2026, 11, 10)  # the corpus plans are discharged 2026-11-02
ROWS = list(csv.DictReader((CORPUS / "expected.csv").open(encoding="utf-8")))
NOT_FILES = {"expected.csv", "make_corpus.py", ".gitattributes"}


@pytest.fixture(scope="module")
def agreement():
    return load_agreement()


@pytest.mark.parametrize("row", ROWS, ids=[row["file"] for row in ROWS])
def test_each_malformed_file_is_quarantined_with_its_code_and_a_clear_message(agreement, row):
    outcome = read_plan_file(CORPUS / row["file"], agreement, AS_OF)
    error = getattr(outcome, "error", None)
    assert error is not None, f"{row['file']} ({row['what']}) was accepted"
    assert error.code == row["code"], error.message
    assert row["mentions"] in error.message
    assert not has_cpr_shape(error.message)
    assert "Testperson" not in error.message and "Eksempel" not in error.message
    assert "Traceback" not in error.message and "Input should" not in error.message
    error.message.encode("utf-8")  # it can be written to the quarantine's .reason file


def test_the_corpus_holds_at_least_100_distinct_files_all_in_the_manifest():
    files = sorted(p.name for p in CORPUS.iterdir() if p.is_file() and p.name not in NOT_FILES)
    assert files == sorted(row["file"] for row in ROWS)
    assert len(files) >= 100
    digests = {hashlib.sha256((CORPUS / name).read_bytes()).hexdigest() for name in files}
    assert len(digests) == len(files)


def test_the_corpus_covers_every_plan_error_code_but_an_unreadable_file():
    """``unreadable`` needs a file the process may not read, which git cannot keep."""
    assert {row["code"] for row in ROWS} == set(PLAN_ERROR_CODES) - {"unreadable"}


def test_the_corpus_covers_json_and_xml():
    suffixes = {Path(row["file"]).suffix for row in ROWS}
    assert suffixes == {".json", ".xml"}


def test_the_committed_files_are_what_make_corpus_writes():
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, _code, _mentions, _what, content in module.CASES:
        assert (CORPUS / name).read_bytes() == content, name
    assert [row["file"] for row in ROWS] == [name for name, *_ in module.CASES]
