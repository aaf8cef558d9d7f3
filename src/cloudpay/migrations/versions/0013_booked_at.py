"""booked at: when a payment or a refund entered our books (the capture or refund journal),
which is what settlement windows by, so a success learned late (a poll, a repaired
notification) still settles instead of falling into a day already settled

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("booked_at", TIMESTAMP, nullable=True))
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("booked_at", TIMESTAMP, nullable=True))
    # Rows booked before this column: their channel time is the best record there is.
    op.execute("UPDATE orders SET booked_at = paid_at WHERE paid_at IS NOT NULL")
    op.execute("UPDATE refunds SET booked_at = succeeded_at WHERE succeeded_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("booked_at")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("booked_at")
