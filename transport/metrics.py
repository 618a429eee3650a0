"""Every Prometheus metric the process exports, declared once (GET /metrics serves them)."""

from prometheus_client import Counter, Gauge, Histogram

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
JOB_FAILURES = Counter("bot_job_failures_total", "Scheduled job runs that raised", ["job"])

# Payments
PROVIDER_REQUESTS = Counter("payment_provider_checks_total", "Invoice status fetches", ["provider"])
PAYMENT_OUTCOMES = Counter("payment_outcomes_total", "Recorded payment outcomes", ["provider", "outcome"])

# Channel content
CONTENT_POSTS = Counter("bot_content_posts_total", "Channel posts by outcome", ["status"])
CONTENT_GENERATIONS = Counter("bot_content_generations_total", "Post generations by source", ["source"])

# Today's business figures per product (refreshed by processing.metrics_job)
TODAY = {
    "orders": Gauge("product_orders_today", "Orders created today", ["product"]),
    "payment_success_rate": Gauge("product_payment_success_ratio_today", "Share of today's orders paid",
                                  ["product"]),
    "delivery_success_rate": Gauge("product_delivery_success_ratio_today", "Share of today's paid orders delivered",
                                   ["product"]),
    "revenue_per_order": Gauge("product_revenue_per_order_usd_today", "Revenue / orders created today", ["product"]),
    "average_order_value": Gauge("product_average_order_value_usd_today", "Revenue / paid orders today",
                                 ["product"]),
}
API_CALLS = Counter("api_requests_total",
                    "Developer-API requests answered, by operation and status (no keys, no users)",
                    ["operation", "status"])
