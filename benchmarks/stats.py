"""/stats over 100,000 orders in SQLite: time to compute the figures and draw the 30-day chart.

Printed also as a ratio to a plain `SELECT count(*) FROM orders` over the same table, timed in the
same runs (each run times the baseline right before /stats), so figures compare across machines.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select

from bot.i18n import build_i18n
from config.settings import Settings
from db import migrate
from db.engine import Database
from db.models import Order, User
from db.models_subscriptions import Subscription
from handlers.admin.stats import stats_text
from services.analytics import dashboard
from services.charts import revenue_chart

ORDERS, USERS, RUNS = 100_000, 5_000, 7
STATES = ["pending", "expired", "paid", "fulfilled", "fulfilled", "fulfilled", "refunded", "cancelled"]


async def seed(db: Database, now: datetime) -> None:
    rng = random.Random(7)
    async with db.transaction() as session:
        await session.execute(insert(User), [
            {"id": uid, "language": "en", "first_seen": now - timedelta(days=rng.randint(0, 90)), "last_seen": now,
             "is_blocked": rng.random() < 0.05} for uid in range(1, USERS + 1)])
        rows = []
        for n in range(ORDERS):
            created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 60))
            status = rng.choice(STATES)
            rows.append({"user_id": rng.randint(1, USERS), "product": rng.choice(["ai_tokens", "plan"]),
                         "product_ref": "x", "title": f"Order {n}", "amount_cents": rng.randint(100, 10_000),
                         "details": {}, "provider": rng.choice(["stars", "cryptopay", "kryptoexpress"]),
                         "status": status, "created_at": created, "updated_at": created,
                         "expires_at": created + timedelta(minutes=30), "delivery": {},
                         "paid_at": created + timedelta(minutes=2) if status not in ("pending", "expired", "cancelled")
                         else None})
        await session.execute(insert(Order), rows)
        await session.execute(insert(Subscription), [
            {"user_id": uid, "plan": rng.choice(["basic", "pro", "enterprise"]), "source": "grant",
             "starts_at": now - timedelta(days=20), "ends_at": now + timedelta(days=rng.randint(-25, 30))}
            for uid in range(1, USERS // 4)])


async def run() -> None:
    settings = Settings(_env_file=None)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/stats.db")
        try:
            await migrate.upgrade(db)
            now = datetime.now(UTC)
            await seed(db, now)
            timings, baseline = [], []
            i18n = build_i18n()
            for _ in range(RUNS):
                started = time.perf_counter()
                async with db.session() as session:
                    await session.scalar(select(func.count()).select_from(Order))
                baseline.append(time.perf_counter() - started)
                started = time.perf_counter()
                d = await dashboard(db, ZoneInfo("UTC"), now)
                with i18n.context():
                    stats_text_len = len(stats_text(d, settings))
                revenue_chart(d.daily_revenue, "Revenue per day, last 30 days")
                timings.append(time.perf_counter() - started)
            print(f"/stats over {ORDERS:,} orders ({stats_text_len} chars + chart): "
                  f"median {statistics.median(timings) * 1000:.0f} ms, worst {max(timings) * 1000:.0f} ms "
                  f"of {RUNS} runs (target < 500 ms)")
            base = statistics.median(baseline)
            print(f"SELECT count(*) over the same {ORDERS:,} orders: median {base * 1000:.1f} ms; "
                  f"/stats = {statistics.median(timings) / base:.1f}x count(*)")
        finally:
            await db.close()
