"""Display spoofing (issue 13.8): a name, whale label or signal note carrying bidirectional or zero-width
controls is shown without them, wherever it is shown."""

from sqlalchemy import select

from db.models_signals import Signal
from db.models_whales import WhaleWallet
from tests.conftest import ADMIN_ID

RLO, ZWSP, LRI = "\u202e", "\u200b", "\u2066"
CONTROLS = (RLO, ZWSP, LRI, "\u200f", "\u2069")


def clean(text: str) -> bool:
    return not any(c in text for c in CONTROLS)


async def test_a_name_with_a_right_to_left_override_shows_without_it(harness):
    h = harness
    spoof = h.user(30, first_name=f"Bob{RLO}nimdA{ZWSP}", username="bob")  # shown as "BobAdmin" otherwise
    await h.send(spoof, "/paysupport")
    h.session.clear()
    await h.send(spoof, "Where is my order?")
    [header] = [m.text for m in h.session.of("SendMessage") if m.chat_id == ADMIN_ID]
    assert "BobnimdA @bob" in header and clean(header)
    assert (await h.users.get(30)).first_name == "BobnimdA"  # stored clean, for every admin screen

    h.session.clear()
    await h.send(ADMIN_ID, "/user 30")
    card = h.session.texts_to(ADMIN_ID)[-1]
    assert "BobnimdA" in card and clean(card)


async def test_a_user_whose_name_is_only_controls_gets_a_placeholder(harness):
    await harness.send(harness.user(31, first_name=f"{RLO}{ZWSP}"), "/start")
    assert (await harness.users.get(31)).first_name is None
    assert "Hi, trader!" in harness.session.texts_to(31)[-1]


async def test_whale_labels_are_stored_without_controls(harness):
    whales = harness.app.whales
    trade = {"id": "tx-1", "wallet": "WalletAAAA1111", "chain": "solana", "label": f"{LRI}Big{ZWSP} fish{RLO}",
             "symbol": "SOL", "side": "buy", "usd_value": "1000", "pnl_usd": "10", "ts": "2026-11-21T11:00:00Z"}
    report = await whales.ingest([trade])
    assert not report.rejected
    await whales.set_wallet("WalletBBBB2222", "solana", label=f"Whale{RLO} Two")  # /whale_set and CSV imports
    async with harness.db.session() as session:
        labels = dict((await session.execute(select(WhaleWallet.address, WhaleWallet.label))).all())
    assert labels == {"WalletAAAA1111": "Big fish", "WalletBBBB2222": "Whale Two"}


async def test_signal_notes_are_stored_without_controls(harness):
    await harness.send(ADMIN_ID, f"/signal crypto SOL/USDT long 142.5 150,158 136 4h {RLO}sell now{ZWSP}")
    async with harness.db.session() as session:
        note = await session.scalar(select(Signal.note))
    assert note == "sell now"
