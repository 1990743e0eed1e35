"""CLI commands for settlement (agreement §8): ``genop aconto``, ``genop settle``, ``genop invoices``.

The work runs as the flows of flows/settlement.py through the running server (so each run
is in the UI with its totals artifact); what is printed is read back from genop's store.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import click
from rich.table import Table

from genop.settlement import documents, ledger
from genop.clock import parse_as_of
from genop.runtime import current_runtime
from genop.settlement.rules import SettlementError, parse_month
from genop.settlement.documents import money
from genop_cli import output
from genop_cli.main import GenopGroup, as_of_option, cli, json_option
from genop_cli.server import require_server, run_flow


def _run(name: str, **parameters: object) -> dict[str, Any]:
    url = require_server(current_runtime().settings)
    import flows.settlement

    return run_flow(url, getattr(flows.settlement, name), **parameters)


def _views(numbers: list[str]) -> list[dict[str, Any]]:
    runtime = current_runtime()
    with runtime.store.session() as session:
        return [documents.document_view(session, runtime.agreement, d)
                for d in documents.documents_by_number(session, numbers)]


def _print_documents(title: str, views: list[dict[str, Any]]) -> None:
    table = Table(title=f"{title}: {len(views)} document(s)")
    for column in ("document", "to", "lines", "total", "a conto offset", "to pay", "due"):
        table.add_column(column, justify="right" if column in {"lines", "total", "a conto offset", "to pay"}
                         else "left")
    for view in views:
        kind = "" if view["kind"] == "Invoice" else " credit note"
        offset = view["aconto"] if view["purpose"] == "settlement" else ""
        table.add_row(f"{view['number']}{kind}", f"{view['municipality']} {view['payer']}", str(len(view["lines"])),
                      view["total"], offset, view["amount_due"], view["due_date"] or "")
    output.console.print(table)
    for view in views:
        output.console.print(f"  {view['number']}: {view['oioubl_path']} (+ .html)", soft_wrap=True)


def _from_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--from") from None


def _month(value: str | None) -> str | None:
    if value is not None:
        parse_month(value)
    return value


@cli.command("aconto")
@click.option("--month", metavar="YYYY-MM", default=None,
              help="Record this month's a-conto (default: every month due and not recorded).")
@as_of_option
@json_option
def aconto_cmd(month: str | None, as_of: str | None, as_json: bool) -> None:
    """Record the monthly a-conto (first Danish working day; 75 % Tårnby, 25 % Dragør), once per month."""
    result = _run("aconto", month=_month(month), as_of=parse_as_of(as_of))
    months = [{"month": r["month"], "new": r["new"], "documents": _views(r["documents"])} for r in result["results"]]
    if as_json:
        output.emit_json({"months": months})
        return
    if not months:
        output.console.print("no a-conto due (every month up to today is recorded)")
    for entry in months:
        _print_documents(f"a conto {entry['month']}" + ("" if entry["new"] else " (recorded before)"),
                         entry["documents"])


@cli.command("settle")
@click.option("--month", metavar="YYYY-MM", default=None,
              help="Settle this month (default: every month due and not settled, as the daily run does).")
@click.option("--regulate", is_flag=True, help="Retro-regulate settled courses to the tariffs now configured.")
@click.option("--from", "since", metavar="YYYY-MM-DD", default=None, help="With --regulate: from this date.")
@click.option("--reconcile", "year", type=int, metavar="YYYY", default=None,
              help="The January reconciliation of this financial year.")
@as_of_option
@json_option
def settle_cmd(month: str | None, regulate: bool, since: str | None, year: int | None, as_of: str | None,
               as_json: bool) -> None:
    """Settle completed courses: invoices per municipality with the month's a-conto offset.

    \b
    genop settle --month 2026-11 [--as-of 2026-12-01] [--json]
    genop settle --regulate --from 2026-01-01
    genop settle --reconcile 2026
    Re-running never issues a document twice: it shows the documents already issued.
    """
    day = parse_as_of(as_of)
    if regulate or since:
        if not (regulate and since) or month or year:
            raise click.UsageError("use --regulate with --from DATE (and neither --month nor --reconcile)")
        _regulate(_from_date(since), day, as_json)
    elif year is not None:
        if month:
            raise click.UsageError("--reconcile YEAR and --month are separate runs")
        _reconcile(year, day, as_json)
    else:
        _settle(_month(month), day, as_json)


def _settle(month: str | None, day: date, as_json: bool) -> None:
    result = _run("settle", month=month, as_of=day)
    months = [{"month": r["month"], "new": r["new"], "invoices": _views(r["documents"])} for r in result["results"]]
    reconciled = [_reconciliation(r["year"]) for r in result["reconciled"]]
    if as_json:
        if month is not None:
            output.emit_json(months[0])
        else:
            output.emit_json({"months": months, "reconciliations": reconciled})
        return
    if not months:
        output.console.print(_nothing_due())
    for entry in months:
        note = "" if entry["new"] else " — settled before; shown unchanged"
        if not entry["invoices"]:
            output.console.print(f"{entry['month']}: no completed courses to settle{note}")
        else:
            _print_documents(f"settlement {entry['month']}{note}", entry["invoices"])
    for entry in reconciled:
        _print_reconciliation(entry)


def _nothing_due() -> str:
    with current_runtime().store.session() as session:
        upcoming = ledger.next_to_settle(session)
    if upcoming is None:
        return "nothing to settle: no a-conto is recorded yet (settlement starts with the first a-conto month)"
    return (f"nothing to settle yet: {upcoming} is settled from {ledger.settlement_day(upcoming).isoformat()} "
            "(the first working day after it)")


def _regulate(since: date, day: date, as_json: bool) -> None:
    result = _run("settle_regulate", since=since, as_of=day)
    views = _views(result["documents"])
    if as_json:
        output.emit_json({"since": since.isoformat(), "new": result["new"], "documents": views})
        return
    if not result["new"]:
        output.console.print(f"no difference to regulate since {since.isoformat()} at the tariffs now configured"
                             + (" (documents issued before are listed)" if views else ""))
    if views:
        _print_documents(f"regulation from {since.isoformat()}", views)


def _reconcile(year: int, day: date, as_json: bool) -> None:
    _run("year_reconcile", year=year, as_of=day)
    view = _reconciliation(year)
    if as_json:
        output.emit_json(view)
    else:
        _print_reconciliation(view)


def _reconciliation(year: int) -> dict[str, Any]:
    runtime = current_runtime()
    with runtime.store.session() as session:
        rows = ledger.year_reconciliations(session, year)
        if not rows:
            raise SettlementError(f"{year} is not reconciled")
        municipalities = [{
            "municipality": runtime.agreement.parties[row.payer].municipality_code, "payer": row.payer,
            "aconto_paid": money(row.aconto_paid), "settled": money(row.settled),
            "aconto_used": money(row.prepaid_used), "refund": money(row.refund),
            "credit_note": documents.document_view(session, runtime.agreement, row.document) if row.document else None,
        } for row in rows]
    return {"year": year, "readiness_clause": any(row.readiness_clause for row in rows),
            "municipalities": municipalities}


def _print_reconciliation(view: dict[str, Any]) -> None:
    table = Table(title=f"reconciliation {view['year']}")
    for column in ("municipality", "a conto paid", "settled", "a conto used", "refund", "credit note"):
        table.add_column(column)
    for row in view["municipalities"]:
        note = row["credit_note"]
        table.add_row(f"{row['municipality']} {row['payer']}", row["aconto_paid"], row["settled"], row["aconto_used"],
                      row["refund"], f"{note['number']} {note['oioubl_path']}" if note else "—")
    output.console.print(table)
    if view["readiness_clause"]:
        output.console.print("orders fell below the year's a-conto level (DKK 2.4 million for a whole year): "
                             "Copenhagen may charge its documented readiness costs (agreement §8)")


@cli.group(cls=GenopGroup)
def invoices() -> None:
    """Settlement documents issued (a conto, settlement, refund, regulation)."""


@invoices.command("list")
@click.option("--period", default=None, help="Only this period (YYYY-MM, YYYY or a regulation's from date).")
@click.option("--purpose", type=click.Choice(["aconto", "settlement", "refund", "regulation"]), default=None)
@json_option
def invoices_list(period: str | None, purpose: str | None, as_json: bool) -> None:
    runtime = current_runtime()
    with runtime.store.session() as session:
        views = [documents.document_view(session, runtime.agreement, d)
                 for d in documents.list_documents(session, period=period, purpose=purpose)]
    if as_json:
        output.emit_json({"documents": views})
    else:
        _print_documents("settlement documents", views)
