"""OpenRouter: model prices, account credits and the management API that issues per-order keys.

Numbers arrive as JSON numbers or decimal strings; both are parsed straight to Decimal.
The management key is never logged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal

import httpx

log = logging.getLogger(__name__)


class OpenRouterError(Exception):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status >= 500 or self.status == 429


@dataclass(frozen=True, slots=True)
class ModelPrice:
    id: str
    name: str
    prompt: Decimal  # USD per token
    completion: Decimal  # USD per token


@dataclass(frozen=True, slots=True)
class KeyInfo:
    hash: str
    name: str
    limit: Decimal | None
    usage: Decimal
    disabled: bool

    @property
    def remaining(self) -> Decimal | None:
        return None if self.limit is None else max(Decimal(0), self.limit - self.usage)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # the secret: shown to the buyer once, never stored
    info: KeyInfo


def _dec(value) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _key_info(data: dict) -> KeyInfo:
    limit = data.get("limit")
    return KeyInfo(hash=data["hash"], name=data.get("name") or "", usage=_dec(data.get("usage")),
                   limit=None if limit is None else _dec(limit), disabled=bool(data.get("disabled")))


class OpenRouterClient:
    def __init__(self, api_url: str, management_key: str | None, *, timeout: float = 15.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self._key = management_key
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None

    @property
    def can_issue_keys(self) -> bool:
        return bool(self._key)

    async def _request(self, method: str, path: str, *, management: bool = True, body: str | None = None,
                       params: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if management:
            if not self._key:
                raise OpenRouterError("OPENROUTER_MANAGEMENT_KEY is not set", status=401)
            headers["Authorization"] = f"Bearer {self._key}"
        try:
            response = await self._client.request(method, f"{self.api_url}{path}", headers=headers,
                                                  content=body, params=params)
        except httpx.HTTPError as exc:
            raise OpenRouterError(f"{method} {path}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise OpenRouterError(f"{method} {path}: {response.status_code} {message}", status=response.status_code)
        try:
            return response.json(parse_float=Decimal)
        except ValueError:
            raise OpenRouterError(f"{method} {path}: not JSON", status=response.status_code) from None

    async def models(self) -> list[ModelPrice]:
        data = await self._request("GET", "/models", management=False)
        prices = []
        for item in data.get("data", []):
            pricing = item.get("pricing") or {}
            try:
                prices.append(ModelPrice(item["id"], item.get("name") or item["id"],
                                         _dec(pricing.get("prompt")), _dec(pricing.get("completion"))))
            except (KeyError, ArithmeticError):
                log.warning("skipping malformed model entry %r", item.get("id"))
        return prices

    async def credits(self) -> Decimal:
        """Money left on the account (total credits minus total usage), USD."""
        data = (await self._request("GET", "/credits"))["data"]
        return _dec(data.get("total_credits")) - _dec(data.get("total_usage"))

    async def keys(self) -> list[KeyInfo]:
        """Every key of the account, disabled ones included, across pages."""
        found: list[KeyInfo] = []
        offset = 0
        while True:
            page = (await self._request("GET", "/keys", params={"offset": offset, "include_disabled": "true"}))
            items = page.get("data", [])
            found += [_key_info(item) for item in items]
            if len(items) < 100:
                return found
            offset += len(items)

    async def find_key(self, name: str) -> list[KeyInfo]:
        return [k for k in await self.keys() if k.name == name]

    async def get_key(self, key_hash: str) -> KeyInfo:
        return _key_info((await self._request("GET", f"/keys/{key_hash}"))["data"])

    async def create_key(self, name: str, limit: Decimal) -> IssuedKey:
        # the limit is written as an exact decimal literal: no float ever holds the amount
        body = f'{{"name": {json.dumps(name)}, "limit": {format(limit, "f")}}}'
        data = await self._request("POST", "/keys", body=body)
        return IssuedKey(key=data["key"], info=_key_info(data["data"]))

    async def disable_key(self, key_hash: str) -> KeyInfo:
        """Switch a key off at once (``PATCH /keys/{hash}`` with ``{"disabled": true}``): it stops
        answering, and what it used stays on record."""
        return _key_info((await self._request("PATCH", f"/keys/{key_hash}", body='{"disabled": true}'))["data"])

    async def delete_key(self, key_hash: str) -> None:
        await self._request("DELETE", f"/keys/{key_hash}")

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
