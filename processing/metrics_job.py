"""Today's business figures on /metrics, refreshed by a scheduled job (in TIMEZONE's day)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from db.engine import Database
from services.analytics import figures
from transport import metrics


async def refresh_today(database: Database, products: list[str], tz: ZoneInfo) -> None:
    start = datetime.combine(datetime.now(tz).date(), time(), tz)
    for product in products:
        f = await figures(database, product, start, start + timedelta(days=1))
        values = {"orders": f.orders, "payment_success_rate": f.payment_success_rate,
                  "delivery_success_rate": f.delivery_success_rate,
                  "revenue_per_order": f.revenue_per_order_cents and f.revenue_per_order_cents / 100,
                  "average_order_value": f.average_order_value_cents and f.average_order_value_cents / 100}
        for name, value in values.items():
            metrics.TODAY[name].labels(product=product).set(float(value or 0))  # exported figure, not money we act on
