"""Settings from `CLOUDPAY_*` environment variables and an optional `.env` file.

Development gets working defaults; any other environment refuses to start with them
(`Settings.check_safe_for`), so a forgotten variable cannot ship a demo key to production.
"""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_OPERATOR_TOKEN = "dev-operator-token"  # noqa: S105 — a published dev default, refused outside dev
DEV_FIELD_KEY_HEX = "00" * 32
DEV_BLIND_INDEX_KEY_HEX = "11" * 32


class InsecureConfiguration(RuntimeError):
    """Raised at start-up when a non-dev environment still uses a dev default."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDPAY_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "staging", "production"] = "dev"
    database_url: str = "sqlite:///./cloudpay.db"
    # READ COMMITTED with explicit row locks is the PostgreSQL default; SERIALIZABLE is what
    # CockroachDB/YugabyteDB give, and every write path must stay correct there (ADR 0001).
    database_isolation: Literal["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"] = (
        "READ COMMITTED"
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    sqlite_busy_timeout_ms: int = Field(default=5_000, ge=0, le=600_000)

    # Where channels reach us for notifications (…/v1/channels/<code>/notify).
    public_base_url: str = "http://127.0.0.1:8000"
    # WeChat Pay: either a sandbox's credentials file (written by `cloudpay sandbox`) or the
    # live merchant credentials below.
    wechat_sandbox_credentials: str | None = None
    wechat_sandbox_base_url: str | None = None
    # More connectors (Alipay, UnionPay, other WeChat accounts): a JSON file, see connectors.py
    connectors_file: str | None = None
    # The worker's daily reconciliation of every channel's bill and partner bank's statement:
    # its start, "HH:MM" Asia/Shanghai (unset: reconciliation's default, 10:00, once the
    # channels have published the day's bills), or "off" for a worker that leaves it to another.
    reconcile_at: time | Literal["off"] | None = None
    wechat_mchid: str | None = None
    wechat_appid: str | None = None
    wechat_apiv3_key: SecretStr | None = None
    wechat_private_key_path: str | None = None
    wechat_serial_no: str | None = None
    wechat_platform_public_key_path: str | None = None
    wechat_platform_public_key_id: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = True

    operator_token: SecretStr = SecretStr(DEV_OPERATOR_TOKEN)
    field_key_hex: SecretStr = SecretStr(DEV_FIELD_KEY_HEX)
    blind_index_key_hex: SecretStr = SecretStr(DEV_BLIND_INDEX_KEY_HEX)

    # Platform keys that sign merchant API responses and webhooks: comma-separated PEM paths,
    # the first signs, the others are published for verification (rotation). Empty in
    # dev/test: a key is generated once into `platform_keys_dir` (web/platform_keys.py).
    platform_private_key_path: str = ""
    platform_keys_dir: Path = Path("var/platform_keys")

    idempotency_ttl_hours: int = Field(default=48, ge=24, le=24 * 30)
    transaction_max_attempts: int = Field(default=12, ge=1, le=100)

    @property
    def platform_private_key_paths(self) -> list[Path]:
        return [Path(p.strip()) for p in self.platform_private_key_path.split(",") if p.strip()]

    def check_safe_for_environment(self) -> None:
        if self.env in ("dev", "test"):
            return
        insecure = [
            name
            for name, default in (
                ("operator_token", DEV_OPERATOR_TOKEN),
                ("field_key_hex", DEV_FIELD_KEY_HEX),
                ("blind_index_key_hex", DEV_BLIND_INDEX_KEY_HEX),
            )
            if getattr(self, name).get_secret_value() == default
        ]
        if insecure:
            names = ", ".join(f"CLOUDPAY_{n.upper()}" for n in insecure)
            raise InsecureConfiguration(f"{self.env} refuses development defaults for: {names}")
        if not self.platform_private_key_paths:
            raise InsecureConfiguration(
                f"{self.env} needs CLOUDPAY_PLATFORM_PRIVATE_KEY_PATH: a generated key is dev-only"
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    settings = Settings()
    settings.check_safe_for_environment()
    return settings
