"""Disputes (agreement §10, issue 12): delivering a dispute's own mail.

`genop dispute call-mediation` records the call and composes its mails in genop's store, then
runs ``dispute-mail-deliver`` for the dispute; the deployment of the same name lets staff
deliver again from the UI when the mail server was down (the outbox sends each mail once).
Prefect sees the dispute's number only.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run
from pydantic import Field

from genop.disputes import is_dispute_number
from flows.training import deliver_mail
from tasks.disputes import checked_number, find_dispute_mail, publish_dispute


def _run_name() -> str:
    """``dispute-mail-TV-2026-0001``: the number only when it is one (a typed text never names a run)."""
    given = flow_run.parameters.get("dispute")
    number = given.strip().upper() if isinstance(given, str) else ""
    return f"dispute-mail-{number}" if is_dispute_number(number) else "dispute-mail"


@flow(name="dispute-mail-deliver", flow_run_name=_run_name, persist_result=False)
def dispute_mail_deliver(
    dispute: str = Field(description="Tvistens nummer, TV-YYYY-NNNN (`genop dispute list`)"),
) -> dict[str, object]:
    """Deliver a dispute's mail composed and not yet sent (the mediation call), each mail once."""
    number = checked_number(dispute)
    ids = find_dispute_mail(number)
    problems = deliver_mail(ids)
    published = publish_dispute(number)
    return {"dispute": number, "state": published["state"], "pending": len(ids), "undelivered": len(problems)}
