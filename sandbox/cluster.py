"""Several replicas of the bot on one machine, as production runs them: the process commands behind
``deploy/`` for a machine without Docker, and what the scale-out tests and benchmarks drive.

    bash scripts/with-postgres bash scripts/with-redis bash scripts/sandbox --replicas 3

The sandbox's stand-ins run in this process. Telegram delivers updates by webhook to a round-robin
:class:`Balancer` (what nginx does in ``deploy/``), which forwards every request (Telegram's updates, the
payment stand-ins' webhooks, ingest and the developer API) to the next replica. Each replica is
``python run.py`` in a process of its own, with the sandbox's settings in its environment, on the
PostgreSQL of ``DATABASE_URL`` and the Redis of ``REDIS_URL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import signal
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import insert

from config.settings import Settings
from sandbox.pages import LocalServer
from sandbox.runner import Sandbox
from sandbox.telegram import TelegramStandIn

ROOT = Path(__file__).resolve().parent.parent
#: Headers a proxy does not pass on (hop-by-hop, or recomputed by aiohttp).
_HOP = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade",
                  "proxy-connection", "te", "trailer", "content-encoding"})


class ClusterInvalid(Exception):
    """Replicas asked for without what they share; ``str()`` is one line naming the setting."""


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the environment variables that make a replica's ``Settings`` equal to it."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (list, tuple, dict)):
            text = json.dumps(value, default=str)
        elif isinstance(value, Decimal):
            text = str(value)
        else:
            text = str(value)
        env[name.upper()] = text
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def limited_calls(telegram: TelegramStandIn, since: int = 0) -> list[float]:
    """When each request that counts against Telegram's limit arrived (all but getUpdates), from call ``since``."""
    return [c.time for c in telegram.calls[since:] if c.method.lower() != "getupdates"]


def busiest_second(times: list[float]) -> int:
    """The most requests in any half-open 1-second window [t, t + 1)."""
    times, most, first = sorted(times), 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def socket_inodes(port: int) -> set[str]:
    """Inodes of the TCP sockets whose local port is ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def process_sockets(pid: int) -> set[str]:
    """Inodes of the sockets process ``pid`` holds open."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


class Balancer(LocalServer):
    """Round robin over the replicas' HTTP apps: each request goes to the next one in turn. A replica that
    cannot be reached is a 502 (as nginx answers a POST it will not retry); Telegram retries the update and
    the retry goes to the next replica."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.base_url = None
        self._turn = itertools.count()
        self._client: aiohttp.ClientSession | None = None
        self.app = web.Application(client_max_size=2 * 1024 * 1024)
        self.app.router.add_route("*", "/{path:.*}", self._forward)

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                                 auto_decompress=False)
        backend = self.backends[next(self._turn) % len(self.backends)]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        try:
            async with self._client.request(request.method, backend + request.path_qs, headers=headers,
                                            data=await request.read(), allow_redirects=False) as answer:
                body = await answer.read()
                return web.Response(status=answer.status, body=body, headers={
                    k: v for k, v in answer.headers.items() if k.lower() not in _HOP})
        except (aiohttp.ClientError, TimeoutError):
            return web.Response(status=502, text="bad gateway")


class Replica:
    """One ``python run.py`` process; its output goes to ``log_path``."""

    def __init__(self, name: str, env: dict[str, str], port: int, log_path: Path) -> None:
        self.name, self.env, self.port, self.log_path = name, env, port, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {**os.environ, **self.env, "WEB_PORT": str(self.port), "WEB_HOST": "127.0.0.1"}
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "run.py"), cwd=ROOT, env=env, stdout=log, stderr=log)
        finally:
            os.close(log)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def health(self) -> dict[str, Any] | None:
        """``/healthz`` as the replica answers it, or None while it does not."""
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client, \
                    client.get(f"{self.url}/healthz") as answer:
                return await answer.json() if answer.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def ready(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while await self.health() is None:
            if not self.alive:
                raise RuntimeError(f"replica {self.name} exited with {self.process.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica {self.name} did not answer /healthz in {timeout:.0f} s")
            await asyncio.sleep(0.2)

    def kill(self) -> None:
        """kill -9: no cleanup of any kind."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """SIGTERM (what an orchestrator sends), then SIGKILL if it does not end in ``timeout``."""
        if not self.alive:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class Cluster:
    """The sandbox's stand-ins, a balancer and ``replicas`` bot processes sharing one PostgreSQL and one Redis.

    ``settings`` are the replicas' settings before the sandbox points them at its stand-ins; they must name a
    PostgreSQL ``database_url`` and a ``redis_url``. Use as ``async with Cluster(...) as cluster``."""

    def __init__(self, settings: Settings, *, replicas: int = 3, logs: Path,
                 rate_limit: float | None = None) -> None:
        if not settings.redis_url:
            raise ClusterInvalid("replicas share Redis: set REDIS_URL (e.g. bash scripts/with-redis ...)")
        if not settings.database_url.startswith("postgresql"):
            raise ClusterInvalid("replicas share PostgreSQL: set DATABASE_URL=postgresql+asyncpg://... "
                                 "(e.g. bash scripts/with-postgres ...)")
        self.settings_in, self.count, self.logs = settings, replicas, logs
        self.sandbox = Sandbox(rate_limit=rate_limit)
        self.replicas: list[Replica] = []
        self.balancer = Balancer([])
        self.settings: Settings | None = None

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start the stand-ins (the web chat on ``port``), the balancer and every replica; return when each
        answers ``/healthz``."""
        settings = await self.sandbox.start(self.settings_in.model_copy(update={"web_port": 0}), host=host,
                                            port=port, database_url=self.settings_in.database_url,
                                            announce=False)
        balancer_url = await self.balancer.start(host)
        webhook_secret = self.settings_in.telegram_webhook_secret or SecretStr(secrets.token_hex(16))
        self.settings = settings.model_copy(update={
            "telegram_webhook_url": f"{balancer_url}/telegram/webhook",
            "telegram_webhook_secret": webhook_secret, "public_base_url": balancer_url})
        self.sandbox.bind_bot(int(balancer_url.rsplit(":", 1)[1]))
        env = settings_env(self.settings)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.replicas = [Replica(f"r{i + 1}", env, free_port(), self.logs / f"replica-{i + 1}.log")
                         for i in range(self.count)]
        self.balancer.backends[:] = [r.url for r in self.replicas]
        for replica in self.replicas:  # together, as an orchestrator starts them: migrations still run once
            await replica.start()
        await asyncio.gather(*(r.ready() for r in self.replicas))

    @property
    def url(self) -> str:
        """Where the replicas are reached (the balancer)."""
        return self.balancer.base_url or ""

    async def leaders(self) -> list[Replica]:
        """The live replicas whose ``/healthz`` says they lead (one, except for a moment during a takeover)."""
        healths = await asyncio.gather(*(r.health() for r in self.replicas))
        return [r for r, h in zip(self.replicas, healths, strict=True) if h and h.get("leader")]

    async def leader(self, timeout: float = 30.0) -> Replica:  # noqa: ASYNC109
        """The one live leader, waiting up to ``timeout`` for one to be in place."""
        deadline = time.monotonic() + timeout
        while True:
            leaders = [r for r in await self.leaders() if r.alive]
            if len(leaders) == 1:
                return leaders[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(leaders)} leaders after {timeout:.0f} s")
            await asyncio.sleep(0.2)

    def replica_on_port(self, port: int) -> Replica | None:
        """The live replica a TCP connection from local ``port`` belongs to (Linux's /proc): which replica
        sent a request a stand-in saw, e.g. the one holding a job."""
        inodes = socket_inodes(port)
        for replica in self.replicas:
            if replica.alive and inodes & process_sockets(replica.process.pid):
                return replica
        return None

    async def subscribe(self, users: range, plan: str = "pro") -> None:
        """Paid subscribers written straight to the database (a month of ``plan``), known to Telegram: the
        audience of a fan-out."""
        from db.engine import Database
        from db.models import User
        from db.models_subscriptions import Subscription

        now = datetime.now(UTC)
        db = Database(self.settings.database_url)
        try:
            async with db.transaction() as session:
                await session.execute(insert(User), [dict(id=u, language="en", first_seen=now, last_seen=now,
                                                          is_blocked=False) for u in users])
                await session.execute(insert(Subscription), [
                    dict(user_id=u, plan=plan, starts_at=now, ends_at=now + timedelta(days=30), source="grant",
                         created_at=now) for u in users])
        finally:
            await db.close()
        for user in users:
            self.sandbox.telegram.add_user(user)

    async def post_signal(self, signal: dict[str, Any]) -> dict[str, Any]:
        """Post ``signal`` to ingest through the balancer, signed as a provider signs it."""
        status, answer = await self.sandbox.operator.post("/api/signals", signal)
        if status != 202:
            raise RuntimeError(f"ingest answered {status}: {answer}")
        return answer

    def drop(self, replica: Replica) -> None:
        """Take a dead replica out of the balancer (what a health-checking proxy does)."""
        url = replica.url
        if url in self.balancer.backends and len(self.balancer.backends) > 1:
            self.balancer.backends.remove(url)

    async def stop(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.replicas))
        await self.balancer.stop()
        await self.sandbox.stop()

    async def __aenter__(self) -> Cluster:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(settings: Settings, *, replicas: int, port: int, logs: Path) -> None:
    """``run.py --sandbox --replicas N``: the cluster until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cluster = Cluster(settings, replicas=replicas, logs=logs)
    try:
        await cluster.start(port=port)
        print(f"Sandbox ready: {cluster.sandbox.chat_url}  ({replicas} replicas behind {cluster.url}; "
              f"their logs in {logs}; Ctrl-C to stop)", flush=True)
        for replica in cluster.replicas:
            print(f"  replica {replica.name}: {replica.url} (pid {replica.process.pid})", flush=True)
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await cluster.stop()
