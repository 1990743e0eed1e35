"""`make run`: the whole system on embedded defaults, supervised until Ctrl-C.

Children: the Prefect server (SQLite under $GENOP_HOME/prefect, UI on GENOP_PREFECT_PORT),
the local mail sink (every outgoing mail as an .eml under $GENOP_HOME/mail/, on
GENOP_SMTP_HOST:GENOP_SMTP_PORT) and the process serving genop's deployments
(flows/serve.py). Demo certificates are created when none exist.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from types import FrameType

from genop.clock import today
from genop.config import Agreement
from genop.errors import SettingsError
from genop.runtime import Runtime
from genop.settings import PROJECT_ROOT, Settings
from genop.store.db import open_store
from genop.term import term_status
from genop_cli.main import create_demo_certificates
from genop_cli import processes
from genop_cli.output import console, errors
from genop_cli.server import CLIENT_RETRIES, server_is_up

STARTUP_SECONDS = 120
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl-C, a service manager's stop, a closed terminal: each stops every process genop started."""


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def prefect_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PREFECT_HOME": str(settings.prefect_home),
        "PREFECT_API_URL": settings.prefect_api_url,
        "PREFECT_UI_API_URL": settings.prefect_api_url,
        "PREFECT_SERVER_API_HOST": settings.prefect_host,
        "PREFECT_SERVER_API_PORT": str(settings.prefect_port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": env.get("PREFECT_RUNNER_POLL_FREQUENCY", "2"),
        "DO_NOT_TRACK": "1",
        "GENOP_HOME": str(settings.home_dir),
    })
    for name, value in CLIENT_RETRIES.items():  # the served runs talk to a busy server patiently
        env.setdefault(name, value)
    if settings.prefect_database_url:
        # SQLite answers 503 "database is locked" once several desks work at once
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = asyncpg_url(settings.prefect_database_url)
        # Prefect's default pool (5 + 10 overflow, 30 s) runs dry under a batch of thousands of runs
        env.setdefault("PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE", "10")
        env.setdefault("PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW", "20")
        env.setdefault("PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_TIMEOUT", "60")
    return env


def asyncpg_url(url: str) -> str:
    """Prefect's server needs the asyncpg driver: postgresql://… → postgresql+asyncpg://…"""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith(("postgresql", "postgres")):
        raise SettingsError(f"GENOP_PREFECT_DATABASE_URL: {scheme or url!r} is not a PostgreSQL URL "
                            "(postgresql://user@host:5432/prefect)")
    return "postgresql+asyncpg://" + rest


def uses_local_sink(settings: Settings) -> bool:
    return settings.smtp_host in ("127.0.0.1", "localhost") and settings.smtp_security == "none"


def warn_outside_term(agreement: Agreement, day: date | None = None) -> bool:
    """One warning line when the day (today) is outside every recorded term (agreement §12)."""
    status = term_status(agreement.terms, day or today())
    if not status.in_term:
        errors.print(f"genop: warning: {status.summary()}", markup=False, highlight=False, soft_wrap=True)
    return not status.in_term


def run_system(runtime: Runtime) -> int:
    settings = runtime.settings
    settings.ensure_dirs()
    open_store(settings.store_url)
    warn_outside_term(runtime.agreement)
    if not (settings.certificates_dir / "tarnby.crt").exists():
        written = create_demo_certificates(runtime)
        console.print(f"created DEMO certificates in {settings.certificates_dir} ({len(written)} files)")
    url = settings.prefect_api_url
    if server_is_up(url):
        errors.print(f"genop: something already answers at {url}; stop it or set GENOP_PREFECT_PORT")
        return 1
    env = prefect_environment(settings)
    log_dir = settings.home_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    children: list[subprocess.Popen[bytes]] = []

    def stop() -> None:
        """The serving process (and its flow runs) first, the Prefect server last."""
        for signum in STOP_SIGNALS:  # a second signal must not cut the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        for child in reversed(children):
            processes.stop(child)

    for signum in STOP_SIGNALS:
        # also when started from a shell that ignores SIGINT for background jobs
        signal.signal(signum, _interrupt)
    try:
        server_log = (log_dir / "prefect-server.log").open("ab")
        children.append(processes.start(
            [sys.executable, "-m", "prefect", "server", "start",
             "--host", settings.prefect_host, "--port", str(settings.prefect_port)],
            env=env, cwd=PROJECT_ROOT, stdout=server_log, stderr=subprocess.STDOUT))
        console.print(f"starting the Prefect server (log: {log_dir / 'prefect-server.log'}) …")
        if not _wait_until_up(url, children[0]):
            errors.print("genop: the Prefect server did not start; see the log above")
            return 1
        if uses_local_sink(settings):
            sink_log = (log_dir / "mail-sink.log").open("ab")
            children.append(processes.start(
                [sys.executable, "-m", "genop.mail.sink", "--folder", str(settings.mail_dir),
                 "--host", settings.smtp_host, "--port", str(settings.smtp_port)],
                env=env, cwd=PROJECT_ROOT, stdout=sink_log, stderr=subprocess.STDOUT))
        serve_log = (log_dir / "serve.log").open("ab")
        children.append(processes.start(
            [sys.executable, "-m", "flows.serve"], env=env, cwd=PROJECT_ROOT,
            stdout=serve_log, stderr=subprocess.STDOUT))
        ui = url.removesuffix("/api")
        console.print(f"[bold green]genop is running.[/] Prefect UI: [bold]{ui}[/]")
        console.print(f"  data folder: {settings.home_dir}   inbox: {settings.inbox_dir}")
        console.print(f"  case store:  {settings.store_url}")
        if uses_local_sink(settings):
            console.print(f"  mail sink:   {settings.smtp_host}:{settings.smtp_port} → {settings.mail_dir}")
        console.print(f"  deployments served from prefect.yaml (log: {log_dir / 'serve.log'})")
        console.print("  Ctrl-C stops everything.")
        while all(child.poll() is None for child in children):
            time.sleep(1)
        errors.print("genop: a component stopped; see the logs in " + str(log_dir))
        return 1
    except KeyboardInterrupt:
        console.print("stopping …")
        return 0
    finally:
        stop()


def _wait_until_up(url: str, server: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        if server_is_up(url, timeout=1.0):
            return True
        time.sleep(0.5)
    return False
