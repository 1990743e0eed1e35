"""`genop system up` leaves no process behind when it is stopped: not its children, not the
flow-run processes (``prefect.engine``) the serving process started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from genop.staged import StagedKind, stage_file
from genop_cli.processes import alive, descendants
from tests.conftest import ROOT, _free_port
from tests.flows.helpers import wait_for


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _deployment_id(api: str, name: str) -> str | None:
    try:
        response = httpx.post(f"{api}/deployments/filter", json={"deployments": {"name": {"any_": [name]}}},
                              timeout=10)
    except httpx.HTTPError:
        return None
    return response.json()[0]["id"] if response.status_code == 200 and response.json() else None


def _create_run(api: str, deployment: str, parameters: dict) -> bool:
    """Prefect on SQLite answers 503 while its database is busy (a loaded machine): try again."""
    try:
        response = httpx.post(f"{api}/deployments/{deployment}/create_flow_run",
                              json={"parameters": parameters}, timeout=30)
    except httpx.HTTPError:
        return False
    if response.status_code >= 500:
        return False
    response.raise_for_status()
    return True


def _stage_blocking_visits(home: Path) -> str:
    """A staged visits file that is a FIFO: reading it waits for a writer that never comes, so
    the run stays in progress."""
    staged = stage_file(b"", "visits.csv", StagedKind.VISITS, home)
    staged.path.unlink()
    os.mkfifo(staged.path)
    return staged.reference


def _engines(pid: int) -> list[int]:
    return [p for p in descendants(pid) if "prefect.engine" in _cmdline(p)]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("stop", ["ctrl-c to the terminal's process group", "SIGTERM", "SIGHUP"])
def test_stopping_system_up_stops_every_process_it_started_with_a_flow_run_in_progress(tmp_path, stop):
    home = tmp_path / "home"
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "GENOP_HOME": str(home), "GENOP_PREFECT_PORT": str(port),
           "GENOP_SMTP_PORT": str(_free_port()), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    log = (tmp_path / "system.log").open("wb")
    system = subprocess.Popen([sys.executable, "-c", "from genop_cli.main import main; main()", "system", "up"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # its own group, as a terminal's foreground job
    started: list[int] = []
    try:
        deployment = wait_for(lambda: system.poll() is None and _deployment_id(api, "visits-import"), 300,
                              "genop system up to serve its deployments")
        reference = _stage_blocking_visits(home)
        wait_for(lambda: _create_run(api, deployment, {"staged": reference}), 120, "the flow run to be created")
        wait_for(lambda: _engines(system.pid), 300, "the flow run's prefect.engine process")
        started = descendants(system.pid)

        if stop.startswith("ctrl-c"):
            os.killpg(system.pid, signal.SIGINT)
        else:
            system.send_signal(getattr(signal, stop))
        assert system.wait(timeout=300) == 0
        wait_for(lambda: not [p for p in started if alive(p)], 120, "every process genop started to end")
    finally:
        for pid in [system.pid, *started]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        system.wait(timeout=60)
        log.close()
    assert "stopping" in (tmp_path / "system.log").read_text()
