"""The ``genop`` command: what operations staff type.

Commands that run a flow do so against the running system's Prefect server (the run
appears in its UI); commands that only read cases go straight to the case store.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from genop.cases import case_view
from genop.clock import parse_as_of
from genop.errors import CaseNotFound, GenopError
from genop.inbox import stage_copy
from genop.runtime import Runtime, current_runtime
from genop.store.repository import get_case, list_cases, quarantined_files
from genop_cli import output
from genop_cli.server import ServerUnavailable, require_server, run_flow

EXIT_ERROR = 1
EXIT_NO_SERVER = 3
EXIT_NOT_FOUND = 4
EXIT_QUARANTINED = 5


class GenopGroup(click.Group):
    """Turns domain errors into one line on stderr and an exit code — never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ServerUnavailable as exc:
            _fail(str(exc), EXIT_NO_SERVER)
        except CaseNotFound as exc:
            _fail(exc.message, EXIT_NOT_FOUND)
        except GenopError as exc:
            _fail(exc.message, EXIT_ERROR)


def _fail(message: str, code: int) -> None:
    output.errors.print(f"genop: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


as_of_option = click.option("--as-of", "as_of", metavar="YYYY-MM-DD", default=None,
                            help="Business date to act on (default: today in Copenhagen).")
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")


@click.group(cls=GenopGroup)
def cli() -> None:
    """genop — rehabilitation after discharge for Tårnby, Dragør and Copenhagen."""


@cli.group(cls=GenopGroup)
def plan() -> None:
    """Rehabilitation plans (genoptræningsplaner)."""


@plan.command("submit")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@as_of_option
@json_option
def plan_submit(path: Path, as_of: str | None, as_json: bool) -> None:
    """Take in a plan file (JSON or XML), or every plan file in a folder, in one flow run."""
    runtime = current_runtime()
    day = parse_as_of(as_of)
    url = require_server(runtime.settings)
    batch = stage_copy(path, runtime.settings.folders)
    from flows.intake import plan_intake

    result = run_flow(url, plan_intake, path=str(batch), as_of=day)
    cases, quarantined = _submitted(runtime, result)
    if path.is_file():
        _print_single_submission(cases, quarantined, as_json)
        return
    if as_json:
        output.emit_json({"files": result["files"], "cases": cases, "quarantined": quarantined})
    else:
        output.print_case_list(cases)
        if quarantined:
            output.print_quarantine(quarantined)


def _submitted(runtime: Runtime, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    with runtime.store.session() as session:
        cases = [case_view(get_case(session, number), runtime.agreement)
                 for number in result["case_numbers"]]
        quarantined = [_quarantine_row(row) for row in quarantined_files(session, result["quarantine_ids"])]
    return cases, quarantined


def _print_single_submission(cases: list[dict], quarantined: list[dict], as_json: bool) -> None:
    if quarantined:
        row = quarantined[0]
        if as_json:
            output.emit_json({"quarantined": row})
        _fail(f"{row['file']} was not taken in ({row['reason_code']}): {row['reason']} "
              f"— kept in quarantine at {row['stored_path']}", EXIT_QUARANTINED)
    if as_json:
        output.emit_json(cases[0])
    else:
        output.print_case(cases[0])


@cli.group(cls=GenopGroup)
def case() -> None:
    """Cases: one per plan_id."""


@case.command("show")
@click.argument("case_number")
@json_option
def case_show(case_number: str, as_json: bool) -> None:
    """A case with its reasons, deadlines and audit trail."""
    runtime = current_runtime()
    with runtime.store.session() as session:
        view = case_view(get_case(session, case_number, with_events=True), runtime.agreement, events=True)
    if as_json:
        output.emit_json(view)
    else:
        output.print_case(view)


@case.command("list")
@click.option("--state", default=None, help="Only cases in this state (e.g. awaiting_consent).")
@click.option("--municipality", default=None, help="Only this municipality code (185, 155).")
@json_option
def case_list(state: str | None, municipality: str | None, as_json: bool) -> None:
    """Cases, oldest first."""
    runtime = current_runtime()
    with runtime.store.session() as session:
        views = [case_view(c, runtime.agreement)
                 for c in list_cases(session, state=state, municipality=municipality)]
    if as_json:
        output.emit_json({"cases": views})
    else:
        output.print_case_list(views)


@cli.group(cls=GenopGroup)
def quarantine() -> None:
    """Files that could not be taken in, kept with their reason."""


@quarantine.command("list")
@json_option
def quarantine_list(as_json: bool) -> None:
    runtime = current_runtime()
    with runtime.store.session() as session:
        rows = [_quarantine_row(row) for row in quarantined_files(session)]
    if as_json:
        output.emit_json({"quarantined": rows})
    else:
        output.print_quarantine(rows)


def _quarantine_row(row: Any) -> dict[str, Any]:
    return {"id": row.id, "file": row.source_name, "reason_code": row.reason_code,
            "reason": row.reason, "stored_path": row.stored_path,
            "received_at": row.received_at.isoformat(timespec="seconds")}


@cli.group(cls=GenopGroup)
def system() -> None:
    """The running system: Prefect server, served deployments."""


@system.command("up")
def system_up() -> None:
    """Start the Prefect server (with UI) and serve genop's deployments until Ctrl-C."""
    from genop_cli.system import run_system

    sys.exit(run_system(current_runtime().settings))


def main() -> None:
    cli(prog_name="genop")
