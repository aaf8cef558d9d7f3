"""Payer identity for JSAPI payments (web OAuth, openid) between `WeChatPayChannel` and the
sandbox: the authorize redirect, the one-time code, stable openids, and old credential files."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cloudpay.channels.protocol import (
    ChannelError,
    ChannelErrorKind,
    ChannelPaymentStatus,
    CreatePayment,
    PayerIdentityProvider,
)
from cloudpay.channels.wechat import WeChatPayChannel
from cloudpay.channels.wechat.sandbox import (
    WeChatSandbox,
    adapter_config_from_credentials,
    start_wechat_sandbox,
)
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.masking import Secret

REDIRECT = "https://shop.example.cn/pay/wechat/return?cashier=7"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[WeChatSandbox]:
    with start_wechat_sandbox(time_scale=0.001) as sandbox:
        yield sandbox


@pytest.fixture
def channel(sandbox: WeChatSandbox) -> Iterator[WeChatPayChannel]:
    with WeChatPayChannel(sandbox.adapter_config()) as channel:
        yield channel


def consent(authorize_url: str, user: str | None = None) -> dict[str, list[str]]:
    """What the payer's browser does: open the page, follow nothing, read the redirect."""
    url = authorize_url.split("#", 1)[0]
    if user is not None:
        url += f"&sandbox_user={user}"
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith("https://shop.example.cn/pay/wechat/return?")
    return parse_qs(urlsplit(location).query)


def test_channel_is_a_payer_identity_provider(channel: WeChatPayChannel) -> None:
    """The WeChat adapter offers payer OAuth to the aggregated QR page."""
    assert isinstance(channel, PayerIdentityProvider)


def test_authorize_url_has_wechats_shape(channel: WeChatPayChannel, sandbox: WeChatSandbox) -> None:
    """snsapi_base, response_type=code, our appid and state, and the #wechat_redirect fragment."""
    url = channel.payer_authorize_url(redirect_uri=REDIRECT, state="s7Ab-_9")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == sandbox.base_url
    assert (parts.path, parts.fragment) == ("/connect/oauth2/authorize", "wechat_redirect")
    assert parse_qs(parts.query) == {
        "appid": [sandbox.merchant.appid],
        "redirect_uri": [REDIRECT],
        "response_type": ["code"],
        "scope": ["snsapi_base"],
        "state": ["s7Ab-_9"],
    }
    with pytest.raises(ValueError, match="state"):
        channel.payer_authorize_url(redirect_uri=REDIRECT, state="a b")


def test_round_trip_gives_a_stable_openid_that_pays(
    sandbox: WeChatSandbox, channel: WeChatPayChannel
) -> None:
    """Consent → code → openid; the same person gets the same openid and can pay by JSAPI."""
    answer = consent(channel.payer_authorize_url(redirect_uri=REDIRECT, state="order42"))
    assert (answer["state"], answer["cashier"]) == (["order42"], ["7"])
    openid = channel.resolve_payer(answer["code"][0])
    again = consent(channel.payer_authorize_url(redirect_uri=REDIRECT, state="x"))
    assert channel.resolve_payer(again["code"][0]) == openid
    other = consent(channel.payer_authorize_url(redirect_uri=REDIRECT, state="x"), user="li")
    assert channel.resolve_payer(other["code"][0]) != openid

    request = CreatePayment(
        order_id=f"ord_{uuid.uuid4().hex[:24]}",
        amount_fen=880,
        currency="CNY",
        subject="停车费",
        method="wechat_jsapi",
        notify_url="http://127.0.0.1:9/unused",
        expire_at=datetime.now(UTC) + timedelta(minutes=10),
        payer_id=openid,
    )
    channel.create_payment(request)
    sandbox.pay(request.order_id, "success")
    paid = channel.query_payment(request.order_id)
    assert (paid.status, paid.payer_id) == (ChannelPaymentStatus.SUCCEEDED, openid)


def test_code_is_single_use(channel: WeChatPayChannel) -> None:
    """A code exchanged once is refused the second time (errcode 40163) as REJECTED."""
    code = consent(channel.payer_authorize_url(redirect_uri=REDIRECT, state="s"))["code"][0]
    channel.resolve_payer(code)
    with pytest.raises(ChannelError) as reused:
        channel.resolve_payer(code)
    assert (reused.value.kind, reused.value.code) == (ChannelErrorKind.REJECTED, "40163")
    with pytest.raises(ChannelError) as unknown:
        channel.resolve_payer("not-a-code")
    assert unknown.value.code == "40029"


def test_code_expires_after_five_minutes() -> None:
    """A code older than 5 minutes on the sandbox clock is refused (errcode 40029)."""
    clock = FixedClock(datetime(2026, 6, 1, 1, 0, tzinfo=UTC))
    with (
        start_wechat_sandbox(clock=clock) as sandbox,
        WeChatPayChannel(sandbox.adapter_config(), clock=clock) as channel,
    ):
        fresh = consent(channel.payer_authorize_url(redirect_uri=REDIRECT, state="s"))
        stale = consent(channel.payer_authorize_url(redirect_uri=REDIRECT, state="s"))
        clock.advance(minutes=4)
        assert channel.resolve_payer(fresh["code"][0]).startswith("o")
        clock.advance(minutes=2)
        with pytest.raises(ChannelError) as expired:
            channel.resolve_payer(stale["code"][0])
        assert expired.value.code == "40029"


def test_wrong_or_missing_app_secret(sandbox: WeChatSandbox) -> None:
    """Another app secret is AUTHENTICATION (40125); no secret configured is refused up front."""
    config = sandbox.adapter_config()
    with WeChatPayChannel(dataclasses.replace(config, app_secret=Secret("x" * 32))) as wrong:
        code = consent(wrong.payer_authorize_url(redirect_uri=REDIRECT, state="s"))["code"][0]
        with pytest.raises(ChannelError) as refused:
            wrong.resolve_payer(code)
        assert (refused.value.kind, refused.value.code) == (
            ChannelErrorKind.AUTHENTICATION,
            "40125",
        )
    with WeChatPayChannel(dataclasses.replace(config, app_secret=None)) as unset:
        with pytest.raises(ChannelError) as missing:
            unset.resolve_payer("whatever")
        assert missing.value.kind is ChannelErrorKind.AUTHENTICATION


def test_bad_authorize_requests_are_refused(sandbox: WeChatSandbox) -> None:
    """An unknown appid, a missing redirect_uri or a wrong scope gets 400, not a redirect."""
    base = f"{sandbox.base_url}/connect/oauth2/authorize"
    good = {
        "appid": sandbox.merchant.appid,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "s",
    }
    assert httpx.get(base, params=good).status_code == 302
    for changes in ({"appid": "wx_unknown"}, {"redirect_uri": "ftp://x"}, {"scope": "all"}):
        assert httpx.get(base, params={**good, **changes}).status_code == 400


def test_credentials_without_app_secret_still_load(tmp_path: Path) -> None:
    """A credentials file written before OAuth existed loads; OAuth is then refused cleanly."""
    path = tmp_path / "wechat-sandbox.json"
    with start_wechat_sandbox(credentials_path=path):
        pass
    data = json.loads(path.read_text())
    assert data["merchants"][0]["app_secret"]
    for merchant in data["merchants"]:
        del merchant["app_secret"]
    path.write_text(json.dumps(data))
    with start_wechat_sandbox(credentials_path=path) as sandbox:
        config = adapter_config_from_credentials(path, base_url=sandbox.base_url)
        assert config.app_secret is None
        assert config.oauth_api_base_url == sandbox.base_url
        with WeChatPayChannel(config) as channel:
            assert channel.query_payment("ord_unknown01").status is ChannelPaymentStatus.NOT_FOUND
            with pytest.raises(ChannelError):
                channel.resolve_payer("any")
