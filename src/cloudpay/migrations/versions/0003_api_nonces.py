"""api_nonces: request nonces of merchant apps, each accepted once

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_nonces",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "nonce", name=op.f("pk_api_nonces")),
    )
    with op.batch_alter_table("api_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_api_nonces_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_api_nonces_expires_at")
    op.drop_table("api_nonces")
