"""order discounts: an order keeps the merchant's price and the discount that vouchers and
coupons took off it (`amount` stays what the payer pays through the channel); a refund keeps
the subsidy it gave back to the campaign's budget, which settlement takes off the merchant;
points (积分): the payer citizen, the points an order uses and where they came from, the fen
its merchant funded for the points it earned, and what refunds clawed back and returned

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _order_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("gross_amount", sa.BigInteger, nullable=True),
        sa.Column("discount_amount", sa.BigInteger, nullable=True),
        sa.Column("discounts", sa.Text, nullable=True),
        sa.Column("citizen_id", sa.String(32), nullable=True),
        sa.Column("points_used", sa.BigInteger, nullable=True),
        sa.Column("points_lots", sa.Text, nullable=True),
        sa.Column("points_funded_amount", sa.BigInteger, nullable=True),
        sa.Column("points_clawed_back", sa.BigInteger, nullable=True),
    )


def _refund_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("subsidy_reversed_amount", sa.BigInteger, nullable=True),
        sa.Column("points_funding_returned_amount", sa.BigInteger, nullable=True),
    )


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for column in _order_columns():
            batch.add_column(column)
    with op.batch_alter_table("refunds") as batch:
        for column in _refund_columns():
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        for column in reversed(_refund_columns()):
            batch.drop_column(column.name)
    with op.batch_alter_table("orders") as batch:
        for column in reversed(_order_columns()):
            batch.drop_column(column.name)
