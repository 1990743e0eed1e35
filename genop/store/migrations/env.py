"""Alembic environment: runs against the engine genop hands over (see genop.store.db)."""

from alembic import context
from sqlalchemy import create_engine

from genop.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url", ""))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # two processes starting at once must not both create the schema
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4711004)")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        context.run_migrations()


run_migrations_online()
