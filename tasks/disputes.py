"""Dispute tasks (agreement §10, issue 12): find a dispute's mail to deliver, leave its artifact.

What reaches Prefect names the dispute's number, its state, dates and outbox ids only: its
reason and notes stay in genop's store.
"""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from genop.disputes import is_dispute_number
from genop.disputes.mediation import mail_of_dispute, unsent_mail_of_dispute
from genop.disputes.records import get_dispute
from genop.disputes.views import artifact_markdown
from genop.errors import GenopError
from genop.runtime import current_runtime
from tasks.privacy import private_errors


def checked_number(dispute: str) -> str:
    """The dispute's number, or a refusal that does not repeat what was typed (it may be anything)."""
    number = dispute.strip().upper() if isinstance(dispute, str) else ""
    if not is_dispute_number(number):
        raise GenopError("the parameter dispute is not a dispute number (TV-YYYY-NNNN, see `genop dispute list`)",
                         code="dispute_number_invalid")
    return number


def artifact_key(number: str) -> str:
    """``dispute-tv-2026-0001``: one artifact per dispute, a version per run."""
    return f"dispute-{number.lower()}"


@task(name="find-dispute-mail", cache_policy=NO_CACHE)
@private_errors
def find_dispute_mail(number: str) -> list[int]:
    """The dispute's mails composed and not yet sent (failed ones included: a re-run retries them)."""
    with current_runtime().store.session() as session:
        get_dispute(session, number)
        ids = unsent_mail_of_dispute(session, number)
    get_run_logger().info("%s: %d mail(s) to deliver", number, len(ids))
    return ids


@task(name="publish-dispute", cache_policy=NO_CACHE)
@private_errors
def publish_dispute(number: str) -> dict[str, object]:
    """The markdown artifact ``dispute-<number>``: state, dates, each mail's outbox id and status."""
    with current_runtime().store.session() as session:
        dispute = get_dispute(session, number)
        mails = mail_of_dispute(session, number)
        markdown = artifact_markdown(dispute, mails)
        state: dict[str, object] = {"dispute": dispute.number, "state": dispute.state,
                 "mails": {str(row.id): row.status for row in mails}}
    create_markdown_artifact(markdown=markdown, key=artifact_key(number), description=f"Tvist {number}")
    return state
