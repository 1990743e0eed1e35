"""Finding the running genop system (its Prefect server) before running a flow, and talking
to it patiently: a busy server (503 ``database is locked``, slow answers) is retried, and
"no Prefect server" is said only when nothing answers at all.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import httpx

from genop.errors import GenopError
from genop.settings import Settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun


class ServerUnavailable(Exception):
    pass


HEALTH_ATTEMPTS = 3
HEALTH_TIMEOUT = 10.0
"""A busy server may take seconds to answer /health; only refused connections mean "no server"."""

CLIENT_RETRIES = {
    # Prefect's own client retries 429/502/503 and timeouts with exponential backoff and jitter;
    # these make it patient enough for a loaded server (2+4+…+64 s ≈ 2 minutes in all).
    "PREFECT_CLIENT_MAX_RETRIES": "6",
    "PREFECT_CLIENT_RETRY_JITTER_FACTOR": "0.5",
    # 500: a loaded server answers it when its database pool times out (QueuePool limit …
    # reached); the calls genop makes are idempotent (idempotency keys, state proposals)
    "PREFECT_CLIENT_RETRY_EXTRA_CODES": "500,504",
}
"""Set for the CLI's Prefect calls and in the environment of the served process."""


def api_url(settings: Settings) -> str:
    """PREFECT_API_URL when set, else the local server on GENOP_PREFECT_PORT."""
    return os.environ.get("PREFECT_API_URL") or settings.prefect_api_url


def server_is_up(url: str, timeout: float = 2.0) -> bool:
    """One /health probe that got a 200 (used to see whether a server has started)."""
    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def server_answers(url: str, attempts: int = HEALTH_ATTEMPTS, timeout: float = HEALTH_TIMEOUT) -> bool:
    """Whether any server is there: any HTTP answer (even a 503) or a slow one counts."""
    for attempt in range(attempts):
        try:
            httpx.get(url.rstrip("/") + "/health", timeout=timeout)
        except httpx.TimeoutException:
            return True  # it accepted the connection: busy, not absent
        except httpx.HTTPError:
            if attempt + 1 < attempts:
                time.sleep(1.0 + attempt)
            continue
        return True
    return False


def require_server(settings: Settings) -> str:
    """The API URL of a reachable server, with PREFECT_API_URL set for Prefect; else raise."""
    url = api_url(settings)
    if not server_answers(url):
        raise ServerUnavailable(
            f"no Prefect server at {url}: start genop with `make run` "
            "(or set PREFECT_API_URL / GENOP_PREFECT_PORT to the running one)"
        )
    os.environ["PREFECT_API_URL"] = url
    # Prefect's console handlers would mix run logs (and a failed run's traceback) into our
    # output; the UI still gets every log line, and the CLI prints the outcome in one line.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL", "CRITICAL")
    return url


@contextmanager
def prefect_settings(url: str) -> Iterator[None]:
    """Prefect's settings for one CLI call: this server, and its client's retries.

    Set as temporary settings because Prefect may already have read the environment.
    """
    import prefect.settings as ps
    from prefect.settings import temporary_settings

    updates = {getattr(ps, name): os.environ.get(name, value) for name, value in CLIENT_RETRIES.items()}
    with temporary_settings(updates={ps.PREFECT_API_URL: url, **updates}):
        yield


def run_flow(url: str, flow_callable, /, **parameters):  # noqa: ANN001, ANN003, ANN201 - any flow
    """Run a flow in this process against the server at ``url`` (the run shows in its UI)."""
    with prefect_settings(url):
        return flow_callable(**parameters)


def describe_failure(exc: Exception, url: str | None) -> str:
    """One line saying what went wrong with Prefect (or a flow run) and what to do."""
    where = f"the Prefect server at {url}" if url else "the Prefect server"
    if isinstance(exc, httpx.TimeoutException):
        return (f"{where} did not answer in time, even after retries (it is overloaded); "
                "nothing was lost — try again in a few minutes, and see the Prefect UI")
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status in (429, 502, 503, 504):
            return (f"{where} is busy (HTTP {status}) and stayed so through the retries; try again "
                    "in a few minutes (with several desks, run Prefect on PostgreSQL: "
                    "GENOP_PREFECT_DATABASE_URL)")
        return (f"{where} refused the request (HTTP {status}); see the Prefect UI and "
                "$GENOP_HOME/logs/errors.log")
    if isinstance(exc, httpx.HTTPError):
        return (f"could not talk to {where} ({type(exc).__name__}); check that `make run` is up "
                "and try again")
    return (f"the run failed ({type(exc).__name__}); see the run in the Prefect UI and "
            "$GENOP_HOME/logs/errors.log, then try again")


class DeploymentRunFailed(GenopError):
    """A deployment's run ended other than completed (or did not end in time)."""

    code = "run_failed"


def run_deployment_and_wait(url: str, deployment: str, parameters: dict[str, Any], *,
                            timeout: float) -> FlowRun:
    """Start a run of ``deployment`` (``flow-name/deployment-name``) on the server at ``url``, as the
    UI's Run button does (the served process runs it), and wait for it to end; the completed run,
    else ``DeploymentRunFailed`` in one line (its state's message: domain errors only, see
    tasks.privacy)."""
    from prefect.deployments import run_deployment

    with prefect_settings(url):
        run = cast("FlowRun", run_deployment(deployment, parameters=parameters, timeout=timeout,
                                            as_subflow=False))  # called outside an event loop: the run itself
    state = run.state
    if state is None or not state.is_final():
        raise DeploymentRunFailed(f"run {run.name} of {deployment} has not ended after {timeout:.0f} s; it goes on "
                                  "in the background (see the Prefect UI)", code="run_not_finished")
    if not state.is_completed():
        message = " ".join((state.message or "").split())
        raise DeploymentRunFailed(f"run {run.name} of {deployment} ended {state.type.value.lower()}"
                                  + (f": {message}" if message else "") + " (see the Prefect UI)")
    return run
