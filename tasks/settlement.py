"""Settlement tasks (agreement §8): each records its documents in genop's store in one
transaction, then writes their OIOUBL and HTML files. Results are document numbers, months
and counts — never case or citizen data.

Every task is safe to repeat (see genop.settlement.ledger): a retry after a lost database connection
finds what the first attempt committed and issues nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from genop.settlement import documents, ledger, regulation
from genop.clock import now_utc, parse_as_of
from genop.runtime import current_runtime
from genop.settlement.documents import write_files
from tasks.privacy import private_errors

T = TypeVar("T")


def _database_hiccup(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only when the database connection failed; a settlement error needs a person."""
    try:
        state.result()
    except Exception as error:  # noqa: BLE001 - any failure but a lost connection is final
        # private_errors replaces the original by a reference; it stays the __context__
        return isinstance(error, OperationalError) or isinstance(error.__context__, OperationalError)
    return False


DB_RETRIES: dict[str, Any] = {"retries": 2, "retry_delay_seconds": [5, 30], "retry_condition_fn": _database_hiccup}


def _summary(outcome: ledger.Outcome) -> dict[str, Any]:
    """After the commit: write the files, and name what was issued (numbers only)."""
    written = write_files(outcome.documents)
    numbers = [d.number for d in outcome.documents]
    handed = documents.hand_off(current_runtime().store, numbers)
    _warn_pending(handed)
    return {"documents": numbers, "new": outcome.new, "files_written": len(written),
            "handed_off": len(handed.delivered), "handoff_pending": list(handed.pending)}


def _warn_pending(handed: documents.HandOff) -> None:
    if handed.pending:
        get_run_logger().warning("not handed to NemHandel yet (pickup folder unavailable; retried by the daily "
                                 "settle run): %s", ", ".join(handed.pending))


def _in_store(step: Callable[..., T], **arguments: Any) -> T:
    """One step of genop.settlement.ledger / genop.settlement.regulation in one transaction of genop's store."""
    runtime = current_runtime()
    with runtime.store.session() as session:
        return step(session, runtime.agreement, folder=runtime.settings.home_dir / "invoices", now=now_utc(),
                    **arguments)


def _due(query: Callable[[Session, date], T], as_of: date | None) -> T:
    """What is due by ``as_of`` (months, years), read from genop's store."""
    with current_runtime().store.session() as session:
        return query(session, parse_as_of(as_of))


@task(name="find-aconto-months", cache_policy=NO_CACHE)
def aconto_months(as_of: date | None) -> list[str]:
    return _due(ledger.aconto_months_due, as_of)


@task(name="record-aconto", cache_policy=NO_CACHE, **DB_RETRIES)
@private_errors
def record_aconto_task(month: str, as_of: date | None) -> dict[str, Any]:
    outcome = _in_store(ledger.record_aconto, month=month, as_of=parse_as_of(as_of))
    get_run_logger().info("a-conto %s: %s (%s)", month, ", ".join(d.number for d in outcome.documents),
                          "recorded" if outcome.new else "already recorded")
    return {"month": month, **_summary(outcome)}


@task(name="find-months-to-settle", cache_policy=NO_CACHE)
def months_to_settle(as_of: date | None) -> list[str]:
    return _due(ledger.months_to_settle, as_of)


@task(name="settle-month", cache_policy=NO_CACHE, **DB_RETRIES)
@private_errors
def settle_month_task(month: str, as_of: date | None) -> dict[str, Any]:
    outcome = _in_store(ledger.settle, month=month, invoice_date=parse_as_of(as_of))
    get_run_logger().info("settlement %s: %d document(s) %s", month, len(outcome.documents),
                          "issued" if outcome.new else "issued before (unchanged)")
    return {"month": month, **_summary(outcome)}


@task(name="find-years-to-reconcile", cache_policy=NO_CACHE)
def years_to_reconcile(as_of: date | None) -> list[int]:
    return _due(ledger.years_to_reconcile, as_of)


@task(name="reconcile-year", cache_policy=NO_CACHE, **DB_RETRIES)
@private_errors
def reconcile_task(year: int, as_of: date | None) -> dict[str, Any]:
    rows, outcome = _in_store(ledger.reconcile, year=year, as_of=parse_as_of(as_of))
    readiness = any(row.readiness_clause for row in rows)
    if readiness:
        get_run_logger().warning("%d: orders fell below the a-conto level; Copenhagen may charge documented "
                                 "readiness costs (agreement §8, cost guarantee)", year)
    return {"year": year, "readiness_clause": readiness, **_summary(outcome)}


@task(name="regulate", cache_policy=NO_CACHE, **DB_RETRIES)
@private_errors
def regulate_task(since: date, as_of: date | None) -> dict[str, Any]:
    outcome = _in_store(regulation.regulate_since, since=since, as_of=parse_as_of(as_of))
    get_run_logger().info("regulation from %s: %d document(s) %s", since, len(outcome.documents),
                          "issued" if outcome.new else "(no difference to invoice)")
    return {"since": since.isoformat(), **_summary(outcome)}


@task(name="restore-document-files", cache_policy=NO_CACHE)
@private_errors
def restore_files() -> int:
    """Daily: any document whose files went missing gets them back from the store, and any
    document not yet handed to NemHandel is handed off."""
    store = current_runtime().store
    with store.session() as session:
        written = documents.restore_missing_files(session)
    if written:
        get_run_logger().warning("%d settlement file(s) were missing and are written again", len(written))
    handed = documents.hand_off(store)  # any hand-off a crash or a full folder left
    if handed.delivered:
        get_run_logger().warning("%d document(s) handed to NemHandel late: %s", len(handed.delivered),
                                 ", ".join(handed.delivered))
    _warn_pending(handed)
    return len(written) + len(handed.delivered)


@task(name="publish-totals", cache_policy=NO_CACHE)
def publish_totals(key: str, description: str, numbers: list[str]) -> int:
    """A table artifact for the UI: one row per document, totals per municipality, no case data."""
    runtime = current_runtime()
    with runtime.store.session() as session:
        rows = [documents.totals_row(runtime.agreement, d) for d in documents.documents_by_number(session, numbers)]
    create_table_artifact(key=key, description=description, table=rows or [{"documents": "none"}])
    return len(rows)
