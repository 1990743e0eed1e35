"""Settlement (agreement §8): the monthly a-conto, the monthly settlement of completed
courses, the January reconciliation and retro-regulation.

`aconto` and `settle` run every morning: each does what is due and nothing else, so a
day the server was down is caught up the next morning, and a re-run (a dispute, a
retry) finds the documents already issued and issues nothing twice. Each run leaves a
table artifact with the documents' totals per municipality.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from tasks.settlement import (
    aconto_months,
    months_to_settle,
    publish_totals,
    reconcile_task,
    record_aconto_task,
    regulate_task,
    restore_files,
    settle_month_task,
    years_to_reconcile,
)


def _name(prefix: str, parameter: str) -> Any:
    def name() -> str:
        value = flow_run.parameters.get(parameter)
        return f"{prefix}-{value}" if value else prefix
    return name


def _numbers(results: list[dict[str, Any]]) -> list[str]:
    return [number for result in results for number in result["documents"]]


@flow(name="aconto", flow_run_name=_name("aconto", "month"), persist_result=False)
def aconto(month: str | None = None, as_of: date | None = None) -> dict[str, Any]:
    """Record the a-conto prepayment (75 % Tårnby / 25 % Dragør) of every month due by
    ``as_of`` — on its first Danish working day, or later when caught up — once per month."""
    months = [month] if month else aconto_months(as_of)
    results = [record_aconto_task(m, as_of) for m in months]
    publish_totals("aconto", f"A-conto: {', '.join(months) or 'nothing due'}", _numbers(results))
    return {"months": months, "results": results}


@flow(name="settle", flow_run_name=_name("settle", "month"), persist_result=False)
def settle(month: str | None = None, as_of: date | None = None) -> dict[str, Any]:
    """Settle the completed courses of ``month`` — or of every month due (from the first working
    day after it) and not yet settled — and, in January, reconcile the previous year's a-conto.
    Document files that went missing are written again from the store."""
    months = [month] if month else months_to_settle(as_of)
    results = [settle_month_task(m, as_of) for m in months]
    years = years_to_reconcile(as_of) if month is None else []
    reconciled = [reconcile_task(y, as_of) for y in years]
    restore_files()
    publish_totals("settlement", f"Settlement: {', '.join(months) or 'no month due'}",
                   _numbers(results) + _numbers(reconciled))
    return {"months": months, "results": results, "reconciled": reconciled}


@flow(name="year-reconcile", flow_run_name=_name("reconcile", "year"), persist_result=False)
def year_reconcile(year: int, as_of: date | None = None) -> dict[str, Any]:
    """The January reconciliation of ``year``: unused a-conto refunded by credit note."""
    result = reconcile_task(year, as_of)
    publish_totals("year-reconciliation", f"Reconciliation {year}", result["documents"])
    return result


@flow(name="settle-regulate", flow_run_name=_name("regulate", "since"), persist_result=False)
def settle_regulate(since: date, as_of: date | None = None) -> dict[str, Any]:
    """Re-price settled courses completed since ``since`` at the tariffs now configured and
    invoice or credit the differences; the original documents are not changed."""
    result = regulate_task(since, as_of)
    publish_totals("regulation", f"Regulation from {since.isoformat()}", result["documents"])
    return result
