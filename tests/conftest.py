"""Test harness: isolated Prefect, throw-away databases (SQLite and PostgreSQL).

Prefect is configured here, before anything imports it: a temporary PREFECT_HOME,
analytics off, and PREFECT_API_URL pointing at a session-scoped local server that is
started the first time a test needs it.

`make test` runs the suite on several pytest-xdist workers; each imports this module on its
own, so each has its own Prefect home, port and server, and its own randomly named databases.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="genop-test-prefect-"))
_PREFECT_PORT = _free_port()
os.environ.update({
    "PREFECT_HOME": str(_PREFECT_HOME),
    "PREFECT_API_URL": f"http://127.0.0.1:{_PREFECT_PORT}/api",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
    "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL": "WARNING",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL": "WARNING",
})
for _name in [n for n in os.environ if n.startswith("GENOP_") and n != "GENOP_REQUIRE_POSTGRES"
              and n != "GENOP_TEST_DATABASE_URL"]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A real Prefect server (the same `prefect server start` that `make run` uses).

    Its own database is PostgreSQL when one is reachable (a throw-away database): the
    suite drives many runs at once, more than Prefect's SQLite backend takes without
    "database is locked" 503s on a 2-core machine. Without PostgreSQL it uses SQLite.
    """
    url = os.environ["PREFECT_API_URL"]
    log = (_PREFECT_HOME / "server.log").open("wb")
    env = {**os.environ, "PREFECT_UI_ENABLED": "false"}
    prefect_db = _create_prefect_database()
    if prefect_db:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_db
        os.environ["GENOP_TEST_PREFECT_DB"] = prefect_db
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(_PREFECT_PORT)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("Prefect test server exited: " + (_PREFECT_HOME / "server.log").read_text())
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    else:
        server.kill()
        raise RuntimeError("Prefect test server did not start within 120 s")
    yield url
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    if prefect_db:
        _drop_database(prefect_db.rsplit("/", 1)[-1])
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


def _create_prefect_database() -> str | None:
    if _postgres_unavailable_reason():
        return None
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"genop_prefect_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_postgres_admin_url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(_postgres_admin_url()).set(drivername="postgresql+asyncpg", database=name) \
        .render_as_string(hide_password=False)


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(_postgres_admin_url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- databases -------------------------------------------------------------------------

def _postgres_admin_url() -> str:
    return os.environ.get("GENOP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_unavailable_reason() -> str | None:
    import psycopg

    try:
        with psycopg.connect(_postgres_admin_url().replace("+psycopg", ""), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {_postgres_admin_url()} ({exc.__class__.__name__}): " \
               "PostgreSQL tests skipped; set GENOP_TEST_DATABASE_URL to run them"


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    reason = _postgres_unavailable_reason()
    if reason:
        if os.environ.get("GENOP_REQUIRE_POSTGRES") == "1":
            pytest.fail("GENOP_REQUIRE_POSTGRES=1 but " + reason)
        pytest.skip(reason)
    return _postgres_admin_url()


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """A fresh database genop_test_<random>, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = postgres_admin.replace("+psycopg", "")
    name = f"genop_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_admin).set(drivername="postgresql+psycopg", database=name)
    yield url.render_as_string(hide_password=False)
    from genop.store.db import open_store

    open_store.cache_clear()
    _drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'genop.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def genop_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """GENOP_HOME and GENOP_DATABASE_URL for this test; the process runtime rebuilt from them."""
    from genop.runtime import current_runtime

    home = tmp_path / "home"
    monkeypatch.setenv("GENOP_HOME", str(home))
    monkeypatch.setenv("GENOP_DATABASE_URL", db_url)
    current_runtime.cache_clear()
    yield home
    current_runtime.cache_clear()


@pytest.fixture
def runtime(genop_env: Path):  # noqa: ANN201 - genop.runtime.Runtime
    from genop.runtime import current_runtime

    return current_runtime()
