"""Every HTTP route of the process: health, metrics, Telegram and payment webhooks, signal and whale ingest."""
