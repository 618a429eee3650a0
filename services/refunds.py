"""The refund vocabulary shared by the refund worker (processing.refunds), its wording (presentation.refunds)
and the handlers: what kind of refund, and where each payment's money back stands (stored as these values)."""

from __future__ import annotations

from enum import StrEnum


class RefundKind(StrEnum):
    FULL = "full"  # the order is refunded: its product taken back, every payment returned
    EXCESS = "excess"  # only what was paid over the price goes back
    UNUSED = "unused"  # the order ends, and only its unused part goes back (pro rata: a suspended provider)


class RequestState(StrEnum):
    """One payment's money back (`refund_requests.state`)."""

    REQUESTED = "requested"  # the provider sends it by API (retried until it answers)
    AWAITING_ADDRESS = "awaiting_address"  # on-chain: the buyer is asked where to send it
    AWAITING_ADMIN = "awaiting_admin"  # on-chain: an admin sends it by hand and records the transaction
    SENT = "sent"
    FAILED = "failed"  # the provider refused: an admin sends it by hand


def network_of(asset: str) -> str:
    """"USDT_TRC20" -> "TRC20"; "BTC" -> "BTC"."""
    return asset.partition("_")[2] or asset
