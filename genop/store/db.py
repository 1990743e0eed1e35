"""Connecting to the case store and keeping its schema current (Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from genop.files import PRIVATE_FILE_MODE, make_private, private_dir

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for SQLite (default, embedded) or PostgreSQL (psycopg 3).

    ``hide_parameters``: a database error must never carry a CPR number into a log line
    or a Prefect state message.
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_sqlite_file(Path(parsed.database))
        engine = create_engine(parsed, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)


def _private_sqlite_file(path: Path) -> None:
    """The case store holds CPR numbers and plans: 0600 from the start (SQLite gives its
    -wal and -shm files the database file's mode)."""
    if not path.parent.exists():
        private_dir(path.parent)
    path.touch(mode=PRIVATE_FILE_MODE, exist_ok=True)
    make_private(path)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DBAPI hook
    # let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see below)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection) -> None:  # noqa: ANN001 - SQLAlchemy hook
    """Take SQLite's write lock at BEGIN: two writers then queue (busy_timeout) instead of
    failing when a read snapshot cannot be upgraded to a write."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent; a no-op when current)."""
    config = alembic_config(engine)
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        command.upgrade(config, "head")


class Store:
    """The case store: an engine, a session factory, and the schema brought up to date."""

    def __init__(self, url: str, *, migrate_schema: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate_schema:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


@lru_cache(maxsize=8)
def open_store(url: str) -> Store:
    """One Store per URL per process (flows and tasks share it)."""
    return Store(url)
