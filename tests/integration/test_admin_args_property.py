"""Property (issue 13.5): any arguments to any admin command (non-ASCII digits, huge numbers, empty,
junk) get a clear answer through the real dispatcher, raise nothing unhandled and change nothing."""

import asyncio

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.commands import ADMIN_COMMANDS
from db.base import Base
from handlers.admin.refusal import EXTRA_ADMIN_COMMANDS
from tests.conftest import ADMIN_ID, make_settings
from tests.support.harness import Harness

#: broadcast, post_now and preview start a draft whatever follows them: not junk-argument cases.
COMMANDS = sorted({*ADMIN_COMMANDS, *EXTRA_ADMIN_COMMANDS, "orders", "refund_done"}
                  - {"broadcast", "post_now", "preview"})
WORD = st.one_of(
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30).map(str),
    st.sampled_from(["²", "①", "١٢٣", "99999999999999999999999", "-1", "0", "#0", "#²", "1e9", "nan", "0x10",
                     "pro", "basic", "free", "enterprise", "PRO", "3651", "00", "@", "@nobody", "<b>", "&amp;"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
            max_size=12).filter(lambda w: not w.isspace()),
).filter(lambda w: w.strip("#") != str(ADMIN_ID))  # granting the admin a plan is a real action, not junk


async def snapshot(h: Harness) -> dict:
    """Every row of every table, but the audit log's record that an admin typed a command."""
    tables = {}
    async with h.db.session() as session:
        for table in Base.metadata.sorted_tables:
            rows = [row for row in (await session.execute(select(table))).mappings().all()
                    if not (table.name == "audit_log" and row["before"] is None and row["after"] is None)]
            tables[table.name] = sorted(repr(sorted((k, v) for k, v in row.items() if k != "last_seen"))
                                        for row in rows)
    return tables


async def run_command(h: Harness, command: str, args: list[str]) -> None:
    before = await snapshot(h)
    h.session.clear()
    text = " ".join([f"/{command}", *args])
    await h.send(ADMIN_ID, text)
    replies = [c for c in h.session.calls if c.name in ("SendMessage", "EditMessageText", "SendPhoto",
                                                         "SendDocument")]
    said = [getattr(c.method, "text", None) or getattr(c.method, "caption", None) or "" for c in replies]
    assert replies, (text, "no answer")
    assert not any("something went wrong" in t for t in said), (text, said)
    assert await snapshot(h) == before, text


def test_admin_commands_refuse_junk_arguments_cleanly(tmp_path):
    loop = asyncio.new_event_loop()
    h = Harness(make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'args.db'}"))
    loop.run_until_complete(h.start())
    loop.run_until_complete(h.users.seen(ADMIN_ID, username=None, first_name="Alice", language_code="en"))
    try:
        @settings(max_examples=60, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
        @given(command=st.sampled_from(COMMANDS), args=st.lists(WORD, max_size=4))
        @example(command="grant", args=["²", "pro", "1"])
        @example(command="grant", args=["1", "pro", "²"])
        @example(command="refund", args=["²"])
        @example(command="refund", args=["#99999999999999999999999"])
        @example(command="refund_done", args=["²", "0xabcdef"])
        @example(command="orders", args=["١٢٣"])
        def check(command, args):
            loop.run_until_complete(run_command(h, command, args))

        check()
    finally:
        loop.run_until_complete(h.close())
        loop.close()
