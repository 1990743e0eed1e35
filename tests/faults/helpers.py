"""Shared steps of the fault tests: a case at the point of sending, a step killed, reconcile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

from genop.clock import now_utc
from genop.consent import ConsentAnswer, ConsentDecision, ConsentMethod, record_consent
from genop.reconcile import deliver_undelivered, record_sent, sent_but_unrecorded, undelivered
from genop.store.models import OutboxMessage
from genop.store.repository import get_case
from tests.conftest import ROOT
from tests.factories import write_plan

AS_OF = date(2026, 11, 3)


def decided_case(runtime, tmp_path: Path, decision: ConsentDecision, plan_id: str = "GOP-KILL-1") -> str:
    """A case whose consent is recorded: forwarding (given) or consent_refused."""
    from genop.inbox import stage_copy

    write_plan(tmp_path / plan_id, "plan.json", plan_id=plan_id)
    batch = stage_copy(tmp_path / plan_id, runtime.settings.folders)
    [outcome] = runtime.intake.take_in(sorted(batch.iterdir()), AS_OF)
    answer = ConsentAnswer(decision, ConsentMethod.WRITTEN, AS_OF, "Test")
    with runtime.store.session() as session:
        record_consent(session, outcome.case_number, answer, today=AS_OF, now=now_utc())
    return outcome.case_number


def run_killed(step: str, point: str, case_number: str, **env: str) -> None:
    """Run the step in a child process that SIGKILLs itself at ``point``; it must die there."""
    result = subprocess.run([sys.executable, "-m", "tests.faults.kill_step", step, point, case_number],
                            cwd=ROOT, env={**os.environ, **env}, capture_output=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr.decode()[-3000:])


def reconcile_store(runtime, settings, at: datetime) -> None:
    """What the reconcile flow does with the outbox, at time ``at``: deliver, then record."""
    with runtime.store.session() as session:
        rows = undelivered(session, at)
    for outbox_id in rows:
        deliver_undelivered(runtime.store, settings, outbox_id, lambda: at)
    with runtime.store.session() as session:
        for outbox_id in sent_but_unrecorded(session):
            record_sent(session, outbox_id, at)


def case_facts(runtime, case_number: str, purpose: str) -> tuple[str, list[str], OutboxMessage]:
    """The case's state, its event kinds, and its outbox row of ``purpose``."""
    with runtime.store.session() as session:
        case = get_case(session, case_number, with_events=True)
        row = next(r for r in session.query(OutboxMessage).filter_by(case_id=case.id, purpose=purpose))
        session.expunge(row)
        return case.state, [event.kind for event in case.events], row
