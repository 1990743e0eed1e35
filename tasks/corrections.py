"""The correction of a settled month for a dispute (genop.settlement.corrections): recorded in one
transaction of genop's store, then its document's files written and handed to NemHandel (once:
the hand-off is an outbox row written with the document). Results and the artifact carry
numbers only — the dispute's, the case's, the documents' — never its reason or citizen data.
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
from genop.runtime import current_runtime
from genop.settlement import corrections, documents
from tasks.privacy import private_errors
from tasks.settlement import DB_RETRIES


@task(name="correct-settlement", cache_policy=NO_CACHE, **DB_RETRIES)
@private_errors
def correct_settlement_task(dispute: str, correction: str, by: str, case: str | None, visit: int | None,
                            completed_on: date | None, tariff_group: str | None,
                            as_of: date | None) -> dict[str, Any]:
    request = corrections.checked(dispute, correction, by, case=case, visit=visit, completed_on=completed_on,
                                  tariff_group=tariff_group)
    runtime = current_runtime()
    with runtime.store.session() as session:
        done = corrections.correct(session, runtime.agreement, request, as_of=parse_as_of(as_of),
                                   folder=runtime.settings.home_dir / "invoices", now=now_utc(),
                                   flow_run_id=str(flow_run.get_id() or "") or None)
        numbers = [d.number for d in done.documents]
        summary = {"dispute": request.dispute, "correction": request.kind.value, "redo": done.redo.key,
                   "new": done.new, "documents": numbers, "changes": _figures(done.redo.changes),
                   "totals": [documents.totals_row(runtime.agreement, d) for d in done.documents]}
    documents.write_files(done.documents)  # after the commit, as every settlement document
    handed = documents.hand_off(runtime.store, numbers)
    if handed.pending:
        get_run_logger().warning("not handed to NemHandel yet (pickup folder unavailable; retried by the daily "
                                 "settle run): %s", ", ".join(handed.pending))
    get_run_logger().info("%s: %s %s", done.redo.key, ", ".join(numbers) or "no document",
                          "issued" if done.new else "issued before (unchanged)")
    return {**summary, "handed_off": list(handed.delivered), "handoff_pending": list(handed.pending)}


def _figures(changes: dict[str, Any]) -> dict[str, Any]:
    """What Prefect may show of a correction: numbers and amounts, no visit or completion dates
    (those stay in the redo's record in genop's store, `genop dispute show`)."""
    kept = {key: value for key, value in changes.items() if key not in ("visits", "completed_on_before",
                                                                          "completed_on_after", "money")}
    return {**kept, "visits": [visit["visit"] for visit in changes.get("visits", [])],
            "completion_changed": "completed_on_after" in changes}


@task(name="publish-correction", cache_policy=NO_CACHE)
def publish_correction(result: dict[str, Any]) -> None:
    """A markdown artifact for the UI: numbers and amounts only."""
    changes = result["changes"]
    rows = [f"| {row['document']} | {row['kind']} | {row['municipality']} | {row['total']} | {row['due_date']} |"
            for row in result["totals"]]
    lines = [f"# {result['dispute']}: {result['correction']}", "",
             f"- Sag: {changes.get('case', '')}",
             f"- Faktureret før: {changes.get('invoiced_before', '-')}, efter: {changes.get('invoiced_after', '-')}, "
             f"forskel: {changes.get('difference', '0.00')}",
             f"- Korrigerer: {', '.join(changes.get('originals', [])) or '-'}",
             f"- {'Udført nu' if result['new'] else 'Udført før (intet nyt)'}", ""]
    if changes.get("visits"):
        lines.insert(3, f"- Besøg (id): {', '.join(str(visit) for visit in changes['visits'])}")
    if changes.get("completion_changed"):
        lines.insert(3, "- Afslutningsdato rettet (ingen pengeændring: besøg prissættes på besøgsdatoen, §8)")
    if rows:
        lines += ["| Dokument | Type | Kommune | Beløb | Forfald |", "|---|---|---|---|---|", *rows]
    else:
        lines.append("Intet dokument udstedt.")
    create_markdown_artifact(key="dispute-correct-settlement", markdown="\n".join(lines),
                             description=f"Korrektion af afregning for {result['dispute']}")
