"""Three replicas in webhook mode behind a round-robin balancer, driven through the sandbox's Telegram
(issue #18). Each replica is ``python run.py`` in a process of its own (sandbox/cluster.py, what
``run.py --sandbox --replicas 3`` starts) on one real PostgreSQL and one real Redis."""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
import redis
from aiohttp import web

from config.settings import Settings
from sandbox.cluster import Cluster, Replica, busiest_second, limited_calls
from sandbox.runner import SANDBOX_CHANNEL_ID, SANDBOX_SIGNALS_CHANNEL_ID
from sandbox.telegram import TelegramStandIn
from tests.conftest import PG_URL
from tests.support import redis_server as _redis
from tests.support.checkout import pay_first_order_with_stars
from tests.support.pg import fresh_database

redis_server = _redis.redis_server

#: TELEGRAM_RATE_LIMIT of every cluster here: the combined rate may not exceed it by more than 10 %.
LIMIT = 50
SUBSCRIBERS = range(3_000_000, 3_001_000)
SIGNAL = {"ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
          "take_profits": ["150", "158"], "stop_loss": "136", "timeframe": "4h"}


def replica_settings(database_url: str, redis_url: str, **extra) -> Settings:
    return Settings(_env_file=None, database_url=database_url, redis_url=redis_url, telegram_rate_limit=LIMIT,
                    log_level="INFO", timezone="UTC", **extra)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(redis_server: str, tmp_path_factory) -> AsyncIterator[Cluster]:
    """Three replicas starting together on an empty database (migrations run once)."""
    url = redis_server.rsplit("/", 1)[0] + "/3"
    redis.Redis.from_url(url).flushdb()
    async with fresh_database(PG_URL, "replicas") as database_url, Cluster(
            replica_settings(database_url, url), replicas=3, logs=tmp_path_factory.mktemp("logs"),
            rate_limit=None) as running:
        yield running


def handled_by(cluster: Cluster, user_id: int) -> Counter[str]:
    """How many of ``user_id``'s updates each replica's log says it handled."""
    pattern = re.compile(rf"\[update=\d+ user={user_id}\] \w+ handled in")
    return Counter({r.name: len(pattern.findall(r.log_path.read_text(errors="replace"))) for r in cluster.replicas})


def bot_texts(telegram: TelegramStandIn, chat_id: int) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in telegram.chat_messages(chat_id, bot_only=True)]


class Copies:
    """Messages carrying ``marker`` per chat, read from the stand-in's calls as they come (cheap enough to poll
    while the stand-in measures: scanning every chat would stall its event loop and bunch its timestamps)."""

    def __init__(self, telegram: TelegramStandIn, marker: str) -> None:
        self.telegram, self.marker, self.seen, self.counts = telegram, marker, 0, Counter()

    def __call__(self) -> Counter[int]:
        calls = self.telegram.calls
        for call in calls[self.seen:]:
            if call.ok and call.method.lower() == "sendmessage" and self.marker in str(call.params.get("text")):
                self.counts[int(call.params["chat_id"])] += 1
        self.seen = len(calls)
        return self.counts

    def reached(self, users: range, times: int = 1) -> bool:
        counts = self()
        return all(counts[u] >= times for u in users)


def rate_problem(telegram: TelegramStandIn) -> str:
    """What the busiest second held, for an assertion's message."""
    times = sorted(limited_calls(telegram))
    most = busiest_second(times)
    start = next(t for i, t in enumerate(times) if i + most - 1 < len(times) and times[i + most - 1] - t < 1.0)
    methods = Counter(c.method for c in telegram.calls if start <= c.time < start + 1.0)
    return f"{most} requests in the second from {start:.3f}: {dict(methods)}"


if PG_URL:
    pytestmark = pytest.mark.asyncio(loop_scope="module")

    async def test_each_update_is_handled_once_whichever_replica_it_reaches(cluster: Cluster):
        tg = cluster.sandbox.telegram
        users = range(4_000_000, 4_000_060)
        retried = []
        for user in users:
            tg.add_user(user, f"User {user}")
            tg.send_text(user, "/start")
            if user % 6 == 0:  # Telegram delivers this one again, as after a replica died before answering
                retried.append(copy.deepcopy(tg.updates[-1]))
        await tg.wait_for(lambda: all(bot_texts(tg, u) for u in users), timeout=60)
        async with httpx.AsyncClient(timeout=30) as client:
            for update in retried:
                answer = await client.post(f"{cluster.url}/telegram/webhook", json=update, headers={
                    "X-Telegram-Bot-Api-Secret-Token": cluster.settings.telegram_webhook_secret.get_secret_value()})
                assert answer.status_code == 200
        await asyncio.sleep(1.5)
        welcomes = {u: len(bot_texts(tg, u)) for u in users}
        assert set(welcomes.values()) == {welcomes[users[1]]}, welcomes  # the retried ones too: no second welcome
        per_replica = Counter()
        for user in users:
            per_replica.update(handled_by(cluster, user))
        assert len(per_replica) == 3 and min(per_replica.values()) >= 10, per_replica

    async def test_a_conversation_goes_on_when_its_steps_land_on_different_replicas(cluster: Cluster):
        tg, user = cluster.sandbox.telegram, 4_100_001
        tg.add_user(user, "Conversation")
        tg.send_text(user, "/tokens")
        models = await tg.wait_for(lambda: next((m for m in tg.chat_messages(user, bot_only=True)
                                                 if "AI tokens" in m.get("text", "")), None), timeout=20)
        first_model = models["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        tg.press(user, models["message_id"], first_model)
        await tg.wait_for(lambda: any("Choose a package" in t for t in bot_texts(tg, user)), timeout=20)
        tg.press_button(user, "Custom amount")
        prompt = await tg.wait_for(lambda: next((t for t in bot_texts(tg, user) if "How many tokens" in t), None),
                                   timeout=20)
        low = re.search(r"from ([\d,]+)", prompt).group(1).replace(",", "")
        tg.send_text(user, low)  # the state was set by the replica that showed the prompt
        await tg.wait_for(lambda: any("Choose how to pay" in t for t in bot_texts(tg, user)), timeout=20)
        assert not any(t.startswith("Please send") for t in bot_texts(tg, user))
        assert len(+handled_by(cluster, user)) >= 2, handled_by(cluster, user)

    async def test_one_signal_reaches_1000_subscribers_within_the_limit_in_every_second(cluster: Cluster):
        tg = cluster.sandbox.telegram
        await cluster.subscribe(SUBSCRIBERS)
        started = time.time()
        await cluster.post_signal({"id": "replicas-fanout-1", **SIGNAL})
        copies = Copies(tg, "SOL/USDT")
        await tg.wait_for(lambda: copies.reached(SUBSCRIBERS), timeout=120)
        took = time.time() - started
        await asyncio.sleep(1)
        assert {copies()[u] for u in SUBSCRIBERS} == {1}  # everyone served, once
        assert copies()[SANDBOX_SIGNALS_CHANNEL_ID] == 1
        assert busiest_second(limited_calls(tg)) <= LIMIT * 1.1, rate_problem(tg)
        assert took >= len(SUBSCRIBERS) / (LIMIT * 1.1)  # sanity: the limit was the bottleneck
        print(f"1,000 subscribers through 3 replicas in {took:.1f} s ({len(SUBSCRIBERS) / took:.1f} msg/s, "
              f"limit {LIMIT}/s); busiest second {busiest_second(limited_calls(tg))}")

    def hold_first(app: web.Application, method: str, path: str) -> tuple[list[int], asyncio.Event]:
        """Hold the first ``method path`` request forever (its sender dies waiting); record the peer's port of
        each. Returns (ports, an event set when the first arrived)."""
        ports: list[int] = []
        arrived = asyncio.Event()

        @web.middleware
        async def middleware(request: web.Request, handler):
            if request.method == method and request.path.endswith(path):
                ports.append(request.transport.get_extra_info("peername")[1])
                if len(ports) == 1:
                    arrived.set()
                    await asyncio.Event().wait()
            return await handler(request)

        app.middlewares.append(middleware)
        return ports, arrived

    def sender_ports(app: web.Application) -> list[tuple[float, int]]:
        """(time, peer port) of every sendMessage the stand-in is asked for."""
        seen: list[tuple[float, int]] = []

        @web.middleware
        async def middleware(request: web.Request, handler):
            if request.path.lower().endswith("/sendmessage"):
                seen.append((time.time(), request.transport.get_extra_info("peername")[1]))
            return await handler(request)

        app.middlewares.append(middleware)
        return seen

    async def kill(cluster: Cluster, replica: Replica) -> float:
        replica.kill()
        await replica.process.wait()
        cluster.drop(replica)
        return time.monotonic()

    @pytest.mark.timeout(480)  # two scheduled posts a minute apart, at whole minutes
    async def test_killing_a_replica_then_the_leader_loses_nothing_and_repeats_at_most_what_was_in_flight(
            redis_server: str, tmp_path_factory):
        url = redis_server.rsplit("/", 1)[0] + "/4"
        redis.Redis.from_url(url).flushdb()
        now = datetime.now(UTC)
        first_slot = (now + timedelta(seconds=105)).replace(second=0, microsecond=0)  # 45-105 s away
        slots = [first_slot, first_slot + timedelta(minutes=1)]
        buyer = 4_200_001
        async with fresh_database(PG_URL, "kills") as database_url:
            settings = replica_settings(database_url, url, telegram_content_enabled=True,
                                        telegram_content_rotation=["tip"],
                                        telegram_content_schedules=[f"{s:%H:%M}" for s in slots])
            cluster = Cluster(settings, replicas=3, logs=tmp_path_factory.mktemp("logs"), rate_limit=None)
            key_ports, key_asked = hold_first(cluster.sandbox.openrouter.app, "POST", "/keys")
            send_ports = sender_ports(cluster.sandbox.telegram.app)
            async with cluster:
                tg = cluster.sandbox.telegram
                copies = Copies(tg, "SOL/USDT")
                await cluster.subscribe(SUBSCRIBERS)
                # a paid order whose fulfilment is under way (asking OpenRouter for the key) ...
                tg.add_user(buyer, "Buyer")
                tg.send_text(buyer, "/tokens")
                models = await tg.wait_for(lambda: next((m for m in tg.chat_messages(buyer, bot_only=True)
                                                         if "AI tokens" in m.get("text", "")), None), timeout=20)
                tg.press(buyer, models["message_id"], models["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
                await tg.wait_for(lambda: any("Choose a package" in t for t in bot_texts(tg, buyer)), timeout=20)
                tg.press_button(buyer, "Starter")
                await pay_first_order_with_stars(cluster.sandbox, buyer)
                await asyncio.wait_for(key_asked.wait(), 60)
                fulfilling = cluster.replica_on_port(key_ports[0])
                assert fulfilling is not None
                # ... and a signal on its way to 1,000 subscribers
                await cluster.post_signal({"id": "replicas-kill-1", **SIGNAL})
                await tg.wait_for(lambda: len(send_ports) > 250, timeout=60)
                leader_before = await cluster.leader()
                killed_at = await kill(cluster, fulfilling)
                if fulfilling is leader_before:
                    await cluster.leader(timeout=30)
                # the first scheduled post goes out once; then the leader dies in the middle of a second fan-out
                await tg.wait_for(lambda: len(bot_texts(tg, SANDBOX_CHANNEL_ID)) >= 1, timeout=150)
                sent_before = len(send_ports)
                await cluster.post_signal({"id": "replicas-kill-2", **SIGNAL})
                await tg.wait_for(lambda: len(send_ports) > sent_before + 250, timeout=60)
                leader = await cluster.leader()
                leader_killed_at = await kill(cluster, leader)
                new_leader = await cluster.leader(timeout=30)
                assert new_leader is not leader and time.monotonic() - leader_killed_at <= 30
                # the order is delivered once, by a replica that took the job over
                delivered = await tg.wait_for(lambda: [t for t in bot_texts(tg, buyer) if "Receipt" in t],
                                              timeout=max(5.0, 75 - (time.monotonic() - killed_at)))
                await tg.wait_for(lambda: len(bot_texts(tg, SANDBOX_CHANNEL_ID)) >= 2, timeout=150)
                await tg.wait_for(lambda: copies.reached(SUBSCRIBERS, 2), timeout=120)
                await asyncio.sleep(2)
                counts = [copies()[u] for u in SUBSCRIBERS]
                assert min(counts) == 2  # both signals reached everyone: nothing lost
                # duplicates: at most the sends each killed replica had in flight
                assert sum(n - 2 for n in counts) <= 8 + 8
                assert len([t for t in bot_texts(tg, buyer) if "Receipt" in t]) == len(delivered) == 1
                assert len(bot_texts(tg, SANDBOX_CHANNEL_ID)) == 2  # each scheduled post once
                assert busiest_second(limited_calls(tg)) <= LIMIT * 1.1, rate_problem(tg)
