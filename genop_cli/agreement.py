"""CLI commands about the agreement itself (registered on the ``agreement`` group of genop_cli.main)."""

from __future__ import annotations

from datetime import date

import click

from genop.config import Agreement, load_agreement
from genop.errors import GenopError
from genop.settings import load_settings
from genop.term import NoticeEnd, earliest_end
from genop_cli import output
from genop_cli.main import agreement, json_option


def _configured_agreement() -> Agreement:
    """Only the configuration: a question about the agreement needs no case store."""
    return load_agreement(load_settings().agreement_file)


def _parse_given(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise GenopError(f"--given {value!r} is not a date (use YYYY-MM-DD)", code="invalid_date") from exc


@agreement.command("notice")
@click.option("--given", "given", required=True, metavar="YYYY-MM-DD",
              help="The day the written termination notice is given.")
@json_option
def agreement_notice(given: str, as_json: bool) -> None:
    """The earliest end of the agreement for a termination notice given on a day (agreement §12:
    six months' written notice to the end of a budget year)."""
    notice = earliest_end(_configured_agreement().terms, _parse_given(given))
    if as_json:
        output.emit_json(notice_document(notice))
        return
    output.console.print(_notice_line(notice), markup=False, highlight=False, soft_wrap=True)
    if not notice.term.in_term:
        output.errors.print(f"genop: warning: {notice.term.summary()}", markup=False, highlight=False,
                            soft_wrap=True)
    elif notice.term_ends_first:
        output.errors.print(f"genop: note: the recorded term ends by itself on {notice.term.runs_until}, "
                            f"before {notice.earliest_end} (it expires without notice unless prolonged)",
                            markup=False, highlight=False, soft_wrap=True)


def _notice_line(notice: NoticeEnd) -> str:
    return (f"a termination notice given on {notice.given_on} ends the agreement on {notice.earliest_end} at the "
            f"earliest ({notice.notice_months} months' written notice to the end of a budget year, agreement "
            f"§12; the last day to give notice for that end is {notice.latest_notice_day})")


def notice_document(notice: NoticeEnd) -> dict[str, object]:
    term = notice.term
    return {"given": notice.given_on.isoformat(), "earliest_end": notice.earliest_end.isoformat(),
            "latest_notice_day": notice.latest_notice_day.isoformat(), "notice_months": notice.notice_months,
            "in_term": term.in_term,
            "term_runs_until": term.runs_until.isoformat() if term.runs_until else None,
            "term_ends_first": notice.term_ends_first, "term": term.summary()}
