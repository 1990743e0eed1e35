"""Training tasks: the first session offer, mail delivery per case, visits, completion, deadlines.

Results are case numbers, ids and counts only.
"""

from __future__ import annotations

from datetime import date
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from genop.clock import now_utc, parse_as_of
from genop.completion import complete_case
from genop.mail.outbox import deliver, letter_writer, unsent_mail_of
from genop.runtime import current_runtime
from genop.staged import StagedKind, open_staged
from tasks.privacy import private_errors
from genop.store.repository import get_case
from genop.training import cases_due_free_choice, parse_session_time, prepare_free_choice_letter, record_offer
from genop.transport import SecureMailTransportAdapter, plan_transport
from genop.visits import import_visits


@task(name="record-offer", cache_policy=NO_CACHE)
@private_errors
def record_offer_task(case_number: str, first_session: str, as_of: date | None) -> bool:
    runtime = current_runtime()
    with runtime.store.session() as session:
        return record_offer(session, case_number, parse_session_time(first_session),
                            offered_on=parse_as_of(as_of), now=now_utc())


@task(name="plan-transport", cache_policy=NO_CACHE)
@private_errors
def plan_transport_task(case_number: str) -> list[int]:
    runtime = current_runtime()
    with runtime.store.session() as session:
        rows = plan_transport(session, case_number, agreement=runtime.agreement, settings=runtime.settings,
                              adapter=SecureMailTransportAdapter(runtime.agreement, runtime.settings),
                              now=now_utc())
        return [row.id for row in rows]


@task(name="find-pending-mail", cache_policy=NO_CACHE)
def pending_mail(case_number: str) -> list[int]:
    """The case's mails not yet sent (composed by a command or an earlier, interrupted run)."""
    with current_runtime().store.session() as session:
        return unsent_mail_of(session, get_case(session, case_number))


@task(name="import-visits", cache_policy=NO_CACHE)
@private_errors
def import_visits_task(staged: str, as_of: date | None) -> dict[str, object]:
    """Results and logs name the file by its staged reference; its original name is recorded
    in the import (VisitImport.source_name), not returned to Prefect."""
    runtime = current_runtime()
    source = open_staged(staged, StagedKind.VISITS, runtime.settings.home_dir)
    report = import_visits(runtime.store, runtime.agreement, source.read_bytes(), source_name=source.source_name,
                           label=source.label, as_of=parse_as_of(as_of),
                           rejects_dir=runtime.settings.home_dir / "rejects", now=now_utc())
    get_run_logger().info("visits %s (import %d): %d accepted, %d duplicate(s), %d rejected", source.reference,
                          report.import_id, report.accepted, report.duplicates, report.rejected)
    create_table_artifact(key="visits-import", description=f"Visits import {report.import_id} ({source.reference})",
                          table=[{"accepted": report.accepted, "duplicates": report.duplicates,
                                  "rejected": report.rejected}])
    result = report.as_dict()
    result["source_name"] = source.reference
    return result


@task(name="record-completion", cache_policy=NO_CACHE)
@private_errors
def complete_case_task(case_number: str, staged: str, as_of: date | None) -> list[int]:
    runtime = current_runtime()
    source = open_staged(staged, StagedKind.FINAL_STATUS, runtime.settings.home_dir)
    with runtime.store.session() as session:
        completion = complete_case(session, case_number, source.read_bytes(), agreement=runtime.agreement,
                                   settings=runtime.settings, as_of=parse_as_of(as_of), now=now_utc(),
                                   source_name=source.source_name)
    get_run_logger().info("%s completed %s (settlement %s) from %s; final status shared: %s", case_number,
                          completion.completed_on, completion.settlement_month, source.reference,
                          completion.shared)
    return list(completion.outbox_ids)


@task(name="write-free-choice-letters", cache_policy=NO_CACHE)
@private_errors
def free_choice_letters(as_of: date | None) -> list[str]:
    """Health Act §140(4) letters for every case without a start offered in 7 days (once each)."""
    runtime = current_runtime()
    day = parse_as_of(as_of)
    with runtime.store.session() as session:
        due = cases_due_free_choice(session, day)
    written: list[str] = []
    for number in due:
        with runtime.store.session() as session:
            row = prepare_free_choice_letter(session, number, agreement=runtime.agreement,
                                             settings=runtime.settings, as_of=day, now=now_utc())
            row_id = row.id if row else None
        if row_id is not None:
            deliver(runtime.store, row_id, letter_writer(runtime.settings.letters_dir))
            written.append(number)
    get_run_logger().info("free-choice letters written: %d", len(written))
    return written


@task(name="read-offers", cache_policy=NO_CACHE)
@private_errors
def read_offers(staged: str) -> dict[str, list]:
    """Good lines (case number, first session) and bad lines with their reasons."""
    from genop.training import parse_offers

    source = open_staged(staged, StagedKind.OFFERS, current_runtime().settings.home_dir)
    good, bad = parse_offers(source.read_bytes())
    get_run_logger().info("offers %s: %d line(s), %d rejected", source.reference, len(good), len(bad))
    return {"offers": [[number, when] for _, number, when in good],
            "rejected": [{"line": line, "reason": reason} for line, reason in bad]}
