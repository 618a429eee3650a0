"""Developer-API endpoints that other parts of the product contribute: the caller's outbound webhook
(services.api_webhooks) and datasets bought with API credit (services.datasets). They count against the plan's
limits like every call, in groups with no per-call price; a dataset bought here is charged its own price
(`price_usd` in the listing), never the per-call one."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from routes.api_v1 import Call, Endpoint, Params, Problem
from services.api_schema import UsdText, Wire, usd_text
from services.api_webhooks import Refusal, WebhookRefused, WebhookService
from services.dataset_store import StoreUnavailable
from services.datasets import FORMATS, DatasetProblem, DatasetService


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048, description="an https URL on a public address")


class Webhook(Wire):
    url: str
    enabled: bool
    created_at: datetime
    last_success_at: datetime | None
    failing_since: datetime | None = Field(description="deliveries have failed since then (retried for 24 h)")
    disabled_at: datetime | None = Field(description="switched off after a day of failures; PUT the URL again")


class WebhookSecret(Wire):
    url: str
    secret: str = Field(description="signs every delivery: X-Signature = hex HMAC-SHA256 over "
                                    "X-Timestamp + '.' + body. Shown only in this answer")


class Removed(Wire):
    removed: bool


class Delivery(Wire):
    id: str = Field(description="X-Webhook-Id of the delivery (the same on every retry)")
    type: Literal["signal.created", "signal.event"]
    status: str = Field(description="queued, sending, delivered, failed, skipped or cancelled")
    attempts: int
    status_code: int | None = Field(description="the receiver's last answer")
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class Deliveries(Wire):
    deliveries: list[Delivery]


class DeliveriesQuery(Params):
    limit: int = Field(50, ge=1, le=100)


class DatasetOffer(Wire):
    id: str
    cut: Literal["live", "delayed"] = Field(description="live: up to now; delayed: ends 7 days ago (cheaper)")
    ends_at: datetime
    rows: int
    price_usd: UsdText
    formats: list[str]


class DatasetList(Wire):
    datasets: list[DatasetOffer]


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cut: Literal["live", "delayed"] = "live"
    idempotency_key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
                                 description="your name for this purchase: sent again, it buys and charges once")


class DatasetPath(Params):
    id: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")


class DatasetPurchase(Wire):
    purchase_id: int
    id: str
    cut: Literal["live", "delayed"]
    ends_at: datetime
    rows: int
    price_usd: UsdText
    links: dict[str, str] = Field(description="download links by format, valid for 24 hours: signed links to "
                                              "this API's host, or presigned object-storage URLs")
    links_expire_at: datetime


class DatasetPurchases(Wire):
    purchases: list[DatasetPurchase]


def _webhook(hook) -> Webhook:
    return Webhook(url=hook.url, enabled=hook.enabled, created_at=hook.created_at,
                   last_success_at=hook.last_success_at, failing_since=hook.failing_since,
                   disabled_at=hook.disabled_at)


def _refused(refusal: WebhookRefused) -> Problem:
    if refusal.refusal is Refusal.PAID_ONLY:
        return Problem(403, "forbidden", "Not included in your plan", str(refusal), feature="webhooks")
    return Problem(422, "invalid-parameter", "Invalid parameter", f"url: {refusal}",
                   invalid_params=[{"name": "url", "in": "body", "reason": str(refusal)}])


def webhook_endpoints(webhooks: WebhookService) -> list[Endpoint]:
    async def put(call: Call) -> WebhookSecret:
        try:
            hook, secret = await webhooks.register(call.caller.user_id, call.body.url)
        except WebhookRefused as refusal:
            raise _refused(refusal) from None
        return WebhookSecret(url=hook.url, secret=secret)

    async def get(call: Call) -> Webhook | None:
        hook = await webhooks.get(call.caller.user_id)
        return None if hook is None else _webhook(hook)

    async def delete(call: Call) -> Removed | None:
        return Removed(removed=True) if await webhooks.remove(call.caller.user_id) else None

    async def rotate(call: Call) -> WebhookSecret | None:
        hook = await webhooks.get(call.caller.user_id)
        secret = await webhooks.rotate_secret(call.caller.user_id) if hook is not None else None
        return None if secret is None else WebhookSecret(url=hook.url, secret=secret)

    async def deliveries(call: Call) -> Deliveries:
        rows = await webhooks.deliveries(call.caller.user_id, call.query.limit)
        return Deliveries(deliveries=[Delivery(
            id=row.public_id, type="signal.created" if row.kind == "signal" else "signal.event", status=row.status,
            attempts=row.attempts, status_code=row.status_code, last_error=row.last_error,
            created_at=row.created_at, finished_at=row.finished_at) for row in rows])

    tags, group = ("webhooks",), "webhooks"  # counted against the limits; no price (API_PRICES has none)
    return [
        Endpoint("PUT", "/webhook", "setWebhook", "Set the URL new signals and events are POSTed to", put,
                 WebhookSecret, group=group, body=WebhookIn, errors=(403,), tags=tags,
                 description="Paid plans. Answers the signing secret, once; setting the URL again switches a "
                             "switched-off webhook back on and makes a new secret."),
        Endpoint("GET", "/webhook", "getWebhook", "The webhook and its state", get, Webhook, group=group,
                 errors=(404,), tags=tags),
        Endpoint("DELETE", "/webhook", "deleteWebhook", "Remove the webhook", delete, Removed, group=group,
                 errors=(404,), tags=tags),
        Endpoint("POST", "/webhook/secret", "rotateWebhookSecret", "A new signing secret (the old one stops at once)",
                 rotate, WebhookSecret, group=group, errors=(404,), tags=tags),
        Endpoint("GET", "/webhook/deliveries", "listWebhookDeliveries", "The latest deliveries, newest first",
                 deliveries, Deliveries, group=group, query=DeliveriesQuery, tags=tags),
    ]


def dataset_endpoints(datasets: DatasetService) -> list[Endpoint]:
    async def listing(_call: Call) -> DatasetList:
        return DatasetList(datasets=[DatasetOffer(id=q.dataset, cut=q.cut, ends_at=q.end, rows=q.rows,
                                                  price_usd=q.price, formats=list(FORMATS))
                                     for q in await datasets.catalogue()])

    async def receipt(purchase) -> DatasetPurchase:
        try:
            return DatasetPurchase.model_validate(await datasets.receipt(purchase))
        except StoreUnavailable:  # the purchase stands: the same idempotency_key again gives its links
            raise Problem(503, "storage-unavailable", "Download storage unavailable",
                          "the dataset is bought but its files could not be stored yet: send the same request "
                          "again (nothing is charged twice) or list GET /api/v1/datasets/purchases",
                          headers={"Retry-After": "30"}) from None

    async def buy(call: Call) -> DatasetPurchase:
        body: PurchaseIn = call.body
        bought = await datasets.buy_with_credit(call.caller.user_id, call.path.id, body.cut, body.idempotency_key)
        if bought.problem is DatasetProblem.UNKNOWN:
            raise Problem(404, "not-found", "Not Found", f"no dataset {call.path.id!r}: see GET /api/v1/datasets")
        if bought.problem is DatasetProblem.KEY_REUSED:
            raise Problem(409, "key-reused", "Idempotency key already used",
                          "this idempotency_key bought another dataset or cut: use a new key for a new purchase",
                          invalid_params=[{"name": "idempotency_key", "in": "body", "reason": "already used"}])
        if bought.problem is DatasetProblem.EMPTY:
            raise Problem(409, "empty", "Nothing to sell", "this dataset has no rows at that cut yet")
        if bought.problem is DatasetProblem.INSUFFICIENT_CREDIT:
            price = bought.price or Decimal(0)
            raise Problem(402, "credit-too-low", "Not enough API credit",
                          f"this dataset costs {usd_text(price)} USD; add credit with /api in the bot",
                          price_usd=usd_text(price))
        return await receipt(bought.purchase)

    async def purchases(call: Call) -> DatasetPurchases:
        return DatasetPurchases(purchases=[await receipt(p) for p in await datasets.purchases(call.caller.user_id)])

    tags, group = ("datasets",), "dataset_catalog"  # counted; a purchase is charged its own price, not per call
    return [
        Endpoint("GET", "/datasets", "listDatasets", "Datasets for sale, priced by size and freshness", listing,
                 DatasetList, group=group, tags=tags),
        Endpoint("POST", "/datasets/{id}/purchases", "buyDataset", "Buy a dataset with API credit", buy,
                 DatasetPurchase, group=group, path_params=DatasetPath, body=PurchaseIn, errors=(402, 404, 409, 503),
                 tags=tags,
                 description="Charged the dataset's price from your API credit, once per idempotency_key. "
                             "The purchase fixes the content: its links always give the same file."),
        Endpoint("GET", "/datasets/purchases", "listDatasetPurchases", "Your datasets, with fresh download links",
                 purchases, DatasetPurchases, group=group, tags=tags),
    ]
