"""The CLI under a busy or absent Prefect server: one line saying what to do, never a traceback;
"no Prefect server" only when nothing answers; Prefect's own database on PostgreSQL for `make run`.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from click.testing import CliRunner

from genop_cli import main as cli_main
from genop_cli.main import cli
from genop_cli.server import ServerUnavailable, require_server, server_answers

API = "http://127.0.0.1:4299/api"


def _server_error(status: int) -> Exception:
    from prefect.exceptions import PrefectHTTPStatusError

    request = httpx.Request("POST", API + "/flow_runs/")
    response = httpx.Response(status, request=request, text='{"exception_message":"database is locked"}')
    return PrefectHTTPStatusError.from_httpx_error(
        httpx.HTTPStatusError("Server error '503 Service Unavailable'", request=request, response=response))


def _invoke_with_failing_flow(monkeypatch: pytest.MonkeyPatch, error: Exception):
    monkeypatch.setattr(cli_main, "require_server", lambda _settings: API)

    def failing_run(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(cli_main, "run_flow", failing_run)
    return CliRunner().invoke(cli, ["consent-reconcile"])


@pytest.mark.parametrize("error", [
    httpx.ReadTimeout("timed out"),
    httpx.ConnectError("[Errno 111] Connection refused"),
    httpx.RemoteProtocolError("Server disconnected without sending a response."),
    pytest.param("503", id="PrefectHTTPStatusError-503"),
    pytest.param("500", id="PrefectHTTPStatusError-500"),
    RuntimeError("Flow run encountered an exception: KeyError('case_numbers')"),
], ids=lambda e: type(e).__name__)
def test_every_prefect_or_http_error_is_one_line_saying_what_to_do(runtime, monkeypatch, error):
    if isinstance(error, str):
        error = _server_error(int(error))
    result = _invoke_with_failing_flow(monkeypatch, error)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == cli_main.EXIT_PREFECT
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("genop: ")
    assert "Traceback" not in result.output + result.stderr
    assert "try again" in lines[0] or "see the Prefect UI" in lines[0]


def test_a_busy_server_is_told_apart_from_a_failed_request(runtime, monkeypatch):
    busy = _invoke_with_failing_flow(monkeypatch, _server_error(503)).stderr
    assert "is busy (HTTP 503)" in busy and "PostgreSQL" in busy
    refused = _invoke_with_failing_flow(monkeypatch, _server_error(500)).stderr
    assert "refused the request (HTTP 500)" in refused


def test_the_traceback_is_kept_in_a_private_log_not_on_screen(runtime, monkeypatch):
    result = _invoke_with_failing_flow(monkeypatch, httpx.ReadTimeout("timed out"))
    assert "Traceback" not in result.stderr
    log = runtime.settings.home_dir / "logs" / "errors.log"
    assert "httpx.ReadTimeout: timed out" in log.read_text(encoding="utf-8")
    assert log.stat().st_mode & 0o077 == 0


def test_usage_errors_stay_clicks_own(runtime):
    result = CliRunner().invoke(cli, ["consent", "GEN-2026-000001"])
    assert result.exit_code == 2
    assert "give --given or --refused" in result.stderr


@pytest.fixture
def slow_server() -> Iterator[str]:
    """Accepts connections but answers /health only after the client gave up."""
    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            release.wait(10)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/api"
    release.set()
    server.shutdown()


@pytest.fixture
def busy_server() -> Iterator[str]:
    class Busy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(503)
            self.end_headers()

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/api"
    server.shutdown()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api"


def test_a_slow_or_busy_server_is_not_called_absent(slow_server, busy_server):
    assert server_answers(slow_server, attempts=1, timeout=0.5)
    assert server_answers(busy_server, attempts=1, timeout=5)


def test_no_server_is_said_only_when_nothing_answers(runtime, monkeypatch, slow_server):
    absent = _closed_port_url()
    assert not server_answers(absent, attempts=2, timeout=1)
    monkeypatch.setenv("PREFECT_API_URL", absent)
    with pytest.raises(ServerUnavailable):
        require_server(runtime.settings)


def test_make_run_puts_prefects_database_on_postgresql_when_configured(monkeypatch, tmp_path):
    from genop.errors import SettingsError
    from genop.settings import Settings
    from genop_cli.system import prefect_environment

    monkeypatch.setenv("GENOP_HOME", str(tmp_path))
    assert "PREFECT_API_DATABASE_CONNECTION_URL" not in prefect_environment(Settings())
    monkeypatch.setenv("GENOP_PREFECT_DATABASE_URL", "postgresql://genop@127.0.0.1:5432/prefect")
    env = prefect_environment(Settings())
    assert env["PREFECT_API_DATABASE_CONNECTION_URL"] == "postgresql+asyncpg://genop@127.0.0.1:5432/prefect"
    assert env["PREFECT_CLIENT_MAX_RETRIES"] == "6"
    assert env["PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE"] == "10"
    monkeypatch.setenv("GENOP_PREFECT_DATABASE_URL", "sqlite:///prefect.db")
    with pytest.raises(SettingsError, match="GENOP_PREFECT_DATABASE_URL"):
        prefect_environment(Settings())
