"""CLI commands for disputes (issue 12, agreement §10): ``genop dispute …``.

The free-text reason and notes are stored by the command itself in genop's store; anything
that runs a flow gives Prefect the dispute's number only.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from genop.clock import now_utc, parse_as_of
from genop.disputes import State, SubjectKind
from genop.disputes.mediation import call_and_compose, mail_of_dispute
from genop.disputes.records import get_dispute, list_disputes, move, open_dispute
from genop.disputes.views import dispute_summary, dispute_view, mail_view
from genop.errors import GenopError
from genop.runtime import current_runtime
from genop_cli import output
from genop_cli.main import GenopGroup, as_of_option, cli, json_option
from genop_cli.server import require_server, run_flow


@cli.group("dispute", cls=GenopGroup)
def dispute() -> None:
    """Disputes between the parties (agreement §10): open, mediation, resolved or to court; redos."""


class KindChoice(click.Choice):
    """The kinds of dispute in config (``disputes.kinds``), read when the command runs."""

    def __init__(self) -> None:  # noqa: D107 - the choices are config's
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(current_runtime().agreement.disputes.kinds)


by_option = click.option("--by", "by", required=True, metavar="NAME", help="The staff member recording it.")
why_option = click.option("--why", "why", required=True, metavar="TEXT",
                          help="Why (kept in genop's store; never sent to Prefect).")


def _date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise GenopError(f"{what} {value!r} is not a date (use YYYY-MM-DD)", code="invalid_date") from None


def _subject(case: str | None, invoice: str | None, month: str | None) -> tuple[SubjectKind, str]:
    given = [(kind, value) for kind, value in ((SubjectKind.CASE, case), (SubjectKind.INVOICE, invoice),
                                               (SubjectKind.MONTH, month)) if value]
    if len(given) != 1:
        raise GenopError("say what the dispute is about: exactly one of --case, --invoice or --month",
                         code="dispute_subject_missing")
    return given[0]


@dispute.command("open")
@click.option("--case", "case", metavar="CASE", default=None, help="A case number (GEN-YYYY-NNNNNN).")
@click.option("--invoice", "invoice", metavar="NUMBER", default=None,
              help="A settlement document's number (`genop settlement documents`).")
@click.option("--month", "month", metavar="YYYY-MM", default=None, help="A settled month.")
@click.option("--about", "about", required=True, type=KindChoice(), help="What it is about (config disputes.kinds).")
@click.option("--reason", "reason", required=True, metavar="TEXT",
              help="The disagreement in a few lines (kept in genop's store; never sent to Prefect).")
@by_option
@as_of_option
@json_option
def open_cmd(case: str | None, invoice: str | None, month: str | None, about: str, reason: str, by: str,
             as_of: str | None, as_json: bool) -> None:
    """Open a dispute about a case, an invoice or a settled month; prints it with its number."""
    runtime = current_runtime()
    kind, reference = _subject(case, invoice, month)
    with runtime.store.session() as session:
        opened = open_dispute(session, runtime.agreement, subject=kind, reference=reference, about=about,
                              reason=reason, by=by, day=parse_as_of(as_of), now=now_utc())
        view = dispute_view(opened, runtime.agreement)
    _emit(view, as_json)


@dispute.command("call-mediation")
@click.argument("number")
@click.option("--on", "meeting_on", required=True, metavar="YYYY-MM-DD",
              help="The meeting's date: within 8 days of the call (agreement §10).")
@by_option
@why_option
@as_of_option
@json_option
def call_mediation_cmd(number: str, meeting_on: str, by: str, why: str, as_of: str | None, as_json: bool) -> None:
    """Call the parties to a mediation meeting (§10): recorded, and the written call mailed to each once.

    The call is dated --as-of (default today); a meeting later than 8 days after it is refused.
    """
    runtime = current_runtime()
    meeting = _date(meeting_on, "meeting date")
    with runtime.store.session() as session:
        found = get_dispute(session, number, for_update=True)
        called = call_and_compose(session, runtime.agreement, runtime.settings, found, meeting_on=meeting, by=by,
                                  why=why, day=parse_as_of(as_of), now=now_utc())
        composed = len(called.mails)
        # inside the transaction: with no server, nothing is recorded (the call is not half done)
        url = require_server(runtime.settings)
        number = found.number
    from flows.disputes import dispute_mail_deliver

    delivered = run_flow(url, dispute_mail_deliver, dispute=number)
    with runtime.store.session() as session:
        view = dispute_view(get_dispute(session, number), runtime.agreement)
        view["mail"] = [mail_view(row) for row in mail_of_dispute(session, number)]
    view["delivery"] = {"composed": composed, "undelivered": delivered["undelivered"]}
    _emit(view, as_json)
    if not as_json:
        output.console.print(f"{composed} call(s) composed, {delivered['undelivered']} not delivered "
                             f"(deliver again: deployment dispute-mail-deliver, dispute={number})", markup=False)


def _close(number: str, to: State, by: str, why: str, as_of: str | None, as_json: bool) -> None:
    runtime = current_runtime()
    with runtime.store.session() as session:
        found = get_dispute(session, number, for_update=True)
        move(session, found, to, by=by, why=why, day=parse_as_of(as_of), now=now_utc())
        view = dispute_view(found, runtime.agreement)
    _emit(view, as_json)


@dispute.command("resolve")
@click.argument("number")
@by_option
@why_option
@as_of_option
@json_option
def resolve_cmd(number: str, by: str, why: str, as_of: str | None, as_json: bool) -> None:
    """Record that the dispute is settled (amicably, or at the mediation meeting)."""
    _close(number, State.RESOLVED, by, why, as_of, as_json)


@dispute.command("to-court")
@click.argument("number")
@by_option
@why_option
@as_of_option
@json_option
def to_court_cmd(number: str, by: str, why: str, as_of: str | None, as_json: bool) -> None:
    """Record that the dispute goes to the courts (§10: only after a mediation meeting was called)."""
    _close(number, State.TO_COURT, by, why, as_of, as_json)


@dispute.command("show")
@click.argument("number")
@json_option
def show_cmd(number: str, as_json: bool) -> None:
    """A dispute with its timeline (who, when, why) and its redos (what they produced)."""
    runtime = current_runtime()
    with runtime.store.session() as session:
        view = dispute_view(get_dispute(session, number), runtime.agreement)
    _emit(view, as_json)


@dispute.command("list")
@click.option("--state", type=click.Choice([s.value for s in State]), default=None, help="Only disputes in this state.")
@json_option
def list_cmd(state: str | None, as_json: bool) -> None:
    """The disputes, oldest first (numbers, states and dates; `genop dispute show` for the rest)."""
    runtime = current_runtime()
    with runtime.store.session() as session:
        views = [dispute_summary(d) for d in list_disputes(session, state=state)]
    if as_json:
        output.emit_json({"disputes": views})
        return
    print_disputes(views, title=f"{len(views)} dispute(s)")


def print_disputes(views: list[dict[str, Any]], *, title: str) -> None:
    table = Table(title=title)
    for column in ("number", "state", "about", "subject", "municipality", "opened_on", "mediation_on",
                   "closed_on"):
        table.add_column(column, no_wrap=column in ("number", "subject"), overflow="fold")
    for view in views:
        table.add_row(*(Text(str(view[c] or "")) for c in ("number", "state", "about", "subject", "municipality",
                                                     "opened_on", "mediation_on", "closed_on")))
    output.console.print(table)


def _emit(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        output.emit_json(view)
        return
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    for key in ("number", "state", "about", "about_label", "subject_kind", "subject", "municipality", "opened_by",
                "opened_on", "mediation_called_on", "mediation_on", "closed_on", "reason"):
        head.add_row(key, Text(str(view.get(key) or "")))
    output.console.print(head)
    timeline = Table(title="timeline")
    for column in ("day", "at", "change", "state", "by", "why"):
        timeline.add_column(column, overflow="fold", no_wrap=column == "day")
    for event in view.get("timeline", []):
        timeline.add_row(*(Text(str(event[c] or "")) for c in ("day", "at", "change", "state", "by", "why")))
    output.console.print(timeline)
    if view.get("redos"):
        redos = Table(title="redos")
        for column in ("action", "target", "status", "requested_by", "requested_on", "produced"):
            redos.add_column(column, overflow="fold")
        for redo in view["redos"]:
            produced = ", ".join(f"{k}: {v}" for k, v in redo["produced"].items())
            redos.add_row(*(Text(str(redo[c] or "")) for c in ("action", "target", "status", "requested_by",
                                                                "requested_on")), Text(produced))
        output.console.print(redos)
