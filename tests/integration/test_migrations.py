"""The Alembic migrations build exactly the schema the code's tables describe, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import cloudpay.migrations.env_tables  # noqa: F401 — every context's tables on the metadata
from cloudpay.db.metadata import metadata
from cloudpay.migrations import current_revision, head_revision


def test_database_is_at_head(engine: Engine) -> None:
    """The test database was built by the migrations, up to the newest one."""
    assert current_revision(engine) == head_revision()


def test_migrations_match_the_tables(engine: Engine) -> None:
    """No table, column, index or constraint differs between migrations and `tables.py`."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []
