"""The escalation scan through Prefect (SQLite and PostgreSQL): `genop escalate --as-of` drives two
cases' missing consent through warning → breach → persisting → closed; each level is told once,
to the right parties (Dragør of its own citizen, never of Tårnby's), as Prefect events and in the
artifact, with nothing personal in Prefect. And Prefect's automation engine runs the deployment
prefect.yaml triggers on a genop risk event."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from genop.clock import now_utc
from genop.escalation import BUDGET_TOTAL, Finding, Kind, Level, budget_subject
from genop.escalation.notices import compose_notices
from genop.escalation.trail import record
from genop_cli.main import cli
from tests.conftest import EXAMPLES
from tests.flows.helpers import (
    AS_OF,
    OUTCOME_SECONDS,
    consent,
    deployment_served,
    everything_prefect_holds,
    prefect_database_bytes,
    submit,
    suspended_run,
    wait_for,
)

TARNBY, DRAGOR = "FLI.PLLOJ.SF@taarnby.dk", "afdelingsleder.dragoer@example.org"


def _cli(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _escalate(day) -> list[tuple[str, str, str]]:
    result = _cli("escalate", "--as-of", day.isoformat())
    assert result["undelivered"] == 0
    # the same cases also have other kinds found (start_by, no_start_offered): this test follows one
    return sorted((c["change"], c["subject"], c["level"]) for c in result["changes"]
                  if c["kind"] == "consent_missing")


def _notices(folder: Path) -> list[tuple[str, str]]:
    """(recipient, subject) of every risk notice the mail sink received."""
    told = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if "samtykke mangler" in str(message["Subject"]):
            told.append((str(message["To"]), str(message["Subject"])))
    return sorted(told)


def _told(folder: Path, count: int) -> list[tuple[str, str]]:
    """The notices once ``count`` have arrived (the triggered delivery may be the one sending them)."""
    wait_for(lambda: len(_notices(folder)) >= count, OUTCOME_SECONDS, f"{count} risk notice(s)")
    return _notices(folder)


def _risk_events(since: datetime) -> list[tuple[str, str, str]]:
    """The genop.risk.* events since the test began (an earlier test's cases have the same numbers)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    async def read() -> list:
        async with get_client() as client:
            page = await client.read_events(EventFilter(event=EventNameFilter(prefix=["genop.risk."]),
                                                        occurred=EventOccurredFilter(since=since)), limit=50)
            events = list(page.events)
            while page.next_page:
                page = await client.read_events_page(page.next_page)
                events += page.events
            return events

    import asyncio

    return sorted((e.event, e.resource.id, e.payload["level"]) for e in asyncio.run(read())
                  if e.payload["kind"] == "consent_missing")


def _scan_artifact() -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        [latest, *_] = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
            any_=["escalation-scan"])), sort=ArtifactSort.CREATED_DESC, limit=1)
    return json.loads(latest.data) if isinstance(latest.data, str) else latest.data


def test_missing_consent_is_told_once_per_level_until_consent_is_given(system):
    runtime = system["runtime"]
    began = now_utc()
    tarnby = submit(EXAMPLES / "plan-example.json")
    dragor = submit(EXAMPLES / "plan-dragor.json")
    limits = runtime.agreement.escalation_on(AS_OF)
    reminder = AS_OF + timedelta(days=limits.consent_reminder_after_days)
    breach = AS_OF + timedelta(days=limits.consent_missing_after_days)
    persisting = breach + timedelta(days=limits.persisting_after_days)

    assert _escalate(reminder) == sorted([("opened", dragor, "warning"), ("opened", tarnby, "warning")])
    assert _escalate(reminder) == [] and _escalate(reminder + timedelta(days=1)) == []
    assert _told(system["mail"], 2) == sorted([
        (TARNBY, f"Varsel: samtykke mangler – sag {tarnby}"), (TARNBY, f"Varsel: samtykke mangler – sag {dragor}")])
    assert _escalate(breach) == sorted([("raised", dragor, "breach"), ("raised", tarnby, "breach")])
    assert _escalate(persisting) == sorted([("raised", dragor, "persisting"), ("raised", tarnby, "persisting")])
    assert _escalate(persisting) == []
    told = _told(system["mail"], 2 + 3 + 3)
    assert len(told) == 2 + 3 + 3  # per level: Tårnby of both; Dragør of its own citizen from the breach on
    assert sorted(subject for to, subject in told if to == DRAGOR) == sorted([
        f"Overskredet: samtykke mangler – sag {dragor}", f"Fortsat overskredet: samtykke mangler – sag {dragor}"])

    risks = _cli("risks", "--municipality", "155", "--kind", "consent_missing")["findings"]
    assert [(f["subject"], f["level"]) for f in risks] == [(dragor, "persisting")]
    for number in (tarnby, dragor):
        suspended_run(runtime, number)
        assert json.loads(consent(number, "--given").stdout)["state"] == "forwarded"
    closed_on = persisting + timedelta(days=1)
    assert _escalate(closed_on) == sorted([("closed", dragor, "persisting"), ("closed", tarnby, "persisting")])
    assert len(_notices(system["mail"])) == 8  # nothing is sent on close
    assert _cli("risks", "--kind", "consent_missing")["findings"] == []
    shown = [f for f in _cli("case", "show", dragor)["findings"] if f["kind"] == "consent_missing"]
    assert [(f["kind"], f["level"], f["opened_on"], f["closed_on"]) for f in shown] == [
        ("consent_missing", "persisting", reminder.isoformat(), closed_on.isoformat())]

    expected = sorted((f"genop.risk.{change}", f"genop.case.{number}", level) for number in (tarnby, dragor)
                      for change, level in (("opened", "warning"), ("raised", "breach"),
                                            ("raised", "persisting"), ("closed", "persisting")))
    wait_for(lambda: _risk_events(began) == expected, OUTCOME_SECONDS, "the risk events")
    [row] = [r for r in _scan_artifact() if r["kind"] == "consent_missing"]
    assert (row["kind"], row["level"], row["open"], row["new"]) == ("consent_missing", "persisting", 0, "")
    assert sorted(row["closed"].split(", ")) == sorted([tarnby, dragor])

    haystack = everything_prefect_holds()
    assert f"genop.case.{dragor}" in haystack and "escalation-scan" in haystack
    for secret in ("010145-1234", "0101451234", "Karen Jensen", "Englandsvej", "DS720", "lårbenshals",
                   "150352-1117", "Ole Opdigtet", "Prøvegade", "DI639", "Hjerneinfarkt"):
        assert secret not in haystack, f"{secret!r} found in Prefect"
        assert secret.encode() not in prefect_database_bytes(), f"{secret!r} in Prefect's database"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_genop_risk_event_runs_the_notice_delivery_automation(system):
    """prefect.yaml's trigger on risk-notices-deliver, created by the served process, fired by Prefect's
    own triggers service on an event emitted the way the scan emits it."""
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    runtime = system["runtime"]
    wait_for(lambda: deployment_served("risk-notices-deliver") and _automation_exists(), OUTCOME_SECONDS,
             "risk-notices-deliver and its automation")
    shared = Finding(Kind.BUDGET_FORECAST, budget_subject(BUDGET_TOTAL), BUDGET_TOTAL, Level.WARNING, AS_OF,
                     "forecast above 90 % of the a-conto", {"forecast": "2300000.00"})
    with runtime.store.session() as session:  # composed, not delivered: as if the scan's delivery failed
        changes = record(session, [shared], scan_on=AS_OF, now=now_utc(), agreement=runtime.agreement)
        rows = compose_notices(session, changes, agreement=runtime.agreement, settings=runtime.settings,
                               now=now_utc())
    assert len(rows) == 2 and list(system["mail"].glob("*.eml")) == []

    emit_event(event="genop.risk.opened", resource={"prefect.resource.id": "genop.budget.total"},
               payload={"kind": "budget_forecast", "level": "warning"})
    EventsWorker.drain_all()
    delivered = wait_for(lambda: len(list(system["mail"].glob("*.eml"))) == 2 and _automated_runs(),
                         OUTCOME_SECONDS, "the automation's run to deliver both notices")
    assert delivered
    recipients = sorted(str(email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"])
                        for p in system["mail"].glob("*.eml"))
    assert recipients == sorted([TARNBY, DRAGOR])


def _automation_exists() -> bool:
    import os

    import httpx

    response = httpx.post(os.environ["PREFECT_API_URL"] + "/automations/filter", json={}, timeout=5)
    return response.status_code == 200 and any(a["name"] == "risk-notices-on-new-risk" for a in response.json())


def _automated_runs() -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(
            name=DeploymentFilterName(any_=["risk-notices-deliver"])))
    return [run for run in runs if run.state is not None and run.state.is_completed()]
