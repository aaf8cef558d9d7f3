"""merchants: agents, merchants, reviews, stores, apps, app keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:56:50.922838
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "merchant_agents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("parent_agent_id", sa.String(length=32), nullable=True),
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_agent_id"],
            ["merchant_agents.id"],
            name=op.f("fk_merchant_agents_parent_agent_id_merchant_agents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_agents")),
    )
    with op.batch_alter_table("merchant_agents", schema=None) as batch_op:
        batch_op.create_index("ix_merchant_agents_parent", ["parent_agent_id", "id"], unique=False)

    op.create_table(
        "merchants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=True),
        sa.Column("legal_name", sa.String(length=128), nullable=False),
        sa.Column("unified_social_credit_code", sa.String(length=18), nullable=False),
        sa.Column("legal_person_name", sa.String(length=64), nullable=False),
        sa.Column("legal_person_id_number_encrypted", sa.Text(), nullable=False),
        sa.Column("legal_person_id_number_index", sa.String(length=64), nullable=False),
        sa.Column("legal_person_id_number_masked", sa.String(length=32), nullable=False),
        sa.Column("contact_phone_encrypted", sa.Text(), nullable=False),
        sa.Column("contact_phone_index", sa.String(length=64), nullable=False),
        sa.Column("contact_phone_masked", sa.String(length=32), nullable=False),
        sa.Column("mcc", sa.String(length=4), nullable=False),
        sa.Column("settlement_bank_name", sa.String(length=64), nullable=True),
        sa.Column("settlement_account_name", sa.String(length=128), nullable=True),
        sa.Column("settlement_account_number_encrypted", sa.Text(), nullable=True),
        sa.Column("settlement_account_number_masked", sa.String(length=40), nullable=True),
        sa.Column("settlement_account_number_checksum_ok", sa.Boolean(), nullable=True),
        sa.Column("acquiring_mode", sa.String(length=8), nullable=False),
        sa.Column("channel_sub_merchant_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["merchant_agents.id"], name=op.f("fk_merchants_agent_id_merchant_agents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants")),
    )
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.create_index("ix_merchants_agent", ["agent_id", "id"], unique=False)
        batch_op.create_index(
            "ix_merchants_contact_phone_index", ["contact_phone_index"], unique=False
        )
        batch_op.create_index(
            "ix_merchants_legal_person_id_number_index",
            ["legal_person_id_number_index"],
            unique=False,
        )
        batch_op.create_index("ix_merchants_status", ["status", "id"], unique=False)
        batch_op.create_index("ix_merchants_uscc", ["unified_social_credit_code"], unique=False)

    op.create_table(
        "merchant_apps",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("notify_url", sa.String(length=512), nullable=True),
        sa.Column("payment_methods", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_merchant_apps_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_apps")),
    )
    with op.batch_alter_table("merchant_apps", schema=None) as batch_op:
        batch_op.create_index("ix_merchant_apps_merchant", ["merchant_id", "id"], unique=False)

    op.create_table(
        "merchant_reviews",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_merchant_reviews_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_reviews")),
    )
    with op.batch_alter_table("merchant_reviews", schema=None) as batch_op:
        batch_op.create_index("ix_merchant_reviews_merchant", ["merchant_id", "id"], unique=False)

    op.create_table(
        "merchant_stores",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("store_code", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_merchant_stores_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_stores")),
        sa.UniqueConstraint("store_code", name=op.f("uq_merchant_stores_store_code")),
    )
    with op.batch_alter_table("merchant_stores", schema=None) as batch_op:
        batch_op.create_index("ix_merchant_stores_merchant", ["merchant_id", "id"], unique=False)

    op.create_table(
        "merchant_app_keys",
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("serial_no", sa.String(length=40), nullable=False),
        sa.Column("key_number", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=8), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["app_id"], ["merchant_apps.id"], name=op.f("fk_merchant_app_keys_app_id_merchant_apps")
        ),
        sa.PrimaryKeyConstraint("app_id", "serial_no", name=op.f("pk_merchant_app_keys")),
        sa.UniqueConstraint("app_id", "key_number", name="uq_merchant_app_keys_app_id_key_number"),
    )


def downgrade() -> None:
    op.drop_table("merchant_app_keys")
    with op.batch_alter_table("merchant_stores", schema=None) as batch_op:
        batch_op.drop_index("ix_merchant_stores_merchant")

    op.drop_table("merchant_stores")
    with op.batch_alter_table("merchant_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_merchant_reviews_merchant")

    op.drop_table("merchant_reviews")
    with op.batch_alter_table("merchant_apps", schema=None) as batch_op:
        batch_op.drop_index("ix_merchant_apps_merchant")

    op.drop_table("merchant_apps")
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_index("ix_merchants_uscc")
        batch_op.drop_index("ix_merchants_status")
        batch_op.drop_index("ix_merchants_legal_person_id_number_index")
        batch_op.drop_index("ix_merchants_contact_phone_index")
        batch_op.drop_index("ix_merchants_agent")

    op.drop_table("merchants")
    with op.batch_alter_table("merchant_agents", schema=None) as batch_op:
        batch_op.drop_index("ix_merchant_agents_parent")

    op.drop_table("merchant_agents")
