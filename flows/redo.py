"""Redos for a dispute (issue 12, agreement §10) that re-send a mail: the order, the final
status, a transport booking, a notice. Each is its own deployment (``DEPLOYMENTS[action]``), so
staff start it from the deployment's Run form in the Prefect UI, or with
``genop dispute redo NUMBER ACTION``, which runs the same deployment.

A run is named ``<dispute>-<action>``; its parameters are the dispute's number, who asks, and
(for a dispute about an invoice or a month) the case — never the dispute's reason. The new mail
is composed once per dispute and action (genop.disputes.resend) and delivered through the
outbox, so running a redo again sends nothing more.

``dispute-redecide`` decides the dispute's case again on its latest plan revision
(genop.disputes.redecide), once per dispute, case and revision; a case it puts in scope gets
its consent wait (or, consent given before, its order), as intake and ``case-route`` do.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from flows.forward import case_forward
from flows.training import deliver_mail
from genop.disputes import Action
from tasks.consent import start_consent_waits
from tasks.redo import redecide_task, redo_artifact, resend_task

DisputeNumber = Annotated[str, Field(pattern=r"^[Tt][Vv]-\d{4}-\d{4,}$", max_length=16)]
RequestedBy = Annotated[str, Field(min_length=1, max_length=128)]
NoticeKey = Annotated[str, Field(min_length=1, max_length=160)]
CaseNumber = Annotated[str, Field(pattern=r"^[Gg][Ee][Nn]-\d{4}-\d{6}$", max_length=15)]
"""A case number and nothing else: a CPR or a name typed in the Run form is refused by the form."""


def _form(title: str, description: str, default: object = ...) -> Any:  # noqa: ANN401 - a pydantic FieldInfo
    """A parameter as the UI's Run form shows it: Prefect titles a parameter with its name unless
    the schema says otherwise (``json_schema_extra``), and takes its description from here."""
    return Field(default, description=description, json_schema_extra={"title": title})


DISPUTE = _form("Tvist", "The dispute's number, TV-YYYY-NNNN (genop dispute list)")
BY = _form("Bestilt af", "Your name: who asks for the redo (kept in the dispute's timeline)")
CASE = _form("Sag", "GEN-YYYY-NNNNNN: needed only when the dispute is about an invoice or a month", None)
AS_OF = _form("Dato", "The business date of the redo, YYYY-MM-DD (default today)", None)
NOTICE = _form("Mail (outbox-nøgle)", "The outbox key of the mail to send again (genop outbox list), "
               "e.g. risk:12:red:dragor")


def _resend(action: Action, dispute: str, by: str, case: str | None, as_of: date | None,
            notice: str | None = None) -> dict[str, object]:
    result = resend_task(dispute, action.value, by, case, as_of, notice)
    problems = deliver_mail(list(result["outbox_ids"]))
    result = {**result, "undelivered": len(problems)}
    redo_artifact(result)
    return result


@flow(name="dispute-resend-order", flow_run_name="{dispute}-resend-order", persist_result=False)
def dispute_resend_order(dispute: DisputeNumber = DISPUTE, by: RequestedBy = BY, case: CaseNumber | None = CASE,
                         as_of: date | None = AS_OF) -> dict[str, object]:
    """Copenhagen says it never got the order: send it again as a new mail (new Message-ID) that
    names the original, once per dispute."""
    return _resend(Action.RESEND_ORDER, dispute, by, case, as_of)


@flow(name="dispute-resend-final-status", flow_run_name="{dispute}-resend-final-status", persist_result=False)
def dispute_resend_final_status(dispute: DisputeNumber = DISPUTE, by: RequestedBy = BY, case: CaseNumber | None = CASE,
                                as_of: date | None = AS_OF) -> dict[str, object]:
    """Send the final status (slutstatus) to Tårnby again, and the copy a payer receives (Dragør),
    as new mails naming the originals, once per dispute."""
    return _resend(Action.RESEND_FINAL_STATUS, dispute, by, case, as_of)


@flow(name="dispute-rebook-transport", flow_run_name="{dispute}-rebook-transport", persist_result=False)
def dispute_rebook_transport(dispute: DisputeNumber = DISPUTE, by: RequestedBy = BY, case: CaseNumber | None = CASE,
                             as_of: date | None = AS_OF) -> dict[str, object]:
    """Send the case's transport booking to the provider again, as a new mail naming the original
    booking, once per dispute."""
    return _resend(Action.REBOOK_TRANSPORT, dispute, by, case, as_of)


@flow(name="dispute-resend-notice", flow_run_name="{dispute}-resend-notice", persist_result=False)
def dispute_resend_notice(dispute: DisputeNumber = DISPUTE, by: RequestedBy = BY, notice: NoticeKey = NOTICE,
                          case: CaseNumber | None = CASE,
                          as_of: date | None = AS_OF) -> dict[str, object]:
    """Send a notice (or any mail of the dispute's case) again, as a new mail naming the original,
    once per dispute and mail."""
    return _resend(Action.RESEND_NOTICE, dispute, by, case, as_of, notice)


@flow(name="dispute-redecide", flow_run_name="{dispute}-redecide", persist_result=False)
def dispute_redecide(dispute: DisputeNumber = DISPUTE, by: RequestedBy = BY, case: CaseNumber | None = CASE,
                     as_of: date | None = AS_OF) -> dict[str, object]:
    """Decide the dispute's case again on its latest plan revision (a corrected plan kept "for the
    record" past intake), keeping the old decision in the case's trail, once per dispute and
    revision; then open its consent wait, or forward its order if consent was already given."""
    result = redecide_task(dispute, by, case, as_of)
    if result["consent_wait"]:
        attempt = f"{str(result['dispute']).lower()}-redecide-{result['revision']}"
        start_consent_waits([str(result["case"])], attempt=attempt)
    elif result["forward"]:
        case_forward(str(result["case"]))
    redo_artifact(result)
    return result
