"""Transport: the outgoing gate to the Bot API, Prometheus metrics and log set-up."""
