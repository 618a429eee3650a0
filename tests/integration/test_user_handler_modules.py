"""The user handlers are importable module-level functions taking `services` (issue #15), and a command
and its menu button run the same handler."""

import importlib
import inspect

from aiogram import Router

from handlers.user import (
    ai_tokens,
    checkout,
    help,
    orders,
    plans,
    provider_signals,
    refunds,
    settings,
    signals,
    start,
    support,
    whales,
)

MODULES = (ai_tokens, checkout, help, orders, plans, provider_signals, refunds, settings, signals, start, support,
           whales)
#: The services' old one-by-one names: no user handler asks for them any more.
OLD_NAMES = {"users", "i18n", "db", "orders", "checkout", "payments", "refunds", "notifier", "ai_tokens", "audit",
             "alerts", "content", "publisher", "signals", "broadcasts", "signal_delivery", "broadcast_progress",
             "subscriptions", "whales", "plan_shop", "channel", "admin_prefs", "products", "settings"}


def handlers_of(router: Router):
    for observer in router.observers.values():
        yield from (h.callback for h in observer.handlers)


def test_every_user_handler_is_a_module_level_function_taking_services():
    found = [callback for module in MODULES for callback in handlers_of(module.build_router())]
    assert len(found) > 30
    for callback in found:
        assert getattr(importlib.import_module(callback.__module__), callback.__qualname__) is callback, callback
        assert not OLD_NAMES & set(inspect.signature(callback).parameters), callback


def test_a_command_and_its_menu_button_share_one_handler():
    for module, handler in ((help, help.show_help), (settings, settings.show_settings),
                            (orders, orders.show_orders), (plans, plans.show_plans),
                            (ai_tokens, ai_tokens.show_models), (signals, signals.show_signals),
                            (signals, signals.performance), (whales, whales.show_whales),
                            (provider_signals, provider_signals.show_home)):
        router = module.build_router()
        assert any(h.callback is handler for h in router.message.handlers), handler
        assert any(h.callback is handler for h in router.callback_query.handlers), handler
