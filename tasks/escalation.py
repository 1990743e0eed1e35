"""Escalation tasks: the scan, its trail and notices, the events and the artifact.

What reaches Prefect — results, log lines, events, the artifact — names case numbers,
budgets, kinds and levels only; a finding's figures and the notices' text stay in genop.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.logging import get_run_logger

from genop.clock import now_utc
from genop.config import Agreement
from genop.disputes import is_dispute_number
from genop.escalation import BUDGET_TOTAL
from genop.escalation.notices import compose_notices, undelivered_notices
from genop.escalation.schedule import scan_day
from genop.escalation.scan import scan
from genop.escalation.trail import TrailChange, open_counts, record
from genop.runtime import current_runtime
from tasks.privacy import private_errors

SCAN_ARTIFACT = "escalation-scan"
"""The artifact's key: one version per scan in the UI's Artifacts page."""


@task(name="decide-scan-day", cache_policy=NO_CACHE)
def decide_scan_day(as_of: date | None) -> date | None:
    """The day to scan; None (and a log line) when a scheduled run falls on a non-working day."""
    day = scan_day(as_of)
    if day is None:
        get_run_logger().info("today is not a Danish working day: nothing scanned, nobody told")
    return day


@task(name="scan-record-and-compose-notices", cache_policy=NO_CACHE)
@private_errors
def scan_and_record(day: date) -> dict[str, Any]:
    """What is at risk on ``day`` (one set-based query per kind, genop.escalation.scan), the trail and
    its notices, in one transaction: a change is never recorded without its notices (which the outbox
    then sends exactly once), nor a notice composed for a change not recorded. The findings stay in
    this task: only the changes (case numbers, kinds, levels) leave it."""
    runtime = current_runtime()
    now = now_utc()
    with runtime.store.session() as session:
        findings = scan(session, as_of=day, agreement=runtime.agreement, concurrent=True)
        changes = record(session, findings, scan_on=day, now=now, agreement=runtime.agreement)
        rows = compose_notices(session, changes, agreement=runtime.agreement, settings=runtime.settings, now=now)
        counts = open_counts(session)
        result = {"changes": [change_view(c, runtime.agreement) for c in changes],
                  "outbox_ids": [row.id for row in rows],
                  "open": [{"kind": kind, "level": level, "count": count}
                           for (kind, level), count in sorted(counts.items())]}
    get_run_logger().info("%d finding(s) on %s: %d change(s), %d notice(s) composed", len(findings),
                          day.isoformat(), len(changes), len(rows))
    return result


def change_view(change: TrailChange, agreement: Agreement) -> dict[str, Any]:
    finding = change.finding
    return {"change": change.change.value, "finding_id": finding.id, "kind": finding.kind,
            "subject": finding.subject, "municipality": finding.municipality, "level": finding.level,
            "previous": change.previous.value if change.previous else None,
            "resource": resource_id(finding.subject, finding.municipality, agreement)}


def resource_id(subject: str, municipality: str, agreement: Agreement) -> str:
    """``genop.case.GEN-…``, ``genop.dispute.TV-…``, or ``genop.budget.<municipality code>`` /
    ``genop.budget.total``."""
    if is_dispute_number(subject):
        return f"genop.dispute.{subject}"
    if not subject.startswith("budget:"):
        return f"genop.case.{subject}"
    code = BUDGET_TOTAL if municipality == BUDGET_TOTAL else agreement.party(municipality).municipality_code
    return f"genop.budget.{code}"


@task(name="emit-risk-events", cache_policy=NO_CACHE)
def emit_risk_events(changes: list[dict[str, Any]]) -> int:
    """One Prefect event per change (``genop.risk.opened`` / ``raised`` / ``lowered`` / ``closed``) for
    the UI's Event Feed and automations; the payload is the kind and the level only."""
    for change in changes:
        emit_event(event=f"genop.risk.{change['change']}",
                   resource={"prefect.resource.id": change["resource"]},
                   payload={"kind": change["kind"], "level": change["level"]})
    return len(changes)


@task(name="publish-escalation-scan", cache_policy=NO_CACHE)
def publish_scan(day: date, recorded: dict[str, Any]) -> None:
    """The table artifact ``escalation-scan``: per kind and level, what is open, new and closed."""
    create_table_artifact(key=SCAN_ARTIFACT, table=scan_table(recorded),
                          description=f"Escalation scan {day.isoformat()}: {len(recorded['changes'])} change(s)")


def scan_table(recorded: dict[str, Any]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"open": 0, "new": [], "closed": []})
    for entry in recorded["open"]:
        rows[(entry["kind"], entry["level"])]["open"] = entry["count"]
    for change in recorded["changes"]:
        column = "closed" if change["change"] == "closed" else "new"
        if change["change"] in ("opened", "raised", "closed"):
            rows[(change["kind"], change["level"])][column].append(change["subject"])
    return [{"kind": kind, "level": level, "open": row["open"], "new": ", ".join(row["new"]),
             "closed": ", ".join(row["closed"])} for (kind, level), row in sorted(rows.items())]


@task(name="find-undelivered-notices", cache_policy=NO_CACHE)
def pending_notices() -> list[int]:
    with current_runtime().store.session() as session:
        return undelivered_notices(session)
