"""Offline sandbox: local stand-ins for the services the bot talks to."""

from sandbox.telegram import TelegramStandIn

__all__ = ["TelegramStandIn"]
