"""The ASGI application: every context's routes, one error shape, request ids."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, text

from cloudpay.config import Settings, get_settings
from cloudpay.db.engine import make_engine
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.ledger.api import router as ledger_router
from cloudpay.web.errors import install_error_handlers
from cloudpay.web.middleware import RequestContextMiddleware

API_VERSION = "2026-11-25"


def engine_for(settings: Settings) -> Engine:
    return make_engine(
        settings.database_url,
        isolation_level=settings.database_isolation,
        pool_size=settings.database_pool_size,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    the_settings = settings or get_settings()
    app = FastAPI(
        title="CloudPay API",
        version=API_VERSION,
        description="One API for WeChat Pay, Alipay and UnionPay, on a double-entry ledger.",
    )
    app.state.settings = the_settings
    app.state.engine = engine or engine_for(the_settings)
    app.state.clock = clock or SystemClock()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(ledger_router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        """Liveness plus a database round trip."""
        with app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "database": app.state.engine.dialect.name}

    return app
