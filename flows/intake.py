"""Plan intake (agreement "Case lifecycle" 1–2): receive → check scope → record.

One flow run takes in a whole staging batch (staged by `genop plan submit`, or the inbox);
the per-plan work is done in chunks inside tasks, because a flow run per plan would cost
~1 s each.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from genop.errors import GenopError
from genop.inbox import MAX_BATCH_ATTEMPTS, is_plan_candidate, staged_batch
from genop.intake import CHUNK_SIZE, IntakeOutcome, summarise
from genop.runtime import current_runtime
from tasks.consent import start_consent_waits
from tasks.intake import (
    claim_inbox_batches,
    close_batch,
    find_batch,
    list_batch,
    publish_intake_report,
    take_in_plans,
)


def _intake_run_name() -> str:
    """Named by the staging batch and its file count, never by a file's name (a hospital's
    file name can hold a citizen's name or CPR number); a path that is no batch is refused."""
    batch = staged_batch(flow_run.parameters.get("path"), current_runtime().settings.folders)
    if batch is None:
        return "intake-not-staged"
    count = sum(1 for p in batch.iterdir() if is_plan_candidate(p))
    return f"intake-{batch.name}-{count}-{'file' if count == 1 else 'files'}"


def _take_in_batch(batch: str, as_of: date | None, outcomes: list[IntakeOutcome]) -> None:
    """Adds each chunk's outcomes as it is recorded, so a later chunk's failure does not hide
    the cases the earlier chunks made (they still get their consent waits and their report)."""
    names = list_batch(batch)
    for start in range(0, len(names), CHUNK_SIZE):
        outcomes.extend(take_in_plans(batch, names[start:start + CHUNK_SIZE], as_of))
    close_batch(batch)


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
    """Take in a staging batch of plan files (JSON or MedCom-style XML): ``path`` is the batch's
    id or path, as `genop plan submit` passes it; staff in the UI drop files into the inbox."""
    batch = find_batch(path)
    outcomes: list[IntakeOutcome] = []
    try:
        _take_in_batch(batch, as_of, outcomes)
    except Exception:
        if outcomes:
            _report(outcomes)
        raise
    return _report(outcomes)


@flow(name="inbox-poll", persist_result=False)
def inbox_poll(as_of: date | None = None, limit: int | None = None) -> dict[str, object]:
    """Scheduled: take in every new file in the inbox (and any batch a crash left behind)."""
    outcomes: list[IntakeOutcome] = []
    failed: list[str] = []
    for batch in claim_inbox_batches(limit):
        try:
            _take_in_batch(batch, as_of, outcomes)
        except Exception:  # noqa: BLE001 - this batch is tried again later; the others go on
            failed.append(Path(batch).name)
    report = _report(outcomes)
    if failed:
        raise GenopError(f"batch(es) {', '.join(failed)} could not be taken in and will be tried again "
                         f"(at most {MAX_BATCH_ATTEMPTS} times); the other files were taken in",
                         code="intake_batch_failed")
    return report
