"""Every date rule of the agreement, in one place.

- free choice: Health Act §140(4) — no start offered within 7 days after discharge gives
  the citizen the right to choose a private provider (agreement "Case lifecycle" 6);
- a Danish working day (hverdag): Monday–Friday that is not a Danish public holiday,
  from the maintained ``holidays`` calendar (used by the a-conto and payment terms).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays


@lru_cache(maxsize=64)
def _danish_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("DK", years=year)


def is_working_day(day: date) -> bool:
    """A Danish working day: not Saturday/Sunday and not a Danish public holiday."""
    return day.weekday() < 5 and day not in _danish_holidays(day.year)


def first_working_day_of_month(year: int, month: int) -> date:
    day = date(year, month, 1)
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def add_working_days(start: date, days: int) -> date:
    day = start
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


@dataclass(frozen=True)
class CaseDeadlines:
    """The dates a new case is measured against."""

    free_choice_from: date
    """Health Act §140(4): discharge + 7 days; without a start offered by then the citizen may choose."""
    start_by: date | None
    """The plan's own latest start (its stated waiting time); None when the plan gives none."""

    def as_dict(self) -> dict[str, str | None]:
        return {
            "free_choice_from": self.free_choice_from.isoformat(),
            "start_by": self.start_by.isoformat() if self.start_by else None,
        }


def case_deadlines(discharge_date: date, start_by: date | None, free_choice_days: int) -> CaseDeadlines:
    return CaseDeadlines(
        free_choice_from=discharge_date + timedelta(days=free_choice_days),
        start_by=start_by,
    )
