"""Imports every context's tables so they register on the shared metadata (Alembic and the
schema test read it from here)."""

import cloudpay.db.idempotency
import cloudpay.db.outbox
import cloudpay.ledger.tables
import cloudpay.merchants.tables
import cloudpay.payments.tables
import cloudpay.web.nonces  # noqa: F401
