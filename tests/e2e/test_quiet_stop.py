"""A clean stop is quiet (issues 13.7 and 15): stopping the bot while a scheduled job waits on a payment
provider that never answers logs no traceback and sends admins no "Scheduled job ... failed"."""

import logging

from sandbox.runner import running_sandbox
from tests.e2e.test_purchase import choose, message_with

ADMIN = 1000


async def test_stop_while_poll_payments_waits_on_a_hanging_provider(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with running_sandbox(tmp_path, admin_ids=[ADMIN], payment_poll_interval_seconds=1) as sb:
        await choose(sb, "Crypto Pay")  # an open Crypto Pay invoice: poll_payments asks about it every second
        await sb.telegram.wait_for(message_with(sb, "Pay $0.01 with the button below"))
        sb.cryptopay.hang()
        await sb.telegram.wait_for(lambda: sb.cryptopay.held >= 1, timeout=10)  # the poll is waiting now
        sb.app.job_grace = 0.1  # don't wait the production grace for a provider that will never answer
        caplog.clear()
    # leaving the block stopped the bot (as SIGTERM does), with poll_payments still waiting
    assert "job poll_payments stopped with the scheduler" in caplog.text
    loud = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert loud == [] and "Traceback" not in caplog.text and "CancelledError" not in caplog.text
    to_admin = [m.get("text", "") for m in sb.telegram.chat_messages(ADMIN, bot_only=True)]
    assert not [text for text in to_admin if "Scheduled job" in text]
    assert "stopped cleanly" in caplog.text
