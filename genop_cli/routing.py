"""CLI commands for Tårnby's choice of training unit (agreement §4) and the capacity figure.

`genop case route` records the choice in genop's store (with the note, which stays there),
then runs the case-route deployment's flow through the server — the same flow the UI's
Run form starts — which finds the choice recorded and opens the consent wait or forwards
the order.
"""

from __future__ import annotations

import click

from genop.case_view import case_view
from genop.clock import now_utc, today
from genop.routing import capacity, route_to_copenhagen
from genop.runtime import current_runtime
from genop.store.repository import get_case
from genop_cli import output
from genop_cli.main import case, cli, json_option
from genop_cli.server import require_server, run_flow


@case.command("route")
@click.argument("case_number")
@click.option("--to", "to", type=click.Choice(["copenhagen"]), required=True,
              help="The training unit chosen instead of Løjtegårdsvej.")
@click.option("--by", "by", required=True, help="Your name (who chooses; kept in the case's trail).")
@click.option("--reason", required=True, metavar="KEY",
              help="A reason key of geriatric_routing.reasons in config (capacity, citizens_wish, …).")
@click.option("--note", default=None, help="Free text, kept in genop's store only (never in Prefect).")
@json_option
def case_route_cmd(case_number: str, to: str, by: str, reason: str, note: str | None, as_json: bool) -> None:
    """Send a case routed to Løjtegårdsvej to Copenhagen (Tårnby's choice, agreement §4)."""
    runtime = current_runtime()
    number = case_number.strip().upper()
    url = require_server(runtime.settings)  # before recording anything: the consent wait must follow
    with runtime.store.session() as session:
        route_to_copenhagen(session, number, by=by, reason=reason, note=note, agreement=runtime.agreement,
                            now=now_utc())
    from flows.routing import RouteReason, case_route

    run_flow(url, case_route, case_number=number, staff_name=by, reason=RouteReason[reason])
    with runtime.store.session() as session:
        view = case_view(get_case(session, number, with_events=True), runtime.agreement, events=True)
        figure = capacity(session, runtime.agreement, today().year)
    if as_json:
        output.emit_json({**view, "capacity": figure.as_dict()})
        return
    output.print_case(view)
    output.console.print(figure.line(), markup=False)


@cli.command("capacity")
@click.option("--year", type=int, default=None, help="The year (default: this year).")
@json_option
def capacity_cmd(year: int | None, as_json: bool) -> None:
    """Geriatric cases this year and the share sent to Copenhagen (expected ~10%, agreement §3.1)."""
    runtime = current_runtime()
    with runtime.store.session() as session:
        figure = capacity(session, runtime.agreement, year or today().year)
    if as_json:
        output.emit_json(figure.as_dict())
    else:
        output.console.print(figure.line(), markup=False)
