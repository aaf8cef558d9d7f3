"""The console's tables: users, sessions, login failures, the audit log, dashboard day totals."""

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime

console_users = Table(
    "console_users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("merchant_id", String(32), nullable=True),
    Column("agent_id", String(32), nullable=True),
    # A FieldCipher token (the vault), bound to `console_users.totp_secret`.
    Column("totp_secret_encrypted", Text, nullable=True),
    Column("disabled_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    # SHA-256 of the cookie's 256-bit token: a stolen table opens no session.
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(32), ForeignKey("console_users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("language", String(8), nullable=False),
    Column("ip", String(64), nullable=True),
    Column("user_agent", String(256), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Index("ix_console_sessions_user", "user_id"),
)

console_login_failures = Table(
    "console_login_failures",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("email", String(254), nullable=False),
    Column("ip", String(64), nullable=True),
    Column("failed_at", UtcDateTime, nullable=False),
    Index("ix_console_login_failures_email", "email", "failed_at"),
)

console_audit_log = Table(
    "console_audit_log",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("actor_user_id", String(32), nullable=True),
    Column("actor_email", String(254), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("action", String(48), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(64), nullable=True),
    Column("before", Text, nullable=True),  # JSON, personal data masked
    Column("after", Text, nullable=True),
    Column("ip", String(64), nullable=True),
    Column("user_agent", String(256), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_console_audit_log_object", "object_type", "object_id"),
)

# Platform-wide totals of closed business days (Asia/Shanghai), so the 30-day trend reads 30
# rows instead of a month of orders; today and yesterday are always counted live.
console_day_totals = Table(
    "console_day_totals",
    metadata,
    Column("business_day", String(10), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("orders_count", Integer, nullable=False),
    Column("succeeded_count", Integer, nullable=False),
    Column("finished_count", Integer, nullable=False),
    Column("succeeded_amount", BigInteger, nullable=False),
    Column("computed_at", UtcDateTime, nullable=False),
)
