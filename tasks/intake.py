"""Intake tasks: where plan files are touched and cases written.

Each task is idempotent: taking in a batch again records "unchanged" re-sends, never a
second case. Inputs and results carry staging paths, file names, case numbers and
counts — never CPR numbers, names or diagnoses (they stay in genop's store).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from genop.clock import parse_as_of
from genop.inbox import batch_files, claim_inbox, remove_empty_batch, stage_copy, stale_batches
from genop.intake import IntakeOutcome, summarise
from genop.runtime import current_runtime
from tasks.privacy import private_errors


@task(name="stage-plans", cache_policy=NO_CACHE)
def stage_plans(path: str) -> str:
    """Copy an operator-named file or folder into a staging batch (a staged batch is used as is)."""
    folders = current_runtime().settings.folders
    source = Path(path).expanduser().resolve()
    if source.is_dir() and source.parent == folders.staging.resolve():
        return str(source)
    return str(stage_copy(source, folders))


@task(name="claim-inbox", cache_policy=NO_CACHE)
def claim_inbox_batches(limit: int | None = None) -> list[str]:
    """Batches to take in: any left behind by a crash, then the inbox's new files."""
    folders = current_runtime().settings.folders
    batches = [str(batch) for batch in stale_batches(folders)]
    claimed = claim_inbox(folders, limit=limit)
    if claimed is not None:
        batches.append(str(claimed))
    return batches


@task(name="list-batch", cache_policy=NO_CACHE)
def list_batch(batch: str) -> list[str]:
    return [path.name for path in batch_files(Path(batch))]


@task(name="take-in-plans", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
@private_errors
def take_in_plans(batch: str, names: list[str], as_of: date | None) -> list[IntakeOutcome]:
    """Parse, decide and record one chunk of a batch in one transaction per chunk."""
    runtime = current_runtime()
    paths = [Path(batch) / name for name in names if (Path(batch) / name).exists()]
    outcomes = runtime.intake.take_in(paths, parse_as_of(as_of))
    get_run_logger().info("took in %d file(s): %s", len(outcomes), summarise(outcomes))
    return outcomes


@task(name="close-batch", cache_policy=NO_CACHE)
def close_batch(batch: str) -> None:
    remove_empty_batch(Path(batch))


@task(name="publish-intake-report", cache_policy=NO_CACHE)
def publish_intake_report(outcomes: list[IntakeOutcome]) -> None:
    """A table artifact for operations staff: case numbers and outcomes, no personal data."""
    rows = [
        {
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
