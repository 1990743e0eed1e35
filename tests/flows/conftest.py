"""Fixtures for the flow tests: a served genop (deployments, mail sink, demo certificates)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from genop.mail.sink import start_sink
from genop_cli import processes
from genop_cli.main import create_demo_certificates
from tests.conftest import ROOT
from tests.flows.helpers import OUTCOME_SECONDS, deployment_served, wait_for

FLOW_TEST_TIMEOUT = 900
"""pytest-timeout's limit for a flow test (the suite's 300 s is one outcome wait): a test that
waits for several served runs, each 13–30 s or more to start on a loaded 2-core machine (the
other test worker busy too), passes; a hung one still ends. A test's own mark wins."""

FLOWS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if FLOWS in item.path.parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(FLOW_TEST_TIMEOUT))


@pytest.fixture
def system(prefect_server: str, genop_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """Demo certificates, a mail sink on a free port, and genop's deployments served."""
    from genop.runtime import current_runtime

    sink = start_sink(genop_env / "mail")
    monkeypatch.setenv("GENOP_SMTP_PORT", str(sink.port))
    monkeypatch.setenv("GENOP_SMTP_RETRY_DELAYS", "[0, 0]")
    current_runtime.cache_clear()
    runtime = current_runtime()
    create_demo_certificates(runtime)
    log = (genop_env / "serve.log").open("wb")
    serve = processes.start([sys.executable, "-m", "flows.serve"], cwd=ROOT, env=dict(os.environ),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: deployment_served("case-consent"), OUTCOME_SECONDS, "case-consent to be served")
        yield {"runtime": runtime, "sink": sink, "mail": genop_env / "mail",
               "certs": runtime.settings.certificates_dir}
    finally:
        # never leave it serving: a served process of a finished test would take up the next
        # test's runs against its own (finished) store
        processes.stop(serve, grace=30)
        sink.stop()


@pytest.fixture(autouse=True)
def _no_leftover_runs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Runs a test leaves scheduled or waiting (e.g. consent waits opened by intake) must not be
    picked up by the next test's served process, which works on another case store."""
    yield
    if "prefect_server" in request.fixturenames:
        _delete_unfinished_runs()


def _delete_unfinished_runs() -> None:
    """Waits left by this test must not be picked up by the next test's served process (its own store)."""
    from prefect.client.orchestration import get_client

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    unfinished = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[
        StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED])))
    with get_client(sync_client=True) as client:
        while runs := client.read_flow_runs(flow_run_filter=unfinished, limit=200):
            for run in runs:
                client.delete_flow_run(run.id)


