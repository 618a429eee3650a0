"""Offline sandbox: local stand-ins for the services the bot talks to, and the web chat.

``sandbox.runner`` starts everything together (``Sandbox``, ``running_sandbox``).
"""

from sandbox.telegram import TelegramStandIn
from sandbox.webchat import WebChat

__all__ = ["TelegramStandIn", "WebChat"]
