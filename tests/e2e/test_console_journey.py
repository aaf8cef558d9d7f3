"""The console's main journey over the running gateway (WeChat Pay sandbox, real worker): a
merchant finds its paid order by any id, refunds part of it from the console, resends a
webhook and rotates a key; each write is audited; other roles and merchants are kept out."""

from __future__ import annotations

import re

from cloudpay.console import Role, create_user
from cloudpay.db.unit_of_work import run_in_transaction
from cloudpay.main import vault_for
from tests.browser.console_world import NONCE, PASSWORD, ConsoleSession, signed_in
from tests.e2e.gateway import Gateway, eventually


def _user(gateway: Gateway, role: Role, merchant_id: str | None = None) -> ConsoleSession:
    email = f"{role.value}.{merchant_id or 'all'}@journey.test".lower()
    vault = vault_for(gateway.settings)
    run_in_transaction(gateway.engine, lambda uow: create_user(
        uow, vault=vault, email=email, password=PASSWORD, role=role, merchant_id=merchant_id),
        clock=gateway.clock)  # fmt: skip
    return signed_in(gateway.base_url, email)


def _paid_order(gateway: Gateway, out_trade_no: str, amount: int) -> dict[str, object]:
    order = gateway.client.create_order(out_trade_no=out_trade_no, amount=amount,
                                        subject="潍坊风筝", method="wechat_native")  # fmt: skip
    gateway.pay(order["id"], "success")
    paid: dict[str, object] = gateway.wait_for_order(order["id"], "succeeded")
    return paid


def _refunds_on_page(page: str) -> list[str]:
    return sorted(set(re.findall(r"rfd_[0-9A-Z]{26}", page)))


def test_merchant_finds_refunds_and_the_audit_log_records_it(gateway: Gateway) -> None:
    """Search by out_trade_no and channel id, a ¥12.50 refund from the order page (a double
    submit stays one refund), the order's history, journals and webhooks, all audited."""
    order = _paid_order(gateway, "CONSOLE-1", 2_500)
    merchant = _user(gateway, Role.MERCHANT, gateway.merchant.merchant_id)
    for query in ("CONSOLE-1", str(order["channel_transaction_id"]), str(order["id"])):
        assert str(order["id"]) in merchant.get("/console/orders", q=query).text, query
    page = merchant.get(f"/console/orders/{order['id']}")
    assert page.status_code == 200
    assert "¥25.00" in page.text
    assert f"{order['id']}:capture" in page.text
    nonce_match = NONCE.search(page.text)
    assert nonce_match
    form = {"amount": "12.50", "reason": "少发一只风筝", "nonce": nonce_match.group(1)}
    assert merchant.post(f"/console/orders/{order['id']}/refund", form).status_code == 303
    assert merchant.post(f"/console/orders/{order['id']}/refund", form).status_code == 303

    def partially_refunded() -> str | None:
        text = merchant.get(f"/console/orders/{order['id']}").text
        return text if 'id="order-status">partially_refunded' in text else None

    settled = eventually(partially_refunded, 15, "the console refund to settle")
    [refund_id] = _refunds_on_page(settled)
    assert "¥12.50" in settled
    assert f"{refund_id}:post" in settled
    admin = _user(gateway, Role.PLATFORM_ADMIN)
    audit = admin.get("/console/audit", object_id=str(order["id"])).text
    assert "order.refund" in audit
    assert refund_id in audit
    assert audit.count("order.refund") == 1


def test_the_refund_action_needs_the_permission_and_the_scope(gateway: Gateway) -> None:
    """An auditor cannot refund; another merchant neither sees nor refunds the order."""
    order = _paid_order(gateway, "CONSOLE-2", 900)
    auditor = _user(gateway, Role.AUDITOR)
    path = f"/console/orders/{order['id']}"
    assert auditor.get(path).status_code == 200
    assert 'id="refund"' not in auditor.get(path).text
    form = {"amount": "1.00", "nonce": "n" * 24}
    assert auditor.post(f"{path}/refund", form).status_code == 403
    stranger_app = gateway.onboard()
    stranger = _user(gateway, Role.MERCHANT, stranger_app.merchant_id)
    assert stranger.get(path).status_code == 404
    assert str(order["id"]) not in stranger.get("/console/orders", q="CONSOLE-2").text
    assert stranger.post(f"{path}/refund", form).status_code == 404
    refused = _user(gateway, Role.MERCHANT, gateway.merchant.merchant_id)
    too_much = {"amount": "9.01", "nonce": "m" * 24}
    assert refused.post(f"{path}/refund", too_much).status_code == 400
    assert _refunds_on_page(refused.get(path).text) == []


def test_webhook_resend_and_key_rotation_are_audited(gateway: Gateway) -> None:
    """The merchant re-sends an order's webhook and rotates its app key (shown once)."""
    order = _paid_order(gateway, "CONSOLE-3", 1_000)
    merchant = _user(gateway, Role.MERCHANT, gateway.merchant.merchant_id)

    def with_event() -> str | None:
        text = merchant.get(f"/console/orders/{order['id']}").text
        return text if "order.succeeded" in text else None

    page = eventually(with_event, 10, "the order.succeeded event on the order page")
    event_id = re.search(r"evt_[0-9A-Z]{26}", page)
    assert event_id
    resend = merchant.post(f"/console/events/{event_id.group(0)}/resend",
                           {"order_id": str(order["id"])})  # fmt: skip
    assert resend.status_code == 303
    rotated = merchant.post(f"/console/apps/{gateway.merchant.app_id}/keys/rotate")
    assert rotated.status_code == 200
    assert "BEGIN PRIVATE KEY" in rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    audit = _user(gateway, Role.AUDITOR).get("/console/audit").text
    assert "webhook.resend" in audit
    assert "app_key.rotate" in audit
    dashboard = _user(gateway, Role.PLATFORM_ADMIN).get("/console/dashboard").text
    assert 'id="today-count">1<' in dashboard
    assert 'id="today-volume">¥10.00<' in dashboard
