"""Shared steps of the end-to-end flow tests: submit, wait for the consent wait, answer it."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import shutil
import subprocess
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from genop.store.repository import get_case
from genop_cli.main import cli

AS_OF = date(2026, 11, 3)
OPENSSL = shutil.which("openssl")


OUTCOME_SECONDS = 300
"""How long a flow test waits for an outcome (a run to suspend, a state to be reached): long
enough for a loaded 2-core machine, where a served run takes 13–30 s (or more) to suspend;
a test that is going to pass returns as soon as the outcome is there."""


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def deployment_served(name: str) -> bool:
    import httpx

    response = httpx.post(os.environ["PREFECT_API_URL"] + "/deployments/filter",
                          json={"deployments": {"name": {"any_": [name]}}}, timeout=5)
    return response.status_code == 200 and bool(response.json())


def submit(path: Path) -> str:
    result = CliRunner().invoke(cli, ["plan", "submit", str(path), "--as-of", AS_OF.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["case_number"]


def suspended_run(runtime, case_number: str):
    """The case's consent run once Prefect shows it Suspended (waiting for input)."""
    from prefect.client.orchestration import get_client

    def check():
        with runtime.store.session() as session:
            run_id = get_case(session, case_number).consent_run_id
        if not run_id:
            return None
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                run = client.read_flow_run(uuid.UUID(run_id))
            except ObjectNotFound:  # a deleted run, until the new wait registers itself
                return None
        return run if run.state and run.state.is_paused() else None

    return wait_for(check, OUTCOME_SECONDS, f"{case_number}'s consent run to suspend")


def run_input(run_id, key: str) -> dict:
    """What the UI reads to build the Resume form."""
    import httpx

    response = httpx.get(f"{os.environ['PREFECT_API_URL']}/flow_runs/{run_id}/input/{key}", timeout=5)
    response.raise_for_status()
    value = response.json()
    return json.loads(value) if isinstance(value, str) else value


def consent(case_number: str, *extra: str) -> object:
    return CliRunner().invoke(cli, ["consent", case_number, *extra, "--by", "Sagsbehandler Test",
                                    "--date", "2026-11-03", "--wait", str(OUTCOME_SECONDS), "--json"])


def openssl_decrypt_and_verify(mail: Path, certs: Path, work: Path,
                               reader: str = "copenhagen") -> email.message.Message:
    if OPENSSL is None:
        pytest.skip("openssl command line not installed")
    decrypted, verified = work / "decrypted.eml", work / "content.eml"
    subprocess.run([OPENSSL, "smime", "-decrypt", "-in", str(mail), "-recip", str(certs / f"{reader}.crt"),
                    "-inkey", str(certs / f"{reader}.key"), "-out", str(decrypted)], check=True,
                   capture_output=True)
    verify = subprocess.run([OPENSSL, "smime", "-verify", "-in", str(decrypted), "-CAfile",
                             str(certs / "ca.crt"), "-out", str(verified)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    assert "Verification successful" in verify.stderr
    return email.message_from_bytes(verified.read_bytes())




def prefect_home() -> str:
    import os

    return os.environ["PREFECT_HOME"]


def everything_prefect_holds() -> str:
    """Flow runs, task runs, logs, artifacts and events as Prefect's API returns them (every page),
    as one text."""
    from prefect.client.orchestration import get_client

    async def every_page(read_page) -> list:  # noqa: ANN001 - a client read method
        items, offset = [], 0
        while True:
            page = await read_page(limit=200, offset=offset)
            items += page
            if len(page) < 200:
                return items
            offset += 200

    async def every_event(client) -> list:  # noqa: ANN001 - a Prefect client
        """Events (of the last hour, the API's default window), following every next page."""
        from prefect.events.filters import EventFilter

        page = await client.read_events(EventFilter(), limit=50)
        events = list(page.events)
        while page.next_page:
            page = await client.read_events_page(page.next_page)
            events += page.events
        return events

    async def read() -> str:
        import time

        async with get_client() as client:
            deadline = time.monotonic() + 10
            while True:  # logs reach the API in batches; wait for the last intake's summary line
                logs = await every_page(client.read_logs)
                if any("intake finished" in log.message for log in logs) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.3)
            parts = [r.model_dump_json() for r in await every_page(client.read_flow_runs)]
            parts += [r.model_dump_json() for r in await every_page(client.read_task_runs)]
            parts += [log.model_dump_json() for log in logs]
            parts += [a.model_dump_json() for a in await every_page(client.read_artifacts)]
            parts += [e.model_dump_json() for e in await every_event(client)]
            return "\n".join(parts)

    return asyncio.run(read())


def prefect_database_bytes() -> bytes:
    """Everything in the Prefect server's own database: every row of every table (PostgreSQL),
    or the SQLite file with its write-ahead log (read only: no checkpoint from this process).
    """
    postgres = os.environ.get("GENOP_TEST_PREFECT_DB")
    if postgres:
        return _postgres_rows(postgres.replace("+asyncpg", "")).encode("utf-8")
    db = Path(prefect_home()) / "prefect.db"
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _postgres_rows(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert "flow_run" in tables and "log" in tables, tables
        parts = []
        for table in tables:
            parts += [row[0] for row in conn.execute(f'SELECT row_to_json(t)::text FROM "{table}" t')]
    return "\n".join(parts)
