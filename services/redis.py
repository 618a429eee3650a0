"""One way to open a Redis connection (redis-py's asyncio client) for everything shared across replicas.

``REDIS_URL`` unset means one process: callers keep their state in memory instead. The client connects
lazily (on its first command) and must be closed with ``await client.aclose()``.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

#: Seconds to wait for Redis before a command fails (a request is then refused, never let through).
TIMEOUT_SECONDS = 2.0


def connect(url: str) -> Redis:
    """A client for ``url`` (``redis://host:port/db``); replies are bytes."""
    return Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS,
                          health_check_interval=30)


__all__ = ["TIMEOUT_SECONDS", "Redis", "RedisError", "connect"]
