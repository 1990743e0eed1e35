"""Finding the running genop system (its Prefect server) before running a flow."""

from __future__ import annotations

import os

import httpx

from genop.settings import Settings


class ServerUnavailable(Exception):
    pass


def api_url(settings: Settings) -> str:
    """PREFECT_API_URL when set, else the local server on GENOP_PREFECT_PORT."""
    return os.environ.get("PREFECT_API_URL") or settings.prefect_api_url


def server_is_up(url: str, timeout: float = 2.0) -> bool:
    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def require_server(settings: Settings) -> str:
    """The API URL of a reachable server, with PREFECT_API_URL set for Prefect; else raise."""
    url = api_url(settings)
    if not server_is_up(url):
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


def run_flow(url: str, flow_callable, /, **parameters):  # noqa: ANN001, ANN201 - any flow
    """Run a flow in this process against the server at ``url`` (the run shows in its UI)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        return flow_callable(**parameters)
