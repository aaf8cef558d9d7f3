"""marketing: citizens and their wallet payer ids; campaigns, listed people, claims, redemptions

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def _citizens() -> None:
    op.create_table(
        "citizens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name_encrypted", sa.Text, nullable=False),
        sa.Column("name_masked", sa.String(64), nullable=False),
        sa.Column("resident_id_encrypted", sa.Text, nullable=False),
        sa.Column("resident_id_index", sa.String(64), nullable=False),
        sa.Column("resident_id_masked", sa.String(32), nullable=False),
        sa.Column("phone_encrypted", sa.Text, nullable=False),
        sa.Column("phone_index", sa.String(64), nullable=False),
        sa.Column("phone_masked", sa.String(32), nullable=False),
        sa.Column("resident", sa.Boolean, nullable=False),
        sa.Column("district", sa.String(6), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("resident_id_index", name="uq_citizens_resident_id_index"),
    )
    op.create_index("ix_citizens_phone_index", "citizens", ["phone_index"])
    op.create_table(
        "citizen_payer_ids",
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("payer_id", sa.String(64), primary_key=True),
        sa.Column("citizen_id", sa.String(32), sa.ForeignKey("citizens.id"), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_citizen_payer_ids_citizen", "citizen_payer_ids", ["citizen_id"])


def _campaign_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("funder_kind", sa.String(16), nullable=False),
        sa.Column("funder_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("rule_kind", sa.String(16), nullable=False),
        sa.Column("discount_fen", sa.BigInteger, nullable=False),
        sa.Column("threshold_fen", sa.BigInteger, nullable=False),
        sa.Column("percent_bp", sa.Integer, nullable=False),
        sa.Column("cap_fen", sa.BigInteger, nullable=False),
        sa.Column("max_value_fen", sa.BigInteger, nullable=False),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.Column("issued", sa.Integer, nullable=False),
        sa.Column("committed_fen", sa.BigInteger, nullable=False),
        sa.Column("funded_fen", sa.BigInteger, nullable=False),
        sa.Column("returned_fen", sa.BigInteger, nullable=False),
        sa.Column("claim_starts_at", TIMESTAMP, nullable=False),
        sa.Column("claim_ends_at", TIMESTAMP, nullable=False),
        sa.Column("valid_from", TIMESTAMP, nullable=False),
        sa.Column("valid_until", TIMESTAMP, nullable=False),
        sa.Column("eligible_merchant_ids", sa.JSON, nullable=False),
        sa.Column("eligible_mccs", sa.JSON, nullable=False),
        sa.Column("eligible_districts", sa.JSON, nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("per_person_per_day", sa.SmallInteger, nullable=False),
        sa.Column("per_person_total", sa.SmallInteger, nullable=False),
        sa.Column("stackable", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("budget_account_id", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    ]


def _campaigns() -> None:
    op.create_table("marketing_campaigns", *_campaign_columns())
    op.create_index(
        "ix_marketing_campaigns_status_valid_until",
        "marketing_campaigns",
        ["status", "valid_until"],
    )
    op.create_table(
        "marketing_campaign_people",
        sa.Column(
            "campaign_id",
            sa.String(32),
            sa.ForeignKey("marketing_campaigns.id"),
            primary_key=True,
        ),
        sa.Column("citizen_id", sa.String(32), primary_key=True),
    )


def _claims() -> None:
    op.create_table(
        "marketing_claims",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "campaign_id", sa.String(32), sa.ForeignKey("marketing_campaigns.id"), nullable=False
        ),
        sa.Column("citizen_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("max_value_fen", sa.BigInteger, nullable=False),
        sa.Column("claim_day", sa.Date, nullable=False),
        sa.Column("person_slot", sa.SmallInteger, nullable=False),
        sa.Column("day_slot", sa.SmallInteger, nullable=False),
        sa.Column("order_id", sa.String(40), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint(
            "campaign_id", "citizen_id", "person_slot", name="uq_marketing_claims_person_slot"
        ),
        sa.UniqueConstraint(
            "campaign_id",
            "citizen_id",
            "claim_day",
            "day_slot",
            name="uq_marketing_claims_day_slot",
        ),
    )
    op.create_index(
        "ix_marketing_claims_citizen_status", "marketing_claims", ["citizen_id", "status"]
    )
    op.create_index(
        "ix_marketing_claims_campaign_status", "marketing_claims", ["campaign_id", "status"]
    )


def _redemptions() -> None:
    op.create_table(
        "marketing_redemptions",
        sa.Column("order_id", sa.String(40), primary_key=True),
        sa.Column("line_no", sa.SmallInteger, primary_key=True),
        sa.Column("claim_id", sa.String(32), sa.ForeignKey("marketing_claims.id"), nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("merchant_id", sa.String(32), nullable=False),
        sa.Column("discount_fen", sa.BigInteger, nullable=False),
        sa.Column("reversed_fen", sa.BigInteger, nullable=False),
        sa.Column("order_amount_fen", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("transfer_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("reversed_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_marketing_redemptions_claim", "marketing_redemptions", ["claim_id"])
    op.create_index(
        "ix_marketing_redemptions_campaign", "marketing_redemptions", ["campaign_id", "status"]
    )


def upgrade() -> None:
    _citizens()
    _campaigns()
    _claims()
    _redemptions()


def downgrade() -> None:
    op.drop_index("ix_marketing_redemptions_campaign", table_name="marketing_redemptions")
    op.drop_index("ix_marketing_redemptions_claim", table_name="marketing_redemptions")
    op.drop_table("marketing_redemptions")
    op.drop_index("ix_marketing_claims_campaign_status", table_name="marketing_claims")
    op.drop_index("ix_marketing_claims_citizen_status", table_name="marketing_claims")
    op.drop_table("marketing_claims")
    op.drop_table("marketing_campaign_people")
    op.drop_index("ix_marketing_campaigns_status_valid_until", table_name="marketing_campaigns")
    op.drop_table("marketing_campaigns")
    op.drop_index("ix_citizen_payer_ids_citizen", table_name="citizen_payer_ids")
    op.drop_table("citizen_payer_ids")
    op.drop_index("ix_citizens_phone_index", table_name="citizens")
    op.drop_table("citizens")
