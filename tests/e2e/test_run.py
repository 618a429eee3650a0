"""`python run.py` as a process: bad settings stop it with one line; SIGTERM stops it cleanly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def run(env: dict, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def clean_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_", "ADMIN_"))}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    return env


def test_missing_token_exits_2_with_one_line(tmp_path):
    result = run(clean_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "TELEGRAM_BOT_TOKEN" in result.stderr


def test_malformed_setting_exits_2_naming_it(tmp_path):
    env = clean_env(tmp_path) | {"TELEGRAM_BOT_TOKEN": "123:abcdefghijklmnopqrstuvwxyz", "AI_TOKEN_MARKUP": "-1"}
    result = run(env)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: Invalid setting AI_TOKEN_MARKUP: "
                                      "Input should be greater than or equal to 0")
    assert "abcdefghijklmnopqrstuvwxyz" not in result.stderr


def test_sandbox_serves_health_and_stops_on_sigterm(tmp_path, unused_tcp_port):
    env = clean_env(tmp_path) | {"WEB_PORT": str(unused_tcp_port)}
    proc = subprocess.Popen([sys.executable, "run.py", "--sandbox", "--sandbox-port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{unused_tcp_port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None and health.status_code == 200 and health.json()["status"] == "ok"
        metrics = httpx.get(f"http://127.0.0.1:{unused_tcp_port}/metrics", timeout=2).text
        assert "bot_messages_sent_total" in metrics
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "stopped cleanly" in err and "Sandbox ready" in out
    finally:
        if proc.poll() is None:
            proc.kill()
