"""settlement: fee plan versions, agent cost rates, settlement profiles, runs, lines, payouts

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def _fee_plans() -> None:
    op.create_table(
        "settlement_fee_plans",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("effective_from", TIMESTAMP, nullable=False),
        sa.Column("effective_to", TIMESTAMP, nullable=True),
        sa.Column("rate_centi_bp", sa.BigInteger, nullable=False),
        sa.Column("fixed_fen", sa.BigInteger, nullable=True),
        sa.Column("min_fen", sa.BigInteger, nullable=False),
        sa.Column("max_fen", sa.BigInteger, nullable=True),
        sa.Column("surcharge_centi_bp", sa.BigInteger, nullable=False),
        sa.Column("refund_policy", sa.String(24), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint(
            "merchant_id", "method", "effective_from", name="uq_settlement_fee_plans_version"
        ),
    )


def _agent_rates() -> None:
    op.create_table(
        "settlement_agent_rates",
        sa.Column("agent_id", sa.String(40), primary_key=True),
        sa.Column("method", sa.String(32), primary_key=True),
        sa.Column("cost_rate_centi_bp", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )


def _profiles() -> None:
    op.create_table(
        "settlement_profiles",
        sa.Column("merchant_id", sa.String(40), primary_key=True),
        sa.Column("bank_code", sa.String(12), nullable=False),
        sa.Column("account_no", sa.String(32), nullable=False),
        sa.Column("account_class", sa.String(4), nullable=False),
        sa.Column("class_i_card", sa.String(19), nullable=True),
        sa.Column("account_name", sa.String(128), nullable=False),
        sa.Column("cycle", sa.String(5), nullable=False),
        sa.Column("reserve_rate_centi_bp", sa.BigInteger, nullable=False),
        sa.Column("reserve_hold_days", sa.Integer, nullable=False),
        sa.Column("over_limit_policy", sa.String(24), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )


def _runs() -> None:
    op.create_table(
        "settlement_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("business_date", sa.Date, nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("merchants_total", sa.Integer, nullable=False),
        sa.Column("merchants_done", sa.Integer, nullable=False),
        sa.Column("payouts_sent", sa.Integer, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.UniqueConstraint("business_date", name="uq_settlement_runs_business_date"),
    )


def _lines() -> None:
    op.create_table(
        "settlement_lines",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("trade_date", sa.Date, nullable=False),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("orders_count", sa.Integer, nullable=False),
        sa.Column("unpriced_orders", sa.Integer, nullable=False),
        sa.Column("gross_fen", sa.BigInteger, nullable=False),
        sa.Column("refunds_fen", sa.BigInteger, nullable=False),
        sa.Column("fees_fen", sa.BigInteger, nullable=False),
        sa.Column("fee_returns_fen", sa.BigInteger, nullable=False),
        sa.Column("channel_cost_fen", sa.BigInteger, nullable=False),
        sa.Column("commissions_fen", sa.BigInteger, nullable=False),
        sa.Column("commissions", sa.Text, nullable=False),
        sa.Column("fee_plan_ids", sa.Text, nullable=False),
        sa.Column("splits_fen", sa.BigInteger, nullable=False),
        sa.Column("split_returns_fen", sa.BigInteger, nullable=False),
        sa.Column("reserve_held_fen", sa.BigInteger, nullable=False),
        sa.Column("reserve_release_on", sa.Date, nullable=True),
        sa.Column("reserve_released_on", sa.Date, nullable=True),
        sa.Column("net_fen", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("refusal", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("merchant_id", "trade_date", name="uq_settlement_lines_merchant_day"),
    )
    op.create_index("ix_settlement_lines_release", "settlement_lines", ["reserve_release_on"])
    op.create_index("ix_settlement_lines_run", "settlement_lines", ["run_id", "id"])


def _payouts() -> None:
    op.create_table(
        "settlement_payouts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("pay_date", sa.Date, nullable=False),
        sa.Column("destination_kind", sa.String(16), nullable=False),
        sa.Column("bank_code", sa.String(12), nullable=False),
        sa.Column("destination_account", sa.String(32), nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("limited_by", sa.String(32), nullable=True),
        sa.Column("failure_reason", sa.String(64), nullable=True),
        sa.Column("bank_serial", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint(
            "merchant_id", "pay_date", "destination_kind", name="uq_settlement_payouts_day"
        ),
    )
    op.create_index("ix_settlement_payouts_status", "settlement_payouts", ["status", "id"])
    op.create_index("ix_settlement_payouts_run", "settlement_payouts", ["run_id", "status"])


def upgrade() -> None:
    _fee_plans()
    _agent_rates()
    _profiles()
    _runs()
    _lines()
    _payouts()


def downgrade() -> None:
    op.drop_index("ix_settlement_payouts_status", table_name="settlement_payouts")
    op.drop_index("ix_settlement_payouts_run", table_name="settlement_payouts")
    op.drop_table("settlement_payouts")
    op.drop_index("ix_settlement_lines_release", table_name="settlement_lines")
    op.drop_index("ix_settlement_lines_run", table_name="settlement_lines")
    op.drop_table("settlement_lines")
    op.drop_table("settlement_runs")
    op.drop_table("settlement_profiles")
    op.drop_table("settlement_agent_rates")
    op.drop_table("settlement_fee_plans")
