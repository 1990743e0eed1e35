"""Tasks for the agreement's term (agreement §12): the daily check and its artifact.

Nothing here names a case or a citizen: dates, the recorded periods and their basis.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from prefect import task
from prefect.artifacts import Artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from genop.clock import parse_as_of
from genop.config import Terms, load_agreement
from genop.settings import load_settings
from genop.term import TermStatus, earliest_end, term_status
from tasks.privacy import private_errors

TERM_ARTIFACT = "agreement-term"
"""The artifact's key: the UI's Artifacts page keeps its versions under this one name."""


@task(name="check-agreement-term", cache_policy=NO_CACHE)
@private_errors
def check_term(as_of: date | None = None) -> dict[str, Any]:
    """Is the day inside a recorded term of the agreement? (config: terms.periods)"""
    terms = load_agreement(load_settings().agreement_file).terms
    day = parse_as_of(as_of)
    status = term_status(terms, day)
    if not status.in_term:
        get_run_logger().warning(status.summary())
    return {"day": day.isoformat(), "in_term": status.in_term,
            "runs_until": status.runs_until.isoformat() if status.runs_until else None,
            "summary": status.summary(), "markdown": term_markdown(terms, status)}


@task(name="publish-agreement-term", cache_policy=NO_CACHE)
def publish_term_status(checked: dict[str, Any]) -> bool:
    """The markdown artifact ``agreement-term``; a new version only when its text changed."""
    latest = cast("Artifact | None", Artifact.get(TERM_ARTIFACT))  # sync_compatible: sync in a sync task
    if latest is not None and latest.data == checked["markdown"]:
        return False
    description = "In term" if checked["in_term"] else "OUTSIDE any recorded term"
    create_markdown_artifact(markdown=checked["markdown"], key=TERM_ARTIFACT,
                             description=f"Agreement term (§12): {description}")
    return True


def term_markdown(terms: Terms, status: TermStatus) -> str:
    """The status without the day it was checked on, so that an unchanged status is the same text."""
    if status.period is not None:
        until = (f"until **{status.runs_until.isoformat()}**" if status.runs_until is not None
                 else "**until terminated by notice**")
        head = f"**In term** {until} (agreement §12)."
    else:
        head = "**Outside any recorded term of the agreement** (agreement §12)."
        if status.last_end is not None:
            head += f" The last recorded term ended {status.last_end.isoformat()}."
        if status.next_start is not None:
            head += f" The next recorded term starts {status.next_start.isoformat()}."
        head += " Record the prolongation in `config/agreement.yaml` (`terms.periods`)."
    notice = earliest_end(terms, status.day)
    rows = "\n".join(f"| {p.valid_from.isoformat()} | {p.valid_to.isoformat() if p.valid_to else 'until notice'} "
                     f"| {p.basis} |" for p in terms.periods)
    return (f"# Agreement term\n\n{head}\n\n"
            f"Termination: {notice.notice_months} months' written notice to the end of a budget year. A notice "
            f"given now ends the agreement on {notice.earliest_end.isoformat()} at the earliest (last day to "
            f"give notice for that end: {notice.latest_notice_day.isoformat()}).\n\n"
            f"| from | to | basis |\n|---|---|---|\n{rows}\n")
