"""The agreement itself (agreement §12): a daily look at its term.

The original term ended on 31 December 2009 and "expires without notice"; every
prolongation is recorded in config/agreement.yaml (terms.periods). Each morning the
`agreement-term` run says, in its artifact of the same key, whether today is inside a
recorded term — a day outside is a warning in the run's log too.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow

from tasks.agreement import check_term, publish_term_status


@flow(name="agreement-term", flow_run_name="agreement-term", persist_result=False)
def agreement_term(as_of: date | None = None) -> dict[str, Any]:
    """Is ``as_of`` (today) inside a recorded term of the agreement? The artifact `agreement-term`
    says so, with a new version only when the status changed."""
    checked = check_term(as_of)
    updated = publish_term_status(checked)
    return {"day": checked["day"], "in_term": checked["in_term"], "runs_until": checked["runs_until"],
            "artifact_updated": updated}
