"""Citizens' tables. Personal columns are stored as `*_encrypted` (a FieldCipher token bound
to `table.column`), `*_index` (a blind index for equality lookup) and `*_masked` (what
responses show), never in plain text. The resident ID's blind index is unique: one person,
one citizen, whatever number of wallets.
"""

from sqlalchemy import Boolean, Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime

citizens = Table(
    "citizens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name_encrypted", Text, nullable=False),
    Column("name_masked", String(64), nullable=False),
    Column("resident_id_encrypted", Text, nullable=False),
    Column("resident_id_index", String(64), nullable=False),
    Column("resident_id_masked", String(32), nullable=False),
    Column("phone_encrypted", Text, nullable=False),
    Column("phone_index", String(64), nullable=False),
    Column("phone_masked", String(32), nullable=False),
    Column("resident", Boolean, nullable=False),
    Column("district", String(6), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("resident_id_index", name="uq_citizens_resident_id_index"),
    Index("ix_citizens_phone_index", "phone_index"),
)

citizen_payer_ids = Table(
    "citizen_payer_ids",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("payer_id", String(64), primary_key=True),
    Column("citizen_id", String(32), ForeignKey("citizens.id"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_citizen_payer_ids_citizen", "citizen_id"),
)
