"""The deployment's channel connectors, from a JSON file (`CLOUDPAY_CONNECTORS_FILE`).

A connector is one configured adapter under a key that routes name: the city bank's WeChat Pay
account, a service provider's, Alipay, UnionPay. Secrets stay in files the JSON points at
(PEM keys), never in the JSON itself, so the file can be reviewed and versioned:

    {"connectors": [
      {"key": "wechat_provider", "channel": "wechat", "mchid": "…", "appid": "…",
       "apiv3_key_file": "…", "private_key_file": "…", "serial_no": "…",
       "platform_public_key_file": "…", "platform_public_key_id": "PUB_KEY_ID_…"},
      {"key": "alipay", "channel": "alipay", "app_id": "…", "app_private_key_file": "…",
       "alipay_public_key_file": "…", "gateway_url": "https://openapi.alipay.com/gateway.do"},
      {"key": "unionpay", "channel": "unionpay", "mer_id": "…", "signing_private_key_file": "…",
       "signing_cert_id": "…", "root_cert_file": "…", "middle_cert_file": "…"},
      {"key": "WFRCB", "channel": "bank", "client_id": "…", "client_private_key_file": "…",
       "client_serial_no": "…", "bank_public_key_file": "…", "bank_serial_no": "…",
       "custody_account_no": "…", "base_url": "https://…", "local": true,
       "card_bins": ["622319"]}
    ]}

A `bank` entry is a partner bank (its key is the bank code) that settlement pays out through,
read by `load_bank_connectors`; `local` (default true) says whether money kept there stays in
the region (资金闭环), and `card_bins` which Class I cards it issues.

Relative paths are read relative to the JSON file. A mistake names the connector and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudpay.channels.alipay import AlipayChannel, AlipayConfig
from cloudpay.channels.bank import BankChannel, PartnerBankClient, PartnerBankConfig
from cloudpay.channels.bank.protocol import BankLimits
from cloudpay.channels.protocol import PaymentChannel
from cloudpay.channels.unionpay import UnionPayChannel, UnionPayConfig
from cloudpay.channels.wechat import WeChatPayChannel, WeChatPayConfig
from cloudpay.kernel.clock import Clock
from cloudpay.kernel.masking import Secret


class ConnectorConfigError(ValueError):
    """The connectors file is wrong; the message names the connector and the field."""


class _Entry:
    def __init__(self, raw: Mapping[str, Any], base: Path) -> None:
        self.raw, self.base = raw, base
        self.key = str(raw.get("key") or "?")

    def text(self, name: str, default: str | None = None) -> str:
        value = self.raw.get(name, default)
        if not isinstance(value, str) or not value:
            raise ConnectorConfigError(f"connector {self.key}: {name} is required (a string)")
        return value

    def file(self, name: str) -> str:
        path = Path(self.text(name))
        path = path if path.is_absolute() else self.base / path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as error:
            message = f"connector {self.key}: cannot read {name} ({error})"
            raise ConnectorConfigError(message) from error

    def extras(self, *names: str) -> dict[str, Any]:
        return {name: self.raw[name] for name in names if name in self.raw}


def _wechat(entry: _Entry, clock: Clock) -> PaymentChannel:
    config = WeChatPayConfig(
        mchid=entry.text("mchid"), appid=entry.text("appid"),
        apiv3_key=Secret(entry.file("apiv3_key_file")),
        merchant_private_key_pem=Secret(entry.file("private_key_file")),
        merchant_serial_no=entry.text("serial_no"),
        platform_public_key_pem=entry.file("platform_public_key_file"),
        platform_public_key_id=entry.text("platform_public_key_id"),
        **entry.extras("base_url", "timeout_s", "sub_mchid", "sub_appid"),
    )  # fmt: skip
    return WeChatPayChannel(config, clock=clock)


def _alipay(entry: _Entry, clock: Clock) -> PaymentChannel:
    config = AlipayConfig(
        app_id=entry.text("app_id"),
        app_private_key_pem=Secret(entry.file("app_private_key_file")),
        alipay_public_key_pem=entry.file("alipay_public_key_file"),
        **entry.extras("gateway_url", "oauth_url", "timeout_s", "sys_service_provider_id"),
    )  # fmt: skip
    return AlipayChannel(config, clock=clock)


def _unionpay(entry: _Entry, clock: Clock) -> PaymentChannel:
    config = UnionPayConfig(
        mer_id=entry.text("mer_id"),
        signing_private_key_pem=Secret(entry.file("signing_private_key_file")),
        signing_cert_id=entry.text("signing_cert_id"),
        root_cert_pem=entry.file("root_cert_file"),
        middle_cert_pem=entry.file("middle_cert_file"),
        **entry.extras("gateway_url", "file_url", "timeout_s", "access_type", "acq_ins_code"),
    )  # fmt: skip
    return UnionPayChannel(config, clock=clock)


BUILDERS: dict[str, Callable[[_Entry, Clock], PaymentChannel]] = {
    "wechat": _wechat, "alipay": _alipay, "unionpay": _unionpay,
}  # fmt: skip


def _entries(path: Path) -> list[_Entry]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConnectorConfigError(f"{path}: not a readable JSON file ({error})") from error
    entries = document.get("connectors") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConnectorConfigError(f'{path}: expected {{"connectors": [ … ]}}')
    return [_Entry(raw if isinstance(raw, dict) else {}, path.parent) for raw in entries]


def load_connectors(path: Path, clock: Clock) -> dict[str, PaymentChannel]:
    """Every connector of the file, by key; raises `ConnectorConfigError` on any mistake."""
    connectors: dict[str, PaymentChannel] = {}
    for entry in _entries(path):
        key, channel = entry.text("key"), entry.text("channel")
        if key in connectors:
            raise ConnectorConfigError(f"connector {key} appears twice")
        if channel == BANK_CHANNEL:
            continue  # partner banks are not payment channels: see `load_bank_connectors`
        builder = BUILDERS.get(channel)
        if builder is None:
            raise ConnectorConfigError(
                f"connector {key}: channel must be one of {sorted(BUILDERS)}"
            )
        try:
            connectors[key] = builder(entry, clock)
        except (TypeError, ValueError) as error:
            if isinstance(error, ConnectorConfigError):
                raise
            raise ConnectorConfigError(f"connector {key}: {error}") from error
    return connectors


BANK_CHANNEL = "bank"


@dataclass(frozen=True)
class BankConnectors:
    """The configured partner banks by code, and which of them are local to the region."""

    banks: dict[str, BankChannel]
    local_banks: frozenset[str]
    local_card_bins: tuple[str, ...]  # Class I cards these local banks issue


def _bank(entry: _Entry, clock: Clock) -> PartnerBankClient:
    limits = entry.raw.get("limits")
    config = PartnerBankConfig(
        bank_code=entry.key, client_id=entry.text("client_id"),
        client_private_key_pem=Secret(entry.file("client_private_key_file")),
        client_serial_no=entry.text("client_serial_no"),
        bank_public_key_pem=entry.file("bank_public_key_file"),
        bank_serial_no=entry.text("bank_serial_no"),
        custody_account_no=entry.text("custody_account_no"), base_url=entry.text("base_url"),
        limits=BankLimits.from_dict(limits) if limits is not None else BankLimits(),
        **entry.extras("timeout_s"),
    )  # fmt: skip
    return PartnerBankClient(config, clock=clock)


def load_bank_connectors(path: Path, clock: Clock) -> BankConnectors:
    """The file's partner banks (`"channel": "bank"`); raises `ConnectorConfigError`."""
    banks: dict[str, BankChannel] = {}
    local: set[str] = set()
    bins: list[str] = []
    for entry in _entries(path):
        if entry.raw.get("channel") != BANK_CHANNEL:
            continue
        key = entry.text("key")
        if key in banks:
            raise ConnectorConfigError(f"connector {key} appears twice")
        try:
            banks[key] = _bank(entry, clock)
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, ConnectorConfigError):
                raise
            raise ConnectorConfigError(f"connector {key}: {error}") from error
        if entry.raw.get("local", True) is True:
            local.add(key)
            bins.extend(str(b) for b in entry.raw.get("card_bins", []))
    return BankConnectors(banks, frozenset(local), tuple(sorted(set(bins))))
