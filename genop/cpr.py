"""CPR numbers (personnummer): format, birth date and century, age, redaction.

The birth date and its century follow the standard CPR rule on the 7th digit (the first
digit of the serial number); PLAN_FORMAT.md ``citizen.cpr``. The old modulus-11 check is
deliberately *not* applied: CPR numbers issued since 2007 may fail it.

A CPR number is personal data: it never goes into a log line or a run name unredacted
(``redact_cpr``). Error messages do not quote it either, not even an invalid one (a typo of
a real number is still personal data, and a reason code can reach Prefect): they say
which part is wrong ("month 13").
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from genop.errors import InvalidCPR

_CPR_EXACT = re.compile(r"([0-9]{6})-?([0-9]{4})")
# Six digits, optional hyphen, four digits, not part of a longer run of digits (so an EAN
# such as 5798009884381 is not mistaken for a CPR number).
_CPR_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{6}-?[0-9]{4}(?![0-9])")
# Also with a space, dot, slash or underscore where the hyphen goes (010145 1234, 010145.1234).
_CPR_SHAPE = re.compile(r"(?<![0-9])[0-9]{6}[-. _/]?[0-9]{4}(?![0-9])")
REDACTED = "XXXXXX-XXXX"
_KINDS = {int: "a number", float: "a number", bool: "true/false", list: "a list", dict: "an object"}

MONTH_NAMES = (  # for messages; MONTH_NAMES[1] == "January"
    "", "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


@dataclass(frozen=True)
class CPR:
    """A well-formed CPR number with a real birth date."""

    digits: str
    birth_date: date

    @property
    def formatted(self) -> str:
        """``DDMMYY-SSSS``, the way a caseworker writes it."""
        return f"{self.digits[:6]}-{self.digits[6:]}"

    def age_on(self, day: date) -> int:
        """Completed years on ``day`` (agreement "Case lifecycle" 2: 18 or over is an adult).

        Someone born on 29 February has a birthday on 1 March in a non-leap year.
        """
        born = self.birth_date
        if day < born:
            raise InvalidCPR(f"The CPR number gives a birth date ({_long_date(born)}) after {_long_date(day)}")
        before_birthday = (day.month, day.day) < (born.month, born.day)
        return day.year - born.year - int(before_birthday)

    def __str__(self) -> str:
        return REDACTED

    def __repr__(self) -> str:
        return f"CPR({REDACTED})"


def birth_year(yy: int, seventh_digit: int) -> int:
    """The four-digit birth year from the two-digit year and the 7th digit of the CPR.

    0–3: 1900–1999; 4 and 9: 2000–2036 for 00–36, else 1937–1999;
    5–8: 2000–2057 for 00–57, else 1858–1899.
    """
    if seventh_digit <= 3:
        return 1900 + yy
    if seventh_digit in (4, 9):
        return 2000 + yy if yy <= 36 else 1900 + yy
    return 2000 + yy if yy <= 57 else 1800 + yy


def parse_cpr(text: str) -> CPR:
    """``DDMMYYSSSS`` or ``DDMMYY-SSSS`` (surrounding whitespace allowed) → ``CPR``.

    Raises ``InvalidCPR`` naming the problem: format, or a birth date that cannot exist.
    """
    if not isinstance(text, str):
        raise InvalidCPR("The CPR number must be written as text of 10 digits (DDMMYY-SSSS), "
                         f"not as {_KINDS.get(type(text), 'another kind of value')}")
    match = _CPR_EXACT.fullmatch(text.strip())
    if match is None:
        raise InvalidCPR(f"The CPR number must be 10 digits (DDMMYY-SSSS); {_shape_of(text.strip())}")
    digits = match.group(1) + match.group(2)
    day, month, yy = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    year = birth_year(yy, int(digits[6]))
    if not 1 <= month <= 12:
        raise InvalidCPR(f"The CPR number has no valid birth date (month {month})")
    days_in_month = calendar.monthrange(year, month)[1]
    if day == 0:
        raise InvalidCPR("The CPR number has no valid birth date (day 0)")
    if day > days_in_month:
        raise InvalidCPR(
            "The CPR number has no valid birth date "
            f"(day {day} does not exist in {MONTH_NAMES[month]} {year})"
        )
    return CPR(digits=digits, birth_date=date(year, month, day))


def looks_like_cpr(text: str) -> bool:
    """Whether ``text`` contains something shaped like a CPR number (valid or not)."""
    return _CPR_IN_TEXT.search(text) is not None


def has_cpr_shape(text: str) -> bool:
    """Whether ``text`` holds ten digits written the way a CPR number is, with ``-``, a space,
    ``.``, ``/`` or ``_`` (or nothing) after the sixth: such an identifier may be one."""
    return _CPR_SHAPE.search(text) is not None


def has_cpr_date_shape(text: str) -> bool:
    """Like ``has_cpr_shape``, but only where the first six digits are a day and month that
    exist (DDMMYY, 29 February allowed): a hospital's ten-digit counter such as
    ``0000012345`` is an identifier, ``010145-1234`` may be a citizen."""
    for match in _CPR_SHAPE.finditer(text):
        digits = re.sub(r"[^0-9]", "", match.group())
        day, month = int(digits[:2]), int(digits[2:4])
        if 1 <= month <= 12 and 1 <= day <= calendar.monthrange(2000, month)[1]:
            return True
    return False


def redact_cpr(text: str) -> str:
    """``text`` with every CPR-shaped run replaced by ``XXXXXX-XXXX`` (log lines, run names)."""
    return _CPR_SHAPE.sub(REDACTED, text)


def _shape_of(text: str) -> str:
    """What is wrong with a badly written CPR number, without quoting its digits."""
    if not text:
        return "it is empty"
    if any(not ("0" <= c <= "9") and c != "-" for c in text):
        return "it holds characters other than the digits 0-9 and a hyphen"
    digits = sum("0" <= c <= "9" for c in text)
    if digits != 10:
        return f"it has {digits} digits"
    return "the hyphen may only come after the sixth digit"


def _long_date(day: date) -> str:
    return f"{day.day} {MONTH_NAMES[day.month]} {day.year}"
