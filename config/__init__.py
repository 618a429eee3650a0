"""Settings read from the environment and validated at start-up."""
