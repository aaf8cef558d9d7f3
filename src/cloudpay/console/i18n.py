"""The console's message catalogue: Simplified Chinese by default, English on request."""

from __future__ import annotations

from typing import Final

DEFAULT_LANGUAGE: Final = "zh-CN"
LANGUAGES: Final = ("zh-CN", "en")

# key → (zh-CN, en)
MESSAGES: Final[dict[str, tuple[str, str]]] = {
    "app_name": ("云支付 运营控制台", "CloudPay Console"),
    "login": ("登录", "Sign in"),
    "logout": ("退出", "Sign out"),
    "email": ("邮箱", "E-mail"),
    "password": ("密码", "Password"),
    "totp_code": ("动态验证码", "Authenticator code"),
    "login_invalid": ("邮箱或密码错误", "Wrong e-mail or password"),
    "login_throttled": (
        "尝试次数过多，请 15 分钟后再试",
        "Too many attempts; try again in 15 minutes",
    ),
    "login_totp_required": ("请输入动态验证码", "Enter your authenticator code"),
    "dashboard": ("概览", "Dashboard"),
    "merchants": ("商户", "Merchants"),
    "review_queue": ("进件审核", "Onboarding review"),
    "orders": ("订单与退款", "Orders and refunds"),
    "ledger": ("账本", "Ledger"),
    "users": ("用户与角色", "Users and roles"),
    "audit": ("审计日志", "Audit log"),
    "today_volume": ("今日交易额", "Today's volume"),
    "today_count": ("今日订单数", "Today's orders"),
    "success_rate": ("成功率", "Success rate"),
    "refunds": ("退款", "Refunds"),
    "fees": ("手续费", "Fees"),
    "channel": ("渠道", "Channel"),
    "trend_30d": ("近 30 日交易额", "Volume, last 30 days"),
    "search": ("搜索", "Search"),
    "search_hint": (
        "订单号 / 商户订单号 / 渠道交易号 / 退款号",
        "Order id / out_trade_no / channel transaction id / refund id",
    ),
    "status": ("状态", "Status"),
    "amount": ("金额", "Amount"),
    "created": ("创建时间", "Created"),
    "merchant": ("商户", "Merchant"),
    "detail": ("详情", "Detail"),
    "approve": ("通过", "Approve"),
    "reject": ("驳回", "Reject"),
    "reason": ("原因", "Reason"),
    "stores": ("门店", "Stores"),
    "apps": ("应用", "Apps"),
    "keys": ("密钥", "Keys"),
    "rotate_key": ("轮换密钥", "Rotate key"),
    "store_sign": ("收款码台卡", "Store QR sign"),
    "settlement_account": ("结算账户", "Settlement account"),
    "reviews": ("审核记录", "Review history"),
    "history": ("状态历史", "State history"),
    "routing": ("路由决策", "Routing decision"),
    "journals": ("账务分录", "Ledger journals"),
    "webhooks": ("通知推送", "Webhook deliveries"),
    "resend": ("重新推送", "Resend"),
    "refund": ("退款", "Refund"),
    "refundable": ("可退金额", "Refundable"),
    "books_check": ("账平检查", "Books balance check"),
    "books_ok": ("账平", "Books balance"),
    "books_broken": ("账不平", "Books do NOT balance"),
    "accounts": ("账户", "Accounts"),
    "owner": ("所属", "Owner"),
    "balance": ("余额", "Balance"),
    "export": ("导出", "Export"),
    "actor": ("操作人", "Actor"),
    "action": ("操作", "Action"),
    "object": ("对象", "Object"),
    "before": ("变更前", "Before"),
    "after": ("变更后", "After"),
    "from_where": ("来源", "From"),
    "role": ("角色", "Role"),
    "create_user": ("新建用户", "Create user"),
    "next_page": ("下一页", "Next page"),
    "none": ("暂无数据", "Nothing here yet"),
    "done": ("操作成功", "Done"),
    "error": ("出错了", "Something went wrong"),
    "language": ("English", "中文"),
    "forbidden": ("无权访问", "Not permitted"),
    "not_found": ("未找到", "Not found"),
    "private_key_once": (
        "新私钥只显示这一次，请立即保存",
        "The new private key is shown once: save it now",
    ),
    "role_platform_admin": ("平台管理员", "Platform admin"),
    "role_bank": ("合作银行", "Partner bank"),
    "role_agent": ("代理商", "Agent"),
    "role_merchant": ("商户", "Merchant"),
    "role_risk_officer": ("风控专员", "Risk officer"),
    "role_auditor": ("审计员", "Auditor"),
}


def translate(key: str, language: str) -> str:
    """The label in `language`; an unknown key shows itself, so a gap is visible, not fatal."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    return pair[1] if language == "en" else pair[0]


def pick_language(requested: str | None, stored: str | None) -> str:
    for candidate in (requested, stored):
        if candidate in LANGUAGES:
            return str(candidate)
    return DEFAULT_LANGUAGE
