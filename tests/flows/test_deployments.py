"""The deployments of prefect.yaml, served the way `make run` serves them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from genop_cli import processes
from tests.conftest import EXAMPLES, ROOT
from tests.flows.helpers import OUTCOME_SECONDS, wait_for


def test_prefect_yaml_declares_intake_and_a_scheduled_inbox_poll_in_danish_time():
    from flows.serve import build_deployments

    deployments = {d.name: d for d in build_deployments()}
    assert set(deployments) >= {"plan-intake", "inbox-poll"}
    [schedule] = deployments["inbox-poll"].schedules
    assert schedule.schedule.timezone == "Europe/Copenhagen"
    assert deployments["plan-intake"].schedules == []
    assert deployments["plan-intake"].entrypoint.endswith("intake.py:plan_intake")


def test_aconto_and_settlement_run_every_morning_in_danish_time():
    """Daily runs do what is due (first working day, month ended) and catch up missed days."""
    from flows.serve import build_deployments

    deployments = {d.name: d for d in build_deployments()}
    for name, cron in (("aconto", "15 6 * * *"), ("settle", "30 6 * * *")):
        [schedule] = deployments[name].schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == (cron, "Europe/Copenhagen")
    assert deployments["settle-regulate"].schedules == deployments["year-reconcile"].schedules == []


def test_agreement_term_is_checked_every_morning_in_danish_time():
    """Agreement §12: a daily look at whether today is inside a recorded term."""
    from flows.serve import build_deployments

    deployment = {d.name: d for d in build_deployments()}["agreement-term"]
    [schedule] = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 6 * * *", "Europe/Copenhagen")
    assert deployment.entrypoint.endswith("agreement.py:agreement_term")


def test_case_route_deployment_asks_for_case_name_and_a_reason_staff_can_read():
    """The Run form shows an enum's values: the reasons' Danish text from config, not keys."""
    from flows.serve import declared_deployments, load_flow
    from genop.config import load_agreement

    [spec] = [spec for spec in declared_deployments() if spec["name"] == "case-route"]
    schema = load_flow(spec["entrypoint"]).parameters.model_dump()
    assert set(schema["required"]) == {"case_number", "staff_name", "reason"}
    reasons = load_agreement().geriatric_routing.reasons
    assert schema["definitions"]["RouteReason"]["enum"] == list(reasons.values())
    assert "Borgerens ønske" in reasons.values()


def test_deployments_for_partner_files_take_a_staged_reference_not_a_path():
    """visits-import, offers-import and case-complete are given a neutral reference (`genop …
    import FILE` stages the file), so no partner-chosen file name is a Prefect parameter."""
    from flows.serve import declared_deployments, load_flow

    specs = {spec["name"]: spec for spec in declared_deployments()}
    for name in ("visits-import", "offers-import", "case-complete"):
        schema = load_flow(specs[name]["entrypoint"]).parameters.model_dump()
        assert "staged" in schema["required"], name
        assert not {"path", "status_path"} & set(schema["properties"]), name
        assert "genop " in specs[name]["description"], f"{name} must say which command stages its file"


def _deployment_names(api_url: str) -> set[str]:
    try:
        response = httpx.post(f"{api_url}/deployments/filter", json={}, timeout=5)
    except httpx.HTTPError:
        return set()
    return {d["name"] for d in response.json()} if response.status_code == 200 else set()


@pytest.fixture
def served(prefect_server: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, "GENOP_HOME": str(tmp_path / "home")}
    env.pop("GENOP_DATABASE_URL", None)
    log = (tmp_path / "serve.log").open("wb")
    process = processes.start([sys.executable, "-m", "flows.serve"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: {"plan-intake", "inbox-poll"} <= _deployment_names(prefect_server), OUTCOME_SECONDS,
                  "the deployments to be served")
        yield env
    finally:
        processes.stop(process, grace=30)  # never left serving into the next test


def test_served_intake_deployment_runs_when_triggered(served, tmp_path):
    """Run plan-intake on a staging batch by its id (as the UI's Run form takes it, e.g. a batch
    left behind); the served process runs it."""
    from prefect.deployments import run_deployment

    from genop.inbox import stage_copy
    from genop.runtime import build_runtime
    from genop.settings import Settings

    settings = Settings(home=Path(served["GENOP_HOME"]))
    batch = stage_copy(EXAMPLES / "plan-dragor.json", settings.folders)
    run = asyncio.run(_run_deployment_async(run_deployment, batch.name))
    assert run.state.is_completed(), run.state
    assert run.name == f"intake-{batch.name}-1-file"
    runtime = build_runtime(settings)
    from genop.store.repository import list_cases

    with runtime.store.session() as session:
        [case] = list_cases(session)
        assert (case.municipality_code, case.payer, case.state) == ("155", "dragor", "awaiting_consent")


async def _run_deployment_async(run_deployment, path: str):
    return await run_deployment("plan-intake/plan-intake",
                                parameters={"path": path, "as_of": "2026-11-20"},
                                timeout=OUTCOME_SECONDS, poll_interval=1)


def test_make_run_starts_the_ui_and_serves_the_deployments(tmp_path):
    """`make run` is `genop system up`: Prefect server with UI, deployments served, clean stop."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GENOP_"))}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        smtp_port = sock.getsockname()[1]
    env.update({"GENOP_HOME": str(tmp_path / "home"), "GENOP_PREFECT_PORT": str(port),
                "GENOP_SMTP_PORT": str(smtp_port)})
    genop = str(Path(sys.executable).parent / "genop")
    process = subprocess.Popen([genop, "system", "up"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(lambda: {"plan-intake", "inbox-poll", "case-consent", "case-forward",
                           "consent-reconcile"} <= _deployment_names(api), 300,
                  "genop system up to serve its deployments")
        ui = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert ui.status_code == 200 and "<html" in ui.text.lower()
        assert (tmp_path / "home" / "prefect").is_dir()
        assert (tmp_path / "home" / "genop.sqlite").exists()
        certs = tmp_path / "home" / "certs"
        assert {"ca.crt", "tarnby.crt", "tarnby.key", "copenhagen.crt", "copenhagen.key"} <= {
            p.name for p in certs.iterdir()}
        wait_for(lambda: _smtp_greets(smtp_port), 30, "the mail sink")
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    assert f"Prefect UI: http://127.0.0.1:{port}" in out
    assert f"mail sink:   127.0.0.1:{smtp_port}" in out


def _smtp_greets(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            return conn.recv(64).startswith(b"220")
    except OSError:
        return False
