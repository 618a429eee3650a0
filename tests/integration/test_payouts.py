"""Payout runs (issue 19) against the Crypto Pay stand-in: every seller with a payable balance is paid its
share once by transfer to its Telegram account (or listed for a manual payout the admin records), a run killed
in the middle and run again pays nobody twice and skips nobody, a refused transfer puts the money back in the
balance, and the provider sees its payouts and statement in /provider."""

import asyncio
import os
import signal
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from db.base import utcnow
from db.models_payouts import PayoutItem
from presentation.payouts import LISTED
from sandbox.cryptopay import CryptoPayStandIn
from services.earnings import seller_account
from services.marketplace import Application, Review
from tests.conftest import ADMIN_ID, make_settings
from tests.integration.test_marketplace import approved_provider, paid_order
from tests.support.harness import Harness

SUBSCRIBER = 500
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def market(database_url):
    async with CryptoPayStandIn() as cryptopay:
        settings = make_settings(database_url=database_url, crypto_pay_token=cryptopay.token,
                                 crypto_pay_api_url=cryptopay.base_url, payout_hold_days=0)
        h = await Harness(settings).start()
        h.cryptopay = cryptopay
        await h.users.seen(SUBSCRIBER, username=None, first_name="Sam", language_code="en")
        yield h
        await h.close()


def texts(h, chat_id):
    return h.session.texts_to(chat_id)


def transfers_by_user(cryptopay) -> dict[int, list[dict]]:
    found: dict[int, list[dict]] = {}
    for transfer in cryptopay.transfers.values():
        found.setdefault(transfer["user_id"], []).append(transfer)
    return found


async def sellers_with_sales(h, count: int, *, first_user: int = 600, price_cents: int = 2500) -> dict[int, int]:
    """`count` approved providers (paid to their Telegram account), each with one paid month: user -> provider."""
    made = {}
    for n in range(count):
        user_id = first_user + n
        provider_id = await approved_provider(h, user_id, f"Prov {n}", price_cents=price_cents + n * 100)
        await paid_order(h, SUBSCRIBER, provider_id)
        made[user_id] = provider_id
    return made


async def test_a_run_killed_halfway_and_run_again_pays_nobody_twice_and_skips_nobody(market):
    h, cp = market, market.cryptopay
    made = await sellers_with_sales(h, 6)
    payouts = h.app.payouts
    later = timedelta(0)
    payouts.clock = lambda: utcnow() + later

    run = asyncio.create_task(h.app.payout_job.run(ADMIN_ID))

    def kill_after_the_third(transfer: dict) -> None:
        if len(cp.transfers) == 3:  # the third transfer is made; its answer never reaches the run
            run.cancel()

    cp.on_transfer.append(kill_after_the_third)
    with pytest.raises(asyncio.CancelledError):
        await run
    assert len(cp.transfers) == 3

    later = timedelta(minutes=5)  # the dead run's claim on its transfer has run out
    report = await h.app.payout_job.run(ADMIN_ID)
    paid = transfers_by_user(cp)
    assert set(paid) == set(made)  # nobody skipped
    for user_id, provider_id in made.items():
        assert len(paid[user_id]) == 1  # nobody paid twice
        price = Decimal(2500 + (user_id - 600) * 100) / 100
        assert Decimal(paid[user_id][0]["amount"]) == price * Decimal("0.8")
        assert paid[user_id][0]["asset"] == "USDT"
        seller = f"provider:{provider_id}"
        assert await h.app.ledger.balance(seller_account(seller, "paid")) == price * Decimal("0.8")
        assert await h.app.ledger.balance(seller_account(seller, "payable")) == 0
    assert len(report.paid) == 4  # the one the dead run had transferred, and the three it never reached
    assert any("💸 Payout sent: $20.00 to your Telegram wallet" in t for t in texts(h, 600))

    again = await h.app.payout_job.run(ADMIN_ID)  # nothing left to pay
    assert again.paid == [] and len(cp.transfers) == 6


async def test_admin_runs_payouts_records_a_manual_one_and_the_provider_sees_its_statement(market):
    h, cp = market, market.cryptopay
    [(telegram_user, telegram_provider)] = (await sellers_with_sales(h, 1)).items()
    address_user = 650
    await h.users.seen(address_user, username=None, first_name="Ada", language_code="en")
    address_provider = (await h.app.marketplace.apply(address_user, Application(
        name="By Address", description="Swing trades on majors", ecosystems=("crypto",), price_cents=1000,
        payout_method="address", payout_address="TRC20:TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"))).id
    await h.app.marketplace.review(address_provider, Review.APPROVE, ADMIN_ID)
    await paid_order(h, SUBSCRIBER, address_provider)

    await h.send(ADMIN_ID, "/payouts")
    assert "Sellers with a payable balance: 2, $28.00 in all." in texts(h, ADMIN_ID)[-1]
    await h.press(ADMIN_ID, "pout:run:0")
    await h.app.payout_job.background
    report = texts(h, ADMIN_ID)[-1]
    assert "✅ Paid (1, $20.00)" in report and "Prov 0: $20.00 · transfer 501" in report
    assert "✍️ To send by hand (1, $8.00)" in report and "TRC20:TQn9Y2" in report
    assert [t["user_id"] for t in cp.transfers.values()] == [telegram_user]
    item = (await h.app.payouts.open_manual())[0]

    await h.press(ADMIN_ID, f"pout:record:{item.id}")
    assert "then reply with the transaction's reference" in texts(h, ADMIN_ID)[-1]
    await h.send(ADMIN_ID, "x")
    assert "does not look like a reference" in texts(h, ADMIN_ID)[-1]
    await h.send(ADMIN_ID, "0xabc123def456")
    assert f"Recorded: #{item.id}, $8.00, reference 0xabc123def456." in texts(h, ADMIN_ID)[-1]
    assert any("Payout sent: $8.00 to TRC20:TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE (reference 0xabc123def456)" in t
               for t in texts(h, address_user))
    await h.press(ADMIN_ID, f"pout:record:{item.id}")  # a second record of the same payout: refused
    assert await h.app.ledger.balance(seller_account(f"provider:{address_provider}", "paid")) == Decimal("8.00")

    await h.send(telegram_user, "/provider")
    await h.press(telegram_user, "prv:payouts")
    statement = texts(h, telegram_user)[-1]
    assert "Balance $0.00 · pending $0.00 · paid $20.00" in statement
    assert "$20.00 · paid · transfer 501" in statement
    assert "share released · +$20.00" in statement and "payout · −$20.00" in statement
    _ = telegram_provider


async def test_a_refused_transfer_puts_the_money_back_and_a_later_run_pays_it(market):
    h, cp = market, market.cryptopay
    [(user_id, provider_id)] = (await sellers_with_sales(h, 1)).items()
    seller = f"provider:{provider_id}"
    cp.transfers[1] = {"transfer_id": 1, "spend_id": "drain", "user_id": 1, "asset": "USDT",
                       "amount": str(cp.balance()["USDT"]), "status": "completed", "completed_at": "x"}
    report = await h.app.payouts.run(ADMIN_ID)
    assert len(report.failed) == 1 and "INSUFFICIENT_FUNDS" in report.failed[0].error
    assert await h.app.ledger.balance(seller_account(seller, "payable")) == Decimal("20.00")
    assert await h.app.ledger.balance(seller_account(seller, "paid")) == 0
    del cp.transfers[1]  # the app's wallet is topped up
    report = await h.app.payouts.run(ADMIN_ID)
    assert len(report.paid) == 1 and [t["user_id"] for t in cp.transfers.values()] == [user_id]
    assert await h.app.ledger.balance(seller_account(seller, "paid")) == Decimal("20.00")
    async with h.db.session() as session:
        assert await session.get(PayoutItem, report.paid[0].id) is not None


async def test_a_suspended_provider_is_not_paid_until_reinstated(market):
    h, cp = market, market.cryptopay
    [(user_id, provider_id)] = (await sellers_with_sales(h, 1)).items()
    await h.app.marketplace.review(provider_id, Review.SUSPEND, ADMIN_ID, "checking")
    report = await h.app.payouts.run(ADMIN_ID)
    assert report.held == [f"provider:{provider_id}"] and not cp.transfers
    await h.app.marketplace.review(provider_id, Review.REINSTATE, ADMIN_ID)
    report = await h.app.payouts.run(ADMIN_ID)
    assert len(report.paid) == 1 and [t["user_id"] for t in cp.transfers.values()] == [user_id]


async def test_two_runs_at_once_pay_each_seller_once(market):
    h, cp = market, market.cryptopay
    made = await sellers_with_sales(h, 4)
    first, second = await asyncio.gather(h.app.payouts.run(ADMIN_ID), h.app.payouts.run(None))
    assert len(first.paid) + len(second.paid) == 4
    assert {user: len(found) for user, found in transfers_by_user(cp).items()} == dict.fromkeys(made, 1)


async def test_a_run_paying_many_sellers_reports_in_one_message(market):
    h = market
    await sellers_with_sales(h, LISTED + 2)
    await h.press(ADMIN_ID, "pout:run:0")
    await h.app.payout_job.background
    report = texts(h, ADMIN_ID)[-1]
    assert f"✅ Paid ({LISTED + 2}," in report and "… and 2 more" in report and len(report) < 4096


async def test_an_admins_run_goes_on_in_the_background_its_message_edited_to_the_report(market):
    h, cp = market, market.cryptopay
    made = await sellers_with_sales(h, 4)
    cp.hold_transfers = asyncio.Event()  # Crypto Pay answers transfers slowly
    await h.press(ADMIN_ID, "pout:run:0")
    run = h.app.payout_job.background
    assert not run.done()  # the tap is answered; the run goes on without it
    [answer] = [m for m in h.session.of("AnswerCallbackQuery")]
    assert answer.text == "Paying in the background…"
    [progress] = [m for m in h.session.of("SendMessage") if m.chat_id == ADMIN_ID]
    assert "Payout run #" in progress.text and "Working out who is owed what" in progress.text

    h.session.clear()
    await h.press(ADMIN_ID, "pout:run:0")  # a second tap while the run is going
    [refused] = h.session.of("AnswerCallbackQuery")
    assert refused.show_alert and "A payout run is already going" in refused.text
    assert h.session.of("SendMessage") == []  # no second run, no second message

    cp.hold_transfers.set()
    report = await run
    edits = [m for m in h.session.of("EditMessageText") if m.chat_id == ADMIN_ID]
    assert any("Transfers made: 4 of 4 (4 paid)" in m.text for m in edits)  # the last progress, always shown
    final = edits[-1].text  # the same message, now the run's report
    assert f"💸 <b>Payout run #{report.run_id}</b>" in final and "✅ Paid (4, $84.80)" in final
    assert {user: len(found) for user, found in transfers_by_user(cp).items()} == dict.fromkeys(made, 1)

    h.session.clear()
    await h.press(ADMIN_ID, "pout:run:0")  # after it ended, a new run may start (nothing left to pay)
    await h.app.payout_job.background
    assert "Nobody has a payable balance" in texts(h, ADMIN_ID)[-1] and len(cp.transfers) == 4


async def test_an_admins_run_whose_process_died_is_finished_and_reported_by_the_resume(market):
    h, cp = market, market.cryptopay
    made = await sellers_with_sales(h, 3)
    cp.hold_transfers = asyncio.Event()
    await h.press(ADMIN_ID, "pout:run:0")
    run = h.app.payout_job.background
    for _ in range(500):  # until the run waits on its first transfer
        if any(call.method == "transfer" for call in cp.calls):
            break
        await asyncio.sleep(0.01)
    run.cancel()  # its process dies
    with pytest.raises(asyncio.CancelledError):
        await run
    h.session.clear()
    await h.press(ADMIN_ID, "pout:run:0")  # its lease has not run out yet: still "going"
    assert "A payout run is already going" in h.session.of("AnswerCallbackQuery")[0].text

    cp.hold_transfers.set()
    h.app.payouts.clock = lambda: utcnow() + timedelta(minutes=5)  # its lease ran out
    await h.app.payout_job.resume()  # the hourly job on the leader
    assert {user: len(found) for user, found in transfers_by_user(cp).items()} == dict.fromkeys(made, 1)
    report = [m for m in h.session.of("EditMessageText") if m.chat_id == ADMIN_ID][-1].text
    assert "Payout run #1" in report and "✅ Paid (3, $62.40)" in report  # its message, now its report
    await h.app.payout_job.resume()
    assert len([m for m in h.session.of("EditMessageText") if "✅ Paid (3" in m.text]) == 1  # reported once


async def test_a_transfer_left_unanswered_is_finished_by_the_hourly_resume(market):
    h, cp = market, market.cryptopay
    [(user_id, provider_id)] = (await sellers_with_sales(h, 1)).items()
    cp.down = True  # Crypto Pay unreachable during the run
    report = await h.app.payout_job.run(ADMIN_ID)
    assert len(report.waiting) == 1 and not cp.transfers
    assert await h.app.ledger.balance(seller_account(f"provider:{provider_id}", "payable")) == 0  # set aside
    again = await h.app.payouts.run(ADMIN_ID)  # a second run does not open a second payout for the seller
    assert again.paid == [] and len(again.waiting) == 1
    cp.down = False
    await h.app.payout_job.resume()
    assert [t["user_id"] for t in cp.transfers.values()] == [user_id]
    assert any("💸 Payout sent: $20.00" in t for t in texts(h, user_id))
    await h.app.payout_job.resume()
    assert len(cp.transfers) == 1


CHILD = """
import asyncio, sys
from tests.conftest import make_settings
from bot.wiring import build_services

async def main():
    services = build_services(make_settings(database_url=sys.argv[1], crypto_pay_token=sys.argv[2],
                                            crypto_pay_api_url=sys.argv[3], payout_hold_days=0))
    await services.payouts.run(None)

asyncio.run(main())
"""


async def test_a_payout_process_killed_mid_run_and_run_again_pays_nobody_twice(market, database_url):
    """kill -9 of the process paying (a real second process), right after its third transfer was made."""
    h, cp = market, market.cryptopay
    made = await sellers_with_sales(h, 6)
    await h.app.earnings.release_due()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, database_url, cp.token, cp.base_url, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    cp.on_transfer.append(lambda _t: child.kill() if len(cp.transfers) == 3 else None)
    try:
        assert await asyncio.wait_for(child.wait(), 60) == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
    assert len(cp.transfers) == 3
    h.app.payouts.clock = lambda: utcnow() + timedelta(minutes=5)  # the dead process's claim has run out
    report = await h.app.payouts.run(ADMIN_ID)
    assert len(report.paid) == 4  # the dead process's last transfer found by its spend id, and the rest
    assert {user: len(found) for user, found in transfers_by_user(cp).items()} == dict.fromkeys(made, 1)
