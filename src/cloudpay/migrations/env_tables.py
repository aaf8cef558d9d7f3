"""Imports every context's tables so they register on the shared metadata (Alembic and the
schema test read it from here)."""

import cloudpay.citizen.tables
import cloudpay.console.tables
import cloudpay.db.idempotency
import cloudpay.db.outbox
import cloudpay.ledger.tables
import cloudpay.marketing.abuse_tables
import cloudpay.marketing.stock_tables
import cloudpay.marketing.tables
import cloudpay.merchants.tables
import cloudpay.payments.tables
import cloudpay.reconciliation.tables
import cloudpay.routing.tables
import cloudpay.settlement.tables
import cloudpay.web.nonces  # noqa: F401
