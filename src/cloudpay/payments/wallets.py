"""Which wallet a payer uses: from the in-app browser's User-Agent (aggregated QR, 聚合码) or
from the payment code the payer shows at the till (付款码, micropay). Pure, no I/O.

User-Agent tokens each wallet's in-app browser adds (sample strings in tests/unit/test_wallets.py):
- WeChat: `MicroMessenger/<version>`; WeChat Pay's JSAPI guide (§ 获取微信当前版本) tells
  merchants to read the version from this token before calling the cashier (copy of the guide:
  https://tax.fullrich.com/docs/api/微信内h5页面发起的sapi支付-2/).
- Alipay: `AlipayClient/<version>` (e.g. `AlipayClient/10.1.32.600`); AlipayJSBridge exists only
  in that container (UA samples: https://blog.csdn.net/fly910905/article/details/82498813).
- UnionPay: apps that can pay by UnionPay's JS bridge (银联 JS 支付) add
  `UnionPay/<version> <app identifier>`; 云闪付 itself sends `(UnionPay/1.0 CloudPay)` and bank
  apps send e.g. `UnionPay/1.0 PSBC`. Acquirers pass the identifier as `app_up_identifier`
  when they exchange the user auth code (https://spin.cloudpnr.com/topds/getUserMark.html:
  "不传默认CloudPay"). We match the `UnionPay/` token, not the word `CloudPay`, so bank apps
  that pay through UnionPay count too.

Payment-code ranges (付款码):
- WeChat: 18 digits starting 10–15 (10–14 mainland, 15 Hong Kong wallets)
  (https://pay.weixin.qq.com/wiki/doc/api/micropay.php?chapter=5_1 ;
  https://pay.weixin.qq.com/wiki/doc/api/wxpay/en/guide/pos/ImportantParameters.shtml).
- Alipay: 16–24 digits starting 25–30 (https://opendocs.alipay.com/open/194/106039).
- UnionPay: 19 digits starting 62, the C2B payment code of UnionPay's QR specification (not
  public; the rule as acquirers apply it: https://www.cnblogs.com/zhangmo/p/13578409.html).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from cloudpay.kernel.errors import InvalidRequest


class Wallet(StrEnum):
    WECHAT = "wechat"
    ALIPAY = "alipay"
    UNIONPAY = "unionpay"


# The in-wallet (H5 / JSAPI) method each wallet pays an aggregated-QR order with.
IN_WALLET_METHOD: Mapping[Wallet, str] = {
    Wallet.WECHAT: "wechat_jsapi",
    Wallet.ALIPAY: "alipay_jsapi",
    Wallet.UNIONPAY: "unionpay_wap",
}

# The method a till uses when it scans this wallet's payment code.
MICROPAY_METHOD: Mapping[Wallet, str] = {
    Wallet.WECHAT: "wechat_micropay",
    Wallet.ALIPAY: "alipay_micropay",
    Wallet.UNIONPAY: "unionpay_micropay",
}

# Checked in this order: an app embedding another's token (rare) is taken as the first match.
_USER_AGENT_TOKENS: tuple[tuple[re.Pattern[str], Wallet], ...] = (
    (re.compile(r"\bMicroMessenger/", re.IGNORECASE), Wallet.WECHAT),
    (re.compile(r"\bAlipayClient", re.IGNORECASE), Wallet.ALIPAY),
    (re.compile(r"\bUnionPay/\d", re.IGNORECASE), Wallet.UNIONPAY),
)

# Full-match patterns: digits only, exact prefix and length per the documented rules.
_PAYMENT_CODE_PATTERNS: tuple[tuple[re.Pattern[str], Wallet], ...] = (
    (re.compile(r"1[0-5][0-9]{16}"), Wallet.WECHAT),
    (re.compile(r"(?:2[5-9]|30)[0-9]{14,22}"), Wallet.ALIPAY),
    (re.compile(r"62[0-9]{17}"), Wallet.UNIONPAY),
)
MAX_USER_AGENT_CHARS = 2048  # a bound on what we scan; real wallet UAs are a few hundred chars


def detect_wallet(user_agent: str | None) -> Wallet | None:
    """The wallet whose in-app browser sent this User-Agent, or None for any other browser."""
    if not user_agent:
        return None
    scanned = user_agent[:MAX_USER_AGENT_CHARS]
    for pattern, wallet in _USER_AGENT_TOKENS:
        if pattern.search(scanned):
            return wallet
    return None


def wallet_of_payment_code(code: str) -> Wallet:
    """The wallet that issued a payment code (付款码); unknown shapes are the caller's mistake."""
    for pattern, wallet in _PAYMENT_CODE_PATTERNS:
        if pattern.fullmatch(code):
            return wallet
    raise InvalidRequest(
        "The payment code is not a WeChat, Alipay or UnionPay payment code.",
        code="payment_code_unknown",
        param="auth_code",
    )
