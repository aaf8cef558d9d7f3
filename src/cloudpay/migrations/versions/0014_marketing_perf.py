"""marketing perf: sharded voucher stock, and the people behind each merchant (anti-abuse)

Campaigns already live get one shard holding the rest of what their stock and budget cover, so
they keep issuing exactly after the upgrade (funding later spreads new capacity over shards).

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)

_SHARD_LIVE_CAMPAIGNS = """
INSERT INTO marketing_stock_shards (campaign_id, shard_no, capacity, issued)
SELECT id, 0,
       CASE WHEN max_value_fen > 0 AND funded_fen / max_value_fen < stock
            THEN funded_fen / max_value_fen ELSE stock END - issued,
       0
FROM marketing_campaigns
WHERE status = 'active' AND issuance = 'first_come'
"""


def upgrade() -> None:
    op.create_table(
        "marketing_stock_shards",
        sa.Column(
            "campaign_id",
            sa.String(32),
            sa.ForeignKey("marketing_campaigns.id"),
            primary_key=True,
        ),
        sa.Column("shard_no", sa.SmallInteger, primary_key=True),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("issued", sa.Integer, nullable=False),
    )
    op.execute(_SHARD_LIVE_CAMPAIGNS)
    op.create_table(
        "marketing_merchant_people",
        sa.Column("merchant_id", sa.String(32), sa.ForeignKey("merchants.id"), primary_key=True),
        sa.Column("citizen_id", sa.String(32), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("registered_at", TIMESTAMP, nullable=False),
    )
    op.create_index(
        "ix_marketing_merchant_people_citizen", "marketing_merchant_people", ["citizen_id"]
    )
    op.bulk_insert(
        sa.table(
            "marketing_abuse_rules",
            sa.column("code", sa.String),
            sa.column("description", sa.String),
            sa.column("threshold", sa.Integer),
            sa.column("window_hours", sa.Integer),
            sa.column("enabled", sa.Boolean),
        ),
        [
            {
                "code": "own_people",
                "description": "a merchant's own people redeeming vouchers there",
                "threshold": 1,
                "window_hours": 720,
                "enabled": True,
            }
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM marketing_abuse_rules WHERE code = 'own_people'")
    op.drop_index("ix_marketing_merchant_people_citizen", "marketing_merchant_people")
    op.drop_table("marketing_merchant_people")
    op.drop_table("marketing_stock_shards")
