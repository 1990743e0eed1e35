"""Intake tasks: where plan files are touched and cases written.

Each task is idempotent: taking in a batch again records "unchanged" re-sends, never a
second case, and finds its quarantined files' rows. Inputs and results carry staging
batch paths, neutral file names (``0001.json``), case numbers, quarantine ids and
counts — never a hospital's file name, CPR numbers, names or diagnoses (they stay in
genop's store and files).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from genop.clock import parse_as_of
from genop.errors import GenopError
from genop.inbox import (
    MAX_BATCH_ATTEMPTS,
    batch_attempts,
    batch_files,
    claim_inbox,
    close_batch as close_staged_batch,
    count_attempt,
    forget_attempt,
    staged_batch,
    stale_batches,
    take_stale,
)
from genop.intake import STORE_UNREACHABLE, IntakeOutcome, summarise
from genop.runtime import current_runtime
from tasks.privacy import private_errors


@task(name="find-batch", cache_policy=NO_CACHE)
def find_batch(path: str) -> str:
    """The staging batch to take in. Only a batch is taken — one `genop plan submit` or the inbox
    made, where files have neutral names — never a path typed into the UI's Run form: what a
    hospital named its files (names, CPR numbers) would then be Prefect's (issue 17, point 3).
    The message does not repeat what was given."""
    batch = staged_batch(path, current_runtime().settings.folders)
    if batch is None:
        raise GenopError("plan-intake takes a staging batch (its id, as `genop plan submit` passes it), not a "
                         "path: drop the plan files into the inbox folder (inbox-poll takes them in within a "
                         "minute) or run `genop plan submit PATH` on the genop host", code="not_staged")
    return str(batch)


@task(name="claim-inbox", cache_policy=NO_CACHE)
@private_errors
def claim_inbox_batches(limit: int | None = None) -> list[str]:
    """Batches to take in: the inbox's new files first, then any a crash left behind — so a
    batch that keeps failing never holds up newer files."""
    folders = current_runtime().settings.folders
    stale = [str(batch) for batch in stale_batches(folders) if take_stale(batch)]
    claimed = claim_inbox(folders, limit=limit)
    return ([str(claimed)] if claimed is not None else []) + stale


@task(name="list-batch", cache_policy=NO_CACHE)
@private_errors
def list_batch(batch: str) -> list[str]:
    """The batch's files by neutral name; counts this as one more attempt at the batch."""
    count_attempt(Path(batch))
    return [path.name for path in batch_files(Path(batch))]


@task(name="take-in-plans", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
@private_errors
def take_in_plans(batch: str, names: list[str], as_of: date | None) -> list[IntakeOutcome]:
    """Parse, decide and record one chunk of a batch in one transaction per chunk."""
    runtime = current_runtime()
    paths = [Path(batch) / name for name in names if (Path(batch) / name).exists()]
    give_up = batch_attempts(Path(batch)) > MAX_BATCH_ATTEMPTS
    try:
        outcomes = runtime.intake.take_in(paths, parse_as_of(as_of), give_up=give_up)
    except STORE_UNREACHABLE:
        forget_attempt(Path(batch))  # an outage of the store must not use up the batch's attempts
        raise
    get_run_logger().info("took in %d file(s) of batch %s: %s", len(outcomes), Path(batch).name,
                          summarise(outcomes))
    return outcomes


@task(name="close-batch", cache_policy=NO_CACHE)
def close_batch(batch: str) -> None:
    close_staged_batch(Path(batch))


@task(name="publish-intake-report", cache_policy=NO_CACHE)
def publish_intake_report(outcomes: list[IntakeOutcome]) -> None:
    """A table artifact for operations staff: case numbers and outcomes, no personal data."""
    rows = [
        {
            "file": o.file,
            "case": o.case_number or f"quarantine #{o.quarantine_id}",
            "outcome": o.outcome,
            "state": o.state or "",
            "route": o.route or "",
            "problem": o.reason_code or "",
        }
        for o in outcomes
    ]
    counts = summarise(outcomes)
    description = "Plan intake: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing")
    create_table_artifact(table=rows or [{"case": "", "outcome": "no files"}], key="plan-intake",
                          description=description)
