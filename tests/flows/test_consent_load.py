"""Under load (issue 17, point 5): 2,000 plans in one `plan submit`, then 200 `genop consent`
calls, 10 at a time, while the served process is still opening the 2,000 consent waits.

Consents land before, during and after their waits open; every one must be forwarded
exactly once (one order mail per case in the sink, its outbox row sent once) and no CLI
call may print a traceback or be refused for Prefect's reasons. Loopback only; Prefect's
own database is PostgreSQL (tests/conftest.py), as `make run` uses it for several desks.

Sizes: in `make test` 100 plans and 40 consents (10 at a time), so the suite stays within
minutes — on a shared 2-core machine each served consent run costs a process start, and
2,000 of them take far longer than a test should. The full 2,000 plans / 200 consents run
with CONSENT_LOAD_PLANS / CONSENT_LOAD_CONSENTS, which bench/consent_load_bench.py sets (it
runs this test and prints the figures it measures).
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bench.consent_load import RETRIES_SEEN, give_consents
from bench.intake_bench import write_plans
from genop.store.models import Case, OutboxMessage
from genop_cli.main import cli
from tests.flows.helpers import AS_OF, wait_for

PLANS = int(os.environ.get("CONSENT_LOAD_PLANS", "100"))
CONSENTS = int(os.environ.get("CONSENT_LOAD_CONSENTS", "40"))
CONCURRENCY = 10
FORWARDING_DEADLINE = 60 * 40
"""Generous: the served process opens waits 5 at a time; on a loaded 2-core machine slowly."""


@pytest.fixture
def patient_clients(monkeypatch):
    """The served process gets the client retries `make run` gives it (genop_cli.system)."""
    from genop_cli.server import CLIENT_RETRIES

    for name, value in CLIENT_RETRIES.items():
        monkeypatch.setenv(name, value)


@pytest.mark.skipif(os.environ.get("CONSENT_LOAD_TEST") != "1" and "CONSENT_LOAD_PLANS" not in os.environ,
                    reason="the consent load test runs with CONSENT_LOAD_TEST=1 (or bench/consent_load_bench.py)")
@pytest.mark.timeout(FORWARDING_DEADLINE + 60 * 30)
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_consents_given_before_during_and_after_the_waits_open_are_each_forwarded_once(
        patient_clients, system, tmp_path):
    runtime = system["runtime"]
    folder = tmp_path / "plans"
    write_plans(folder, PLANS)
    started = time.monotonic()
    submitted = CliRunner().invoke(cli, ["plan", "submit", str(folder), "--as-of", AS_OF.isoformat(),
                                         "--json"])
    assert submitted.exit_code == 0, submitted.output
    assert "Traceback" not in submitted.output
    submit_seconds = time.monotonic() - started
    cases = [c for c in json.loads(submitted.stdout)["cases"] if c["state"] == "awaiting_consent"]
    assert len(cases) >= CONSENTS
    # the first cases' waits open first: the earliest get their consent after, later ones before
    chosen = [c["case_number"] for c in cases[:CONSENTS]]

    consents_started = time.monotonic()
    invocations = give_consents(chosen, concurrency=CONCURRENCY, by="Belastning Test",
                                decided_on=AS_OF.isoformat(), wait_seconds=120)
    cli_seconds = time.monotonic() - consents_started

    assert sorted(i.case_number for i in invocations) == sorted(chosen)
    assert [i for i in invocations if i.printed_traceback] == []
    assert [(i.case_number, i.exit_code, i.stderr) for i in invocations if i.exit_code != 0] == []
    outcomes = Counter(json.loads(i.stdout)["state"] for i in invocations)
    assert set(outcomes) <= {"forwarded", "forwarding"}, outcomes

    def forwarded() -> bool:
        with runtime.store.session() as session:
            states = session.scalars(select(Case.state).where(Case.case_number.in_(chosen))).all()
        return all(state == "forwarded" for state in states)

    wait_for(forwarded, FORWARDING_DEADLINE, f"all {CONSENTS} consented cases to be forwarded")
    all_forwarded_seconds = time.monotonic() - consents_started

    mails = Counter(_case_of(mail) for mail in system["mail"].glob("*.eml"))
    assert mails == Counter({number: 1 for number in chosen})
    with runtime.store.session() as session:
        orders = session.execute(select(OutboxMessage.key, OutboxMessage.status, OutboxMessage.attempts)
                                 .where(OutboxMessage.key.like("%:order"))).all()
        assert sorted(orders) == sorted((f"{n}:order", "sent", 1) for n in chosen)
        timing = _consent_timing(session, chosen)
        recorded = session.scalars(select(Case.consent_recorded_at).where(Case.case_number.in_(chosen))).all()
    record_seconds = max(recorded).timestamp() - min(recorded).timestamp()

    figures = {
        "plans": PLANS, "consents": CONSENTS, "concurrency": CONCURRENCY,
        "submit_seconds": round(submit_seconds, 1),
        "seconds_to_record_all_consents": round(record_seconds, 1),
        "seconds_until_cli_calls_returned": round(cli_seconds, 1),
        "seconds_until_all_forwarded": round(all_forwarded_seconds, 1),
        "cli_outcomes": dict(outcomes),
        "consents_before_wait_opened": timing["before"], "consents_after_wait_opened": timing["after"],
        "client_retries": dict(RETRIES_SEEN),
        "cli_seconds_median": round(sorted(i.seconds for i in invocations)[len(invocations) // 2], 1),
    }
    print("\nconsent load figures: " + json.dumps(figures))
    report = os.environ.get("CONSENT_LOAD_REPORT")
    if report:
        Path(report).write_text(json.dumps(figures, indent=2), encoding="utf-8")


def _case_of(mail: Path) -> str:
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    found = re.search(r"sag (GEN-\S+)", message["Subject"])
    assert found, message["Subject"]
    return found.group(1)


def _consent_timing(session, numbers: list[str]) -> dict[str, int]:
    """Whether each consent was recorded before its run first suspended (the wait opened) or after."""
    import uuid

    from prefect.client.orchestration import get_client

    rows = session.execute(select(Case.consent_run_id, Case.consent_recorded_at)
                           .where(Case.case_number.in_(numbers))).all()
    kinds: Counter[str] = Counter()
    with get_client(sync_client=True) as client:
        for run_id, recorded_at in rows:
            if run_id is None:
                kinds["before"] += 1
                continue
            paused = [s.timestamp for s in client.read_flow_run_states(uuid.UUID(run_id)) if s.is_paused()]
            kinds["after" if paused and min(paused) < recorded_at else "before"] += 1
    return kinds
