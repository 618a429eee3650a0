"""Start the bot: `python run.py` (real Telegram) or `python run.py --sandbox` (offline)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys

from config.settings import Settings, SettingsInvalid, load_settings
from transport.logs import setup_logging

log = logging.getLogger("run")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sandbox", action="store_true",
                        help="run offline against local stand-ins for Telegram and the payment/AI services")
    parser.add_argument("--sandbox-port", type=int, default=8081, help="port of the sandbox (default 8081)")
    parser.add_argument("--replicas", type=int, default=0, metavar="N",
                        help="with --sandbox: N bot processes behind a round-robin balancer, in webhook mode on "
                             "DATABASE_URL (PostgreSQL) and REDIS_URL (see deploy/README.md)")
    parser.add_argument("--sandbox-s3", action="store_true",
                        help="with --sandbox: bought datasets are uploaded to a local S3 stand-in and delivered as "
                             "presigned URLs (DATASETS_S3_* pointed at it)")
    return parser.parse_args(argv)


async def serve(settings: Settings, *, sandbox_port: int | None = None, sandbox_s3: bool = False) -> None:
    from bot.app import App

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    sandbox = None
    if sandbox_port is not None:
        from sandbox.runner import Sandbox

        sandbox = Sandbox(s3=sandbox_s3)
        settings = await sandbox.start(settings, port=sandbox_port)
    app = App(settings)
    try:
        await app.start()
        # What is alive now lives as long as the process: keep full collections from walking it again
        # and again (each paused the event loop for ~280 ms in the middle of a fan-out).
        gc.freeze()
        if sandbox is not None:
            print(f"Sandbox ready: {sandbox.chat_url}  (Ctrl-C to stop)", flush=True)
        await stop.wait()
        log.info("stopping")
    finally:
        await app.stop()
        if sandbox is not None:
            await sandbox.stop()


def serve_replicas(settings: Settings, args: argparse.Namespace) -> int:
    """The sandbox with ``--replicas`` bot processes (sandbox/cluster.py)."""
    from pathlib import Path

    from sandbox.cluster import ClusterInvalid
    from sandbox.cluster import serve as serve_cluster

    if not args.sandbox:
        print("error: --replicas runs the sandbox's replicas; add --sandbox", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_cluster(settings, replicas=args.replicas, port=args.sandbox_port, logs=Path("data/replicas")))
    except ClusterInvalid as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.sandbox:  # API webhooks may reach a receiver on this machine (unless the environment says otherwise)
        os.environ.setdefault("API_WEBHOOK_ALLOW_PRIVATE", "true")
    try:
        settings = load_settings(require_token=not args.sandbox)
    except SettingsInvalid as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    if args.replicas:
        return serve_replicas(settings, args)
    from bot.startup import StartupError

    try:
        asyncio.run(serve(settings, sandbox_port=args.sandbox_port if args.sandbox else None,
                          sandbox_s3=args.sandbox_s3))
    except StartupError as exc:  # a setting that is well-formed but does not work here
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
