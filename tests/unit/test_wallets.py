"""Wallet detection from User-Agents and payment codes (付款码): pure, exhaustive."""

from __future__ import annotations

import pytest

from cloudpay.kernel.errors import InvalidRequest
from cloudpay.payments.wallets import (
    IN_WALLET_METHOD,
    MICROPAY_METHOD,
    Wallet,
    detect_wallet,
    wallet_of_payment_code,
)

# Real User-Agent strings as the wallets' in-app browsers send them.
WECHAT_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)
WECHAT_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; V2183A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/1110005 "
    "MMWEBSDK/20230805 MMWEBID/2585 MicroMessenger/8.0.42.2460(0x28002A35) WeChat/arm64 "
    "Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)
ALIPAY_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 11_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15G77 NebulaSDK/1.8.100112 Nebula PSDType(1) AlipayDefined(nt:4G,ws:320|504|"
    "2.0) AliApp(AP/10.1.32.600) AlipayClient/10.1.32.600 Alipay Language/zh-Hans"
)
ALIPAY_ANDROID = (
    "Mozilla/5.0 (Linux; U; Android 12; zh-CN; M2012K11AC Build/SKQ1.211006.001) AppleWebKit/"
    "537.36 (KHTML, like Gecko) Version/4.0 Chrome/69.0.3497.100 UWS/3.22.2.59 Mobile Safari/"
    "537.36 UCBS/3.22.2.59_230817165627 ChannelId(73) NebulaSDK/1.8.100112 Nebula AlipayDefined"
    "(nt:WIFI,ws:393|0|2.75) AliApp(AP/10.5.26.8000) AlipayClient/10.5.26.8000 Language/zh-Hans "
    "useStatusBar/true isConcaveScreen/true Region/CNAriver/1.0.0"
)
UNIONPAY_CLOUDPAY_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148/sa-sdk-ios (com.unionpay.chsp) (cordova 4.5.4) (updebug 0) (version "
    "938) (UnionPay/1.0 CloudPay) (clientVersion 198) (language zh_CN) (upHtml) (walletMode 00)"
)
UNIONPAY_BANK_APP = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/20D67 NebulaSDK/1.8.100112 Nebula Source/YOUBankApp/psbc UnionPay/1.0 "
    "PSBC/newPsbc WK PSDType(1) mPaaSClient/(null)"
)
DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
MOBILE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


@pytest.mark.parametrize(
    ("user_agent", "wallet"),
    [
        (WECHAT_IOS, Wallet.WECHAT),
        (WECHAT_ANDROID, Wallet.WECHAT),
        (ALIPAY_IOS, Wallet.ALIPAY),
        (ALIPAY_ANDROID, Wallet.ALIPAY),
        (UNIONPAY_CLOUDPAY_IOS, Wallet.UNIONPAY),
        (UNIONPAY_BANK_APP, Wallet.UNIONPAY),
    ],
)
def test_each_wallets_in_app_browser_is_recognised(user_agent: str, wallet: Wallet) -> None:
    """Real UA strings of WeChat, Alipay and UnionPay apps map to their wallet."""
    assert detect_wallet(user_agent) is wallet


@pytest.mark.parametrize(
    "user_agent",
    [
        DESKTOP_CHROME,
        MOBILE_SAFARI,
        "",
        None,
        "CloudPay/1.0",  # the word CloudPay alone is not UnionPay's token
        "Mozilla/5.0 UnionPay/ beta",  # the token needs a version
        "Mozilla/5.0 MicroMessengerX",  # the WeChat token needs its slash
    ],
)
def test_other_browsers_have_no_wallet(user_agent: str | None) -> None:
    """Ordinary browsers, empty headers and near-miss tokens are not taken for a wallet."""
    assert detect_wallet(user_agent) is None


def test_tokens_are_matched_case_insensitively() -> None:
    """Proxies that lower-case headers do not hide the wallet."""
    assert detect_wallet(WECHAT_IOS.lower()) is Wallet.WECHAT
    assert detect_wallet(ALIPAY_IOS.upper()) is Wallet.ALIPAY


def test_a_token_beyond_the_scanned_prefix_is_ignored() -> None:
    """Only the first 2 KiB are scanned, so a giant header costs a bounded amount of work."""
    assert detect_wallet("x" * 4096 + " MicroMessenger/8.0") is None


@pytest.mark.parametrize("prefix", ["10", "11", "12", "13", "14", "15"])
def test_wechat_codes_are_18_digits_starting_10_to_15(prefix: str) -> None:
    """Every documented WeChat prefix with 18 digits is WeChat."""
    assert wallet_of_payment_code(prefix + "0" * 16) is Wallet.WECHAT
    assert wallet_of_payment_code(prefix + "9" * 16) is Wallet.WECHAT


@pytest.mark.parametrize("prefix", ["25", "26", "27", "28", "29", "30"])
@pytest.mark.parametrize("length", range(16, 25))
def test_alipay_codes_are_16_to_24_digits_starting_25_to_30(prefix: str, length: int) -> None:
    """Every documented Alipay prefix at every allowed length is Alipay."""
    assert wallet_of_payment_code(prefix + "7" * (length - 2)) is Wallet.ALIPAY


def test_unionpay_codes_are_19_digits_starting_62() -> None:
    """A 19-digit code starting 62 is UnionPay."""
    assert wallet_of_payment_code("62" + "1" * 17) is Wallet.UNIONPAY


@pytest.mark.parametrize(
    "code",
    [
        "16" + "0" * 16,  # WeChat length, prefix just above the range
        "09" + "0" * 16,  # just below
        "13" + "0" * 15,  # WeChat prefix, 17 digits
        "13" + "0" * 17,  # 19 digits
        "24" + "0" * 14,  # Alipay length, prefix just below
        "31" + "0" * 14,  # just above
        "28" + "0" * 13,  # 15 digits
        "28" + "0" * 23,  # 25 digits
        "62" + "0" * 16,  # UnionPay prefix, 18 digits
        "62" + "0" * 18,  # 20 digits
        "61" + "0" * 17,  # 19 digits, wrong prefix
        "",
        "13000000000000000a",  # 18 characters, one not a digit
        "1300000000000000 0",
        "１３" + "0" * 16,  # full-width digits are not ASCII digits
        "+3" + "0" * 16,
        "130000000000000000\n",
    ],
)
def test_every_other_code_is_refused_as_unknown(code: str) -> None:
    """Wrong prefixes, wrong lengths and non-digits raise the one invalid-request error."""
    with pytest.raises(InvalidRequest) as raised:
        wallet_of_payment_code(code)
    assert raised.value.code == "payment_code_unknown"
    assert raised.value.param == "auth_code"
    assert raised.value.http_status == 400


def test_every_wallet_has_an_in_wallet_and_a_micropay_method() -> None:
    """Both method tables cover all wallets with the channel's own method names."""
    assert set(IN_WALLET_METHOD) == set(Wallet) == set(MICROPAY_METHOD)
    for wallet in Wallet:
        assert IN_WALLET_METHOD[wallet].startswith(wallet.value + "_")
        assert MICROPAY_METHOD[wallet] == f"{wallet.value}_micropay"
