"""The sandbox's replicas (sandbox/cluster.py) get their settings through the environment: what a replica
reads back must be exactly what the sandbox meant, and replicas without what they share are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import Settings
from sandbox.cluster import ROOT, Cluster, ClusterInvalid, settings_env

PG = "postgresql+asyncpg://bot@db.internal/bot"


def test_a_replica_reads_back_exactly_the_settings_it_was_given(monkeypatch):
    meant = Settings(
        _env_file=None, database_url=PG, redis_url="redis://cache:6379/0", admin_ids=[1000, 1001],
        telegram_channel_map={"crypto": "-1001000000003", "forex": "@fx_signals"},
        telegram_webhook_url="http://127.0.0.1:8443/telegram/webhook",
        telegram_webhook_secret=SecretStr("s3cret_-x"), api_prices={"signals": "0.015"},
        api_limits={"free": {"per_minute": 5, "per_day": None}}, stars_enabled=False, telegram_rate_limit=50)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in settings_env(meant).items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None).model_dump() == meant.model_dump()


@pytest.mark.parametrize(("settings", "named"), [
    ({"database_url": PG}, "REDIS_URL"),
    ({"redis_url": "redis://cache:6379/0"}, "DATABASE_URL"),
])
def test_replicas_without_a_shared_database_and_redis_are_refused_naming_the_setting(settings, named, tmp_path):
    with pytest.raises(ClusterInvalid, match=named):
        Cluster(Settings(_env_file=None, **settings), logs=tmp_path)


def test_run_py_refuses_replicas_on_sqlite_in_one_line(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
           "REDIS_URL": "redis://127.0.0.1:9/0"}
    done = subprocess.run([sys.executable, "run.py", "--sandbox", "--replicas", "3"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "DATABASE_URL" in done.stderr
