"""CLI commands for escalation (issue 11, sub-agreement §7): ``genop escalate`` and ``genop risks``.

``escalate`` runs the escalation-scan flow through the running server (the run, its events and
its artifact are in the UI); ``risks`` reads what is open from genop's store.
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from genop.case_view import finding_view
from genop.clock import parse_as_of
from genop.errors import GenopError
from genop.escalation import BUDGET_TOTAL, Kind
from genop.escalation.trail import open_findings
from genop.runtime import current_runtime
from genop_cli import output
from genop_cli.main import as_of_option, cli, json_option
from genop_cli.server import require_server, run_flow


@cli.command("escalate")
@as_of_option
@json_option
def escalate_cmd(as_of: str | None, as_json: bool) -> None:
    """Scan what is at risk on a business day (default today) and tell it, once per level.

    The same flow as the scheduled escalation-scan run; what changed is printed (case numbers
    and budgets only). Run by hand, it scans any day, a weekend or holiday included.
    """
    runtime = current_runtime()
    url = require_server(runtime.settings)
    from flows.escalation import escalation_scan

    result = run_flow(url, escalation_scan, as_of=parse_as_of(as_of))
    if as_json:
        output.emit_json(result)
        return
    _print_changes(result)


def _print_changes(result: dict[str, Any]) -> None:
    changes = result["changes"]
    table = Table(title=f"escalation scan {result['day']}: {len(changes)} change(s)")
    for column in ("change", "kind", "subject", "level", "before"):
        table.add_column(column)
    for change in changes:
        table.add_row(change["change"], change["kind"], change["subject"], change["level"],
                      change["previous"] or "")
    output.console.print(table)
    output.console.print(f"{result['notices']} notice(s) composed, {result['undelivered']} not delivered; "
                         f"open now: {sum(entry['count'] for entry in result['open'])}", markup=False)


@cli.command("risks")
@click.option("--kind", type=click.Choice([k.value for k in Kind]), default=None, help="Only this kind.")
@click.option("--municipality", metavar="CODE|total", default=None,
              help="Only findings about this municipality, by its code in config/agreement.yaml "
                   "(185 Tårnby, 155 Dragør); total: the shared budget.")
@json_option
def risks_cmd(kind: str | None, municipality: str | None, as_json: bool) -> None:
    """What is at risk now: the open findings, oldest first (from genop's store)."""
    runtime = current_runtime()
    party = _party_of(municipality)
    with runtime.store.session() as session:
        views = [finding_view(f) for f in open_findings(session, kind=kind, municipality=party)]
    if as_json:
        output.emit_json({"findings": views})
        return
    output.print_findings(views, title=f"{len(views)} open finding(s)")


def _party_of(code: str | None) -> str | None:
    if code is None or code.strip().lower() == BUDGET_TOTAL:
        return code if code is None else BUDGET_TOTAL
    party = current_runtime().agreement.municipality_for_code(code)
    if party is None:
        raise GenopError(f"no municipality with code {code} in config/agreement.yaml", code="unknown_municipality")
    return party.key
