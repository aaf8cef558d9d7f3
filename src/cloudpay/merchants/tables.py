"""Merchants' tables: agents, merchants (with their review trail), stores, apps, app keys.

Personal columns are stored three ways and never in plain text: `*_encrypted` (a FieldCipher
token bound to `table.column`), `*_index` (a blind index for equality lookup) and `*_masked`
(what responses show, so reads need no key).
"""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime

merchant_agents = Table(
    "merchant_agents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("parent_agent_id", String(32), ForeignKey("merchant_agents.id"), nullable=True),
    Column("depth", SmallInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_merchant_agents_parent", "parent_agent_id", "id"),
)

merchants = Table(
    "merchants",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("agent_id", String(32), ForeignKey("merchant_agents.id"), nullable=True),
    Column("legal_name", String(128), nullable=False),
    Column("unified_social_credit_code", String(18), nullable=False),
    Column("legal_person_name", String(64), nullable=False),
    Column("legal_person_id_number_encrypted", Text, nullable=False),
    Column("legal_person_id_number_index", String(64), nullable=False),
    Column("legal_person_id_number_masked", String(32), nullable=False),
    Column("contact_phone_encrypted", Text, nullable=False),
    Column("contact_phone_index", String(64), nullable=False),
    Column("contact_phone_masked", String(32), nullable=False),
    Column("mcc", String(4), nullable=False),
    Column("settlement_bank_name", String(64), nullable=True),
    Column("settlement_account_name", String(128), nullable=True),
    Column("settlement_account_number_encrypted", Text, nullable=True),
    Column("settlement_account_number_masked", String(40), nullable=True),
    Column("settlement_account_number_checksum_ok", Boolean, nullable=True),
    Column("acquiring_mode", String(8), nullable=False),
    Column("channel_sub_merchant_ids", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", String(500), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_merchants_status", "status", "id"),
    Index("ix_merchants_agent", "agent_id", "id"),
    Index("ix_merchants_uscc", "unified_social_credit_code"),
    Index("ix_merchants_legal_person_id_number_index", "legal_person_id_number_index"),
    Index("ix_merchants_contact_phone_index", "contact_phone_index"),
)

merchant_reviews = Table(
    "merchant_reviews",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("merchant_id", String(32), ForeignKey("merchants.id"), nullable=False),
    Column("action", String(16), nullable=False),
    Column("from_status", String(16), nullable=False),
    Column("to_status", String(16), nullable=False),
    Column("reason", String(500), nullable=True),
    Column("actor", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_merchant_reviews_merchant", "merchant_id", "id"),
)

merchant_stores = Table(
    "merchant_stores",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("merchant_id", String(32), ForeignKey("merchants.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("store_code", String(16), nullable=False, unique=True),
    Column("address", String(256), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_merchant_stores_merchant", "merchant_id", "id"),
)

merchant_apps = Table(
    "merchant_apps",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("merchant_id", String(32), ForeignKey("merchants.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("notify_url", String(512), nullable=True),
    Column("payment_methods", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_merchant_apps_merchant", "merchant_id", "id"),
)

merchant_app_keys = Table(
    "merchant_app_keys",
    metadata,
    Column("app_id", String(32), ForeignKey("merchant_apps.id"), primary_key=True),
    Column("serial_no", String(40), primary_key=True),
    # 1, 2, 3… per app: orders keys even when a test clock stands still; unique, so two
    # rotations racing cannot both win (the app row is locked as well).
    Column("key_number", Integer, nullable=False),
    Column("algorithm", String(8), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("source", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("retire_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    UniqueConstraint("app_id", "key_number", name="uq_merchant_app_keys_app_id_key_number"),
)

# 分账接收方: who a merchant may split to, bound in advance (WeChat's 添加分账接收方). A
# supplier's e-account number is personal data: sealed and masked like merchants' accounts.
split_receivers = Table(
    "split_receivers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(32), ForeignKey("merchants.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # store, agent, supplier, merchant, platform
    Column("name", String(128), nullable=False),
    Column("reference_id", String(40), nullable=True),  # the store, agent or merchant
    Column("bank_code", String(12), nullable=True),
    Column("account_class", String(4), nullable=True),  # II or III
    Column("account_no_encrypted", Text, nullable=True),
    Column("account_no_masked", String(40), nullable=True),
    Column("status", String(16), nullable=False),  # bound, unbound
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_split_receivers_merchant", "merchant_id", "id"),
)

# A merchant's split setup: the cap on others' share, the days a delayed split is held, and
# its standing rules (JSON list of {receiver_id, rate_bp | fixed_fen, split_from}).
split_configs = Table(
    "split_configs",
    metadata,
    Column("merchant_id", String(32), ForeignKey("merchants.id"), primary_key=True),
    Column("cap_centi_bp", Integer, nullable=False),
    Column("auto_unfreeze_days", Integer, nullable=False),
    Column("rules", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
