"""Merchants' use cases. Each takes the unit of work; none commits (the boundary does).

Personal values arrive plain, are checked, and leave for the database only as what the
`PersonalDataVault` makes of them. Key pairs are generated before the transaction
(`prepare_key`): RSA generation is CPU work that should not hold the write lock, and a retried
transaction must register the same key the caller is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from cloudpay.db.retry import RetryableConflict
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.crypto import generate_rsa_key_pair, generate_sm2_key_pair
from cloudpay.kernel.ids import new_id
from cloudpay.kernel.masking import Secret
from cloudpay.kernel.vault import PersonalDataVault, SealedValue
from cloudpay.merchants import repository
from cloudpay.merchants.errors import (
    AgentNotFound,
    AppKeyExists,
    AppKeyLimitReached,
    AppKeyNotFound,
    AppNotFound,
    InvalidField,
    MerchantAlreadyOnboarded,
    MerchantClosed,
    MerchantNotFound,
    StoreCodeTaken,
    StoreNotFound,
    SubMerchantIdsRequireIsv,
)
from cloudpay.merchants.model import (
    CONTACT_PHONE,
    LEGAL_PERSON_ID_NUMBER,
    MAX_LIVE_KEYS_PER_APP,
    PAYMENT_METHODS,
    SETTLEMENT_ACCOUNT_NUMBER,
    AcquiringMode,
    Agent,
    App,
    AppKeyInfo,
    AppStatus,
    KeyAlgorithm,
    KeySource,
    KeyStatus,
    Merchant,
    MerchantApplication,
    MerchantStatus,
    Review,
    ReviewAction,
    SettlementAccount,
    Store,
    canonical_public_key,
    check_bank_account_number,
    check_mcc,
    check_mobile_phone,
    check_notify_url,
    check_payment_methods,
    check_resident_id,
    check_store_code,
    check_sub_merchant_ids,
    check_uscc,
    child_agent_depth,
    key_is_live,
    new_store_code,
    next_status,
)

MAX_PAGE = 101  # 100 shown + 1 to know whether there is more
MAX_APP_PAGES_SCANNED = 10  # a merchant has a handful of apps; bound the scan anyway
MAX_LOOKUP_RESULTS = 50
MAX_REVIEWS_SHOWN = 100
MAX_STORE_CODE_ATTEMPTS = 5


class ConcurrentInsertError(RetryableConflict):
    """A unique value (store code) was taken by a transaction that committed after we looked;
    the boundary runs the use case again and it then sees the value as taken."""


# --- agents -----------------------------------------------------------------------------
def create_agent(uow: UnitOfWork, *, name: str, parent_agent_id: str | None = None) -> Agent:
    """A new agent (代理商) under the platform or under another agent."""
    parent_depth = None
    if parent_agent_id is not None:
        parent_depth = get_agent(uow, parent_agent_id, param="parent_agent_id").depth
    agent = Agent(
        id=new_id("agt"),
        name=name,
        parent_agent_id=parent_agent_id,
        depth=child_agent_depth(parent_depth),
        created_at=uow.clock.now(),
    )
    repository.insert_agent(uow.connection, agent)
    return agent


def get_agent(uow: UnitOfWork, agent_id: str, *, param: str = "agent_id") -> Agent:
    agent = repository.load_agent(uow.connection, agent_id)
    if agent is None:
        raise AgentNotFound(f"no agent {agent_id}", param=param)
    return agent


def list_agents(
    uow: UnitOfWork,
    *,
    parent_agent_id: str | None = None,
    limit: int = 20,
    starting_after: str | None = None,
) -> list[Agent]:
    return repository.list_agents(
        uow.connection,
        parent_agent_id=parent_agent_id,
        limit=min(limit, MAX_PAGE),
        starting_after=starting_after,
    )


# --- merchants --------------------------------------------------------------------------
def onboard_merchant(
    uow: UnitOfWork, *, vault: PersonalDataVault, application: MerchantApplication
) -> Merchant:
    """进件: check the application, seal its personal data, store a `draft` merchant."""
    uscc = check_uscc(application.unified_social_credit_code)
    resident_id = check_resident_id(application.legal_person_id_number)
    mcc = check_mcc(application.mcc)
    id_number = vault.seal(LEGAL_PERSON_ID_NUMBER, resident_id)
    phone = vault.seal(CONTACT_PHONE, check_mobile_phone(application.contact_phone))
    account, account_number = _settlement_account(vault, application)
    sub_ids = check_sub_merchant_ids(application.channel_sub_merchant_ids or {})
    if sub_ids and application.acquiring_mode is not AcquiringMode.ISV:
        raise SubMerchantIdsRequireIsv(
            "channel sub-merchant ids need acquiring_mode isv", param="channel_sub_merchant_ids"
        )
    if application.agent_id is not None:
        get_agent(uow, application.agent_id)
    existing = repository.onboarded_merchant_with_uscc(uow.connection, uscc)
    if existing is not None:
        raise MerchantAlreadyOnboarded(
            f"this unified social credit code is already merchant {existing}",
            param="unified_social_credit_code",
            details={"merchant_id": existing},
        )
    now = uow.clock.now()
    merchant = Merchant(
        id=new_id("mch"),
        agent_id=application.agent_id,
        legal_name=application.legal_name,
        unified_social_credit_code=uscc,
        legal_person_name=application.legal_person_name,
        legal_person_id_number_masked=id_number.masked,
        contact_phone_masked=phone.masked,
        mcc=mcc,
        settlement_account=account,
        acquiring_mode=application.acquiring_mode,
        channel_sub_merchant_ids=sub_ids,
        status=MerchantStatus.DRAFT,
        status_reason=None,
        created_at=now,
        updated_at=now,
    )
    repository.insert_merchant(
        uow.connection, merchant, id_number=id_number, phone=phone, account_number=account_number
    )
    return merchant


def _settlement_account(
    vault: PersonalDataVault, application: MerchantApplication
) -> tuple[SettlementAccount | None, SealedValue | None]:
    parts = (
        application.settlement_bank_name,
        application.settlement_account_name,
        application.settlement_account_number,
    )
    if all(part is None for part in parts):
        return None, None
    bank_name, account_name, number = parts
    if not bank_name or not account_name or not number:
        raise InvalidField(
            "settlement_account needs bank_name, account_name and account_number",
            code="parameter_missing",
            param="settlement_account",
        )
    checked = check_bank_account_number(number)
    sealed = vault.seal(SETTLEMENT_ACCOUNT_NUMBER, checked.digits)
    account = SettlementAccount(bank_name, account_name, sealed.masked, checked.checksum_ok)
    return account, sealed


def get_merchant(uow: UnitOfWork, merchant_id: str, *, lock: bool = False) -> Merchant:
    merchant = repository.load_merchant(uow.connection, merchant_id, lock=lock)
    if merchant is None:
        raise MerchantNotFound(f"no merchant {merchant_id}", param="merchant_id")
    return merchant


def list_merchants(
    uow: UnitOfWork,
    *,
    status: MerchantStatus | None = None,
    agent_id: str | None = None,
    limit: int = 20,
    starting_after: str | None = None,
) -> list[Merchant]:
    return repository.list_merchants(
        uow.connection,
        status=status,
        agent_id=agent_id,
        limit=min(limit, MAX_PAGE),
        starting_after=starting_after,
    )


def find_merchants(
    uow: UnitOfWork,
    *,
    vault: PersonalDataVault,
    legal_person_id_number: str | None = None,
    contact_phone: str | None = None,
) -> list[Merchant]:
    """Merchants by the legal person's ID or the contact phone, through their blind indexes."""
    if legal_person_id_number is not None:
        column, blind_index = (
            "legal_person_id_number_index",
            vault.index(LEGAL_PERSON_ID_NUMBER, check_resident_id(legal_person_id_number)),
        )
    elif contact_phone is not None:
        column, blind_index = (
            "contact_phone_index",
            vault.index(CONTACT_PHONE, check_mobile_phone(contact_phone)),
        )
    else:
        raise InvalidField(
            "give legal_person_id_number or contact_phone",
            code="parameter_missing",
            param="legal_person_id_number",
        )
    return repository.find_merchants_by_blind_index(
        uow.connection, column=column, blind_index=blind_index, limit=MAX_LOOKUP_RESULTS
    )


def review_merchant(
    uow: UnitOfWork,
    merchant_id: str,
    *,
    action: ReviewAction,
    actor: str,
    reason: str | None = None,
) -> Merchant:
    """Apply an operator's review action and record who did it, when and why."""
    merchant = get_merchant(uow, merchant_id, lock=True)
    target = next_status(merchant.status, action, reason)
    now = uow.clock.now()
    reason = reason.strip() if reason else None
    repository.update_merchant_status(
        uow.connection, merchant_id, status=target, reason=reason, now=now
    )
    repository.insert_review(
        uow.connection,
        Review(new_id("rvw"), merchant_id, action, merchant.status, target, reason, actor, now),
    )
    return replace(merchant, status=target, status_reason=reason, updated_at=now)


def list_reviews(uow: UnitOfWork, merchant_id: str) -> list[Review]:
    get_merchant(uow, merchant_id)
    return repository.list_reviews(uow.connection, merchant_id, limit=MAX_REVIEWS_SHOWN)


def set_sub_merchant_id(
    uow: UnitOfWork, merchant_id: str, *, channel: str, sub_merchant_id: str
) -> Merchant:
    """Record the id a channel gave an ISV sub-merchant (e.g. WeChat `sub_mchid`)."""
    merchant = _open_merchant(uow, merchant_id, lock=True)
    if merchant.acquiring_mode is not AcquiringMode.ISV:
        raise SubMerchantIdsRequireIsv(
            "channel sub-merchant ids need acquiring_mode isv", param="channel"
        )
    ids = check_sub_merchant_ids({**merchant.channel_sub_merchant_ids, channel: sub_merchant_id})
    now = uow.clock.now()
    repository.update_sub_merchant_ids(uow.connection, merchant_id, ids, now=now)
    return replace(merchant, channel_sub_merchant_ids=ids, updated_at=now)


def _open_merchant(uow: UnitOfWork, merchant_id: str, *, lock: bool = False) -> Merchant:
    merchant = get_merchant(uow, merchant_id, lock=lock)
    if merchant.status is MerchantStatus.CLOSED:
        raise MerchantClosed(f"merchant {merchant_id} is closed", param="merchant_id")
    return merchant


# --- stores -----------------------------------------------------------------------------
def create_store(
    uow: UnitOfWork,
    merchant_id: str,
    *,
    name: str,
    store_code: str | None = None,
    address: str | None = None,
) -> Store:
    """A store with its short code (the key of its aggregated QR sign)."""
    _open_merchant(uow, merchant_id)
    code = check_store_code(store_code) if store_code is not None else _unused_store_code(uow)
    if store_code is not None and repository.find_store_by_code(uow.connection, code):
        raise StoreCodeTaken("this store_code is taken", param="store_code")
    store = Store(new_id("sto"), merchant_id, name, code, address, uow.clock.now())
    try:
        repository.insert_store(uow.connection, store)
    except IntegrityError as error:
        raise ConcurrentInsertError from error
    return store


def _unused_store_code(uow: UnitOfWork) -> str:
    for _ in range(MAX_STORE_CODE_ATTEMPTS):
        code = new_store_code()
        if repository.find_store_by_code(uow.connection, code) is None:
            return code
    raise RuntimeError("no free store code in 5 draws: the code space is nearly full")


def get_store(uow: UnitOfWork, store_id: str) -> Store:
    store = repository.load_store(uow.connection, store_id)
    if store is None:
        raise StoreNotFound(f"no store {store_id}", param="store_id")
    return store


def find_store_by_code(uow: UnitOfWork, store_code: str) -> Store | None:
    return repository.find_store_by_code(uow.connection, store_code.strip().upper())


def list_stores(
    uow: UnitOfWork, merchant_id: str, *, limit: int = 20, starting_after: str | None = None
) -> list[Store]:
    get_merchant(uow, merchant_id)
    return repository.list_stores(
        uow.connection, merchant_id, limit=min(limit, MAX_PAGE), starting_after=starting_after
    )


# --- keys -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreparedKey:
    """A public key ready to register; `private_key` is set only when we generated the pair."""

    algorithm: KeyAlgorithm
    public_key: str
    serial_no: str
    source: KeySource
    private_key: Secret[str] | None = field(default=None, repr=False)


def prepare_key(algorithm: KeyAlgorithm, public_key: str | None = None) -> PreparedKey:
    """Check an uploaded public key, or generate a key pair (the private key leaves once)."""
    if public_key is not None:
        canonical = canonical_public_key(algorithm, public_key)
        return PreparedKey(algorithm, canonical.text, canonical.serial_no, KeySource.UPLOADED)
    if algorithm is KeyAlgorithm.RSA:
        rsa_pair = generate_rsa_key_pair()
        canonical = canonical_public_key(algorithm, rsa_pair.public_key_pem)
        private_key = rsa_pair.private_key_pem
    else:
        sm2_pair = generate_sm2_key_pair()
        canonical = canonical_public_key(algorithm, sm2_pair.public_key_hex)
        private_key = sm2_pair.private_key_hex
    return PreparedKey(
        algorithm, canonical.text, canonical.serial_no, KeySource.GENERATED, private_key
    )


# --- apps -------------------------------------------------------------------------------
def create_app(
    uow: UnitOfWork,
    merchant_id: str,
    *,
    name: str,
    notify_url: str | None = None,
    payment_methods: list[str] | None = None,
    key: PreparedKey | None = None,
) -> App:
    """A merchant's app, with its first key when one is given."""
    _open_merchant(uow, merchant_id)
    now = uow.clock.now()
    app = App(
        id=new_id("app"),
        merchant_id=merchant_id,
        name=name,
        notify_url=check_notify_url(notify_url) if notify_url is not None else None,
        payment_methods=tuple(
            check_payment_methods(PAYMENT_METHODS if payment_methods is None else payment_methods)
        ),
        status=AppStatus.ENABLED,
        created_at=now,
        updated_at=now,
    )
    repository.insert_app(uow.connection, app)
    if key is not None:
        add_app_key(uow, app.id, key=key, overlap=timedelta(0))
    return app


def get_app(uow: UnitOfWork, app_id: str, *, lock: bool = False) -> App:
    app = repository.load_app(uow.connection, app_id, lock=lock)
    if app is None:
        raise AppNotFound(f"no app {app_id}", param="app_id")
    return app


def list_apps(
    uow: UnitOfWork, merchant_id: str, *, limit: int = 20, starting_after: str | None = None
) -> list[App]:
    get_merchant(uow, merchant_id)
    return repository.list_apps(
        uow.connection, merchant_id, limit=min(limit, MAX_PAGE), starting_after=starting_after
    )


def find_earliest_app_for_method(uow: UnitOfWork, merchant_id: str, method: str) -> App | None:
    """The merchant's oldest enabled app that accepts `method`: the app an order from the
    store's aggregated QR (聚合码) is booked to, so the choice is stable as apps are added."""
    earliest: App | None = None
    starting_after: str | None = None
    for _ in range(MAX_APP_PAGES_SCANNED):
        page = repository.list_apps(
            uow.connection, merchant_id, limit=MAX_PAGE, starting_after=starting_after
        )
        for app in page:  # newest first: the last match seen is the oldest
            if app.status is AppStatus.ENABLED and method in app.payment_methods:
                earliest = app
        if len(page) < MAX_PAGE:
            break
        starting_after = page[-1].id
    return earliest


def set_app_status(uow: UnitOfWork, app_id: str, status: AppStatus) -> App:
    app = get_app(uow, app_id, lock=True)
    now = uow.clock.now()
    repository.update_app_status(uow.connection, app_id, status, now=now)
    return replace(app, status=status, updated_at=now)


def add_app_key(
    uow: UnitOfWork, app_id: str, *, key: PreparedKey, overlap: timedelta
) -> AppKeyInfo:
    """Rotate: the new key becomes active, active keys turn `retiring` until now + `overlap`.

    The app row is locked, so two rotations at once cannot leave two active keys.
    """
    app = get_app(uow, app_id, lock=True)
    _open_merchant(uow, app.merchant_id)
    now = uow.clock.now()
    keys = repository.list_keys(uow.connection, app_id, now=now)
    if any(k.serial_no == key.serial_no for k in keys):
        raise AppKeyExists("this public key is already registered on the app", param="public_key")
    live = [k for k in keys if key_is_live(KeyStatus(k.status), k.retire_at, now)]
    if len(live) >= MAX_LIVE_KEYS_PER_APP:
        raise AppKeyLimitReached(
            f"an app holds at most {MAX_LIVE_KEYS_PER_APP} live keys; revoke one first"
        )
    repository.retire_active_keys(uow.connection, app_id, retire_at=now + overlap)
    repository.insert_key(
        uow.connection,
        app_id=app_id,
        serial_no=key.serial_no,
        key_number=repository.last_key_number(uow.connection, app_id) + 1,
        algorithm=key.algorithm.value,
        public_key=key.public_key,
        source=key.source.value,
        now=now,
    )
    return _key(uow, app_id, key.serial_no)


def revoke_app_key(uow: UnitOfWork, app_id: str, serial_no: str) -> AppKeyInfo:
    """Stop accepting a key at once; revoking a revoked key changes nothing."""
    get_app(uow, app_id, lock=True)
    key = _key(uow, app_id, serial_no)
    if key.status != KeyStatus.REVOKED.value:
        repository.revoke_key(
            uow.connection, app_id=app_id, serial_no=serial_no, now=uow.clock.now()
        )
        key = _key(uow, app_id, serial_no)
    return key


def _key(uow: UnitOfWork, app_id: str, serial_no: str) -> AppKeyInfo:
    found = find_app_key(uow, app_id=app_id, serial_no=serial_no)
    if found is None:
        raise AppKeyNotFound(f"no key {serial_no} on app {app_id}", param="serial_no")
    return found


def find_app_key(uow: UnitOfWork, *, app_id: str, serial_no: str) -> AppKeyInfo | None:
    """The key a merchant request names, with `usable` evaluated at `uow.clock.now()`."""
    return repository.find_key(
        uow.connection, app_id=app_id, serial_no=serial_no, now=uow.clock.now()
    )


def list_app_keys(uow: UnitOfWork, app_id: str) -> list[AppKeyInfo]:
    """Every key of the app, newest first (revoked ones included)."""
    get_app(uow, app_id)
    return repository.list_keys(uow.connection, app_id, now=uow.clock.now())
