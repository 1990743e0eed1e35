"""CPR numbers: format, century rule (7th digit), age, redaction (PLAN_FORMAT.md citizen.cpr)."""

from __future__ import annotations

import re

from datetime import date

import pytest

from genop.cpr import CPR, has_cpr_shape, looks_like_cpr, parse_cpr, redact_cpr
from genop.errors import InvalidCPR, PlanError


def test_hyphenated_and_plain_forms_are_the_same_cpr() -> None:
    assert parse_cpr("010145-1234") == parse_cpr("0101451234")
    assert parse_cpr("010145-1234").digits == "0101451234"


def test_surrounding_whitespace_is_accepted() -> None:
    assert parse_cpr("  010145-1234\n").digits == "0101451234"


def test_formatted_puts_the_hyphen_after_the_birth_date() -> None:
    assert parse_cpr("0101451234").formatted == "010145-1234"


def test_modulus_11_check_is_not_required() -> None:
    # 0101451234 fails the old modulus-11 check (weighted sum 79); CPRs since 2007 may.
    assert parse_cpr("010145-1234").birth_date == date(1945, 1, 1)


# --- century from the 7th digit ----------------------------------------------------

@pytest.mark.parametrize("seventh", ["0", "1", "2", "3"])
def test_seventh_digit_0_to_3_is_born_in_the_1900s(seventh: str) -> None:
    assert parse_cpr(f"150600{seventh}123").birth_date == date(1900, 6, 15)
    assert parse_cpr(f"150699{seventh}123").birth_date == date(1999, 6, 15)


@pytest.mark.parametrize("seventh", ["4", "9"])
def test_seventh_digit_4_or_9_with_year_00_is_born_2000(seventh: str) -> None:
    assert parse_cpr(f"010100{seventh}000").birth_date == date(2000, 1, 1)


def test_seventh_digit_4_with_year_36_is_born_2036() -> None:
    assert parse_cpr("010136-4000").birth_date == date(2036, 1, 1)


def test_seventh_digit_4_with_year_37_is_born_1937() -> None:
    assert parse_cpr("010137-4000").birth_date == date(1937, 1, 1)


def test_seventh_digit_9_with_year_36_is_born_2036_and_with_99_is_born_1999() -> None:
    assert parse_cpr("010136-9000").birth_date == date(2036, 1, 1)
    assert parse_cpr("010199-9000").birth_date == date(1999, 1, 1)


@pytest.mark.parametrize("seventh", ["5", "6", "7", "8"])
def test_seventh_digit_5_to_8_with_year_57_is_born_2057(seventh: str) -> None:
    assert parse_cpr(f"010157{seventh}000").birth_date == date(2057, 1, 1)
    assert parse_cpr(f"010100{seventh}000").birth_date == date(2000, 1, 1)


@pytest.mark.parametrize("seventh", ["5", "6", "7", "8"])
def test_seventh_digit_5_to_8_with_year_58_is_born_1858(seventh: str) -> None:
    assert parse_cpr(f"010158{seventh}000").birth_date == date(1858, 1, 1)
    assert parse_cpr(f"010199{seventh}000").birth_date == date(1899, 1, 1)


# --- invalid numbers: the message names the problem ---------------------------------

def test_too_short_number_is_rejected_naming_the_format() -> None:
    with pytest.raises(InvalidCPR) as caught:
        parse_cpr("12345")
    assert str(caught.value) == "The CPR number must be 10 digits (DDMMYY-SSSS); it has 5 digits"


@pytest.mark.parametrize("text", ["010145-12345", "01014a-1234", "010145 1234", "0101-451234", "", "01-01-45-1234"])
def test_wrong_length_or_characters_are_rejected(text: str) -> None:
    with pytest.raises(InvalidCPR, match=r"must be 10 digits \(DDMMYY-SSSS\)"):
        parse_cpr(text)


def test_non_ascii_digits_are_rejected() -> None:
    with pytest.raises(InvalidCPR, match="must be 10 digits"):
        parse_cpr("٠١٠١٤٥١٢٣٤")  # Arabic-Indic digits


def test_month_13_is_no_birth_date() -> None:
    with pytest.raises(InvalidCPR) as caught:
        parse_cpr("991399-1234")
    assert str(caught.value) == "The CPR number has no valid birth date (month 13)"


def test_month_0_is_no_birth_date() -> None:
    with pytest.raises(InvalidCPR, match=r"\(month 0\)"):
        parse_cpr("010045-1234")


def test_day_0_is_no_birth_date() -> None:
    with pytest.raises(InvalidCPR, match=r"has no valid birth date \(day 0\)"):
        parse_cpr("000145-1234")


def test_31_april_is_no_birth_date() -> None:
    with pytest.raises(InvalidCPR) as caught:
        parse_cpr("310445-1234")
    assert str(caught.value) == "The CPR number has no valid birth date (day 31 does not exist in April 1945)"


def test_29_february_in_a_non_leap_year_is_no_birth_date() -> None:
    with pytest.raises(InvalidCPR) as caught:
        parse_cpr("290201-1234")
    assert str(caught.value) == "The CPR number has no valid birth date (day 29 does not exist in February 1901)"


def test_29_february_depends_on_the_century_from_the_seventh_digit() -> None:
    assert parse_cpr("290200-4000").birth_date == date(2000, 2, 29)
    with pytest.raises(InvalidCPR, match="February 1900"):
        parse_cpr("290200-1000")


@pytest.mark.parametrize("text", ["991399-1234", "310445-1234", "000145-1234", "010145-12345", "01014a-1234",
                                  "0101-451234", "010045 1234", 101451234])
def test_message_about_an_invalid_cpr_never_quotes_its_digits(text: str | int) -> None:
    with pytest.raises(InvalidCPR) as caught:
        parse_cpr(text)  # type: ignore[arg-type]
    digits = re.sub(r"[^0-9]", "", str(text))
    assert digits[:6] not in caught.value.message and digits[-4:] not in caught.value.message


def test_cpr_written_with_a_space_dot_or_underscore_has_a_cpr_shape() -> None:
    for text in ("010145-1234", "0101451234", "x 010145 1234", "010145.1234", "plan_010145_1234"):
        assert has_cpr_shape(text), text
    for text in ("GOP-AMH-2026-000123", "01014512345", "2026-11-02"):
        assert not has_cpr_shape(text), text


def test_invalid_cpr_is_a_plan_error_with_its_own_code() -> None:
    with pytest.raises(PlanError) as caught:
        parse_cpr("12345")
    assert caught.value.code == "invalid_cpr"


# --- age ----------------------------------------------------------------------------

def test_age_counts_completed_years() -> None:
    cpr = parse_cpr("150608-4234")  # 15 June 2008
    assert cpr.age_on(date(2026, 6, 14)) == 17
    assert cpr.age_on(date(2026, 6, 15)) == 18


def test_born_29_february_turns_a_year_older_on_1_march_in_a_non_leap_year() -> None:
    cpr = parse_cpr("290208-4000")  # 29 February 2008
    assert cpr.age_on(date(2026, 2, 28)) == 17
    assert cpr.age_on(date(2026, 3, 1)) == 18


def test_age_before_birth_is_an_invalid_cpr() -> None:
    with pytest.raises(InvalidCPR, match="after 2 November 2026"):
        parse_cpr("010135-4000").age_on(date(2026, 11, 2))


# --- never in logs --------------------------------------------------------------------

def test_str_and_repr_of_a_cpr_do_not_show_the_number() -> None:
    cpr = parse_cpr("010145-1234")
    assert "0101451234" not in f"{cpr} {cpr!r}"
    assert "010145" not in f"{cpr} {cpr!r}"


@pytest.mark.parametrize("text", ["citizen 010145-1234 admitted", "0101451234", "cpr:0101451234."])
def test_cpr_shaped_runs_are_recognised_inside_text(text: str) -> None:
    assert looks_like_cpr(text)


@pytest.mark.parametrize("text", ["GOP-AMH-2026-000123", "EAN 5798009884381", "2026-11-02", "case 12345"])
def test_plan_ids_eans_and_dates_do_not_look_like_cpr(text: str) -> None:
    assert not looks_like_cpr(text)


def test_redaction_replaces_every_cpr_shaped_run() -> None:
    text = "plan for 010145-1234 and 0202021234 (EAN 5798009884381)"
    assert redact_cpr(text) == "plan for XXXXXX-XXXX and XXXXXX-XXXX (EAN 5798009884381)"


def test_redaction_also_covers_invalid_numbers() -> None:
    assert redact_cpr("run 991399-1234") == "run XXXXXX-XXXX"


def test_cpr_value_is_immutable() -> None:
    cpr = CPR(digits="0101451234", birth_date=date(1945, 1, 1))
    with pytest.raises(AttributeError):
        cpr.digits = "0202021234"  # type: ignore[misc]


def test_redaction_covers_a_cpr_written_with_a_space_dot_or_underscore() -> None:
    assert redact_cpr("plan_120356_1118_x 010145 1234 010145.1234") == "plan_XXXXXX-XXXX_x XXXXXX-XXXX XXXXXX-XXXX"
