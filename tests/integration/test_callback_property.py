"""Property: any callback data under any prefix the routers handle (forged, stale, out of range,
non-ASCII digits) gets an answer, raises nothing unhandled and changes nothing in the database,
for a user and for an admin, through the real dispatcher."""

import asyncio
from datetime import timedelta

from aiogram.filters.callback_data import CallbackData
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

import handlers  # noqa: F401  (imports every router module, so every CallbackData class is known)
from db.base import Base
from tests.conftest import ADMIN_ID, make_settings
from tests.support.harness import Harness

USER = 501
OWNER = 777  # owns the one order: every button naming it is someone else's to USER


def all_prefixes() -> list[tuple[str, int]]:
    """(prefix, number of fields) of every CallbackData class, found by walking the subclasses."""
    found, todo = {}, list(CallbackData.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        found[cls.__prefix__] = len(cls.model_fields)
    return sorted(found.items())


PREFIXES = all_prefixes()
HOSTILE = st.one_of(
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30).map(str),
    st.sampled_from(["99999999999999999999999", "-1", "0", "²", "①", "١٢٣", "1e9", "nan", "", " 1", "0x10",
                     "ban", "refund_yes", "refund", "card", "stars", "cryptopay", "kx-BTC", "pro", "month",
                     "1", "2", "true", "false"]),
    st.text(alphabet=st.characters(blacklist_characters=":", blacklist_categories=("Cs",)), max_size=12),
).filter(lambda value: value not in (str(OWNER), "ru", "en"))  # an admin acting on a real user is no forgery


@st.composite
def callback_data(draw, prefix: str, fields: int) -> str:
    count = draw(st.integers(max(0, fields - 1), fields + 1))
    data = ":".join([prefix] + [draw(HOSTILE) for _ in range(count)])
    return data.encode()[:64].decode(errors="ignore")  # Telegram's limit


async def snapshot(h: Harness) -> dict:
    """Every row of every table, but what is expected of any tap: the sender's last-seen time, and the
    audit log's record that an admin tapped."""
    tables = {}
    async with h.db.session() as session:
        for table in Base.metadata.sorted_tables:
            rows = [row for row in (await session.execute(select(table))).mappings().all()
                    if not (table.name == "audit_log" and str(row["action"]).startswith("tap:"))]
            tables[table.name] = sorted(
                repr(sorted((k, v) for k, v in row.items() if k != "last_seen")) for row in rows)
    return tables


async def seed(h: Harness) -> None:
    for user_id in (USER, ADMIN_ID, OWNER):
        # the name every tap is sent with (Harness.user): a tap records the sender's current profile
        await h.users.seen(user_id, username=None, first_name="Alice", language_code="en")
        await h.users.accept_terms(user_id)
    await h.app.orders.create(user_id=OWNER, product="ai_tokens", product_ref="m", title="5,000 tokens",
                              amount_cents=999, ttl=timedelta(minutes=30), details={"base_usd": "1"})


def test_forged_callback_data_is_refused_cleanly(tmp_path):
    loop = asyncio.new_event_loop()
    h = Harness(make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"))
    loop.run_until_complete(h.start())
    loop.run_until_complete(seed(h))
    try:
        @settings(max_examples=15, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
        @given(taps=st.tuples(*(callback_data(prefix, fields) for prefix, fields in PREFIXES)),
               who=st.sampled_from([USER, ADMIN_ID]))
        @example(taps=("pay:99999999999999999999999:stars", "chk:99999999999999999999999", "pay:²:stars",
                       "uact:refund:1:99999999999999999999999", "cxl:1", "pay:1:stars"), who=USER)
        @example(taps=("uact:refund:777:99999999999999999999999", "uact:ban:99999999999999999999999",
                       "uact:refund_yes:777:-1", "uact:card:-5"), who=ADMIN_ID)
        def check(taps, who):
            for data in taps:
                loop.run_until_complete(press(h, who, data))

        check()
    finally:
        loop.run_until_complete(h.close())
        loop.close()


async def press(h: Harness, who: int, data: str) -> None:
    before = await snapshot(h)
    h.session.clear()
    await h.press(who, data)
    calls = h.session.calls
    answered = [c for c in calls if c.name == "AnswerCallbackQuery"]
    assert len(answered) == 1, (data, [c.name for c in calls])
    texts = [getattr(c.method, "text", "") or "" for c in calls]
    assert not any("something went wrong" in t for t in texts), (data, texts)
    assert await snapshot(h) == before, data
