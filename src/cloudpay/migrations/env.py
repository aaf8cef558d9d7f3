"""Alembic environment: the engine comes from `cloudpay migrate`, the tables from each context."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

import cloudpay.migrations.env_tables  # noqa: F401 — registers every table on the metadata
from cloudpay.db.metadata import metadata


def run_migrations() -> None:
    engine = context.config.attributes["engine"]
    assert isinstance(engine, Engine)
    # SQLite runs without BEGIN IMMEDIATE here: DDL and alembic's own bookkeeping need a
    # plain transaction, and nothing else writes during a migration.
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
