"""``genop dispute redo NUMBER ACTION``: run a dispute's redo deployment through the server, as the
UI's Run form does, wait for it, and print what the redo record says it produced (issue 12).

Prefect gets the dispute's number, who asks, and the options the action takes — never the
dispute's reason. What is refused before anything runs (no such dispute, nothing to re-send,
another case) is said in one line without starting a run.
"""

from __future__ import annotations

import getpass
from datetime import date
from typing import Any

import click
from sqlalchemy.orm import Session

from genop.disputes import DEPLOYMENTS, Action, is_dispute_number
from genop.disputes.records import DisputeError, get_dispute, redo_key
from genop.disputes.redecide import check_redecide, redo_target
from genop.disputes.resend import RESENDS, needs_case, plan_resend, subject_case
from genop.errors import GenopError
from genop.runtime import Runtime, current_runtime
from genop.settlement.corrections import checked, with_case
from genop.store.models import Dispute, DisputeRedo
from genop_cli import output
from genop_cli.disputes import dispute
from genop_cli.main import json_option
from genop_cli.server import require_server, run_deployment_and_wait

OPTIONS_OF: dict[Action, frozenset[str]] = {
    Action.RESEND_NOTICE: frozenset({"notice"}),
    Action.CORRECT_SETTLEMENT: frozenset({"correction", "visit", "completed_on", "tariff_group"}),
}
"""The options an action takes besides dispute, by, case and as_of (the deployments' parameters)."""
FLAGS = {"notice": "--notice", "correction": "--correction", "visit": "--visit", "completed_on": "--completed-on",
         "tariff_group": "--tariff-group"}
REQUIRED: dict[Action, tuple[str, ...]] = {Action.RESEND_NOTICE: ("notice",),
                                           Action.CORRECT_SETTLEMENT: ("correction",)}


def deployment_of(action: Action) -> str:
    """``flow-name/deployment-name``: each redo flow is served under its own name (flows/serve.py)."""
    return f"{DEPLOYMENTS[action]}/{DEPLOYMENTS[action]}"


def redo_parameters(number: str, action: Action, *, by: str, case: str | None, as_of: date | None,
                    **options: Any) -> dict[str, Any]:  # noqa: ANN401 - each option has its own type
    """The deployment's parameters: only what the action takes, refusing an option it does not."""
    if not is_dispute_number(number):
        raise DisputeError(f"{number!r} is not a dispute number (TV-YYYY-NNNN, see genop dispute list)",
                           code="dispute_number_invalid")
    takes = OPTIONS_OF.get(action, frozenset())
    given = {name: value for name, value in options.items() if value is not None}
    for name in given:
        if name not in takes:
            users = ", ".join(a.value for a, names in OPTIONS_OF.items() if name in names)
            raise DisputeError(f"{FLAGS[name]} is not an option of {action.value} (only of {users})",
                               code="option_not_taken")
    for name in REQUIRED.get(action, ()):
        if name not in given:
            raise DisputeError(f"{action.value} needs {FLAGS[name]}", code="option_missing")
    parameters: dict[str, Any] = {"dispute": number, "by": by}
    if case:
        parameters["case"] = case.strip().upper()
    if as_of is not None:
        parameters["as_of"] = as_of.isoformat()
    for name, value in given.items():
        parameters[name] = value.isoformat() if isinstance(value, date) else value
    return parameters


def _who(by: str | None) -> str:
    """Who asks: --by, else the login name (kept in the dispute's timeline)."""
    if by and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise DisputeError("say who asks for the redo: --by NAME", code="by_missing") from None


def _check(runtime: Runtime, number: str, action: Action, case: str | None, notice: str | None) -> None:
    """Refuse in one line, before a run is started, what the redo would refuse."""
    with runtime.store.session() as session:
        if action in RESENDS:
            plan_resend(session, runtime.agreement, number, action, case_number=case, notice=notice)
        elif action is Action.REDECIDE:
            check_redecide(session, runtime.agreement, number, case_number=case)
        else:
            get_dispute(session, number)


def _expected_key(session: Session, runtime: Runtime, dispute: Dispute, action: Action,
                  parameters: dict[str, Any]) -> str | None:
    """The key of the redo these parameters ask for: the record a run made, or the first run of the
    same redo made (asked for again, a run makes none)."""
    case = parameters.get("case")
    if action in RESENDS:
        plan = plan_resend(session, runtime.agreement, dispute.number, action, case_number=case,
                           notice=parameters.get("notice"))
        return redo_key(plan.dispute, plan.action, plan.target)
    if action is Action.REDECIDE:
        return redo_key(dispute, action, redo_target(needs_case(dispute, subject_case(session, dispute, case))))
    completed = parameters.get("completed_on")
    request = checked(dispute.number, str(parameters.get("correction")), "", case=case, visit=parameters.get("visit"),
                      completed_on=date.fromisoformat(completed) if completed else None,
                      tariff_group=parameters.get("tariff_group"))
    return redo_key(dispute, action, with_case(session, dispute, request).target)


def _record(runtime: Runtime, number: str, action: Action, run_id: str,
            parameters: dict[str, Any]) -> DisputeRedo | None:
    """The redo record the run left: the one it made, else (a redo asked for again) the first."""
    with runtime.store.session() as session:
        dispute_row = get_dispute(session, number)
        found = next((r for r in dispute_row.redos if r.action == action.value and r.flow_run_id == run_id), None)
        if found is None:
            try:
                key = _expected_key(session, runtime, dispute_row, action, parameters)
            except GenopError:
                key = None  # the run refused it: nothing was recorded
            found = next((r for r in dispute_row.redos if r.key == key), None)
        if found is not None:
            session.expunge(found)
        return found


@dispute.command("redo")
@click.argument("number")
@click.argument("action", type=click.Choice([a.value for a in Action]))
@click.option("--by", "by", default=None, help="Your name: who asks (default: your login name).")
@click.option("--case", "case", default=None, help="GEN-YYYY-NNNNNN, for a dispute about an invoice or a month.")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Business date of the redo (default: today in Copenhagen).")
@click.option("--notice", default=None, help="resend-notice: the outbox key of the mail (genop outbox list).")
@click.option("--visit", type=int, default=None, help="correct-settlement: the visit's id (genop case show).")
@click.option("--completed-on", "completed_on", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="correct-settlement change-completion: the corrected completion date.")
@click.option("--tariff-group", "tariff_group", default=None, help="correct-settlement reprice: the tariff group.")
@click.option("--correction", type=click.Choice(["remove-visit", "change-completion", "reprice"]), default=None,
              help="correct-settlement: what to correct.")
@click.option("--wait", "wait", type=float, default=600.0, show_default=True,
              help="Seconds to wait for the run to end.")
@json_option
def redo(number: str, action: str, by: str | None, case: str | None, as_of: Any, notice: str | None,  # noqa: ANN401
         visit: int | None, completed_on: Any, tariff_group: str | None, correction: str | None,  # noqa: ANN401
         wait: float, as_json: bool) -> None:
    """Redo ACTION for dispute NUMBER by running its deployment (dispute-ACTION) on the server."""
    runtime = current_runtime()
    number, chosen = number.strip().upper(), Action(action)
    parameters = redo_parameters(
        number, chosen, by=_who(by), case=case,
        as_of=as_of.date() if as_of else None, notice=notice, visit=visit,
        completed_on=completed_on.date() if completed_on else None, tariff_group=tariff_group,
        correction=correction)
    _check(runtime, number, chosen, parameters.get("case"), notice)
    url = require_server(runtime.settings)
    run = run_deployment_and_wait(url, deployment_of(chosen), parameters, timeout=wait)
    found = _record(runtime, number, chosen, str(run.id), parameters)
    document = {"dispute": number, "action": chosen.value, "flow_run": run.name, "flow_run_id": str(run.id),
                "redo": found.key if found else None, "status": found.status if found else None,
                "requested_by": found.requested_by if found else None,
                "produced": found.produced if found else {}, "changes": found.changes if found else {}}
    if as_json:
        output.emit_json(document)
        return
    _print(document)


def _print(document: dict[str, Any]) -> None:
    head = f"{document['dispute']} {document['action']}: run {document['flow_run']}"
    if document["redo"] is None:
        output.console.print(f"{head} ended; it recorded no redo", markup=False, highlight=False)
        return
    output.console.print(f"{head}; redo {document['redo']} {document['status']} (asked by "
                         f"{document['requested_by']})", markup=False, highlight=False)
    for entry in document["produced"].get("outbox", []):
        output.console.print(f"  new mail {entry['message_id']} ({entry['key']}), re-sends "
                             f"{entry['original_message_id']}", markup=False, highlight=False)
    for name, value in document["produced"].items():
        if name != "outbox":
            output.console.print(f"  {name}: {value}", markup=False, highlight=False)
