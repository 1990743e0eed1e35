"""When the morning scan runs (issue 11: every Danish working day, 07:30 Europe/Copenhagen).

The deployment's cron fires Monday to Friday; a public holiday on a weekday is skipped here.
A day given by staff (``--as-of``) is always scanned: driving the business clock through a
weekend is how a case's days are checked.
"""

from __future__ import annotations

from datetime import date

from genop.clock import today
from genop.deadlines import is_working_day


def scan_day(as_of: date | None, *, on: date | None = None) -> date | None:
    """The day to scan, or None: a scheduled run (no ``as_of``) on a day that is not a working day."""
    if as_of is not None:
        return as_of
    day = on or today()
    return day if is_working_day(day) else None
