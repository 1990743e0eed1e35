"""dispute-correct-settlement run as the Prefect UI's Run form runs it (a flow run created from the
served deployment through the API), SQLite and PostgreSQL: twice for the same disputed visit
gives one credit note, handed to NemHandel once, and nothing of the dispute's text (or the
citizen) reaches Prefect."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from genop.clock import now_utc
from genop.disputes import DEPLOYMENTS, Action, SubjectKind
from genop.disputes.records import get_dispute, open_dispute
from genop.store.models import OutboxMessage, SettlementDocumentRecord, Visit
from genop.store.repository import get_case
from tests.flows.helpers import OUTCOME_SECONDS, deployment_served, everything_prefect_holds, wait_for
from tests.integration.test_billing import CPR, SMALL_DRAGOR, by_payer, settled_november

NAME = DEPLOYMENTS[Action.CORRECT_SETTLEMENT]
REASON = "Borgeren var syg den dag, besøget blev aldrig gennemført"
AS_OF = date(2026, 12, 10)


def _run_from_deployment(parameters: dict) -> tuple[str, str]:
    """Create a flow run of the served deployment as the UI's Run form does; (state, run name) when final."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"{NAME}/{NAME}")
        run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters)

        def final():  # noqa: ANN202
            state = client.read_flow_run(run.id).state
            return state if state is not None and state.is_final() else None

        state = wait_for(final, OUTCOME_SECONDS, f"the {NAME} run to finish")
        return state.type.value, client.read_flow_run(run.id).name


def test_correction_started_from_the_deployment_twice_issues_one_credit_note(system, tmp_path):
    runtime = system["runtime"]
    outcome = settled_november(runtime, tmp_path)
    original = by_payer(outcome.documents)["dragor"]
    with runtime.store.session() as session:
        dispute = open_dispute(session, runtime.agreement, subject=SubjectKind.INVOICE, reference=original.number,
                               about="visits_disputed", reason=REASON, by="Sagsbehandler A", day=AS_OF,
                               now=now_utc()).number
        case = get_case(session, SMALL_DRAGOR)
        visit = session.scalars(select(Visit.id).where(Visit.case_id == case.id).order_by(Visit.id)).first()
    wait_for(lambda: deployment_served(NAME), OUTCOME_SECONDS, f"{NAME} to be served")
    parameters = {"dispute": dispute, "by": "Økonomi B", "correction": "remove-visit", "visit": visit,
                  "as_of": AS_OF.isoformat()}

    assert _run_from_deployment(parameters) == ("COMPLETED", f"{dispute}-correct-settlement")
    assert _run_from_deployment(parameters)[0] == "COMPLETED"

    with runtime.store.session() as session:
        [credit] = session.scalars(select(SettlementDocumentRecord)
                                   .where(SettlementDocumentRecord.purpose == "correction")).all()
        assert (credit.kind, credit.payer, credit.line_total) == ("CreditNote", "dragor", Decimal("640.00"))
        assert f"<cbc:ID>{original.number}</cbc:ID>" in credit.xml.decode() and dispute in credit.xml.decode()
        sent = session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.key == f"oioubl:{credit.number}", OutboxMessage.status == "sent"))
        assert sent == 1
        [redo] = get_dispute(session, dispute).redos
        assert redo.produced["documents"] == [credit.number] and redo.flow_run_id
    picked_up = runtime.settings.home_dir / "invoices" / "outgoing" / f"{credit.number}.xml"
    assert picked_up.read_bytes() == credit.xml

    held = everything_prefect_holds()
    assert dispute in held and credit.number in held
    for private in (REASON, "Borgeren", CPR, "Sagsbehandler A"):
        assert private not in held, private
