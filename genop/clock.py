"""Business time. All of genop's dates are Danish dates (Europe/Copenhagen)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from genop.errors import GenopError

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def now_utc() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    """Today in Copenhagen (a UTC date would be wrong between 00:00 and 02:00 local time)."""
    return datetime.now(COPENHAGEN).date()


def parse_as_of(value: str | date | None) -> date:
    """The business date a command or flow acts on: ``--as-of YYYY-MM-DD`` or today."""
    if value is None or value == "":
        return today()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise GenopError(f"as-of date {value!r} is not a date (use YYYY-MM-DD)",
                         code="invalid_as_of") from exc


def local(dt: datetime) -> datetime:
    return dt.astimezone(COPENHAGEN)
