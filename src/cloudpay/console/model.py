"""The console's pure rules: roles and what each may do, data scope, sessions, display formats.

Every page and action asks `allows(role, permission)` and filters by a `Scope`; both are checked
on the server for every request, whatever the page showed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from cloudpay.kernel.business_time import format_shanghai
from cloudpay.kernel.errors import InvalidRequest, PermissionDenied


class Role(StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    BANK = "bank"
    AGENT = "agent"
    MERCHANT = "merchant"
    RISK_OFFICER = "risk_officer"
    AUDITOR = "auditor"


class Permission(StrEnum):
    VIEW_DASHBOARD = "view_dashboard"
    VIEW_MERCHANTS = "view_merchants"
    REVIEW_MERCHANTS = "review_merchants"  # 进件审核: approve / reject
    ROTATE_KEYS = "rotate_keys"
    VIEW_ORDERS = "view_orders"
    REFUND_ORDERS = "refund_orders"
    RESEND_WEBHOOKS = "resend_webhooks"
    VIEW_LEDGER = "view_ledger"
    VIEW_AUDIT = "view_audit"
    MANAGE_USERS = "manage_users"
    VIEW_ROUTES = "view_routes"  # 渠道与路由: connectors, routes, circuits, rules
    MANAGE_ROUTES = "manage_routes"  # enable / disable a route or a routing rule
    VIEW_SETTLEMENTS = "view_settlements"  # 结算: settlements, payouts, balances (scoped)
    VIEW_RECONCILIATION = "view_reconciliation"  # 对账: runs and breaks
    RESOLVE_BREAKS = "resolve_breaks"  # investigate / resolve a reconciliation break


_P = Permission
_READ_ALL: Final = frozenset(
    {_P.VIEW_DASHBOARD, _P.VIEW_MERCHANTS, _P.VIEW_ORDERS, _P.VIEW_SETTLEMENTS}
)
PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.PLATFORM_ADMIN: frozenset(Permission),
    # A partner bank watches the money it holds; it changes nothing here.
    Role.BANK: _READ_ALL | {_P.VIEW_LEDGER, _P.VIEW_RECONCILIATION},
    # An agent follows its own merchants (read-only: onboarding decisions are the platform's).
    Role.AGENT: _READ_ALL,
    # A merchant runs its own shop: keys, refunds, webhook re-sends.
    Role.MERCHANT: _READ_ALL | {_P.ROTATE_KEYS, _P.REFUND_ORDERS, _P.RESEND_WEBHOOKS},
    # Risk watches failing channels; only the platform switches routes on and off.
    # Risk also works reconciliation breaks to resolution.
    Role.RISK_OFFICER: _READ_ALL
    | {
        _P.REVIEW_MERCHANTS,
        _P.VIEW_LEDGER,
        _P.VIEW_ROUTES,
        _P.VIEW_RECONCILIATION,
        _P.RESOLVE_BREAKS,
    },
    # Auditors read everything and write nothing (PIPL: personal data stays masked).
    Role.AUDITOR: _READ_ALL
    | {_P.VIEW_LEDGER, _P.VIEW_AUDIT, _P.VIEW_ROUTES, _P.VIEW_RECONCILIATION},
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]


def require(role: Role, permission: Permission) -> None:
    if not allows(role, permission):
        raise PermissionDenied(
            f"role {role.value} may not {permission.value}", code="role_not_permitted"
        )


@dataclass(frozen=True)
class Scope:
    """Which merchants a user may see: all (`merchant_ids is None`) or exactly these."""

    merchant_ids: frozenset[str] | None

    @property
    def unrestricted(self) -> bool:
        return self.merchant_ids is None

    def covers(self, merchant_id: str | None) -> bool:
        return self.merchant_ids is None or merchant_id in self.merchant_ids


EVERYTHING: Final = Scope(None)


# --- sessions ----------------------------------------------------------------------------
# OWASP session guidance: an idle timeout of minutes for a high-value application and an
# absolute lifetime that ends the working day. https://cheatsheetseries.owasp.org/cheatsheets/Session_Management_Cheat_Sheet.html
SESSION_IDLE_TIMEOUT: Final = timedelta(minutes=30)
SESSION_ABSOLUTE_LIFETIME: Final = timedelta(hours=12)
# Login throttling per e-mail: after this many failures in the window, wait it out.
LOGIN_FAILURES_ALLOWED: Final = 5
LOGIN_FAILURE_WINDOW: Final = timedelta(minutes=15)
MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 256  # argon2 hashes anything; the limit keeps requests small


def session_alive(
    *, now: datetime, created_at: datetime, last_seen_at: datetime, revoked: bool
) -> bool:
    """A session lives while used within the idle timeout and younger than its lifetime."""
    if revoked:
        return False
    return (
        now < last_seen_at + SESSION_IDLE_TIMEOUT and now < created_at + SESSION_ABSOLUTE_LIFETIME
    )


def check_new_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"a password has {MIN_PASSWORD_LENGTH}–{MAX_PASSWORD_LENGTH} characters",
            code="password_invalid",
            param="password",
        )
    return password


def check_email(email: str) -> str:
    normalised = email.strip().lower()
    local, at, domain = normalised.partition("@")
    if not at or not local or "." not in domain or len(normalised) > 254 or " " in normalised:
        raise InvalidRequest("not an e-mail address", code="email_invalid", param="email")
    return normalised


def check_role_binding(role: Role, merchant_id: str | None, agent_id: str | None) -> None:
    """A merchant user belongs to one merchant, an agent user to one agent, others to none."""
    needs = {Role.MERCHANT: ("merchant_id", merchant_id), Role.AGENT: ("agent_id", agent_id)}
    if role in needs:
        name, value = needs[role]
        if not value:
            raise InvalidRequest(f"role {role.value} needs {name}", code="parameter_missing",
                                 param=name)  # fmt: skip
    if (role is not Role.MERCHANT and merchant_id) or (role is not Role.AGENT and agent_id):
        raise InvalidRequest(
            f"role {role.value} is not bound to a merchant or an agent",
            code="parameter_invalid",
            param="role",
        )


# --- display -----------------------------------------------------------------------------
def format_yuan(amount_fen: int) -> str:
    """Fen as yuan with two decimals and thousands separators, integer arithmetic only:
    123456 → "¥1,234.56", -5 → "-¥0.05"."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}¥{yuan:,}.{fen:02d}"


def parse_yuan(text: str) -> int:
    """A yuan amount typed by an operator ("12.5", "1,234.56") as fen, without floats."""
    cleaned = text.strip().replace(",", "").removeprefix("¥")
    whole, dot, decimals = cleaned.partition(".")
    valid = whole.isdigit() and (not dot or (decimals.isdigit() and len(decimals) <= 2))
    if not valid or len(whole) > 12:
        raise InvalidRequest(
            "amount in yuan with at most two decimals", code="amount_invalid", param="amount"
        )
    return int(whole) * 100 + int(decimals.ljust(2, "0") if dot else "0")


def format_time(instant: datetime | None) -> str:
    """Asia/Shanghai wall time, as operators read it."""
    return format_shanghai(instant) if instant is not None else "—"


def success_rate_basis_points(succeeded: int, finished: int) -> int | None:
    """Succeeded / (succeeded + failed + closed + expired) in basis points, rounded half up."""
    if finished <= 0:
        return None
    return (succeeded * 10_000 * 2 + finished) // (finished * 2)


def format_basis_points(value: int | None) -> str:
    if value is None:
        return "—"
    whole, part = divmod(value, 100)
    return f"{whole}.{part:02d}%"
