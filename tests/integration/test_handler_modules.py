"""Admin, /cancel, fallback and Telegram-payment handlers are importable module-level functions taking
`services` (issue #15), and a command and its panel button run the same handler."""

import importlib
import inspect
from datetime import timedelta

from aiogram import Router

from handlers import admin, common, fallback, payments
from handlers.admin import audit, content, stats, users
from tests.conftest import ADMIN_ID

#: Modules whose handlers are module-level functions.
MODULES = ("handlers.admin", "handlers.common", "handlers.fallback", "handlers.payments")
#: The services' old one-by-one names: no handler asks for them any more.
OLD_NAMES = {"users", "i18n", "db", "orders", "checkout", "payments", "refunds", "notifier", "ai_tokens", "audit",
             "alerts", "content", "publisher", "signals", "broadcasts", "signal_delivery", "broadcast_progress",
             "subscriptions", "whales", "plan_shop", "channel", "admin_prefs", "products", "settings"}


def handlers_of(routers: list[Router]):
    routers = list(routers)
    while routers:
        router = routers.pop()
        routers.extend(router.sub_routers)
        for observer in router.observers.values():
            yield from observer.handlers


def test_every_handler_is_a_module_level_function_taking_services():
    routers = [admin.build_router([ADMIN_ID]), common.build_router(), fallback.build_router(), payments.build_router()]
    found = [h.callback for h in handlers_of(routers)]
    assert len(found) > 30
    for callback in found:
        assert callback.__module__.startswith(MODULES), callback
        assert getattr(importlib.import_module(callback.__module__), callback.__qualname__) is callback, callback
        assert not OLD_NAMES & set(inspect.signature(callback).parameters), callback


def test_a_command_and_its_panel_button_share_one_handler():
    for module, command_handler in ((stats, stats.stats), (stats, stats.export), (audit, audit.audit_log),
                                    (content, content.schedule), (users, users.user_card)):
        router = module.build_router()
        assert any(h.callback is command_handler for h in router.message.handlers)
        assert any(h.callback is command_handler for h in router.callback_query.handlers)


async def test_export_with_digits_that_are_not_ascii_gets_the_usage(harness):
    for days in ("²", "١٢", "0", "367"):
        await harness.send(ADMIN_ID, f"/export {days}")
        assert "Usage: /export DAYS" in harness.session.texts_to(ADMIN_ID)[-1], days
    assert not harness.session.of("SendDocument")


async def test_refund_refusals_are_told_in_words(harness):
    await harness.users.seen(12, username=None, first_name="Buyer", language_code="en")
    order = await harness.app.orders.create(user_id=12, product="ai_tokens", product_ref="x", title="t",
                                            amount_cents=500, ttl=timedelta(minutes=30))
    await harness.send(ADMIN_ID, "/refund 999999")
    assert harness.session.texts_to(ADMIN_ID)[-1] == "Order #999999 doesn't exist."
    await harness.send(ADMIN_ID, f"/refund {order.id}")
    assert harness.session.texts_to(ADMIN_ID)[-1].endswith(": nothing to refund.")
    harness.session.clear()
    await harness.press(ADMIN_ID, f"rf:yes:{order.id}:full:0")  # a stale Confirm: the order holds no money
    [answer] = harness.session.of("AnswerCallbackQuery")
    assert answer.show_alert and answer.text.startswith(f"Order #{order.id} is ") and "nothing to refund" in answer.text
