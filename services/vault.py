"""Secrets kept only between issuing and recording a delivery (an API key the buyer is sent once).

If the process dies after the delivery message went out but before the delivery was recorded, the
retry sends the same secret again instead of issuing a new one (which would leave the buyer holding
a dead key). The secret is encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from
`cryptography`) under a key derived by HKDF-SHA256 from the credential that issues the secrets
(for AI tokens: OPENROUTER_MANAGEMENT_KEY): whoever can read it could issue keys anyway, every
replica derives the same key, and nothing new must be configured. A secret that can no longer be
decrypted (the credential was rotated) reads as missing, so the product issues a fresh one. The row
is wiped in the transaction that records the delivery (or gives up on it).
"""

from __future__ import annotations

import base64
import logging

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import Database
from db.models_refunds import DeliverySecret

log = logging.getLogger(__name__)


def fernet_for(material: str, purpose: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(material.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class SecretVault:
    def __init__(self, database: Database, material: str | None, *, purpose: str = "delivery-secrets") -> None:
        self.db = database
        self._fernet = fernet_for(material, purpose) if material else None

    async def put(self, order_id: int, secret: str) -> None:
        if self._fernet is None:
            raise RuntimeError("no key material for the delivery vault")
        token = self._fernet.encrypt(secret.encode()).decode()
        async with self.db.transaction() as session:
            await session.execute(delete(DeliverySecret).where(DeliverySecret.order_id == order_id))
            session.add(DeliverySecret(order_id=order_id, ciphertext=token))

    async def get(self, order_id: int) -> str | None:
        async with self.db.session() as session:
            token = await session.scalar(select(DeliverySecret.ciphertext).where(DeliverySecret.order_id == order_id))
        if token is None or self._fernet is None:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            log.warning("order %s: the kept delivery secret can't be decrypted (key rotated?)", order_id)
            return None

    @staticmethod
    async def wipe_in(session: AsyncSession, order_id: int) -> None:
        """Forget the order's secret, inside the caller's transaction (the one recording delivery)."""
        await session.execute(delete(DeliverySecret).where(DeliverySecret.order_id == order_id))
