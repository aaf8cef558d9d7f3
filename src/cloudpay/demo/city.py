"""The demo city: Weifang's merchants, onboarded and approved, each with an app and a key.

Running the demo again finds them by name instead of onboarding twice (a USCC may be used
once); their apps get a fresh key each run, since a private key is only ever shown once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from stdnum.cn import ric, uscc

from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import Clock
from cloudpay.kernel.vault import PersonalDataVault
from cloudpay.merchants import service as merchants
from cloudpay.merchants.model import KeyAlgorithm, MerchantApplication, ReviewAction

WEIFANG = "370702"  # administrative division code of Weicheng district, Weifang


@dataclass(frozen=True)
class DemoMerchant:
    key: str
    legal_name: str
    person: str
    mcc: str  # ISO 18245 merchant category code
    stores: tuple[str, ...]
    ticket_fen: tuple[int, int]  # typical low and high ticket


CITY = (
    DemoMerchant(
        "noodle-shop", "潍坊市奎文区老王牛肉面馆", "王建国", "5812", ("奎文店",), (1_800, 4_500)
    ),
    DemoMerchant(
        "supermarket",
        "潍坊优选超市连锁有限公司",
        "李秀英",
        "5411",
        ("东风街店", "胜利街店", "潍城店"),
        (1_000, 30_000),
    ),
    DemoMerchant(
        "pharmacy", "潍坊仁和大药房有限公司", "张伟", "5912", ("健康街店",), (1_500, 25_000)
    ),
)


@dataclass(frozen=True)
class Onboarded:
    merchant: DemoMerchant
    merchant_id: str
    app_id: str
    serial_no: str
    private_key_pem: str
    private_key_path: Path
    store_codes: tuple[str, ...] = ()  # each store's one QR: /pay/{store_code}


def _digits(seed: str, count: int) -> str:
    return str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:count]


def demo_uscc(seed: str) -> str:
    """A checksum-valid unified social credit code (法人, enterprise, Weifang)."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for attempt in range(100):
        digest = hashlib.sha256(f"{seed}/{attempt}".encode()).digest()
        org = "".join(alphabet[b % len(alphabet)] for b in digest[:9])
        body = f"91{WEIFANG}{org}"
        candidate = body + uscc.calc_check_digit(body)
        if uscc.is_valid(candidate):
            return candidate
    raise RuntimeError("no valid demo USCC found")


def demo_resident_id(seed: str) -> str:
    """A valid resident ID: born in 1985 in Weicheng district (a code in use since 1983)."""
    number = int(_digits(seed, 9))
    month, day, sequence = number % 12 + 1, number // 12 % 28 + 1, number // 400 % 1000
    body = f"{WEIFANG}1985{month:02d}{day:02d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


AGENT_NAME = (
    "潍坊市奎文区云支付服务中心"  # the demo's agent (代理商), with the noodle shop under it
)
AGENT_MERCHANTS = ("noodle-shop", "pharmacy")


def demo_agent(uow: UnitOfWork) -> str:
    """The demo's agent, created once."""
    for agent in merchants.list_agents(uow, limit=100):
        if agent.name == AGENT_NAME:
            return agent.id
    return merchants.create_agent(uow, name=AGENT_NAME).id


def _application(m: DemoMerchant, index: int, agent_id: str | None) -> MerchantApplication:
    return MerchantApplication(
        agent_id=agent_id if m.key in AGENT_MERCHANTS else None,
        legal_name=m.legal_name, unified_social_credit_code=demo_uscc(m.key),
        legal_person_name=m.person, legal_person_id_number=demo_resident_id(m.key),
        contact_phone=f"1385366{index:04d}", mcc=m.mcc, settlement_bank_name="潍坊农村商业银行",
        settlement_account_name=m.legal_name,
        settlement_account_number=f"6228480{_digits(m.key, 12)}",
    )  # fmt: skip


def _find_or_onboard(uow: UnitOfWork, vault: PersonalDataVault, m: DemoMerchant, index: int) -> str:
    for existing in merchants.list_merchants(uow, limit=100):
        if existing.legal_name == m.legal_name and existing.status.value == "approved":
            return existing.id
    application = _application(m, index, demo_agent(uow))
    merchant = merchants.onboard_merchant(uow, vault=vault, application=application)
    merchants.review_merchant(uow, merchant.id, action=ReviewAction.SUBMIT, actor="demo")
    merchants.review_merchant(uow, merchant.id, action=ReviewAction.APPROVE, actor="demo:operator")
    for store in m.stores:
        merchants.create_store(uow, merchant.id, name=f"{m.legal_name}({store})")
    return merchant.id


def seed_city(
    engine: Engine, clock: Clock, vault: PersonalDataVault, *, notify_url: str, keys_dir: Path
) -> list[Onboarded]:
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    onboarded = []
    for index, m in enumerate(CITY):

        def work(
            uow: UnitOfWork, m: DemoMerchant = m, index: int = index
        ) -> tuple[str, str, str, str, tuple[str, ...]]:
            merchant_id = _find_or_onboard(uow, vault, m, index)
            stores = tuple(s.store_code for s in merchants.list_stores(uow, merchant_id))
            key = merchants.prepare_key(KeyAlgorithm.RSA)
            app = merchants.create_app(uow, merchant_id, name=f"{m.key} till",
                                       notify_url=notify_url, key=key)  # fmt: skip
            assert key.private_key is not None
            return merchant_id, app.id, key.serial_no, key.private_key.reveal(), stores

        merchant_id, app_id, serial_no, private_pem, stores = run_in_transaction(
            engine, work, clock=clock
        )
        path = keys_dir / f"{app_id}.pem"
        path.write_text(private_pem)
        path.chmod(0o600)
        onboarded.append(Onboarded(m, merchant_id, app_id, serial_no, private_pem, path, stores))
    return onboarded
