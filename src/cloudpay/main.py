"""The ASGI application: every context's routes, one error shape, request ids."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, text

from cloudpay.channels.bank import BankChannel
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.channels.wechat import WeChatPayChannel, WeChatPayConfig
from cloudpay.channels.wechat.sandbox.server import adapter_config_from_credentials
from cloudpay.citizen.api import router as citizen_router
from cloudpay.config import Settings, get_settings
from cloudpay.connectors import BankConnectors, load_bank_connectors, load_connectors
from cloudpay.console import create_console
from cloudpay.db.engine import make_engine
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.kernel.masking import Secret
from cloudpay.kernel.vault import PersonalDataVault
from cloudpay.ledger.api import router as ledger_router
from cloudpay.marketing.api import router as marketing_router
from cloudpay.merchants import find_app_key, get_app
from cloudpay.merchants.api import router as merchants_router
from cloudpay.payments import paid_spend
from cloudpay.payments.api import router as payments_router
from cloudpay.payments.flows import ChannelContext
from cloudpay.payments.storefront import router as storefront_router
from cloudpay.reconciliation import DEFAULT_RUN_AT
from cloudpay.reconciliation.api import router as reconciliation_router
from cloudpay.routing.api import router as routing_router
from cloudpay.settlement import LocalPolicy, SettlementContext
from cloudpay.settlement.api import router as settlement_router
from cloudpay.settlement.splits_api import router as splits_router
from cloudpay.web.app_identity import router as app_identity_router
from cloudpay.web.errors import install_error_handlers
from cloudpay.web.merchant_auth import AppKeyDirectory
from cloudpay.web.middleware import RequestContextMiddleware
from cloudpay.web.platform_keys import load_platform_keyring
from cloudpay.web.platform_keys import router as platform_keys_router
from cloudpay.web.response_signing import ResponseSigningMiddleware
from cloudpay.worker import WorkerContext

API_VERSION = "2026-11-25"


def engine_for(settings: Settings) -> Engine:
    return make_engine(
        settings.database_url,
        isolation_level=settings.database_isolation,
        pool_size=settings.database_pool_size,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )


def vault_for(settings: Settings) -> PersonalDataVault:
    """Encrypts, indexes and masks personal data with the configured field keys."""
    return PersonalDataVault.from_hex(
        settings.field_key_hex.get_secret_value(), settings.blind_index_key_hex.get_secret_value()
    )


def worker_context(settings: Settings, engine: Engine, clock: Clock) -> WorkerContext:
    """The worker's view of the same wiring as the API (channels, the platform's signer), the
    partner banks, and when the daily reconciliation runs (`CLOUDPAY_RECONCILE_AT`)."""
    keyring = load_platform_keyring(settings)
    return WorkerContext(
        engine=engine,
        clock=clock,
        channel_context=channel_context_for(settings, clock),
        sign_webhook=lambda body: keyring.sign_now(body, clock),
        reconcile_at=reconcile_time(settings),
        banks=bank_channels_for(settings, clock),
    )


def reconcile_time(settings: Settings) -> time | None:
    """When the daily reconciliation starts (Asia/Shanghai); None when it is off here."""
    if settings.reconcile_at == "off":
        return None
    return settings.reconcile_at or DEFAULT_RUN_AT


def bank_channels_for(settings: Settings, clock: Clock) -> dict[str, BankChannel]:
    """The partner banks in the connectors file, by bank code (none without a file)."""
    if not settings.connectors_file:
        return {}
    return load_bank_connectors(Path(settings.connectors_file), clock).banks


def local_policy(connectors: BankConnectors) -> LocalPolicy:
    """Which banks and cards are local: the file's banks marked local, or, with no bank in
    the file, every partner bank."""
    if not connectors.banks:
        return LocalPolicy()
    return LocalPolicy(connectors.local_banks, frozenset(connectors.local_card_bins))


def settlement_context_for(settings: Settings, clock: Clock) -> SettlementContext:
    """The partner banks the API pays out through and reports on (none without a file)."""
    if not settings.connectors_file:
        return SettlementContext()
    connectors = load_bank_connectors(Path(settings.connectors_file), clock)
    return SettlementContext(banks=connectors.banks, local=local_policy(connectors))


def channel_context_for(settings: Settings, clock: Clock) -> ChannelContext:
    """Channels configured for this deployment (none until their credentials are set)."""
    registry = ChannelRegistry()
    wechat = wechat_config_for(settings)
    if wechat is not None:
        registry.register(WeChatPayChannel(wechat, clock=clock))
    if settings.connectors_file:
        for key, connector in load_connectors(Path(settings.connectors_file), clock).items():
            registry.register(connector, key=key)
    return ChannelContext(registry, settings.public_base_url, clock)


def wechat_config_for(settings: Settings) -> WeChatPayConfig | None:
    if settings.wechat_sandbox_credentials:
        return adapter_config_from_credentials(
            Path(settings.wechat_sandbox_credentials), base_url=settings.wechat_sandbox_base_url
        )
    live = (
        settings.wechat_mchid, settings.wechat_appid, settings.wechat_apiv3_key,
        settings.wechat_private_key_path, settings.wechat_serial_no,
        settings.wechat_platform_public_key_path, settings.wechat_platform_public_key_id,
    )  # fmt: skip
    if not all(live):
        return None
    assert settings.wechat_apiv3_key is not None
    return WeChatPayConfig(
        mchid=str(settings.wechat_mchid),
        appid=str(settings.wechat_appid),
        apiv3_key=Secret(settings.wechat_apiv3_key.get_secret_value()),
        merchant_private_key_pem=Secret(Path(str(settings.wechat_private_key_path)).read_text()),
        merchant_serial_no=str(settings.wechat_serial_no),
        platform_public_key_pem=Path(str(settings.wechat_platform_public_key_path)).read_text(),
        platform_public_key_id=str(settings.wechat_platform_public_key_id),
    )


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    channel_context: ChannelContext | None = None,
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
    app.state.vault = vault_for(the_settings)
    app.state.channel_context = channel_context or channel_context_for(
        the_settings, app.state.clock
    )
    app.state.platform_keyring = load_platform_keyring(the_settings)
    app.state.app_keys = AppKeyDirectory(find_app_key=find_app_key, get_app=get_app)
    app.state.merchant_spend = paid_spend  # marketing's incremental leverage reads it
    app.state.settlement_context = settlement_context_for(the_settings, app.state.clock)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    # Outermost, so it signs the very bytes that leave (web/response_signing.py says which).
    app.add_middleware(
        ResponseSigningMiddleware, keyring=app.state.platform_keyring, clock=app.state.clock
    )
    app.include_router(platform_keys_router)
    app.include_router(app_identity_router)  # before merchants' /v1/apps/{app_id}
    app.include_router(ledger_router)
    app.include_router(merchants_router)
    app.include_router(payments_router)
    app.include_router(routing_router)
    app.include_router(settlement_router)
    app.include_router(splits_router)
    app.include_router(citizen_router)
    app.include_router(marketing_router)
    app.include_router(reconciliation_router)
    app.include_router(storefront_router)  # after /pay/qr/… of payments_router

    # The operator console: HTML pages with their own error pages, sharing this app's state.
    app.mount("/console", create_console(app.state))

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        """Liveness plus a database round trip."""
        with app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "database": app.state.engine.dialect.name}

    return app
