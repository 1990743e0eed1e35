"""Correct a settled month for a dispute (agreement §8, §10; issue 12): remove a disputed visit,
change a course's completion date, or reprice a course or a visit — a credit note or a
supplementary invoice per municipality that names the original invoice and the dispute, handed
to NemHandel once; the original documents are never changed. Started from the deployment's Run
form or `genop dispute redo NUMBER correct-settlement ...`; running it again changes nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from prefect import flow
from prefect.runtime import flow_run

from pydantic import Field

from flows.redo import CaseNumber, DisputeNumber
from genop.disputes import DEPLOYMENTS, Action, is_dispute_number
from tasks.corrections import correct_settlement_task, publish_correction

NAME = DEPLOYMENTS[Action.CORRECT_SETTLEMENT]


TariffGroup = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,12}$")]


def _run_name() -> str:
    """The dispute's number, or nothing typed: a run name must never repeat a mistyped CPR."""
    dispute = str(flow_run.parameters.get("dispute") or "").upper()
    return f"{dispute if is_dispute_number(dispute) else 'dispute'}-{Action.CORRECT_SETTLEMENT.value}"


@flow(name=NAME, flow_run_name=_run_name, persist_result=False)
def correct_settlement(
    dispute: DisputeNumber,
    by: str,
    correction: Literal["remove-visit", "change-completion", "reprice"],
    case: CaseNumber | None = None,
    visit: int | None = None,
    completed_on: date | None = None,
    tariff_group: TariffGroup | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """Correct a settled month for a dispute, once per dispute, correction and target.

    Args:
        dispute: Tvist — tvistens nummer, TV-ÅÅÅÅ-NNNN.
        by: Bestilt af — medarbejderen der beder om korrektionen.
        correction: Korrektion — remove-visit: fjern et besøg (kreditnota); change-completion: ret forløbets
            afslutningsdato; reprice: prissæt forløbet (eller ét besøg) i en anden takstgruppe.
        case: Sag — GEN-ÅÅÅÅ-NNNNNN; nødvendig når tvisten handler om en faktura eller en måned og intet
            besøg er givet.
        visit: Besøg — besøgets id (genop case show viser dem); remove-visit, eller reprice af ét besøg.
        completed_on: Rettet afslutningsdato — change-completion: forløbets rigtige afslutningsdato.
        tariff_group: Takstgruppe — reprice: takstgruppen prisen skal være (fx GEN1A).
        as_of: Forretningsdato — bilagsdato; i dag hvis tom.
    """
    result = correct_settlement_task(dispute, correction, by, case, visit, completed_on, tariff_group, as_of)
    publish_correction(result)
    return {key: value for key, value in result.items() if key != "totals"}
