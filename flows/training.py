"""Following the training (agreement "Case lifecycle" 5–7): first session and transport,
visits, notices, completion, and the daily deadline check.

Every run is named by its case number (or its file's staged reference), so an operator can
find a case's stages in the UI: intake-…, consent-GEN-…, forward-GEN-…, offer-GEN-…,
deliver-GEN-…, complete-GEN-…, visits-import-visits-…, offers-import-offers-….

A partner's file reaches these flows only as a staged reference (``visits-…``, ``offers-…``,
``slutstatus-…``, see genop.staged): `genop visits import FILE`, `genop offers import FILE`
and `genop complete CASE --status FILE` stage it under that neutral name first, because the
name a hospital or Copenhagen gave the file can hold a citizen's name or CPR number. A path
typed into the UI's Run form is refused, with what to run instead.
"""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from genop.errors import GenopError
from genop.staged import is_reference
from tasks.forwarding import send_mail
from tasks.training import (
    complete_case_task,
    free_choice_letters,
    import_visits_task,
    pending_mail,
    plan_transport_task,
    read_offers,
    record_offer_task,
)


def deliver_mail(outbox_ids: list[int]) -> list[str]:
    """Send each composed mail (exactly once, see genop.mail.outbox); failures are left pending."""
    problems: list[str] = []
    for outbox_id in outbox_ids:
        try:
            send_mail(outbox_id)
        except GenopError as error:
            problems.append(f"outbox {outbox_id}: {error.code}")
    if problems:
        get_run_logger().warning("not delivered (re-run deliver for the case): %s", "; ".join(problems))
    return problems


def _import_run_name() -> str:
    """``visits-import-<reference>``: the reference only when it is one (a typed path never names a run)."""
    staged = flow_run.parameters.get("staged")
    name = flow_run.flow_name
    return f"{name}-{staged}" if is_reference(staged) else name


def _after_offer(case_number: str, changed: bool) -> dict[str, object]:
    """What follows a recorded offer, the same for `genop case offer` and each line of an offers
    import: when new or moved, transport is booked (as the plan says); the case's mail is delivered."""
    booked = plan_transport_task(case_number) if changed else []
    problems = deliver_mail(booked + pending_mail(case_number))
    return {"changed": changed, "transport_messages": len(booked), "undelivered": len(problems)}


@flow(name="case-offer", flow_run_name="offer-{case_number}", persist_result=False)
def case_offer(case_number: str, first_session: str, as_of: date | None = None) -> dict[str, object]:
    """The training unit offers the first session; transport to it is booked when the plan says so."""
    return _after_offer(case_number, record_offer_task(case_number, first_session, as_of))


@flow(name="case-deliver", flow_run_name="deliver-{case_number}", persist_result=False)
def case_deliver(case_number: str) -> dict[str, object]:
    """Deliver whatever mail of the case is composed but not yet sent (notices, re-tries)."""
    ids = pending_mail(case_number)
    problems = deliver_mail(ids)
    return {"pending": len(ids), "undelivered": len(problems)}


@flow(name="visits-import", flow_run_name=_import_run_name, persist_result=False)
def visits_import(staged: str, as_of: date | None = None) -> dict[str, object]:
    """Copenhagen's training visits (CSV or JSON lines), staged by `genop visits import FILE`;
    bad lines kept in a rejects file."""
    return import_visits_task(staged, as_of)


@flow(name="case-complete", flow_run_name="complete-{case_number}", persist_result=False)
def case_complete(case_number: str, staged: str, as_of: date | None = None) -> dict[str, object]:
    """Slutstatus (staged by `genop complete CASE --status FILE`): the course completes; with
    consent the final status goes to Tårnby."""
    ids = complete_case_task(case_number, staged, as_of)
    problems = deliver_mail(ids + pending_mail(case_number))
    return {"messages": len(ids), "undelivered": len(problems)}


@flow(name="case-deadlines", flow_run_name="deadlines", persist_result=False)
def case_deadlines(as_of: date | None = None) -> dict[str, object]:
    """Daily: the free-choice letter for every case without a start offered within 7 days."""
    letters = free_choice_letters(as_of)
    return {"free_choice_letters": len(letters), "case_numbers": letters}


@flow(name="offers-import", flow_run_name=_import_run_name, persist_result=False)
def offers_import(staged: str, as_of: date | None = None) -> dict[str, object]:
    """First sessions offered by the training unit, from a CSV file (case_number,first_session)
    staged by `genop offers import FILE`: each is recorded and its transport booked exactly as
    `genop case offer` does, in one run."""
    read = read_offers(staged)
    results: list[dict[str, object]] = []
    for number, when in read["offers"]:
        try:
            changed = record_offer_task(number, when, as_of)
        except GenopError as error:
            results.append({"case_number": number, "status": "rejected", "reason": error.message})
            continue
        offered = _after_offer(number, changed)
        results.append({"case_number": number, "status": "recorded" if offered["changed"] else "unchanged",
                        "undelivered": offered["undelivered"]})
    return {"offers": results, "rejected_lines": read["rejected"]}
