"""CLI commands for training and completion (registered on the groups of genop_cli.main)."""

from __future__ import annotations

from pathlib import Path

import click

from genop.clock import now_utc, parse_as_of
from genop.errors import GenopError
from genop.runtime import current_runtime
from genop.staged import StagedFile, StagedKind, discard, read_source, stage_file
from genop.training import note_cannot_follow, parse_session_time, send_back
from genop_cli import output
from genop_cli.main import EXIT_ERROR, GenopGroup, _fail, as_of_option, case, cli, json_option, show_case
from genop_cli.server import require_server, run_flow


def _run_training_flow(name: str, **parameters: object) -> dict:
    """Run a flow of flows/training.py through the running server (it shows in the UI)."""
    url = require_server(current_runtime().settings)
    import flows.training

    return run_flow(url, getattr(flows.training, name), **parameters)


def _run_on_staged_file(name: str, kind: StagedKind, path: Path, **parameters: object) -> tuple[dict, StagedFile]:
    """Stage the partner's file under a neutral reference and run the flow on that reference, so
    the name the file came with (it can hold a name or a CPR number) never reaches Prefect
    (issue 17, point 3). The file is read first — a missing or unreadable one is refused before
    anything is staged — and the staged copy is discarded when the run is over."""
    content = read_source(path)
    runtime = current_runtime()
    url = require_server(runtime.settings)
    staged = stage_file(content, path.name, kind, runtime.settings.home_dir)
    import flows.training

    try:
        return run_flow(url, getattr(flows.training, name), staged=staged.reference, **parameters), staged
    except GenopError as error:  # said with the file's own name: the person who typed it knows it
        error.args = (staged.named(error.message), *error.args[1:])
        raise
    finally:
        discard(staged)


_FILE = click.Path(path_type=Path)  # checked by read_source: one line, nothing staged


@case.command("offer")
@click.argument("case_number")
@click.option("--first-session", required=True, metavar="YYYY-MM-DD[THH:MM]",
              help="Date (and time, Danish) of the first training session offered.")
@as_of_option
@json_option
def case_offer_cmd(case_number: str, first_session: str, as_of: str | None, as_json: bool) -> None:
    """Record the first session offered; books transport when the plan asks for it."""
    parse_session_time(first_session)
    result = _run_training_flow("case_offer", case_number=case_number.upper(),
                                first_session=first_session, as_of=parse_as_of(as_of))
    show_case(case_number, as_json)
    if result["undelivered"]:
        _fail(f"{result['undelivered']} message(s) not delivered; re-run `genop case deliver "
              f"{case_number.upper()}`", EXIT_ERROR)


@case.command("deliver")
@click.argument("case_number")
def case_deliver_cmd(case_number: str) -> None:
    """Deliver a case's composed but unsent mails (never twice)."""
    result = _run_training_flow("case_deliver", case_number=case_number.upper())
    output.console.print(f"{result['pending']} pending message(s); {result['undelivered']} not delivered")
    if result["undelivered"]:
        sys_exit_undelivered(case_number)


def sys_exit_undelivered(case_number: str) -> None:
    _fail(f"some mail of {case_number.upper()} was not delivered; see `genop outbox list`", EXIT_ERROR)


def _note_and_deliver(case_number: str, note, reason: str, as_json: bool) -> None:  # noqa: ANN001
    runtime = current_runtime()
    require_server(runtime.settings)  # before recording anything: the notice must also go out
    with runtime.store.session() as session:
        note(session, case_number, reason, agreement=runtime.agreement, settings=runtime.settings,
             now=now_utc())
    result = _run_training_flow("case_deliver", case_number=case_number.upper())
    show_case(case_number, as_json)
    if result["undelivered"]:
        sys_exit_undelivered(case_number)


@case.command("cannot-follow")
@click.argument("case_number")
@click.option("--reason", required=True, help="Why the plan cannot be followed (kept in genop's store).")
@json_option
def case_cannot_follow_cmd(case_number: str, reason: str, as_json: bool) -> None:
    """Copenhagen's contact: the plan cannot be followed — Tårnby is told by secure mail."""
    _note_and_deliver(case_number, note_cannot_follow, reason, as_json)


@case.command("send-back")
@click.argument("case_number")
@click.option("--reason", required=True, help="Why the citizen goes back to Løjtegårdsvej.")
@json_option
def case_send_back_cmd(case_number: str, reason: str, as_json: bool) -> None:
    """Copenhagen sends the citizen back to Løjtegårdsvej (agreement §3.1)."""
    _note_and_deliver(case_number, send_back, reason, as_json)


@cli.group(cls=GenopGroup)
def visits() -> None:
    """Training visits delivered by Copenhagen."""


@visits.command("import")
@click.argument("path", type=_FILE)
@as_of_option
@json_option
def visits_import_cmd(path: Path, as_of: str | None, as_json: bool) -> None:
    """Import visits (CSV or JSON lines); every bad line is reported with its reason."""
    report, staged = _run_on_staged_file("visits_import", StagedKind.VISITS, path, as_of=parse_as_of(as_of))
    report = {**report, "source_name": staged.source_name, "staged_as": staged.reference}
    if as_json:
        output.emit_json(report)
        return
    output.console.print(f"{staged.source_name} (import {report['import_id']}): accepted {report['accepted']}, "
                         f"duplicates {report['duplicates']}, rejected {report['rejected']}", markup=False)
    for line in report.get("lines", []):
        output.console.print(f"  line {line['line']}: {line['status']} — {line.get('reason') or ''}",
                             markup=False)
    if report.get("rejects_path"):
        output.console.print(f"rejected lines kept in {report['rejects_path']}", markup=False)


@cli.group(cls=GenopGroup)
def offers() -> None:
    """First sessions offered by the training unit."""


@offers.command("import")
@click.argument("path", type=_FILE)
@as_of_option
@json_option
def offers_import_cmd(path: Path, as_of: str | None, as_json: bool) -> None:
    """Import offers (CSV: case_number,first_session); transport is booked as for `case offer`."""
    result, staged = _run_on_staged_file("offers_import", StagedKind.OFFERS, path, as_of=parse_as_of(as_of))
    if as_json:
        output.emit_json({**result, "source_name": staged.source_name, "staged_as": staged.reference})
        return
    output.console.print(f"{staged.source_name}: {len(result['offers'])} offer(s), "
                         f"{len(result['rejected_lines'])} line(s) rejected", markup=False)
    for offer in result["offers"]:
        output.console.print(f"{offer['case_number']}: {offer['status']} {offer.get('reason') or ''}",
                             markup=False)
    for line in result["rejected_lines"]:
        output.console.print(f"line {line['line']}: rejected — {line['reason']}", markup=False)


@cli.command("complete")
@click.argument("case_number")
@click.option("--status", "status_path", required=True, type=_FILE,
              help="The slutstatus file (JSON: case_number, completed_on, assessment, consent_to_share).")
@as_of_option
@json_option
def complete_cmd(case_number: str, status_path: Path, as_of: str | None, as_json: bool) -> None:
    """Record the final status; with consent it is sent to Tårnby; the course can be settled."""
    result, _ = _run_on_staged_file("case_complete", StagedKind.FINAL_STATUS, status_path,
                                    case_number=case_number.upper(), as_of=parse_as_of(as_of))
    show_case(case_number, as_json)
    if result["undelivered"]:
        sys_exit_undelivered(case_number)


@cli.command("deadlines")
@as_of_option
@json_option
def deadlines_cmd(as_of: str | None, as_json: bool) -> None:
    """Run the daily deadline check now (free-choice letters)."""
    result = _run_training_flow("case_deadlines", as_of=parse_as_of(as_of))
    if as_json:
        output.emit_json(result)
    else:
        output.console.print(f"free-choice letters written: {result['free_choice_letters']}")
