"""Reading the final status file (slutstatus, PLAN_FORMAT.md "Final status"): each problem in words."""

from __future__ import annotations

import json
from datetime import date

import pytest

from genop.completion import CompletionError, parse_final_status

VALID = {"case_number": "GEN-2026-000001", "completed_on": "2026-11-30", "assessment": "Selvhjulpen.",
         "consent_to_share": True}


def error_for(content: bytes) -> CompletionError:
    with pytest.raises(CompletionError) as caught:
        parse_final_status(content)
    return caught.value


def with_changes(**changes: object) -> bytes:
    document = {**VALID, **changes}
    return json.dumps({key: value for key, value in document.items() if value is not None}).encode()


def test_a_valid_final_status_is_read() -> None:
    status = parse_final_status(b"\xef\xbb\xbf" + json.dumps(VALID).encode())
    assert status.completed_on == date(2026, 11, 30) and status.consent_to_share is True


@pytest.mark.parametrize("content, kind", [
    (b"[]", "a JSON list"), (b"42", "a JSON number"), (b"null", "JSON null"), (b'"done"', "a JSON text string"),
])
def test_a_json_value_that_is_not_an_object_is_named(content: bytes, kind: str) -> None:
    error = error_for(content)
    assert error.code == "invalid_final_status"
    assert error.message == (f"the final status file is {kind}, not one JSON object with "
                             "case_number, completed_on, assessment, consent_to_share")
    assert "Input should be" not in error.message


def test_an_empty_file_says_it_is_empty() -> None:
    assert "the final status file is empty" in error_for(b"  \n").message


def test_a_missing_field_is_named_with_the_fields_needed() -> None:
    error = error_for(with_changes(assessment=None))
    assert error.message.startswith("the final status has no assessment (it needs case_number,")


@pytest.mark.parametrize("changes, words", [
    ({"completed_on": "2026-02-30"}, "completed_on is not a valid date (day 30 does not exist in February 2026)"),
    ({"completed_on": 0}, "completed_on is not a date (write YYYY-MM-DD)"),
    ({"consent_to_share": "yes"}, "consent_to_share must be true or false"),
    ({"consent_to_share": 1}, "consent_to_share must be true or false"),
    ({"assessment": ""}, "assessment is empty"),
    ({"case_number": 7}, "case_number must be text"),
])
def test_a_wrong_value_is_told_in_a_caseworkers_words(changes: dict, words: str) -> None:
    error = error_for(with_changes(**changes))
    assert error.code == "invalid_final_status"
    assert words in error.message
    assert "Input should" not in error.message and "yes" not in error.message


def test_malformed_json_names_line_and_column_without_quoting_the_text() -> None:
    error = error_for(b'{"assessment": "Gaar med rollator" "x"}')
    assert error.code == "malformed_json"
    assert "(line 1, column 36)" in error.message and "rollator" not in error.message
