"""A deployment's connectors file builds working adapters (proven by a payment at each
sandbox), and every mistake in it names the connector and the field."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudpay.channels.alipay.sandbox import AlipaySandbox, start_alipay_sandbox
from cloudpay.channels.protocol import CreatePayment
from cloudpay.channels.unionpay.sandbox import UnionPaySandbox, start_unionpay_sandbox
from cloudpay.connectors import ConnectorConfigError, load_connectors
from cloudpay.kernel.clock import SystemClock


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[tuple[AlipaySandbox, UnionPaySandbox]]:
    with (
        start_alipay_sandbox(time_scale=0.001) as alipay,
        start_unionpay_sandbox(time_scale=0.001) as unionpay,
    ):
        yield alipay, unionpay


def _write_file(tmp_path: Path, sandboxes: tuple[AlipaySandbox, UnionPaySandbox]) -> Path:
    alipay, unionpay = sandboxes
    a, u = alipay.adapter_config(), unionpay.adapter_config()
    keys = tmp_path / "keys"
    keys.mkdir()
    files = {
        "alipay_app.pem": a.app_private_key_pem.reveal(),
        "alipay_public.pem": a.alipay_public_key_pem,
        "unionpay_sign.pem": u.signing_private_key_pem.reveal(),
        "unionpay_root.pem": u.root_cert_pem,
        "unionpay_middle.pem": u.middle_cert_pem,
    }
    for name, text in files.items():
        (keys / name).write_text(text)
    document = {"connectors": [
        {"key": "alipay", "channel": "alipay", "app_id": a.app_id,
         "app_private_key_file": "keys/alipay_app.pem",
         "alipay_public_key_file": "keys/alipay_public.pem", "gateway_url": a.gateway_url,
         "oauth_url": a.oauth_url},
        {"key": "unionpay_city", "channel": "unionpay", "mer_id": u.mer_id,
         "signing_private_key_file": "keys/unionpay_sign.pem",
         "signing_cert_id": u.signing_cert_id, "root_cert_file": "keys/unionpay_root.pem",
         "middle_cert_file": "keys/unionpay_middle.pem", "gateway_url": u.gateway_url,
         "file_url": u.file_url},
    ]}  # fmt: skip
    path = tmp_path / "connectors.json"
    path.write_text(json.dumps(document))
    return path


def test_the_file_builds_adapters_that_take_payments(
    tmp_path: Path, sandboxes: tuple[AlipaySandbox, UnionPaySandbox]
) -> None:
    """Loaded by key, each adapter creates a QR order at its sandbox with its own keys."""
    connectors = load_connectors(_write_file(tmp_path, sandboxes), SystemClock())
    assert sorted(connectors) == ["alipay", "unionpay_city"]
    for key, method in (("alipay", "alipay_qr"), ("unionpay_city", "unionpay_qr")):
        created = connectors[key].create_payment(CreatePayment(
            order_id=f"ord_{uuid.uuid4().hex[:24].upper()}", amount_fen=100, currency="CNY",
            subject="t", method=method, notify_url="http://127.0.0.1:9/n",
            expire_at=datetime.now(UTC) + timedelta(minutes=10),
        ))  # fmt: skip
        assert created.code_url


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["connectors"][0].pop("app_id"), "connector alipay: app_id is required"),
        (lambda d: d["connectors"][1].update(channel="paypal"), "channel must be one of"),
        (lambda d: d["connectors"].append(dict(d["connectors"][0])), "alipay appears twice"),
        (lambda d: d["connectors"][0].update(app_private_key_file="nope.pem"),
         "connector alipay: cannot read app_private_key_file"),
        (lambda d: d["connectors"][1].update(gateway_url="ftp://x/y"),
         "connector unionpay_city:"),
        (lambda d: d.pop("connectors"), 'expected {"connectors"'),
    ],
)  # fmt: skip
def test_every_mistake_names_the_connector_and_field(
    tmp_path: Path, sandboxes: tuple[AlipaySandbox, UnionPaySandbox], change: Any, message: str
) -> None:
    """A missing field, unknown channel, duplicate key, unreadable key file, bad URL, no list."""
    path = _write_file(tmp_path, sandboxes)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    with pytest.raises(ConnectorConfigError, match=message):
        load_connectors(path, SystemClock())
