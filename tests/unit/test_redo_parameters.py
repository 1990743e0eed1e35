"""`genop dispute redo` gives a redo deployment only the parameters its action takes (issue 12)."""

from __future__ import annotations

from datetime import date

import pytest

from genop.disputes import DEPLOYMENTS, Action
from genop.disputes.records import DisputeError
from genop_cli.redo import deployment_of, redo_parameters

NONE = {"notice": None, "visit": None, "completed_on": None, "tariff_group": None, "correction": None}


def test_a_resend_gets_the_fixed_parameters_only():
    assert redo_parameters("TV-2026-0001", Action.RESEND_ORDER, by="A", case=" gen-2026-000001",
                           as_of=date(2026, 11, 20), **NONE) == {
        "dispute": "TV-2026-0001", "by": "A", "case": "GEN-2026-000001", "as_of": "2026-11-20"}
    assert deployment_of(Action.RESEND_ORDER) == "dispute-resend-order/dispute-resend-order"
    assert all(deployment_of(a) == f"{DEPLOYMENTS[a]}/{DEPLOYMENTS[a]}" for a in Action)


def test_correct_settlement_options_pass_through_and_others_are_refused():
    options = {**NONE, "correction": "change-completion", "completed_on": date(2026, 11, 28), "visit": 7}
    assert redo_parameters("TV-2026-0001", Action.CORRECT_SETTLEMENT, by="A", case=None, as_of=None, **options) == {
        "dispute": "TV-2026-0001", "by": "A", "correction": "change-completion", "completed_on": "2026-11-28",
        "visit": 7}
    with pytest.raises(DisputeError, match="--visit is not an option of resend-order"):
        redo_parameters("TV-2026-0001", Action.RESEND_ORDER, by="A", case=None, as_of=None, **{**NONE, "visit": 7})
    with pytest.raises(DisputeError, match="resend-notice needs --notice"):
        redo_parameters("TV-2026-0001", Action.RESEND_NOTICE, by="A", case=None, as_of=None, **NONE)
    with pytest.raises(DisputeError, match="not a dispute number"):
        redo_parameters("GEN-2026-000001", Action.RESEND_ORDER, by="A", case=None, as_of=None, **NONE)


def test_a_failed_redo_run_is_one_line(monkeypatch):
    """`genop dispute redo` waits for the deployment's run; one that fails is said in one line."""
    import uuid

    import prefect.deployments
    from prefect.client.schemas.objects import FlowRun
    from prefect.states import Completed, Failed

    from genop_cli.server import DeploymentRunFailed, run_deployment_and_wait

    def run(state):  # noqa: ANN001, ANN202
        return lambda *_args, **_kwargs: FlowRun(id=uuid.uuid4(), name="TV-2026-0001-resend-order",
                                                 flow_id=uuid.uuid4(), state=state)

    monkeypatch.setattr(prefect.deployments, "run_deployment", run(Failed(
        message="Flow run encountered an exception: DisputeError: no order was ever sent\nfor case GEN-2026-000001")))
    with pytest.raises(DeploymentRunFailed) as failed:
        run_deployment_and_wait("http://127.0.0.1:1/api", "dispute-resend-order/dispute-resend-order", {}, timeout=5)
    assert failed.value.message == (
        "run TV-2026-0001-resend-order of dispute-resend-order/dispute-resend-order ended failed: Flow run "
        "encountered an exception: DisputeError: no order was ever sent for case GEN-2026-000001 (see the Prefect UI)")
    monkeypatch.setattr(prefect.deployments, "run_deployment", run(Completed()))
    assert run_deployment_and_wait("http://127.0.0.1:1/api", "x/x", {}, timeout=5).name == "TV-2026-0001-resend-order"
