"""The HTTP app: /healthz follows the database, /metrics speaks Prometheus."""

from aiohttp.test_utils import TestClient, TestServer

from db.engine import Database
from routes.app import build_web_app


async def test_healthz_ok_and_metrics(database):
    async with TestClient(TestServer(build_web_app(database))) as client:
        response = await client.get("/healthz")
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
        metrics = await client.get("/metrics")
        assert metrics.headers["Content-Type"].startswith("text/plain")
        body = await metrics.text()
        for name in ("bot_updates_total", "bot_handler_seconds", "bot_errors_total",
                     "bot_messages_sent_total", "bot_telegram_429_total"):
            assert f"# TYPE {name}" in body


async def test_healthz_503_when_database_is_down():
    database = Database("postgresql+asyncpg://nobody:x@127.0.0.1:1/none")
    async with TestClient(TestServer(build_web_app(database))) as client:
        response = await client.get("/healthz")
        assert response.status == 503
        assert (await response.json())["database"] == "unreachable"
    await database.close()
