"""Run every benchmark in turn: `python -m benchmarks [name ...]`."""

import asyncio
import importlib
import sys

BENCHMARKS = ["start_rate", "payments", "stats", "fanout", "whales", "mixed_load", "api", "replicas", "marketplace",
              "payouts"]


def main() -> None:
    for name in sys.argv[1:] or BENCHMARKS:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}: {module.__doc__.strip().splitlines()[0]}")
        asyncio.run(module.run())


if __name__ == "__main__":
    main()
