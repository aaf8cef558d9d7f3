"""Console use cases: users, login and sessions, the data scope, and every audited write.

Each write checks the actor's role and scope, makes the domain change through the owning
context's public functions and records the audit entry (who, when, what, before/after, from
where) in the same transaction. Personal data reaches the audit log only masked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cloudpay import merchants
from cloudpay.console import repository
from cloudpay.console.model import (
    EVERYTHING,
    LOGIN_FAILURE_WINDOW,
    LOGIN_FAILURES_ALLOWED,
    Permission,
    Role,
    Scope,
    allows,
    check_email,
    check_new_password,
    check_role_binding,
    require,
    session_alive,
)
from cloudpay.console.repository import UserRow
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import Conflict, NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.kernel.masking import mask_email, mask_secret
from cloudpay.kernel.vault import PersonalDataVault, PersonalField

TOTP_SECRET = PersonalField("console_users.totp_secret", normalize=str.strip, mask=mask_secret)
TOTP_ISSUER = "CloudPay Console"
SESSION_TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most once a minute
MAX_USERS_SHOWN = 200
MAX_AUDIT_PAGE = 101
MAX_AGENTS_IN_SCOPE = 1000
MAX_MERCHANTS_IN_SCOPE = 5000
_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory defaults


@dataclass(frozen=True)
class Actor:
    """The signed-in user as every check sees it, with where the request came from."""

    user_id: str
    email: str
    role: Role
    merchant_id: str | None
    agent_id: str | None
    csrf_token: str
    language: str
    ip: str | None = None
    user_agent: str | None = None

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)


@dataclass(frozen=True)
class LoginOutcome:
    token: str | None  # the cookie value, when the login succeeded
    failure: str | None  # "invalid" | "throttled" | "totp_required"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- users -------------------------------------------------------------------------------
def create_user(
    uow: UnitOfWork, *, vault: PersonalDataVault | None, email: str, password: str, role: Role,
    merchant_id: str | None = None, agent_id: str | None = None, with_totp: bool = False,
) -> tuple[UserRow, str | None]:  # fmt: skip
    """A console user; with TOTP (admins may opt in) also the secret to enrol an authenticator."""
    email = check_email(email)
    check_role_binding(role, merchant_id, agent_id)
    if merchant_id:
        merchants.get_merchant(uow, merchant_id)
    if agent_id:
        merchants.get_agent(uow, agent_id)
    if repository.find_user_by_email(uow.connection, email) is not None:
        raise Conflict("a user with this e-mail exists", code="email_taken", param="email")
    if with_totp and vault is None:
        raise ValueError("a TOTP secret is sealed by the vault: pass it")
    totp_secret = pyotp.random_base32() if with_totp else None
    now = uow.clock.now()
    user_id = new_id("usr")
    repository.insert_user(uow.connection, {
        "id": user_id, "email": email, "role": role.value,
        "password_hash": _hasher.hash(check_new_password(password)),
        "merchant_id": merchant_id, "agent_id": agent_id,
        "totp_secret_encrypted": vault.seal(TOTP_SECRET, totp_secret).token
        if totp_secret and vault else None,
        "disabled_at": None, "created_at": now, "updated_at": now,
    })  # fmt: skip
    user = repository.get_user(uow.connection, user_id)
    assert user is not None
    return user, totp_secret


def list_users(uow: UnitOfWork, actor: Actor) -> list[UserRow]:
    require(actor.role, Permission.MANAGE_USERS)
    return repository.list_users(uow.connection, limit=MAX_USERS_SHOWN)


def add_user(
    uow: UnitOfWork, actor: Actor, *, vault: PersonalDataVault, email: str, password: str,
    role: Role, merchant_id: str | None, agent_id: str | None, with_totp: bool,
) -> tuple[UserRow, str | None]:  # fmt: skip
    """An administrator creates a user from the console (audited)."""
    require(actor.role, Permission.MANAGE_USERS)
    user, secret = create_user(
        uow, vault=vault, email=email, password=password, role=role,
        merchant_id=merchant_id, agent_id=agent_id, with_totp=with_totp,
    )  # fmt: skip
    record_audit(uow, actor, action="user.create", object_type="user", object_id=user.id,
                 before=None, after=user_view(user))  # fmt: skip
    return user, secret


def user_view(user: UserRow) -> dict[str, Any]:
    return {
        "id": user.id, "email": mask_email(user.email), "role": user.role.value,
        "merchant_id": user.merchant_id, "agent_id": user.agent_id,
        "totp": user.totp_secret_encrypted is not None, "disabled": user.disabled_at is not None,
    }  # fmt: skip


# --- login and sessions ------------------------------------------------------------------
def login(
    uow: UnitOfWork, *, vault: PersonalDataVault, email: str, password: str,
    totp_code: str | None, ip: str | None, user_agent: str | None, language: str,
) -> LoginOutcome:  # fmt: skip
    """A new session for a correct e-mail, password (and TOTP code when enrolled).

    Failures are recorded, not raised, so they commit: five in 15 minutes lock the e-mail
    until the window passes, whoever tries (a password guesser rotates its addresses, not
    the account it wants)."""
    now = uow.clock.now()
    email = email.strip().lower()[:254]
    since = now - LOGIN_FAILURE_WINDOW
    if repository.count_login_failures(uow.connection, email=email, since=since) >= (
        LOGIN_FAILURES_ALLOWED
    ):
        return LoginOutcome(None, "throttled")
    user = repository.find_user_by_email(uow.connection, email)
    if user is None or user.disabled_at is not None or not _password_matches(user, password):
        repository.record_login_failure(uow.connection, email=email, ip=ip, now=now)
        return LoginOutcome(None, "invalid")
    if user.totp_secret_encrypted is not None:
        secret = vault.open(TOTP_SECRET, user.totp_secret_encrypted).reveal()
        if not totp_code:
            return LoginOutcome(None, "totp_required")
        if not pyotp.TOTP(secret).verify(totp_code.strip(), for_time=now, valid_window=1):
            repository.record_login_failure(uow.connection, email=email, ip=ip, now=now)
            return LoginOutcome(None, "invalid")
    repository.clear_login_failures(uow.connection, email=email)
    token = secrets.token_urlsafe(32)  # 256 bits
    repository.insert_session(uow.connection, {
        "token_hash": _token_hash(token), "user_id": user.id,
        "csrf_token": secrets.token_urlsafe(32), "language": language, "ip": ip,
        "user_agent": (user_agent or "")[:256] or None, "created_at": now, "last_seen_at": now,
        "revoked_at": None,
    })  # fmt: skip
    return LoginOutcome(token, None)


def _password_matches(user: UserRow, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def resolve_session(
    uow: UnitOfWork, *, token: str, ip: str | None, user_agent: str | None
) -> tuple[Actor | None, bool]:
    """The actor of a live session, and whether its idle clock is due a restart (written by
    `touch_session` at most once a minute, so page views stay read-only transactions)."""
    if not token or len(token) > 128:
        return None, False
    session = repository.get_session(uow.connection, _token_hash(token))
    if session is None:
        return None, False
    now = uow.clock.now()
    alive = session_alive(
        now=now, created_at=session.created_at, last_seen_at=session.last_seen_at,
        revoked=session.revoked_at is not None,
    )  # fmt: skip
    user = repository.get_user(uow.connection, session.user_id)
    if not alive or user is None or user.disabled_at is not None:
        return None, False
    actor = Actor(user.id, user.email, user.role, user.merchant_id, user.agent_id,
                  session.csrf_token, session.language, ip, user_agent)  # fmt: skip
    return actor, now - session.last_seen_at >= SESSION_TOUCH_EVERY


def touch_session(uow: UnitOfWork, *, token: str) -> None:
    repository.update_session(uow.connection, _token_hash(token), last_seen_at=uow.clock.now())


def logout(uow: UnitOfWork, *, token: str) -> None:
    repository.update_session(uow.connection, _token_hash(token), revoked_at=uow.clock.now())


def set_language(uow: UnitOfWork, *, token: str, language: str) -> None:
    repository.update_session(uow.connection, _token_hash(token), language=language)


# --- scope -------------------------------------------------------------------------------
def scope_of(uow: UnitOfWork, actor: Actor) -> Scope:
    """All merchants, or a merchant's own, or every merchant under an agent's subtree."""
    if actor.role is Role.MERCHANT:
        return Scope(frozenset({actor.merchant_id or ""}))
    if actor.role is not Role.AGENT:
        return EVERYTHING
    agent_ids = _agent_subtree(uow, actor.agent_id or "")
    found: set[str] = set()
    for agent_id in agent_ids:
        after = None
        while len(found) < MAX_MERCHANTS_IN_SCOPE:
            page = merchants.list_merchants(uow, agent_id=agent_id, limit=100, starting_after=after)
            found.update(merchant.id for merchant in page)
            if len(page) < 100:
                break
            after = page[-1].id
    return Scope(frozenset(found))


def _agent_subtree(uow: UnitOfWork, root: str) -> list[str]:
    subtree, frontier = [root], [root]
    while frontier and len(subtree) < MAX_AGENTS_IN_SCOPE:  # depth is capped by MAX_AGENT_DEPTH
        children = [
            child.id
            for parent in frontier
            for child in merchants.list_agents(uow, parent_agent_id=parent, limit=100)
        ]
        subtree += children
        frontier = children
    return subtree


def require_in_scope(scope: Scope, merchant_id: str | None) -> None:
    """Outside the scope is answered as absent: a probe learns nothing of others' ids."""
    if not scope.covers(merchant_id):
        raise NotFound("no such object", code="resource_missing")


# --- audit -------------------------------------------------------------------------------
def record_audit(
    uow: UnitOfWork, actor: Actor, *, action: str, object_type: str, object_id: str | None,
    before: dict[str, Any] | None, after: dict[str, Any] | None,
) -> None:  # fmt: skip
    repository.insert_audit(uow.connection, {
        "id": new_id("aud"), "actor_user_id": actor.user_id, "actor_email": actor.email,
        "actor_role": actor.role.value, "action": action, "object_type": object_type,
        "object_id": object_id, "before": before, "after": after, "ip": actor.ip,
        "user_agent": (actor.user_agent or "")[:256] or None, "created_at": uow.clock.now(),
    })  # fmt: skip


def list_audit(
    uow: UnitOfWork, actor: Actor, *, starting_after: str | None, object_id: str | None
) -> list[dict[str, Any]]:
    require(actor.role, Permission.VIEW_AUDIT)
    return repository.list_audit(uow.connection, limit=MAX_AUDIT_PAGE,
                                 starting_after=starting_after, object_id=object_id)  # fmt: skip


def export_audit(uow: UnitOfWork, actor: Actor) -> list[dict[str, Any]]:
    require(actor.role, Permission.VIEW_AUDIT)
    return list(repository.iterate_audit(uow.connection))
