"""Per-day business figures come from the orders themselves and reach /metrics."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from prometheus_client import REGISTRY

from processing.metrics_job import refresh_today
from services.analytics import figures
from services.orders import Status
from tests.support.core import Core


async def test_figures_and_metrics(database):
    core = Core(database)
    core.clock.now = datetime.now(UTC)
    amounts = [1000, 500, 250, 100]  # delivered, paid-not-yet-delivered, refunded, unpaid
    orders = []
    for i, cents in enumerate(amounts):
        await core.user(i + 1)
        orders.append(await core.orders.create(user_id=i + 1, product="ai_tokens", product_ref="m", title="t",
                                               amount_cents=cents, ttl=timedelta(minutes=30)))
    for order in orders[:3]:
        await core.orders.transition(order.id, Status.PAID, cause="test")
    await core.orders.transition(orders[0].id, Status.FULFILLED, cause="test")
    await core.orders.refund(orders[2].id, cause="test")

    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    f = await figures(database, "ai_tokens", day, day + timedelta(days=1))
    assert (f.orders, f.paid, f.delivered, f.revenue_cents) == (4, 2, 1, 1500)
    assert f.payment_success_rate == Decimal("0.5") and f.delivery_success_rate == Decimal("0.5")
    assert f.revenue_per_order_cents == 375 and f.average_order_value_cents == 750
    yesterday = await figures(database, "ai_tokens", day - timedelta(days=1), day)
    assert yesterday.orders == 0 and yesterday.payment_success_rate is None

    await refresh_today(database, ["ai_tokens"], ZoneInfo("UTC"))
    sample = REGISTRY.get_sample_value
    assert sample("product_orders_today", {"product": "ai_tokens"}) == 4
    assert sample("product_average_order_value_usd_today", {"product": "ai_tokens"}) == 7.5
    assert sample("product_delivery_success_ratio_today", {"product": "ai_tokens"}) == 0.5
