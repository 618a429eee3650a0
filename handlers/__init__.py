"""All routers, built fresh for each dispatcher (a Router attaches to one dispatcher only)."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram import Router

from handlers import admin, common, fallback, payments
from handlers.admin import refusal
from handlers.user import (
    ai_tokens,
    api,
    checkout,
    help,
    market_board,
    marketplace,
    orders,
    plans,
    provider_signals,
    ratings,
    refunds,
    settings,
    signals,
    start,
    support,
)
from handlers.user import data as datasets
from handlers.user import whales as whale_board


def build_routers(admin_ids: list[int], products: Sequence[Router] = ()) -> list[Router]:
    """`products`: routers of registered products (services.products.Product.router), before the fallback."""
    return [
        common.build_router(),
        admin.build_router(admin_ids),
        refusal.build_router(),
        start.build_router(),
        help.build_router(),
        settings.build_router(),
        support.build_router(),
        payments.build_router(),
        checkout.build_router(),
        orders.build_router(),
        refunds.build_router(),
        signals.build_router(),
        whale_board.build_router(),
        plans.build_router(),
        ai_tokens.build_router(),  # after the commands: its custom-amount state takes stray text
        api.build_router(),  # after the commands too: its key-name and amount states take stray text
        datasets.build_router(),
        market_board.build_router(),
        marketplace.build_router(),  # after the commands: its application states take stray text
        provider_signals.build_router(),  # /signal's form for providers (an admin's /signal is the admin one)
        ratings.build_router(),  # its review and reply states take stray text
        *products,
        fallback.build_router(),  # last: takes only what nobody else did
    ]
