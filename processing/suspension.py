"""A suspended provider's subscribers: told, and their unused time refunded through the payment core's refund
path (processing.refunds, as an admin's refund: the order's time taken back, its split reversed in the ledger
by the product's fulfiller, the money sent back by the provider it came through).

Each paid period with time left is refunded pro rata (processing.refunds' "unused" refund): only its unused
part, to the second, goes back (a renewal not started yet: all of it), and the provider's share and the
platform's fee are reversed in the same proportion. Run when an admin suspends, and by a sweep on the leader,
so a suspension interrupted by a crash is finished (a refunded order is not found again)."""

from __future__ import annotations

import logging

from presentation import suspension as words
from processing.notify import Notifier
from processing.refunds import RefundService
from services.marketplace import MarketplaceService
from services.refunds import RefundKind

log = logging.getLogger(__name__)


class SuspensionRefunds:
    def __init__(self, market: MarketplaceService, refunds: RefundService, notifier: Notifier) -> None:
        self.market, self.refunds, self.notifier = market, refunds, notifier

    async def settle(self, provider_id: int | None = None, admin_id: int | None = None) -> int:
        """Refund the unused time of a suspended provider's subscribers (of one, or all); how many orders."""
        refunded, told, providers = 0, set(), {}
        for owner, order_id, user_id in await self.market.unused_of_suspended(provider_id):
            part = await self.market.unused_part(order_id)
            if not part:
                continue
            preview = await self.refunds.preview(order_id, RefundKind.UNUSED, part=part)
            if preview.refusal:
                log.warning("suspension of provider %s: order %s not refundable (%s)", owner, order_id,
                            preview.refusal)
                continue
            if owner not in providers:
                providers[owner] = await self.market.get(owner)
            provider = providers[owner]
            if (owner, user_id) not in told:
                told.add((owner, user_id))
                await self.notifier.send(user_id, lambda p=provider: words.subscriber_notice(p.name, p.reason),
                                         skip_blocked=True)
            result = await self.refunds.refund(order_id, admin_id=admin_id, kind=RefundKind.UNUSED, part=part)
            refunded += result.ok
        return refunded

    async def sweep(self) -> None:
        await self.settle()
