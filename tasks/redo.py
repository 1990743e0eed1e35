"""Redo tasks for disputes (issue 12): re-send a mail, and leave the run's record as an artifact.

Results, logs and artifacts carry the dispute's and the case's numbers and Message-IDs only;
the dispute's reason stays in genop's store.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from genop.clock import now_utc, parse_as_of
from genop.disputes import Action
from genop.disputes.redecide import redecide
from genop.disputes.resend import resend
from genop.store.repository import get_case
from genop.runtime import current_runtime
from tasks.privacy import private_errors


@task(name="resend-mail", cache_policy=NO_CACHE)
@private_errors
def resend_task(dispute: str, action: str, by: str, case: str | None, as_of: date | None,
                notice: str | None = None) -> dict[str, Any]:
    """The re-sent mails composed into the outbox once (a second run gets the first run's)."""
    runtime = current_runtime()
    run_id = flow_run.get_id()
    with runtime.store.session() as session:
        done = resend(session, runtime.agreement, runtime.settings, dispute, Action(action), by=by,
                      day=parse_as_of(as_of), now=now_utc(), case_number=case, notice=notice,
                      flow_run_id=str(run_id) if run_id else None)
    entries = done.produced.get("outbox", [])
    get_run_logger().info("%s %s (case %s): %d mail(s) %s", done.dispute, action, done.case_number, len(entries),
                          "composed" if done.first else "re-sent by an earlier run; nothing new composed")
    return {"dispute": done.dispute, "case": done.case_number, "action": action, "first": done.first,
            "outbox_ids": list(done.outbox_ids), "message_ids": [entry["message_id"] for entry in entries],
            "resends": [entry["original_message_id"] for entry in entries]}


@task(name="redecide-case", cache_policy=NO_CACHE)
@private_errors
def redecide_task(dispute: str, by: str, case: str | None, as_of: date | None) -> dict[str, Any]:
    """The case decided again on its latest revision, once per dispute, case and revision (a
    second run gets the first run's result). Numbers, states and routes only: the decision's
    reasons and the old decision stay in genop's store."""
    runtime = current_runtime()
    run_id = flow_run.get_id()
    with runtime.store.session() as session:
        done = redecide(session, runtime.agreement, dispute, by=by, day=parse_as_of(as_of), now=now_utc(),
                        case_number=case, flow_run_id=str(run_id) if run_id else None)
    with runtime.store.session() as session:
        now_in = str(get_case(session, done.case_number).state)
    get_run_logger().info("%s redecide (case %s, revision %d): %s -> %s%s", done.dispute, done.case_number,
                          done.revision, done.state_before, done.state,
                          "" if done.first else "; re-decided by an earlier run, nothing new")
    return {"dispute": done.dispute, "case": done.case_number, "action": Action.REDECIDE.value,
            "first": done.first, "revision": done.revision, "state_before": done.state_before,
            "state": done.state, "route_before": done.route_before, "route": done.route,
            "unchanged": done.unchanged, "consent_wait": done.consent_wait and now_in == done.state,
            "forward": done.forward and now_in == done.state}


@task(name="record-redo-artifact", cache_policy=NO_CACHE)
def redo_artifact(result: dict[str, Any]) -> None:
    """The run's record in the UI (numbers and Message-IDs only)."""
    dispute, action = str(result["dispute"]), str(result["action"])
    lines = [f"# {dispute}: {action}", "", "| | |", "|---|---|", f"| Tvist | {dispute} |",
             f"| Sag | {result.get('case') or '–'} |", f"| Handling | {action} |",
             f"| Første kørsel | {'ja' if result.get('first') else 'nej (allerede udført; intet nyt sendt)'} |"]
    for new, original in zip(result.get("message_ids") or [], result.get("resends") or [], strict=False):
        lines.append(f"| Ny mail | {new} (genfremsender {original}) |")
    if "state" in result and "state_before" in result:  # a re-decided case: states and routes, no reasons
        lines.append(f"| Revision | {result.get('revision')} |")
        lines.append(f"| Tilstand | {result['state_before']} → {result['state']}"
                     f"{' (uændret)' if result.get('unchanged') else ''} |")
        lines.append(f"| Rute | {result.get('route_before') or '–'} → {result.get('route') or '–'} |")
    if result.get("consent_wait"):
        lines.append("| Samtykke | ventes: samtykke-afventning åbnet (ellers af consent-reconcile) |")
    if result.get("forward"):
        lines.append("| Bestilling | sendes til København (samtykke var givet) |")
    if result.get("undelivered"):
        lines.append(f"| Ikke leveret endnu | {result['undelivered']} (leveres igen af consent-reconcile) |")
    create_markdown_artifact(key=f"{dispute.lower()}-{action}", markdown="\n".join(lines),
                             description=f"{dispute} {action}")
