"""Plan intake (agreement "Case lifecycle" 1–2): receive → check scope → record.

One flow run takes in a whole batch (a file, a folder, or the inbox); the per-plan work
is done in chunks inside tasks, because a flow run per plan would cost ~1 s each.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from genop.cpr import redact_cpr
from genop.intake import CHUNK_SIZE, IntakeOutcome, summarise
from tasks.consent import start_consent_waits
from tasks.intake import (
    claim_inbox_batches,
    close_batch,
    list_batch,
    publish_intake_report,
    stage_plans,
    take_in_plans,
)


def _intake_run_name() -> str:
    """Named by the plan file (CPR-like digit runs masked), or the folder's file count."""
    path = Path(flow_run.parameters.get("path", ""))
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        if len(files) == 1:
            return redact_cpr(f"intake-{files[0].name}")
        return f"intake-{len(files)}-files"
    return redact_cpr(f"intake-{path.name}")


def _take_in_batch(batch: str, as_of: date | None) -> list[IntakeOutcome]:
    names = list_batch(batch)
    outcomes: list[IntakeOutcome] = []
    for start in range(0, len(names), CHUNK_SIZE):
        outcomes.extend(take_in_plans(batch, names[start:start + CHUNK_SIZE], as_of))
    close_batch(batch)
    return outcomes


def _report(outcomes: list[IntakeOutcome]) -> dict[str, object]:
    waiting = [o.case_number for o in outcomes if o.needs_consent_wait and o.case_number]
    if waiting:
        start_consent_waits(waiting)
    publish_intake_report(outcomes)
    counts = summarise(outcomes)
    get_run_logger().info("intake finished: %d file(s) %s", len(outcomes), counts)
    return {
        "files": len(outcomes),
        "counts": counts,
        "case_numbers": sorted({o.case_number for o in outcomes if o.case_number}),
        "quarantine_ids": [o.quarantine_id for o in outcomes if o.quarantine_id is not None],
    }


@flow(name="plan-intake", flow_run_name=_intake_run_name, persist_result=False)
def plan_intake(path: str, as_of: date | None = None) -> dict[str, object]:
    """Take in a plan file or a folder of plan files (JSON or MedCom-style XML)."""
    batch = stage_plans(path)
    return _report(_take_in_batch(batch, as_of))


@flow(name="inbox-poll", persist_result=False)
def inbox_poll(as_of: date | None = None, limit: int | None = None) -> dict[str, object]:
    """Scheduled: take in every new file in the inbox (and any batch a crash left behind)."""
    outcomes: list[IntakeOutcome] = []
    for batch in claim_inbox_batches(limit):
        outcomes.extend(_take_in_batch(batch, as_of))
    return _report(outcomes)
