"""Prometheus metrics shared by the bot, the outgoing gate and the HTTP app."""

from prometheus_client import Counter, Histogram

UPDATES = Counter("bot_updates_total", "Updates handled", ["type"])
HANDLER_LATENCY = Histogram(
    "bot_handler_seconds",
    "Time spent handling one update",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERRORS = Counter("bot_errors_total", "Unhandled errors in handlers")
MESSAGES_SENT = Counter("bot_messages_sent_total", "Requests to the Bot API that succeeded", ["method"])
RETRY_AFTER = Counter("bot_telegram_429_total", "Flood-control answers (429) seen from Telegram")
BLOCKED = Counter("bot_telegram_403_total", "Sends refused because the user blocked the bot")
OUTBOX_RESULTS = Counter("bot_outbox_results_total", "Fan-out deliveries recorded, by outcome "
                         "(sent, blocked, skipped, failed, cancelled; queued = retried later)", ["status"])
