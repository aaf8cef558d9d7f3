"""Anti-abuse use cases: rules evaluated at claim time, at redemption time and by a batch
job; flags stored with their reasons; a person's review closes each flag with a decision.

Evaluation only writes flags (never refuses the claim or the payment), inside the same
transaction, so a flag exists exactly when the claim or redemption that raised it does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from cloudpay import citizen, merchants
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import Conflict, InvalidRequest, NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.kernel.vault import PersonalDataVault
from cloudpay.marketing import abuse_model as model
from cloudpay.marketing import abuse_repository as repository
from cloudpay.marketing.abuse_model import (
    AbuseRule,
    Decision,
    Finding,
    Flag,
    FlagStatus,
    MerchantPerson,
    MerchantRole,
    RuleCode,
)

MAX_FINDINGS_PER_RULE = 500
MAX_PAGE = 101


class FlagNotFound(NotFound):
    default_code = "flag_not_found"


class FlagAlreadyReviewed(Conflict):
    default_code = "flag_already_reviewed"


class AbuseRuleNotFound(NotFound):
    default_code = "abuse_rule_not_found"


def _record(uow: UnitOfWork, findings: list[Finding]) -> int:
    now = uow.clock.now()
    return sum(repository.insert_flag(uow.connection, new_id("flg"), f, now) for f in findings)


def evaluate_claim(uow: UnitOfWork, citizen_id: str) -> int:
    """At claim time: is this one person collecting through many wallets?"""
    return evaluate_claimant(uow, citizen.get_citizen(uow, citizen_id, with_payer_ids=True))


def evaluate_claimant(uow: UnitOfWork, person: citizen.Citizen) -> int:
    """`evaluate_claim` for a citizen already loaded with their payer ids (the claim hot path:
    a person with no wallet linked cannot reach any threshold, so the rules are not read)."""
    if not person.payer_ids:
        return 0
    rule = repository.load_rules(uow.connection).get(RuleCode.MANY_WALLETS)
    if rule is None or not rule.enabled:
        return 0
    finding = model.many_wallets(rule, person.id, len(person.payer_ids))
    return _record(uow, [finding] if finding else [])


def evaluate_redemption(uow: UnitOfWork, *, merchant_id: str, citizen_id: str) -> int:
    """At redemption time: the merchant's repeated amounts and own people paying, the
    citizen's refund loops."""
    return _evaluate(uow, merchant_id=merchant_id, citizen_id=citizen_id)


def review_abuse(uow: UnitOfWork) -> int:
    """The batch job: every enabled rule over everyone (bounded per rule); new flags raised."""
    rules = repository.load_rules(uow.connection)
    raised = 0
    wallets = rules.get(RuleCode.MANY_WALLETS)
    if wallets is not None and wallets.enabled:
        many = citizen.citizens_with_many_payer_ids(
            uow, at_least=wallets.threshold, limit=MAX_FINDINGS_PER_RULE
        )
        findings = [model.many_wallets(wallets, person, count) for person, count in many]
        raised += _record(uow, [f for f in findings if f is not None])
    return raised + _evaluate(uow, merchant_id=None, citizen_id=None)


def _evaluate(uow: UnitOfWork, *, merchant_id: str | None, citizen_id: str | None) -> int:
    rules = repository.load_rules(uow.connection)
    findings: list[Finding | None] = []
    amounts = rules.get(RuleCode.IDENTICAL_AMOUNTS)
    if amounts is not None and amounts.enabled:
        groups = repository.identical_amounts(
            uow.connection, since=uow.clock.now() - timedelta(hours=amounts.window_hours),
            at_least=amounts.threshold, merchant_id=merchant_id, limit=MAX_FINDINGS_PER_RULE,
        )  # fmt: skip
        findings += [model.identical_amounts(amounts, m, a, n) for m, a, n in groups]
    loops = rules.get(RuleCode.REDEEM_REFUND_LOOP)
    if loops is not None and loops.enabled:
        people = repository.refund_loops(
            uow.connection, since=uow.clock.now() - timedelta(hours=loops.window_hours),
            at_least=loops.threshold, citizen_id=citizen_id, limit=MAX_FINDINGS_PER_RULE,
        )  # fmt: skip
        findings += [model.redeem_refund_loop(loops, p, n) for p, n in people]
    own = rules.get(RuleCode.OWN_PEOPLE)
    if own is not None and own.enabled:
        merchants_paid = repository.own_people_orders(
            uow.connection, since=uow.clock.now() - timedelta(hours=own.window_hours),
            at_least=own.threshold, merchant_id=merchant_id, limit=MAX_FINDINGS_PER_RULE,
        )  # fmt: skip
        findings += [model.own_people(own, m, n, roles) for m, n, roles in merchants_paid]
    return _record(uow, [f for f in findings if f is not None])


def register_merchant_person(
    uow: UnitOfWork,
    *,
    vault: PersonalDataVault,
    merchant_id: str,
    resident_id: str,
    role: MerchantRole,
) -> MerchantPerson:
    """Record that the holder of `resident_id` is the merchant's legal person or staff, so
    their voucher orders there raise `own_people`. The number is only used to find the
    citizen by its blind index; it is not stored here. Registering again changes nothing."""
    merchants.get_merchant(uow, merchant_id)  # 404 for an unknown merchant
    citizen_id = citizen.find_citizen_id_by_resident_id(uow, vault=vault, resident_id=resident_id)
    if citizen_id is None:
        raise citizen.CitizenNotFound(
            "no citizen holds this resident ID: register them as a citizen first",
            param="resident_id",
        )
    person = MerchantPerson(merchant_id, citizen_id, role, uow.clock.now())
    return repository.upsert_merchant_person(uow.connection, person)


def list_rules(uow: UnitOfWork) -> list[AbuseRule]:
    return sorted(repository.load_rules(uow.connection).values(), key=lambda r: r.code.value)


def tune_rule(
    uow: UnitOfWork, code: RuleCode, *, threshold: int, window_hours: int, enabled: bool
) -> AbuseRule:
    """Change a rule's threshold, window or switch; later evaluations use it."""
    current = repository.load_rules(uow.connection).get(code)
    if current is None:
        raise AbuseRuleNotFound(f"no abuse rule {code.value}", param="code")
    if threshold < 1 or not 0 <= window_hours <= 24 * 366:
        raise InvalidRequest("threshold ≥ 1 and window_hours 0–8784", param="threshold")
    tuned = replace(current, threshold=threshold, window_hours=window_hours, enabled=enabled)
    repository.update_rule(uow.connection, tuned)
    return tuned


def list_flags(
    uow: UnitOfWork, *, status: FlagStatus | None, limit: int, starting_after: str | None
) -> list[Flag]:
    return repository.list_flags(
        uow.connection, status=status, limit=min(limit, MAX_PAGE), starting_after=starting_after
    )


def review_flag(uow: UnitOfWork, flag_id: str, *, decision: Decision, note: str | None) -> Flag:
    """A person's decision on a flag, kept with it; a flag is reviewed once."""
    flag = repository.load_flag(uow.connection, flag_id)
    if flag is None:
        raise FlagNotFound(f"no flag {flag_id}", param="flag_id")
    now = uow.clock.now()
    if not repository.review_flag(uow.connection, flag_id, decision=decision, note=note, now=now):
        raise FlagAlreadyReviewed("this flag has been reviewed", param="flag_id")
    return replace(flag, status=FlagStatus.REVIEWED, decision=decision, note=note, reviewed_at=now)
