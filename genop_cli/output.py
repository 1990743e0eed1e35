"""Printing for people (rich tables) and programs (one JSON document on stdout)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def emit_json(document: Any) -> None:
    print(json.dumps(document, ensure_ascii=False, indent=2, default=str))


def print_case(view: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key in ("case_number", "plan_id", "state", "route", "municipality", "municipality_name",
                "payer", "diagnosis_group", "level", "urgent", "discharge_date", "revision"):
        table.add_row(key, str(view.get(key)))
    for key, value in view["deadlines"].items():
        table.add_row(key, str(value))
    console.print(table)
    console.print("[bold]reasons[/bold]")
    for reason in view["reasons"]:
        console.print(f"  • {reason}")
    if "events" in view:
        events = Table(title="audit trail", show_lines=False)
        for column in ("time", "kind", "detail"):
            events.add_column(column, overflow="fold")
        for event in view["events"]:
            events.add_row(event["time"], event["kind"], event["detail"])
        console.print(events)
    if view.get("findings"):
        print_findings(view["findings"], title="at risk (escalation)")
    if view.get("visits"):
        visits = Table(title="visits")
        for column in ("id", "visit_date", "sks_code", "tariff_group", "invoiced_on", "removed"):
            visits.add_column(column)
        for visit in view["visits"]:
            visits.add_row(str(visit["id"]), visit["visit_date"], visit["sks_code"], visit["tariff_group"],
                           visit["invoiced_on"] or "", "removed" if visit["removed"] else "")
        console.print(visits)
    if view.get("disputes"):
        disputes = Table(title="disputes (genop dispute show NUMBER)")
        for column in ("number", "state", "about", "opened_on", "mediation_on", "closed_on"):
            disputes.add_column(column, no_wrap=column == "number", overflow="fold")
        for d in view["disputes"]:
            disputes.add_row(*(str(d[c] or "") for c in ("number", "state", "about", "opened_on", "mediation_on",
                                                         "closed_on")))
        console.print(disputes)


def print_findings(findings: Sequence[dict[str, Any]], *, title: str) -> None:
    table = Table(title=title)
    for column in ("kind", "subject", "level", "since", "opened", "closed", "reason"):
        table.add_column(column, overflow="fold")
    for f in findings:
        table.add_row(f["kind"], f["subject"], f["level"], f["since"], f["opened_on"], f["closed_on"] or "",
                      f["reason"])
    console.print(table)


def print_case_list(views: Sequence[dict[str, Any]]) -> None:
    table = Table(title=f"{len(views)} case(s)")
    for column in ("case_number", "state", "route", "municipality", "diagnosis_group",
                   "free_choice_from", "start_by"):
        table.add_column(column)
    for view in views:
        table.add_row(view["case_number"], view["state"], str(view["route"]), view["municipality"],
                      str(view["diagnosis_group"]), view["deadlines"]["free_choice_from"],
                      str(view["deadlines"]["start_by"]))
    console.print(table)


def print_quarantine(rows: Sequence[dict[str, Any]]) -> None:
    table = Table(title=f"{len(rows)} quarantined file(s)")
    for column in ("id", "file", "code", "reason", "kept_at"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(str(row["id"]), row["file"], row["reason_code"], row["reason"], row["stored_path"])
    console.print(table)


def print_outbox(rows: Sequence[dict[str, Any]]) -> None:
    table = Table(title=f"{len(rows)} outbox message(s)")
    for column in ("id", "key", "status", "attempts", "recipients", "sent_at", "last_error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(str(row["id"]), row["key"], row["status"], str(row["attempts"]),
                      ", ".join(row["recipients"]), str(row["sent_at"] or ""), row["last_error"] or "")
    console.print(table)
