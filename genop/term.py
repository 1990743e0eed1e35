"""The agreement's term (agreement §12, *forlængelse og opsigelse af aftalen*).

The seed's text: "Denne aftale træder i kraft pr. 1. januar 2007. Aftalen gælder til
udgangen af denne valgperiode, det vil sige til udgangen af 2009. Herefter udløber den uden
varsel. Aftalen kan opsiges af begge parter med seks måneders skriftlig varsel til udgangen
af et budgetår."

So the original term ended by itself on 31 December 2009; the agreement is evidently still
used, so the term and every prolongation are effective-dated data (``terms.periods`` in
config/agreement.yaml) and genop says when a day is outside all of them. A notice takes
effect at the end of a budget year — a municipality's budget year is the calendar year —
after at least the configured six whole months: given on 30 June at the latest, it ends the
agreement on 31 December of that year (1 July – 31 December are six months); given on
1 July, on 31 December of the next year.

Pure functions: dates and the configured terms in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from genop.config import TermPeriod, Terms

__all__ = ["NoticeEnd", "TermStatus", "earliest_end", "in_term", "latest_notice_day", "term_status"]


@dataclass(frozen=True)
class TermStatus:
    """Where ``day`` stands against the recorded terms."""

    day: date
    period: TermPeriod | None
    """The recorded period ``day`` is in; None: outside every recorded term."""
    runs_until: date | None
    """In term: the last day of the recorded periods that follow one another without a gap
    from ``day``; None when they end in an open period (until terminated by notice)."""
    last_end: date | None
    """Outside: the end of the latest recorded period before ``day`` (None if none was before)."""
    next_start: date | None
    """Outside: the start of the next recorded period after ``day`` (None if none is recorded)."""

    @property
    def in_term(self) -> bool:
        return self.period is not None

    def summary(self) -> str:
        """One line for staff (the CLI, `make run`, the daily run's artifact)."""
        day = self.day.isoformat()
        if self.period is not None:
            until = (f"until {self.runs_until.isoformat()}" if self.runs_until is not None
                     else "until terminated by notice")
            return f"{day} is inside a recorded term of the agreement, {until} (agreement §12)"
        known = []
        if self.last_end is not None:
            known.append(f"the last recorded term ended {self.last_end.isoformat()}")
        if self.next_start is not None:
            known.append(f"the next recorded term starts {self.next_start.isoformat()}")
        detail = f" ({'; '.join(known)})" if known else ""
        return (f"{day} is outside any recorded term of the agreement{detail}: record the prolongation "
                "in config/agreement.yaml, terms.periods (agreement §12)")


def term_status(terms: Terms, day: date) -> TermStatus:
    periods = sorted(terms.periods, key=lambda p: p.valid_from)
    current = next((p for p in periods if p.covers(day)), None)
    if current is None:
        before = [p.valid_to for p in periods if p.valid_to is not None and p.valid_to < day]
        after = [p.valid_from for p in periods if p.valid_from > day]
        return TermStatus(day, None, None, max(before, default=None), min(after, default=None))
    return TermStatus(day, current, _runs_until(periods, current), None, None)


def in_term(terms: Terms, day: date) -> bool:
    """Is ``day`` inside a recorded term (the original term or a prolongation)?"""
    return term_status(terms, day).in_term


def _runs_until(periods: list[TermPeriod], current: TermPeriod) -> date | None:
    end = current.valid_to
    for period in periods:
        if end is not None and period.valid_from == end + timedelta(days=1):
            end = period.valid_to
    return end


def latest_notice_day(year: int, notice_months: int) -> date:
    """The last day a notice can be given to end the agreement on 31 December of ``year``:
    ``notice_months`` whole months must lie between it and the end (30 June for six)."""
    month = 12 * (year + 1) - notice_months  # the first month of the notice, counted from January of year 0
    return date(month // 12, month % 12 + 1, 1) - timedelta(days=1)


@dataclass(frozen=True)
class NoticeEnd:
    """What a termination notice given on ``given_on`` achieves (agreement §12)."""

    given_on: date
    notice_months: int
    earliest_end: date
    """The end of the first budget year (31 December) the notice reaches."""
    latest_notice_day: date
    """The last day a notice could be given for that same end."""
    term: TermStatus
    """The term on the day the notice is given."""

    @property
    def term_ends_first(self) -> bool:
        """The recorded term runs out before the notice would take effect: it expires by itself."""
        return self.term.runs_until is not None and self.term.runs_until < self.earliest_end


def earliest_end(terms: Terms, given_on: date) -> NoticeEnd:
    """The earliest end of the agreement for a written termination notice given on ``given_on``:
    ``terms.termination_notice_months`` (six) months' notice to the end of a budget year."""
    months = terms.termination_notice_months
    year = given_on.year
    while given_on > latest_notice_day(year, months):
        year += 1
    return NoticeEnd(given_on=given_on, notice_months=months, earliest_end=date(year, 12, 31),
                     latest_notice_day=latest_notice_day(year, months), term=term_status(terms, given_on))
