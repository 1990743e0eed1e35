"""The ``genop`` command: what operations staff type.

Commands that run a flow do so against the running system's Prefect server (the run
appears in its UI); commands that only read cases go straight to the case store.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from genop.case_view import case_view
from genop.clock import parse_as_of
from genop.consent import ConsentAnswer, ConsentDecision, ConsentMethod
from genop.errorlog import record_private_error
from genop.errors import CaseNotFound, GenopError
from genop.files import use_private_umask
from genop.lifecycle import CaseState
from genop.inbox import is_plan_candidate, stage_copy
from genop.plans import plan_file_problem
from genop.mail.outbox import list_messages, outbox_view
from genop.runtime import Runtime, current_runtime
from genop.store.repository import get_case, list_cases, quarantined_files
from genop_cli import output
from genop_cli.server import ServerUnavailable, describe_failure, require_server, run_flow

EXIT_ERROR = 1
EXIT_NO_SERVER = 3
EXIT_NOT_FOUND = 4
EXIT_QUARANTINED = 5
EXIT_PREFECT = 6


class GenopGroup(click.Group):
    """Turns every error into one line on stderr and an exit code — never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ServerUnavailable as exc:
            _fail(str(exc), EXIT_NO_SERVER)
        except CaseNotFound as exc:
            _fail(exc.message, EXIT_NOT_FOUND)
        except GenopError as exc:
            _fail(exc.message, EXIT_ERROR)
        except Exception as exc:  # noqa: BLE001 - the edge: Prefect/HTTP errors, a failed run
            reference = _keep_details(exc)
            _fail(describe_failure(exc, os.environ.get("PREFECT_API_URL")) + reference, EXIT_PREFECT)


def _keep_details(exc: BaseException) -> str:
    """The traceback goes to genop's private error log, not to the screen; returns its reference."""
    try:
        return " (reference " + record_private_error(current_runtime().settings.error_log, "genop CLI", exc) + ")"
    except (OSError, GenopError):
        return ""  # the one line on screen is what matters


def _fail(message: str, code: int) -> None:
    output.errors.print(f"genop: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


as_of_option = click.option("--as-of", "as_of", metavar="YYYY-MM-DD", default=None,
                            help="Business date to act on (default: today in Copenhagen).")
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")


@click.group(cls=GenopGroup)
def cli() -> None:
    """genop — rehabilitation after discharge for Tårnby, Dragør and Copenhagen."""
    use_private_umask()  # every file genop writes is 0600; `system up`'s children inherit it


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
    taken = plan_files(path)
    url = require_server(runtime.settings)
    batch = stage_copy(path, runtime.settings.folders, accept=lambda file: file.name in taken)
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


_HEAD_BYTES = 4096
_PLAN_FILE = "a plan file is .json or .xml and starts like a JSON object '{' or an XML element '<'"


def plan_files(path: Path) -> set[str]:
    """The names of the plan files at ``path`` (one file, or a folder's files) — before anything
    is copied. A single file that is not a plan file is refused; a folder's other files are
    named on stderr and left where they are; a folder without a plan file is refused."""
    if path.is_file():
        problem = _file_problem(path)
        if problem:
            raise GenopError(f"{path} {problem}: {_PLAN_FILE}; nothing was copied", code="not_a_plan_file")
        return {path.resolve().name}  # stage_copy works on the resolved file
    if not path.is_dir():
        raise GenopError(f"{path} is neither a file nor a folder; nothing was copied", code="not_a_plan_file")
    taken: set[str] = set()
    refused: list[str] = []
    for file in sorted(p for p in path.iterdir() if is_plan_candidate(p)):
        problem = _file_problem(file)
        if problem:
            refused.append(f"{file.name} ({problem})")
        else:
            taken.add(file.name)
    if refused and taken:
        output.errors.print(f"genop: not taken, not plan files: {'; '.join(refused)}", markup=False,
                            highlight=False, soft_wrap=True)
    if not taken:
        others = f": {'; '.join(refused)}" if refused else ""
        raise GenopError(f"{path} holds no plan file ({_PLAN_FILE}){others}; nothing was copied",
                         code="not_a_plan_file")
    return taken


def _file_problem(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return plan_file_problem(path.name, head)


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
    show_case(case_number, as_json)


def show_case(case_number: str, as_json: bool) -> None:
    runtime = current_runtime()
    with runtime.store.session() as session:
        view = case_view(get_case(session, case_number, with_events=True), runtime.agreement, events=True)
    if as_json:
        output.emit_json(view)
    else:
        output.print_case(view)


@case.command("list")
@click.option("--state", type=click.Choice([s.value for s in CaseState]), default=None,
              help="Only cases in this state.")
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


@cli.command("consent")
@click.argument("case_number")
@click.option("--given", "decision", flag_value="given", help="The citizen gave consent.")
@click.option("--refused", "decision", flag_value="refused", help="The citizen refused.")
@click.option("--by", "recorded_by", help="Your name (who records the decision).")
@click.option("--method", type=click.Choice([m.value for m in ConsentMethod]), default="written",
              show_default=True, help="How the consent was obtained.")
@click.option("--date", "decided_on", metavar="YYYY-MM-DD", help="Date of the decision (default today).")
@click.option("--wait", "wait_seconds", type=float, default=300, show_default=True,
              help="Seconds to wait for the order (or letter) to go out; the decision is recorded either way.")
@json_option
def consent(case_number: str, decision: str | None, recorded_by: str | None,
            method: str, decided_on: str | None, wait_seconds: float, as_json: bool) -> None:
    """Record the citizen's consent decision, then see it acted on (order sent / letter written).

    genop consent CASE_NUMBER --given|--refused --by NAME [--method M] [--date D]

    The decision is recorded in genop's store even while the case's consent run is still
    starting or Prefect is busy; the run acts on it when it gets to the consent step.
    """
    if decision is None or not recorded_by:
        raise click.UsageError("give --given or --refused, and --by NAME")
    from genop_cli import consent as consent_cli

    runtime = current_runtime()
    answer = ConsentAnswer(ConsentDecision(decision), ConsentMethod(method),
                           consent_cli.parse_date(decided_on), recorded_by)
    recorded = consent_cli.record_answer(runtime, case_number, answer)
    state = None
    try:
        url = require_server(runtime.settings)
    except ServerUnavailable:
        url = None
    if url is not None:
        from genop_cli.server import prefect_settings

        with prefect_settings(url):
            state = consent_cli.see_it_acted_on(runtime, recorded, consent_cli.answer_payload(answer),
                                                wait_seconds)
    number = recorded.case_number
    if as_json:
        output.emit_json({"case_number": number, "decision": decision,
                          "state": state or recorded.state, "acted_on": state is not None})
    elif state is not None:
        output.console.print(f"consent {decision} recorded for {number}; case is now {state}")
    else:
        what = "the order is sent" if decision == "given" else "the refusal letter is written"
        why = ("no Prefect server answers right now" if url is None
               else f"its consent run has not got to it within {wait_seconds:.0f} s")
        output.console.print(f"consent {decision} recorded for {number} in genop ({why}); {what} when "
                             f"the run consent-{number} reaches the consent step, or by consent-reconcile "
                             "— nothing more to do")


@cli.command("consent-reconcile")
def consent_reconcile_cmd() -> None:
    """Finish what a crash left undone: consent waits Prefect lost, mail composed but not
    sent, sent orders and letters not recorded, documents not handed off."""
    runtime = current_runtime()
    url = require_server(runtime.settings)
    from flows.reconcile import reconcile

    result = run_flow(url, reconcile)
    output.console.print(
        f"{result['missing']} case(s) without a wait; {result['started']} wait(s) opened; "
        f"{result['answered_waits_resumed']} answered wait(s) closed; "
        f"{result['mail_delivered']} mail(s) delivered, {result['mail_left_pending']} left pending; "
        f"{result['sent_recorded']} sent mail(s) recorded; {result['orders_resumed']} order(s) and "
        f"{result['letters_resumed']} letter(s) resumed; {result['documents_handed_off']} document(s) "
        "handed off")


@case.command("forward")
@click.argument("case_number")
@json_option
def case_forward_cmd(case_number: str, as_json: bool) -> None:
    """(Re-)send a case's order to Copenhagen; a case already forwarded sends nothing."""
    runtime = current_runtime()
    url = require_server(runtime.settings)
    from flows.forward import case_forward

    delays = runtime.settings.smtp_retry_delays
    output.errors.print(f"sending the order for {case_number.upper()} (if the mail server is down, "
                        f"retries take up to {sum(delays)} s) …")
    state = run_flow(url, case_forward, case_number=case_number.upper())
    show_case(case_number, as_json)
    if state != "forwarded":
        _fail(f"{case_number.upper()} is {state}; see the audit trail above", EXIT_ERROR)


@cli.group(cls=GenopGroup)
def outbox() -> None:
    """Mails and letters: sent, pending or failed."""


@outbox.command("list")
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed"]), default=None)
@json_option
def outbox_list(status: str | None, as_json: bool) -> None:
    runtime = current_runtime()
    with runtime.store.session() as session:
        rows = [outbox_view(row) for row in list_messages(session, status=status)]
    if as_json:
        output.emit_json({"outbox": rows})
    else:
        output.print_outbox(rows)


@cli.group(cls=GenopGroup)
def certs() -> None:
    """Certificates for signed and encrypted mail."""


@certs.command("demo")
@click.option("--overwrite", is_flag=True, help="Replace existing demo files.")
def certs_demo(overwrite: bool) -> None:
    """Create a DEMO CA and party certificates under $GENOP_HOME/certs (never for production)."""
    runtime = current_runtime()
    written = create_demo_certificates(runtime, overwrite=overwrite)
    folder = runtime.settings.certificates_dir
    output.console.print(f"{len(written)} demo file(s) written to {folder}" if written
                         else f"demo certificates already present in {folder}")


def create_demo_certificates(runtime: Runtime, *, overwrite: bool = False) -> list[Path]:
    from genop.mail.certificates import create_demo_pki
    from genop.mail.compose import address_overrides

    parties = {key: str(party.contact.email) for key, party in runtime.agreement.parties.items()
               if party.contact is not None and party.contact.email is not None}
    parties.update(address_overrides(runtime.settings))
    return create_demo_pki(runtime.settings.certificates_dir, parties, overwrite=overwrite)


@cli.group(cls=GenopGroup)
def agreement() -> None:
    """The agreement itself: its term and termination (agreement §12)."""


@cli.group(cls=GenopGroup)
def system() -> None:
    """The running system: Prefect server, served deployments."""


@system.command("up")
def system_up() -> None:
    """Start the Prefect server (with UI) and serve genop's deployments until Ctrl-C."""
    from genop_cli.system import run_system

    sys.exit(run_system(current_runtime()))


def main() -> None:
    cli(prog_name="genop")


from genop_cli import training as _training  # noqa: E402,F401 - registers the training commands
from genop_cli import settlement as _settlement  # noqa: E402,F401 - registers the settlement commands
from genop_cli import agreement as _agreement  # noqa: E402,F401 - registers the agreement commands
from genop_cli import routing as _routing  # noqa: E402,F401 - registers `case route` and `capacity`
from genop_cli import escalation as _escalation  # noqa: E402,F401 - registers `escalate` and `risks`
from genop_cli import disputes as _disputes  # noqa: E402,F401 - registers `dispute …`
from genop_cli import redo as _redo  # noqa: E402,F401 - registers `dispute redo`
