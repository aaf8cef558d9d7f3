"""Anti-abuse's own table: the people behind each merchant (its legal person, its staff).

A row binds a merchant to the citizen whose resident-ID blind index matched the number the
operator registered, so the `own_people` rule can see a merchant redeeming its own vouchers
without ever keeping an ID number in plain text here.
"""

from sqlalchemy import Column, ForeignKey, Index, String, Table

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime

marketing_merchant_people = Table(
    "marketing_merchant_people",
    metadata,
    Column("merchant_id", String(32), ForeignKey("merchants.id"), primary_key=True),
    Column("citizen_id", String(32), primary_key=True),
    Column("role", String(16), nullable=False),  # legal_person, staff
    Column("registered_at", UtcDateTime, nullable=False),
    Index("ix_marketing_merchant_people_citizen", "citizen_id"),
)
