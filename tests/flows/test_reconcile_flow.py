"""The reconcile deployment (`genop consent-reconcile`) through Prefect: a case-forward run
killed (SIGKILL) between sending the order and recording it is finished with one mail."""

from __future__ import annotations

import email
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from genop.clock import now_utc
from genop.consent import ConsentDecision
from genop.forwarding import ORDER
from genop.mail.outbox import LEASE
from genop.store.models import OutboxMessage
from genop_cli.main import cli
from tests.faults.helpers import case_facts, decided_case, run_killed


def _lease_ran_out(runtime, outbox_id: int) -> None:
    """As if the killed worker's claim was taken longer ago than the lease."""
    with runtime.store.session() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id)
                        .values(claimed_at=now_utc() - LEASE - timedelta(minutes=1)))


@pytest.mark.parametrize("point", ["accepted", "sent"])
def test_reconcile_forwards_a_case_whose_forward_run_was_killed_with_one_mail(system, tmp_path: Path, point):
    runtime = system["runtime"]
    number = decided_case(runtime, tmp_path, ConsentDecision.GIVEN)
    run_killed("forward-flow", point, number)  # the real case-forward flow, against the Prefect server
    state, _, row = case_facts(runtime, number, ORDER)
    assert state == "forwarding"
    assert len(system["sink"].handler.stored()) == 1
    if point == "accepted":
        _lease_ran_out(runtime, row.id)

    result = CliRunner().invoke(cli, ["consent-reconcile"])
    assert result.exit_code == 0, result.output
    state, events, row = case_facts(runtime, number, ORDER)
    assert state == "forwarded"
    assert events.count("forwarded") == 1
    [mail] = system["sink"].handler.stored()
    assert email.message_from_bytes(mail.read_bytes())["Message-ID"].strip() == row.message_id
    assert "1 sent mail(s) recorded" in result.stdout
