"""Local stand-in for the Telegram Bot API: an aiohttp server plus an in-memory chat state.

Point aiogram at it with ``AiohttpSession(api=TelegramAPIServer.from_base(base_url))`` and drive
users with :meth:`TelegramStandIn.send_text` / :meth:`TelegramStandIn.press`. It speaks the real
wire format (``/bot{token}/{method}``, query/form/multipart/JSON bodies, ``{"ok": ...}`` replies
with Telegram's error texts and HTTP statuses). Every request is recorded in ``calls``; everything
that happens in a chat is published to :meth:`TelegramStandIn.subscribe` queues.

Telegram Stars: sendInvoice / createInvoiceLink (currency XTR, one price, no provider token;
``subscription_period`` 2592000 on links), and :meth:`TelegramStandIn.pay_invoice` performs the
payer's side: a ``pre_checkout_query`` the bot must answer within ``pre_checkout_timeout`` (10 s),
then the ``successful_payment`` service message. :meth:`resend_successful_payment` delivers it again,
:meth:`renew_subscription` charges the next period; refundStarPayment, getStarTransactions and
editUserStarSubscription keep the ledger. Channels (:meth:`add_channel`) store the bot's posts and
track members: createChatInviteLink / revokeChatInviteLink, banChatMember / unbanChatMember,
getChatMember, and :meth:`join_via_link` for the user's side (member limits, expiry, bans).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import inspect
import itertools
import json
import logging
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.pages import Faults, LocalServer, calls_of

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Handler = Callable[[JSON], Awaitable[Any]]

#: Parameters Telegram accepts as JSON-serialized strings in form bodies.
JSON_FIELDS = frozenset({
    "reply_markup", "entities", "caption_entities", "commands", "scope", "allowed_updates",
    "reply_parameters", "link_preview_options", "media", "prices", "results", "options",
    "suggested_tip_amounts",
})
#: Methods that count against ``rate_limit`` (messages per second, all chats together).
SENDING_METHODS = frozenset({
    "sendmessage", "sendphoto", "senddocument", "sendvideo", "sendanimation", "sendaudio",
    "sendvoice", "sendvideonote", "sendsticker", "sendmediagroup", "sendlocation", "sendvenue",
    "sendcontact", "sendpoll", "senddice", "sendinvoice", "forwardmessage", "forwardmessages",
    "copymessage", "copymessages", "editmessagetext", "editmessagecaption", "editmessagemedia",
    "editmessagereplymarkup",
})
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
# Default allowed_updates excludes these (as in Telegram).
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Message keys that are metadata rather than content (not carried over by forward/copy).
_META_KEYS = frozenset({
    "message_id", "date", "chat", "from", "sender_chat", "reply_markup", "edit_date",
    "reply_to_message", "forward_origin", "has_protected_content",
})
_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
_BOT_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


class ApiError(Exception):
    """An error reply: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code, self.description, self.retry_after = error_code, description, retry_after

    def payload(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(text: str) -> ApiError:
    return ApiError(400, f"Bad Request: {text}")


@dataclass
class Call:
    """One recorded Bot API request (params decoded; ``result`` set when ok)."""

    method: str
    params: JSON
    time: float
    ok: bool = True
    error_code: int | None = None
    description: str | None = None
    result: Any = None


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class ChatState:
    """A chat and its messages (insertion order = message_id order)."""

    chat: JSON
    messages: dict[int, JSON] = field(default_factory=dict)
    bot_message_ids: set[int] = field(default_factory=set)
    reply_keyboard: JSON | None = None
    last_message_id: int = 0

    def next_message_id(self) -> int:
        self.last_message_id += 1
        return self.last_message_id


STARS = "XTR"
#: The only subscription period Telegram accepts (30 days), and the cap on its price.
SUBSCRIPTION_PERIOD = 2_592_000
MAX_SUBSCRIPTION_STARS = 10_000
PRE_CHECKOUT_TIMEOUT = 10.0
_MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted"})


@dataclass
class Invoice:
    """An invoice the bot created: a sendInvoice message (``chat_id``/``message_id``) or a
    createInvoiceLink link (``link``). ``payload`` never reaches the payer."""

    slug: str
    title: str
    description: str
    payload: str
    currency: str
    prices: list[JSON]
    start_parameter: str = ""
    subscription_period: int | None = None
    photo_url: str | None = None
    chat_id: int | None = None
    message_id: int | None = None
    link: str | None = None

    @property
    def total_amount(self) -> int:
        return sum(int(price["amount"]) for price in self.prices)

    def to_json(self) -> JSON:
        """The Bot API ``Invoice`` object carried by an invoice message."""
        return {"title": self.title, "description": self.description,
                "start_parameter": self.start_parameter, "currency": self.currency,
                "total_amount": self.total_amount}


@dataclass
class StarPayment:
    """A completed Stars payment; ``message`` is the ``successful_payment`` service message."""

    charge_id: str
    provider_charge_id: str
    user_id: int
    invoice: Invoice
    total_amount: int
    date: int
    message: JSON = field(default_factory=dict)
    refunded: bool = False
    subscription_expiration_date: int | None = None
    is_first_recurring: bool = False
    canceled: bool = False

    def successful_payment(self) -> JSON:
        body: JSON = {"currency": self.invoice.currency, "total_amount": self.total_amount,
                      "invoice_payload": self.invoice.payload,
                      "telegram_payment_charge_id": self.charge_id,
                      "provider_payment_charge_id": self.provider_charge_id}
        if self.subscription_expiration_date is not None:
            body["subscription_expiration_date"] = self.subscription_expiration_date
            body["is_recurring"] = True
            if self.is_first_recurring:
                body["is_first_recurring"] = True
        return body


@dataclass
class InviteLink:
    """A link made by createChatInviteLink; ``joined`` counts members who came through it."""

    chat_id: int
    info: JSON
    joined: int = 0


class JoinRefused(ValueError):
    """:meth:`TelegramStandIn.join_via_link` refused, with the error Telegram's apps get."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _int(p: JSON, key: str, *, required: bool = True, empty: str | None = None) -> int | None:
    value = p.get(key)
    if value is None or value == "":
        if required:
            raise bad_request(empty or f"{key} is empty")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {key} specified") from None


def _bool(p: JSON, key: str) -> bool:
    value = p.get(key)
    return value is True or str(value).lower() in ("true", "1")


def _clean(value: Any) -> Any:
    """Drop ``None`` values recursively (aiogram omits them; comparisons must too)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


class TelegramStandIn(LocalServer):
    """In-memory Telegram Bot API with an aiohttp front end. See the module docstring."""

    def __init__(
        self, *, rate_limit: float | None = 30.0, bot_id: int = 777000001,
        bot_username: str = "sandbox_bot",
    ) -> None:
        self.rate_limit = rate_limit
        self.bot_user: JSON = {"id": bot_id, "is_bot": True, "first_name": "Sandbox Bot",
                               "username": bot_username}
        self.users: dict[int, JSON] = {}
        self.chats: dict[int, ChatState] = {}
        self.blocked: set[int] = set()
        self.calls: list[Call] = []
        self.tokens: set[str] = set()
        self.callback_answers: dict[str, JSON] = {}
        self.my_commands: dict[tuple[str, str], list[JSON]] = {}
        self.files: dict[str, bytes | str] = {}
        #: file_id -> {"content_type", "file_name"} for uploaded files (served by the web chat).
        self.file_meta: dict[str, JSON] = {}
        #: Invoices by slug (sendInvoice and createInvoiceLink), payments by charge id.
        self.invoices: dict[str, Invoice] = {}
        self.payments: dict[str, StarPayment] = {}
        #: The bot's Star transactions, oldest first (getStarTransactions).
        self.star_transactions: list[JSON] = []
        #: Telegram cancels a checkout the bot has not answered within 10 s.
        self.pre_checkout_timeout = PRE_CHECKOUT_TIMEOUT
        self.pre_checkout_answers: dict[str, JSON] = {}
        #: Channel memberships: chat_id -> user_id -> ChatMember; invite links by URL.
        self.members: dict[int, dict[int, JSON]] = {}
        self.invite_links: dict[str, InviteLink] = {}
        #: Unix time for invoices, payments, invite-link expiry and bans (replace in tests).
        self.clock: Callable[[], float] = time.time
        self.webhook: JSON | None = None
        self.webhook_retry_delay = 0.5
        self.webhook_timeout = 10.0
        self.base_url: str | None = None
        self.updates: list[JSON] = []  # pending (unconfirmed / undelivered)
        self._allowed_updates: list[str] = []
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._charge_ids = itertools.count(1)
        self._pending_checkouts: dict[str, tuple[asyncio.Future[JSON], StarPayment]] = {}
        self._open_queries: dict[str, int] = {}
        self._sent: deque[float] = deque()
        self._faults = Faults()
        self._subscribers: list[asyncio.Queue[JSON]] = []
        self._signal = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        self._token = ""
        self._client: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self.handlers: dict[str, Handler] = {
            "getme": self._get_me, "getupdates": self._get_updates,
            "setwebhook": self._set_webhook, "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message, "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "editmessagecaption": self._edit_message_caption,
            "deletemessage": self._delete_message, "answercallbackquery": self._answer_callback,
            "setmycommands": self._set_my_commands, "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands, "sendchataction": self._send_chat_action,
            "forwardmessage": self._forward_message, "copymessage": self._copy_message,
            "sendphoto": lambda p: self._send_media("photo", p),
            "senddocument": lambda p: self._send_media("document", p),
            "sendinvoice": self._send_invoice, "createinvoicelink": self._create_invoice_link,
            "answerprecheckoutquery": self._answer_pre_checkout,
            "refundstarpayment": self._refund_star_payment,
            "getstartransactions": self._get_star_transactions,
            "edituserstarsubscription": self._edit_user_star_subscription,
            "createchatinvitelink": self._create_chat_invite_link,
            "revokechatinvitelink": self._revoke_chat_invite_link,
            "banchatmember": self._ban_chat_member, "unbanchatmember": self._unban_chat_member,
            "getchatmember": self._get_chat_member, "getchat": self._get_chat,
        }
        self.app = web.Application(client_max_size=50 * 1024 * 1024)
        self.app.router.add_route("*", r"/bot{token:[^/]+}/{method:[^/]+}", self._handle)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = any free port); return the base URL."""
        self._closing = False
        return await super().start(host, port)

    async def stop(self) -> None:
        """Release long polls, stop webhook delivery and the server."""
        self._closing = True
        self._wake()
        if self._webhook_task:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
        if self._client:
            await self._client.close()
            self._client = None
        await super().stop()

    def register(self, method: str, handler: Handler) -> None:
        """Add or replace a Bot API method handler (``handler(params) -> result``)."""
        self.handlers[method.lower()] = handler

    # ------------------------------------------------------------------ faults

    def block(self, user_id: int) -> None:
        """The user blocks the bot: sends to their chat get 403 (queues my_chat_member)."""
        self.blocked.add(user_id)
        self._member_update(user_id, "member", "kicked")

    def unblock(self, user_id: int) -> None:
        self.blocked.discard(user_id)
        self._member_update(user_id, "kicked", "member")

    def inject_fault(
        self, method: str, *, error_code: int, description: str,
        retry_after: int | None = None, times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with this error."""
        self._faults.add(method, (error_code, description, retry_after), times)

    # ------------------------------------------------------------------ driving users

    def add_user(
        self, user_id: int, first_name: str | None = None, username: str | None = None,
        language_code: str | None = "en",
    ) -> JSON:
        """Create (or update) a user and their private chat; return the User."""
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name or f"User {user_id}"}
        chat: JSON = {"id": user_id, "type": "private", "first_name": user["first_name"]}
        if username:
            user["username"] = chat["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.users[user_id] = user
        if user_id in self.chats:
            self.chats[user_id].chat = chat
        else:
            self.chats[user_id] = ChatState(chat)
        return dict(user)

    def add_channel(self, chat_id: int, title: str, username: str | None = None) -> JSON:
        """Create a channel the bot can post to; return the Chat."""
        chat: JSON = {"id": chat_id, "type": "channel", "title": title}
        if username:
            chat["username"] = username
        self.chats.setdefault(chat_id, ChatState(chat)).chat = chat
        return dict(chat)

    def send_text(self, user_id: int, text: str) -> JSON:
        """The user writes ``text`` to the bot; queues a ``message`` update."""
        user, state = self._user(user_id)
        content: JSON = {"text": text}
        if match := _COMMAND_RE.match(text):
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": match.end()}]
        msg = self._new_message(state, user, content, from_bot=False)
        self.queue_update("message", msg)
        return copy.deepcopy(msg)

    def press(self, user_id: int, message_id: int, data: str, *, strict: bool = True) -> str:
        """The user taps an inline button of bot message ``message_id``; returns the query id.

        With ``strict`` the message must carry a button with this callback_data (pass
        ``strict=False`` to forge data, as a modified client could).
        """
        user, state = self._user(user_id)
        msg = state.messages.get(message_id)
        if msg is None or message_id not in state.bot_message_ids:
            raise ValueError(f"Bad Request: no bot message {message_id} in chat {user_id}")
        buttons = [b for row in msg.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
        if strict and not any(b.get("callback_data") == data for b in buttons):
            raise ValueError(f"message {message_id} has no button with callback_data {data!r}; "
                             f"buttons: {[(b.get('text'), b.get('callback_data')) for b in buttons]}")
        query_id = str(next(self._query_ids) + 4_000_000_000)
        self._open_queries[query_id] = user_id
        self.queue_update("callback_query", {
            "id": query_id, "from": user, "message": copy.deepcopy(msg),
            "chat_instance": str(user_id * 7919 + 1), "data": data,
        })
        return query_id

    def press_button(self, user_id: int, text: str, message_id: int | None = None) -> str:
        """Tap the callback button labelled ``text`` (exact, else unique substring match) on
        ``message_id`` or the newest bot message that has such a button."""
        _, state = self._user(user_id)
        ids = [message_id] if message_id else sorted(state.bot_message_ids, reverse=True)
        for mid in ids:
            msg = state.messages.get(mid, {})
            buttons = [b for row in msg.get("reply_markup", {}).get("inline_keyboard", [])
                       for b in row if "callback_data" in b]
            found = [b for b in buttons if b["text"] == text] or [
                b for b in buttons if text in b["text"]]
            if len(found) == 1 or (found and found[0]["text"] == text):
                return self.press(user_id, mid, found[0]["callback_data"])
        raise ValueError(f"no button {text!r} in chat {user_id}")

    # ------------------------------------------------------------------ driving: Stars payments

    def find_invoice(self, user_id: int, invoice: int | str | None = None) -> Invoice:
        """The invoice a user would pay: ``invoice`` is a message id in their chat, an invoice link
        (or its slug), or None for the newest invoice message in their chat."""
        _, state = self._user(user_id)
        if isinstance(invoice, str) and not invoice.isdigit():
            record = self.invoices.get(invoice.rstrip("/").rsplit("/", 1)[-1])
            if record is None:
                raise ValueError(f"no invoice {invoice!r}")
            return record
        if invoice is None:
            ids = [mid for mid in sorted(state.bot_message_ids, reverse=True)
                   if "invoice" in state.messages.get(mid, {})]
            if not ids:
                raise ValueError(f"no invoice in chat {user_id}")
            invoice = ids[0]
        message_id = int(invoice)
        for record in self.invoices.values():
            if record.chat_id == user_id and record.message_id == message_id:
                if message_id not in state.messages:
                    raise ValueError(f"invoice message {message_id} was deleted")
                return record
        raise ValueError(f"message {message_id} in chat {user_id} is not an invoice")

    async def pay_invoice(
        self, user_id: int, invoice: int | str | None = None, *, timeout: float | None = None,  # noqa: ASYNC109
    ) -> JSON:
        """The user taps Pay and confirms: Telegram's real round trip.

        Queues a ``pre_checkout_query`` and waits (``pre_checkout_timeout``, 10 s as in Telegram)
        for the bot's answerPreCheckoutQuery. If the bot says ok, posts the ``successful_payment``
        service message in the user's chat and queues it as a ``message`` update. Returns
        ``{"ok": True, "telegram_payment_charge_id": ..., "message": ...}`` or
        ``{"ok": False, "reason": "refused" | "timeout", "error_message": ...}`` (what Telegram
        shows the payer). Raises ValueError when there is no such invoice.
        """
        record = self.find_invoice(user_id, invoice)
        user, state = self._user(user_id)
        query_id = str(next(self._query_ids) + 5_000_000_000)
        payment = StarPayment("", "", user_id, record, record.total_amount, 0)
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._pending_checkouts[query_id] = (future, payment)
        query = {"id": query_id, "from": user, "currency": record.currency,
                 "total_amount": record.total_amount, "invoice_payload": record.payload}
        self.queue_update("pre_checkout_query", query)
        self._emit({"type": "pre_checkout_query", "chat_id": user_id, "query": query})
        wait = self.pre_checkout_timeout if timeout is None else timeout
        try:
            answer = await asyncio.wait_for(asyncio.shield(future), wait)
        except TimeoutError:
            self._pending_checkouts.pop(query_id, None)
            result = {"ok": False, "reason": "timeout", "pre_checkout_query_id": query_id,
                      "error_message": f"The bot did not confirm the payment within {wait:g} s; "
                                       "nothing was charged."}
            self._emit({"type": "payment_failed", "chat_id": user_id, **result})
            return result
        if not answer["ok"]:
            result = {"ok": False, "reason": "refused", "pre_checkout_query_id": query_id,
                      "error_message": answer.get("error_message", "")}
            self._emit({"type": "payment_failed", "chat_id": user_id, **result})
            return result
        now = int(self.clock())
        payment.date = now
        if record.subscription_period:
            payment.subscription_expiration_date = now + record.subscription_period
            payment.is_first_recurring = True
        message = self._charge(payment, user, state)
        return {"ok": True, "pre_checkout_query_id": query_id,
                "telegram_payment_charge_id": payment.charge_id, "message": copy.deepcopy(message)}

    def _charge(self, payment: StarPayment, user: JSON, state: ChatState) -> JSON:
        """Record ``payment``, post its service message and queue the ``message`` update."""
        n = next(self._charge_ids)
        payment.charge_id = f"stxsandbox{n:06d}{secrets.token_hex(10)}"
        payment.provider_charge_id = f"{payment.user_id}_{n}"
        source: JSON = {"type": "user", "transaction_type": "invoice_payment", "user": user,
                        "invoice_payload": payment.invoice.payload}
        if payment.invoice.subscription_period:
            source["subscription_period"] = payment.invoice.subscription_period
        self.star_transactions.append({"id": payment.charge_id, "amount": payment.total_amount,
                                       "date": payment.date, "source": source})
        message = self._new_message(state, user, {"successful_payment": payment.successful_payment()},
                                    from_bot=False)
        payment.message = message
        self.payments[payment.charge_id] = payment
        self.queue_update("message", message)
        return message

    def resend_successful_payment(self, charge_id: str) -> JSON:
        """Deliver the same ``successful_payment`` message again (Telegram may); the bot must count
        it once. Returns the new Update."""
        payment = self.payments.get(charge_id)
        if payment is None:
            raise ValueError(f"no payment {charge_id!r}")
        update = self.queue_update("message", payment.message)
        if update is None:
            raise ValueError("message updates are filtered out by allowed_updates")
        return copy.deepcopy(update)

    def renew_subscription(self, charge_id: str) -> JSON:
        """Telegram charges a Stars subscription for the next period (no pre-checkout query): a new
        ``successful_payment`` with ``is_recurring`` and a new charge id. Returns the message."""
        first = self.payments.get(charge_id)
        if first is None or first.subscription_expiration_date is None:
            raise ValueError(f"no subscription payment {charge_id!r}")
        if first.canceled:
            raise ValueError(f"subscription {charge_id!r} was canceled")
        period = first.invoice.subscription_period or SUBSCRIPTION_PERIOD
        latest = max((p for p in self.payments.values() if p.invoice is first.invoice
                      and p.user_id == first.user_id and not p.refunded),
                     key=lambda p: p.subscription_expiration_date or 0, default=first)
        base = latest.subscription_expiration_date or int(self.clock())
        user, state = self._user(first.user_id)
        payment = StarPayment("", "", first.user_id, first.invoice, first.total_amount,
                              int(self.clock()), subscription_expiration_date=base + period)
        return copy.deepcopy(self._charge(payment, user, state))

    # ------------------------------------------------------------------ driving: channels

    def join_via_link(self, user_id: int, link: str) -> JSON:
        """The user opens an invite link and joins. Honours revocation, ``expire_date``,
        ``member_limit`` and bans; raises :class:`JoinRefused` (``INVITE_HASH_EXPIRED``,
        ``USER_BANNED_IN_CHANNEL``, ...). Returns the new ChatMember."""
        user, _ = self._user(user_id)
        record = self.invite_links.get(link.strip())
        if record is None:
            raise JoinRefused("INVITE_HASH_INVALID")
        info = record.info
        expire = info.get("expire_date")
        limit = info.get("member_limit")
        if info["is_revoked"] or (expire and self.clock() >= expire) or (limit and record.joined >= limit):
            raise JoinRefused("INVITE_HASH_EXPIRED")
        old = self.member_status(record.chat_id, user_id)
        if old["status"] == "kicked":
            raise JoinRefused("USER_BANNED_IN_CHANNEL")
        if old["status"] in _MEMBER_STATUSES:
            raise JoinRefused("USER_ALREADY_PARTICIPANT")
        chat = self.chats[record.chat_id].chat
        if info["creates_join_request"]:
            self.queue_update("chat_join_request", {
                "chat": chat, "from": user, "user_chat_id": user_id, "date": int(self.clock()),
                "invite_link": info})
            raise JoinRefused("INVITE_REQUEST_SENT")
        record.joined += 1
        return self._set_member(record.chat_id, user, {"status": "member", "user": user},
                                invite_link=info)

    def leave_channel(self, user_id: int, chat_id: int) -> JSON:
        """The user leaves a channel (no-op unless they are a member)."""
        user, _ = self._user(user_id)
        if self.member_status(chat_id, user_id)["status"] not in _MEMBER_STATUSES:
            return self.member_status(chat_id, user_id)
        return self._set_member(chat_id, user, {"status": "left", "user": user})

    def member_status(self, chat_id: int, user_id: int) -> JSON:
        """The user's ChatMember in a channel (a ban whose ``until_date`` passed has ended)."""
        if user_id == self.bot_user["id"]:
            return self._bot_admin()
        user = self.users.get(user_id) or {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
        member = self.members.get(chat_id, {}).get(user_id)
        if member is None:
            return {"status": "left", "user": dict(user)}
        if member["status"] == "kicked" and 0 < member.get("until_date", 0) <= self.clock():
            return {"status": "left", "user": dict(user)}
        return copy.deepcopy(member)

    def channel_members(self, chat_id: int) -> list[JSON]:
        """Everyone the channel knows about (members, banned, left), by user id."""
        return [self.member_status(chat_id, uid) for uid in sorted(self.members.get(chat_id, {}))]

    def _set_member(self, chat_id: int, user: JSON, new: JSON, *, invite_link: JSON | None = None,
                    actor: JSON | None = None) -> JSON:
        old = self.member_status(chat_id, user["id"])
        self.members.setdefault(chat_id, {})[user["id"]] = copy.deepcopy(new)
        chat = self.chats[chat_id].chat
        update: JSON = {"chat": chat, "from": actor or user, "date": int(self.clock()),
                        "old_chat_member": old, "new_chat_member": new}
        if invite_link:
            update["invite_link"] = invite_link
        self.queue_update("chat_member", update)
        self._emit({"type": "member", "chat_id": chat_id, "user_id": user["id"], "old": old, "new": new})
        return copy.deepcopy(new)

    def _bot_admin(self) -> JSON:
        rights = ("can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                  "can_restrict_members", "can_change_info", "can_invite_users", "can_post_stories",
                  "can_edit_stories", "can_delete_stories", "can_post_messages", "can_edit_messages")
        return {"status": "administrator", "user": dict(self.bot_user), "can_be_edited": False,
                "is_anonymous": False, "can_promote_members": False, "can_send_welcome_messages": False,
                **dict.fromkeys(rights, True)}

    def publish(self, event: JSON) -> None:
        """Send an event to every :meth:`subscribe` queue (the web chat uses it for its own news)."""
        self._emit(event)

    def queue_update(self, kind: str, payload: JSON) -> JSON | None:
        """Queue an Update of ``kind`` (e.g. "message") unless allowed_updates filters it out."""
        allowed = self._allowed_updates
        if (kind not in allowed) if allowed else (kind in _OPT_IN_UPDATES):
            return None
        update = {"update_id": next(self._update_ids), kind: copy.deepcopy(payload)}
        self.updates.append(update)
        self._wake()
        return update

    # ------------------------------------------------------------------ inspecting state

    def calls_of(self, method: str) -> list[Call]:
        return calls_of(self.calls, method)

    def chat_messages(self, chat_id: int, *, bot_only: bool = False) -> list[JSON]:
        """Current state of the chat's messages (after edits, without deleted ones)."""
        state = self.chats.get(chat_id)
        if state is None:
            return []
        return [copy.deepcopy(m) for mid, m in state.messages.items()
                if not bot_only or mid in state.bot_message_ids]

    def last_bot_message(self, chat_id: int) -> JSON | None:
        messages = self.chat_messages(chat_id, bot_only=True)
        return messages[-1] if messages else None

    def commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        """Commands stored by setMyCommands for exactly this scope and language."""
        key = (json.dumps(scope or {"type": "default"}, sort_keys=True), language_code)
        return copy.deepcopy(self.my_commands.get(key, []))

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Poll until ``predicate()`` (may be async) is truthy and return its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            if loop.time() >= deadline:
                recent = "; ".join(
                    f"{c.method} -> {'ok' if c.ok else f'{c.error_code} {c.description}'}"
                    for c in self.calls[-8:]) or "none"
                name = getattr(predicate, "__name__", repr(predicate))
                raise TimeoutError(f"wait_for({name}) not satisfied within {timeout}s; "
                                   f"pending updates: {len(self.updates)}; last calls: {recent}")
            await asyncio.sleep(0.01)

    def subscribe(self) -> asyncio.Queue[JSON]:
        """Queue of events: {"type": "message"|"edit"|"delete"|"callback_answer"|
        "chat_action"|"commands"|"pre_checkout_query"|"pre_checkout_answer"|"payment_failed"|
        "invite_link"|"invoice_link"|"member", "chat_id": ..., ...}, for the bot's and users'
        actions (``chat_id`` None: not about one chat)."""
        queue: asyncio.Queue[JSON] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[JSON]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(queue)

    # ------------------------------------------------------------------ HTTP + dispatch

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            params = await self._read_params(request)
        except ApiError as err:
            return web.json_response(err.payload(), status=err.error_code)
        status, body = await self.execute(
            request.match_info["method"], params, request.match_info["token"])
        return web.json_response(body, status=status)

    @staticmethod
    async def _read_params(request: web.Request) -> JSON:
        params: JSON = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise bad_request("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise bad_request("JSON object expected")
                params.update(body)
            elif request.content_type in ("application/x-www-form-urlencoded",
                                          "multipart/form-data"):
                for key, value in (await request.post()).items():
                    if isinstance(value, web.FileField):
                        value = UploadedFile(value.filename, value.content_type,
                                             value.file.read())
                    params[key] = value
        for key in JSON_FIELDS & params.keys():
            if isinstance(params[key], str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    raise bad_request(f"can't parse {key} JSON object") from None
        return params

    async def execute(self, method: str, params: JSON, token: str = "") -> tuple[int, JSON]:
        """Run one Bot API call; return (HTTP status, response body). Records a :class:`Call`."""
        self.tokens.add(token)
        self._token = token  # read synchronously by handlers that need it (setWebhook)
        call = Call(method, params, time.time())
        self.calls.append(call)
        name = method.lower()
        try:
            handler = self.handlers.get(name)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            self._raise_injected(name)
            if name in SENDING_METHODS:
                self._check_rate()
            result = await handler(params)
            if name in SENDING_METHODS:
                self._sent.append(time.monotonic())
        except ApiError as err:
            call.ok, call.error_code, call.description = False, err.error_code, err.description
            return err.error_code, err.payload()
        except Exception:
            log.exception("sandbox Telegram handler for %s crashed", method)
            call.ok, call.error_code = False, 500
            call.description = "Internal Server Error"
            return 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        call.result = copy.deepcopy(result)
        return 200, {"ok": True, "result": result}

    def _raise_injected(self, name: str) -> None:
        fault = self._faults.take(name)
        if fault is not None:
            raise ApiError(*fault)

    def _check_rate(self) -> None:
        if self.rate_limit is None:
            return
        now = time.monotonic()
        while self._sent and now - self._sent[0] >= 1.0:
            self._sent.popleft()
        if len(self._sent) >= self.rate_limit:
            retry = max(1, math.ceil(self._sent[0] + 1.0 - now)) if self._sent else 1
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)

    # ------------------------------------------------------------------ state helpers

    def _wake(self) -> None:
        """Wake everything waiting for a new update (long polls, webhook delivery)."""
        self._signal.set()
        self._signal = asyncio.Event()

    def _emit(self, event: JSON) -> None:
        for queue in self._subscribers:
            queue.put_nowait(copy.deepcopy(event))

    def _user(self, user_id: int) -> tuple[JSON, ChatState]:
        if user_id not in self.users:
            self.add_user(user_id)
        return self.users[user_id], self.chats[user_id]

    def _member_update(self, user_id: int, old: str, new: str) -> None:
        user, state = self._user(user_id)
        member = {"user": self.bot_user}
        self.queue_update("my_chat_member", {
            "chat": state.chat, "from": user, "date": int(time.time()),
            "old_chat_member": {**member, "status": old},
            "new_chat_member": {**member, "status": new, **({"until_date": 0} if new == "kicked" else {})},
        })

    def _chat(self, p: JSON, key: str = "chat_id", *, write: bool = True) -> ChatState:
        raw = p.get(key)
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        state = None
        if isinstance(raw, str) and raw.startswith("@"):
            state = next((s for s in self.chats.values()
                          if s.chat.get("username", "").lower() == raw[1:].lower()), None)
        else:
            with contextlib.suppress(TypeError, ValueError):
                state = self.chats.get(int(raw))
        if state is None:
            raise bad_request("chat not found")
        if write and state.chat["type"] == "private" and state.chat["id"] in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return state

    def _new_message(self, state: ChatState, sender: JSON | None, content: JSON, *,
                     from_bot: bool) -> JSON:
        msg: JSON = {"message_id": state.next_message_id(), "date": int(time.time()),
                     "chat": dict(state.chat)}
        if sender is not None:
            msg["from"] = dict(sender)
        else:
            msg["sender_chat"] = dict(state.chat)
        msg.update(content)
        state.messages[msg["message_id"]] = msg
        event: JSON = {"type": "message", "chat_id": state.chat["id"], "message": msg}
        if from_bot:
            state.bot_message_ids.add(msg["message_id"])
            event["reply_keyboard"] = state.reply_keyboard
        self._emit(event)
        return msg

    def _bot_post(self, state: ChatState, content: JSON, p: JSON) -> JSON:
        """Common part of the bot's send methods: reply, markup, protection, then store."""
        if (reply := self._reply_to(state, p)) is not None:
            content["reply_to_message"] = reply
        markup = self._markup(p)
        if markup and "inline_keyboard" in markup:
            if any(markup["inline_keyboard"]):
                content["reply_markup"] = markup
        elif markup:
            state.reply_keyboard = None if markup.get("remove_keyboard") else markup
        if _bool(p, "protect_content"):
            content["has_protected_content"] = True
        sender = None if state.chat["type"] == "channel" else self.bot_user
        return self._new_message(state, sender, content, from_bot=True)

    @staticmethod
    def _reply_to(state: ChatState, p: JSON) -> JSON | None:
        params = p.get("reply_parameters") if isinstance(p.get("reply_parameters"), dict) else {}
        message_id = (_int(params, "message_id", required=False)
                      or _int(p, "reply_to_message_id", required=False))
        if message_id is None:
            return None
        target = state.messages.get(message_id)
        if target is None:
            if params.get("allow_sending_without_reply") or _bool(p, "allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return {k: v for k, v in target.items() if k != "reply_to_message"}

    @staticmethod
    def _markup(p: JSON) -> JSON | None:
        markup = p.get("reply_markup")
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        markup = _clean(markup)
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise bad_request("text buttons are unallowed in the inline keyboard")
        return markup

    @staticmethod
    def _text(p: JSON, key: str = "text", *, limit: int = 4096) -> JSON:
        """Parse text or caption (+parse_mode / entities) into message content."""
        entities_key = "entities" if key == "text" else f"{key}_entities"
        raw = p.get(key)
        if key == "text" and (raw is None or raw == ""):
            raise bad_request("message text is empty")
        text, entities = parse_text(str(raw or ""), p.get("parse_mode"), p.get(entities_key))
        if key == "text" and not text.strip():
            raise bad_request("message text is empty")
        if utf16_len(text) > limit:
            raise bad_request("message is too long" if key == "text" else
                              "message caption is too long")
        content: JSON = {key: text} if text else {}
        if entities:
            content[entities_key] = entities
        return content

    def _target(self, p: JSON, action: str) -> tuple[ChatState, JSON]:
        if p.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        state = self._chat(p, write=action != "delete")
        message_id = _int(p, "message_id", empty="message identifier is not specified")
        msg = state.messages.get(message_id)  # type: ignore[arg-type]
        if msg is None:
            raise bad_request(f"message to {action} not found")
        if action == "edit" and message_id not in state.bot_message_ids:
            raise bad_request("message can't be edited")
        return state, msg

    def _apply_edit(self, state: ChatState, msg: JSON, content: JSON, keys: tuple[str, ...],
                    p: JSON) -> JSON:
        markup = self._markup(p)
        if markup and any(markup.get("inline_keyboard", [])):
            content["reply_markup"] = markup
        keys = (*keys, "reply_markup")
        if all(msg.get(k) == content.get(k) for k in keys):
            raise bad_request(NOT_MODIFIED)
        for key in keys:
            msg.pop(key, None)
        msg.update(content)
        msg["edit_date"] = int(time.time())
        self._emit({"type": "edit", "chat_id": state.chat["id"], "message": msg})
        return msg

    def _store_file(self, kind: str, raw: Any, p: JSON) -> JSON:
        if isinstance(raw, str) and raw.startswith("attach://"):
            raw = p.get(raw[len("attach://"):])
        n = next(self._file_ids)
        file: JSON = {"file_id": f"sandbox-{kind}-{n}", "file_unique_id": f"u{n}"}
        if isinstance(raw, UploadedFile):
            self.files[file["file_id"]] = raw.data
            self.file_meta[file["file_id"]] = {"content_type": raw.content_type,
                                               "file_name": raw.filename}
            file["file_size"] = len(raw.data)
            if kind == "document":
                file.update(file_name=raw.filename, mime_type=raw.content_type)
        elif isinstance(raw, str) and raw:
            self.files[file["file_id"]] = raw  # a URL or an earlier file_id
        else:
            raise bad_request(f"there is no {kind} in the request")
        if kind == "photo":
            file.update(width=1280, height=720)
        return file

    # ------------------------------------------------------------------ method handlers

    async def _get_me(self, p: JSON) -> JSON:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    async def _get_updates(self, p: JSON) -> list[JSON]:
        if self.webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset = _int(p, "offset", required=False) or 0
        limit = min(max(_int(p, "limit", required=False) or 100, 1), 100)
        try:
            timeout = max(float(p.get("timeout") or 0), 0.0)
        except ValueError:
            raise bad_request("invalid timeout specified") from None
        if isinstance(p.get("allowed_updates"), list):
            self._allowed_updates = list(p["allowed_updates"])
        if offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # terminates an older long poll with 409
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.updates and not self._closing and (left := deadline - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._signal.wait(), left)
            if generation != self._poll_generation:
                raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                    "make sure that only one bot instance is running")
        return copy.deepcopy(self.updates[:limit])

    async def _set_webhook(self, p: JSON) -> bool:
        url = str(p.get("url") or "")
        if not url:
            return await self._delete_webhook(p)
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get("secret_token") or None
        if secret is not None and not _SECRET_RE.fullmatch(str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if _bool(p, "drop_pending_updates"):
            self.updates.clear()
        if isinstance(p.get("allowed_updates"), list):
            self._allowed_updates = list(p["allowed_updates"])
        self.webhook = {"url": url, "secret_token": secret, "token": self._token,
                        "max_connections": _int(p, "max_connections", required=False) or 40}
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._deliver_webhook())
        self._wake()
        return True

    async def _delete_webhook(self, p: JSON) -> bool:
        self.webhook = None
        if _bool(p, "drop_pending_updates"):
            self.updates.clear()
        self._wake()
        return True

    async def _get_webhook_info(self, p: JSON) -> JSON:
        hook = self.webhook or {}
        info: JSON = {"url": hook.get("url", ""), "has_custom_certificate": False,
                      "pending_update_count": len(self.updates)}
        if hook:
            info["max_connections"] = hook["max_connections"]
            info["ip_address"] = "127.0.0.1"
            if self._allowed_updates:
                info["allowed_updates"] = self._allowed_updates
            for key in ("last_error_date", "last_error_message"):
                if key in hook:
                    info[key] = hook[key]
        return info

    async def _send_message(self, p: JSON) -> JSON:
        state = self._chat(p)
        return self._bot_post(state, self._text(p), p)

    async def _send_media(self, kind: str, p: JSON) -> JSON:
        state = self._chat(p)
        file = self._store_file(kind, p.get(kind), p)
        content = {kind: [file] if kind == "photo" else file, **self._text(p, "caption", limit=1024)}
        return self._bot_post(state, content, p)

    async def _edit_message_text(self, p: JSON) -> JSON:
        state, msg = self._target(p, "edit")
        content = self._text(p)
        if "text" not in msg:
            raise bad_request("there is no text in the message to edit")
        return self._apply_edit(state, msg, content, ("text", "entities"), p)

    async def _edit_message_caption(self, p: JSON) -> JSON:
        state, msg = self._target(p, "edit")
        if "text" in msg:
            raise bad_request("there is no caption in the message to edit")
        content = self._text(p, "caption", limit=1024)
        return self._apply_edit(state, msg, content, ("caption", "caption_entities"), p)

    async def _edit_message_reply_markup(self, p: JSON) -> JSON:
        state, msg = self._target(p, "edit")
        return self._apply_edit(state, msg, {}, (), p)

    async def _delete_message(self, p: JSON) -> bool:
        state, msg = self._target(p, "delete")
        del state.messages[msg["message_id"]]
        state.bot_message_ids.discard(msg["message_id"])
        self._emit({"type": "delete", "chat_id": state.chat["id"],
                    "message_id": msg["message_id"], "message": msg})
        return True

    async def _answer_callback(self, p: JSON) -> bool:
        query_id = str(p.get("callback_query_id") or "")
        user_id = self._open_queries.pop(query_id, None)
        if user_id is None:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        self.callback_answers[query_id] = _clean(dict(p))
        self._emit({"type": "callback_answer", "chat_id": user_id, "callback_query_id": query_id,
                    "answer": self.callback_answers[query_id]})
        return True

    def _commands_key(self, p: JSON) -> tuple[str, str]:
        scope = p.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise bad_request("can't parse BotCommandScope JSON object")
        if "chat_id" in scope:
            self._chat({"chat_id": scope["chat_id"]}, write=False)
        return json.dumps(_clean(scope), sort_keys=True), str(p.get("language_code") or "")

    async def _set_my_commands(self, p: JSON) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise bad_request("commands is empty" if commands is None else
                              "can't parse commands JSON object")
        for command in commands:
            if not _BOT_COMMAND_RE.fullmatch(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("command description is empty")
        key = self._commands_key(p)
        self.my_commands[key] = [{"command": c["command"], "description": c["description"]}
                                 for c in commands]
        self._emit({"type": "commands", "chat_id": None, "scope": key[0], "language_code": key[1],
                    "commands": self.my_commands[key]})
        return True

    async def _get_my_commands(self, p: JSON) -> list[JSON]:
        return self.my_commands.get(self._commands_key(p), [])

    async def _delete_my_commands(self, p: JSON) -> bool:
        self.my_commands.pop(self._commands_key(p), None)
        return True

    async def _send_chat_action(self, p: JSON) -> bool:
        state = self._chat(p)
        action = p.get("action")
        if not action:
            raise bad_request("action is empty")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._emit({"type": "chat_action", "chat_id": state.chat["id"], "action": action})
        return True

    def _source(self, p: JSON, action: str) -> tuple[ChatState, JSON]:
        state = self._chat(p, "from_chat_id", write=False)
        message_id = _int(p, "message_id", empty="message identifier is not specified")
        msg = state.messages.get(message_id)  # type: ignore[arg-type]
        if msg is None:
            raise bad_request(f"message to {action} not found")
        return state, msg

    async def _forward_message(self, p: JSON) -> JSON:
        dest = self._chat(p)
        source, msg = self._source(p, "forward")
        content = {k: copy.deepcopy(v) for k, v in msg.items() if k not in _META_KEYS}
        if "forward_origin" in msg:
            content["forward_origin"] = msg["forward_origin"]
        elif source.chat["type"] == "channel":
            content["forward_origin"] = {"type": "channel", "date": msg["date"],
                                         "chat": source.chat, "message_id": msg["message_id"]}
        else:
            content["forward_origin"] = {"type": "user", "date": msg["date"],
                                         "sender_user": msg.get("from", self.bot_user)}
        sender = None if dest.chat["type"] == "channel" else self.bot_user
        if _bool(p, "protect_content"):
            content["has_protected_content"] = True
        return self._new_message(dest, sender, content, from_bot=True)

    async def _copy_message(self, p: JSON) -> JSON:
        dest = self._chat(p)
        _, msg = self._source(p, "copy")
        content = {k: copy.deepcopy(v) for k, v in msg.items() if k not in _META_KEYS}
        if "caption" in p and "text" not in msg:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self._text(p, "caption", limit=1024))
        return {"message_id": self._bot_post(dest, content, p)["message_id"]}

    # ------------------------------------------------------------------ payments (Telegram Stars)
    # Error texts: REPLY_MARKUP_BUY_EMPTY, QUERY_ID_INVALID, CHARGE_ALREADY_REFUNDED,
    # STARS_INVOICE_INVALID, CURRENCY_INVALID and 'parameter "x" is required' are Telegram's own;
    # the other names follow Telegram's style but are the sandbox's guesses.

    def _invoice_params(self, p: JSON, *, link: bool) -> Invoice:
        for key in ("title", "description", "payload", "currency", "prices"):
            if p.get(key) is None or p.get(key) == "":
                raise bad_request(f'parameter "{key}" is required')
        title, description, payload = str(p["title"]), str(p["description"]), str(p["payload"])
        currency = str(p["currency"])
        if not 1 <= len(title) <= 32:
            raise bad_request("INVOICE_TITLE_INVALID")
        if not 1 <= len(description) <= 255:
            raise bad_request("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode()) <= 128:
            raise bad_request("INVOICE_PAYLOAD_INVALID")
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise bad_request("CURRENCY_INVALID")
        if currency != STARS:  # the sandbox has no card payment providers
            raise bad_request("PAYMENT_PROVIDER_INVALID")
        prices = p["prices"]
        if not isinstance(prices, list):
            raise bad_request("can't parse prices JSON object")
        clean: list[JSON] = []
        for price in prices:
            if not isinstance(price, dict) or not price.get("label") or \
                    not isinstance(price.get("amount"), int) or isinstance(price["amount"], bool):
                raise bad_request("can't parse prices JSON object")
            clean.append({"label": str(price["label"]), "amount": price["amount"]})
        if p.get("provider_token") or len(clean) != 1 or p.get("max_tip_amount") or \
                p.get("suggested_tip_amounts"):
            raise bad_request("STARS_INVOICE_INVALID")
        if clean[0]["amount"] <= 0:
            raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
        period = _int(p, "subscription_period", required=False) if link else None
        if period is not None:
            if period != SUBSCRIPTION_PERIOD:
                raise bad_request("SUBSCRIPTION_PERIOD_INVALID")
            if clean[0]["amount"] > MAX_SUBSCRIPTION_STARS:
                raise bad_request("STARS_INVOICE_INVALID")
        slug = secrets.token_urlsafe(12)
        return Invoice(slug, title, description, payload, currency, clean,
                       start_parameter=str(p.get("start_parameter") or ""), subscription_period=period,
                       photo_url=p.get("photo_url") or None)

    async def _send_invoice(self, p: JSON) -> JSON:
        state = self._chat(p)
        record = self._invoice_params(p, link=False)
        markup = self._markup(p)
        rows = (markup or {}).get("inline_keyboard") or []
        if any(rows) and not (rows[0] and rows[0][0].get("pay")):
            raise bad_request("REPLY_MARKUP_BUY_EMPTY")  # a keyboard's first button must be Pay
        msg = self._bot_post(state, {"invoice": record.to_json()}, p)
        record.chat_id, record.message_id = state.chat["id"], msg["message_id"]
        self.invoices[record.slug] = record
        return msg

    async def _create_invoice_link(self, p: JSON) -> str:
        record = self._invoice_params(p, link=True)
        record.link = f"{self.base_url or 'http://sandbox.invalid'}/sandbox/invoice/{record.slug}"
        self.invoices[record.slug] = record
        self._emit({"type": "invoice_link", "chat_id": None, "link": record.link,
                    "invoice": record.to_json()})
        return record.link

    async def _answer_pre_checkout(self, p: JSON) -> bool:
        query_id = str(p.get("pre_checkout_query_id") or "")
        if not query_id:
            raise bad_request('parameter "pre_checkout_query_id" is required')
        if p.get("ok") is None:
            raise bad_request('parameter "ok" is required')
        ok = _bool(p, "ok")
        message = str(p.get("error_message") or "")
        if not ok and not message:
            raise bad_request("ERROR_TEXT_EMPTY")
        if query_id not in self._pending_checkouts:
            raise bad_request("QUERY_ID_INVALID")  # unknown, answered, or past the 10 s
        future, payment = self._pending_checkouts.pop(query_id)
        answer = {"ok": ok, **({"error_message": message} if not ok else {})}
        self.pre_checkout_answers[query_id] = answer
        if not future.done():
            future.set_result(answer)
        self._emit({"type": "pre_checkout_answer", "chat_id": payment.user_id,
                    "pre_checkout_query_id": query_id, **answer})
        return True

    def _payment(self, p: JSON) -> StarPayment:
        user_id = _int(p, "user_id", empty='parameter "user_id" is required')
        charge_id = str(p.get("telegram_payment_charge_id") or "")
        if not charge_id:
            raise bad_request('parameter "telegram_payment_charge_id" is required')
        payment = self.payments.get(charge_id)
        if payment is None or payment.user_id != user_id:
            raise bad_request("CHARGE_NOT_FOUND")
        return payment

    async def _refund_star_payment(self, p: JSON) -> bool:
        payment = self._payment(p)
        if payment.refunded:
            raise bad_request("CHARGE_ALREADY_REFUNDED")
        payment.refunded = True
        user, state = self._user(payment.user_id)
        self.star_transactions.append({
            "id": payment.charge_id, "amount": payment.total_amount, "date": int(self.clock()),
            "receiver": {"type": "user", "transaction_type": "invoice_payment", "user": user,
                         "invoice_payload": payment.invoice.payload}})
        refund = {"currency": payment.invoice.currency, "total_amount": payment.total_amount,
                  "invoice_payload": payment.invoice.payload,
                  "telegram_payment_charge_id": payment.charge_id,
                  "provider_payment_charge_id": payment.provider_charge_id}
        message = self._new_message(state, user, {"refunded_payment": refund}, from_bot=False)
        self.queue_update("message", message)
        return True

    async def _get_star_transactions(self, p: JSON) -> JSON:
        offset = max(_int(p, "offset", required=False) or 0, 0)
        limit = min(max(_int(p, "limit", required=False) or 100, 1), 100)
        return {"transactions": copy.deepcopy(self.star_transactions[offset:offset + limit])}

    async def _edit_user_star_subscription(self, p: JSON) -> bool:
        payment = self._payment(p)
        if payment.subscription_expiration_date is None:
            raise bad_request("CHARGE_NOT_FOUND")
        if p.get("is_canceled") is None:
            raise bad_request('parameter "is_canceled" is required')
        payment.canceled = _bool(p, "is_canceled")
        return True

    # ------------------------------------------------------------------ channels and members

    def _channel(self, p: JSON) -> ChatState:
        state = self._chat(p, write=False)
        if state.chat["type"] == "private":
            raise bad_request("method is available for supergroup and channel chats only")
        return state

    def _member_user(self, p: JSON) -> JSON:
        user_id = _int(p, "user_id", empty='parameter "user_id" is required')
        if not user_id or user_id <= 0:
            raise bad_request("user not found")
        return dict(self.users.get(user_id) or {"id": user_id, "is_bot": False,
                                                  "first_name": f"User {user_id}"})

    async def _create_chat_invite_link(self, p: JSON) -> JSON:
        state = self._channel(p)
        name = str(p.get("name") or "")
        expire = _int(p, "expire_date", required=False)
        limit = _int(p, "member_limit", required=False)
        join_request = _bool(p, "creates_join_request")
        if len(name) > 32:
            raise bad_request("invite link name is too long")
        if limit is not None and not 1 <= limit <= 99_999:
            raise bad_request("USAGE_LIMIT_INVALID")
        if join_request and limit:
            raise bad_request("member limit can't be specified for links requiring administrator approval")
        if expire and expire <= self.clock():
            raise bad_request("EXPIRE_DATE_INVALID")
        info: JSON = {"invite_link": f"https://t.me/+sandbox{secrets.token_urlsafe(12)}",
                      "creator": dict(self.bot_user), "creates_join_request": join_request,
                      "is_primary": False, "is_revoked": False}
        if name:
            info["name"] = name
        if expire:
            info["expire_date"] = expire
        if limit:
            info["member_limit"] = limit
        self.invite_links[info["invite_link"]] = InviteLink(state.chat["id"], info)
        self._emit({"type": "invite_link", "chat_id": state.chat["id"], "invite_link": info})
        return copy.deepcopy(info)

    async def _revoke_chat_invite_link(self, p: JSON) -> JSON:
        state = self._channel(p)
        record = self.invite_links.get(str(p.get("invite_link") or ""))
        if record is None or record.chat_id != state.chat["id"]:
            raise bad_request("INVITE_HASH_EXPIRED")
        record.info["is_revoked"] = True
        return copy.deepcopy(record.info)

    async def _ban_chat_member(self, p: JSON) -> bool:
        state = self._channel(p)
        user = self._member_user(p)
        if user["id"] == self.bot_user["id"]:
            raise bad_request("can't restrict self")
        until = _int(p, "until_date", required=False) or 0
        now = self.clock()
        if until and not now + 30 <= until <= now + 366 * 86400:
            until = 0  # Telegram: under 30 s or over 366 days means forever
        self._set_member(state.chat["id"], user, {"status": "kicked", "user": user, "until_date": until},
                         actor=self.bot_user)
        return True

    async def _unban_chat_member(self, p: JSON) -> bool:
        state = self._channel(p)
        user = self._member_user(p)
        status = self.member_status(state.chat["id"], user["id"])["status"]
        # Without only_if_banned a member is removed too: afterwards they are not in the chat
        # but may join again.
        if status == "kicked" or (status in _MEMBER_STATUSES and not _bool(p, "only_if_banned")):
            self._set_member(state.chat["id"], user, {"status": "left", "user": user}, actor=self.bot_user)
        return True

    async def _get_chat_member(self, p: JSON) -> JSON:
        state = self._chat(p, write=False)
        user = self._member_user(p)
        if state.chat["type"] == "private":
            if user["id"] not in (state.chat["id"], self.bot_user["id"]):
                raise bad_request("user not found")
            return {"status": "member", "user": user}
        return self.member_status(state.chat["id"], user["id"])

    async def _get_chat(self, p: JSON) -> JSON:
        state = self._chat(p, write=False)
        gifts = dict.fromkeys(("unlimited_gifts", "limited_gifts", "unique_gifts",
                               "premium_subscription", "gifts_from_channels"), False)
        return {**state.chat, "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": gifts}

    # ------------------------------------------------------------------ webhook delivery

    async def _deliver_webhook(self) -> None:
        """POST pending updates to the webhook URL as Telegram does: up to ``max_connections`` requests at
        once, one at a time per chat (a chat's updates arrive in order), each retried until answered 2xx."""
        busy: dict[object, asyncio.Task[None]] = {}  # chat -> the delivery of its oldest pending update
        try:
            while self.webhook and not self._closing:
                hook, woken = self.webhook, self._signal
                for update in list(self.updates):
                    if len(busy) >= hook["max_connections"]:
                        break
                    chat = update_chat(update)
                    if chat not in busy:
                        busy[chat] = asyncio.create_task(self._deliver_one(hook, update, chat, busy))
                await woken.wait()
        finally:
            for task in busy.values():
                task.cancel()
            await asyncio.gather(*busy.values(), return_exceptions=True)

    async def _deliver_one(self, hook: JSON, update: JSON, chat: object,
                           busy: dict[object, asyncio.Task[None]]) -> None:
        try:
            while self.webhook is hook and self._pending_index(update) is not None:
                if await self._post_update(hook, update):
                    if (at := self._pending_index(update)) is not None:
                        del self.updates[at]
                    break
                await asyncio.sleep(self.webhook_retry_delay)
        finally:
            busy.pop(chat, None)
            self._wake()

    def _pending_index(self, update: JSON) -> int | None:
        """Where ``update`` (this very object) is in the pending list, if still there."""
        return next((i for i, pending in enumerate(self.updates) if pending is update), None)

    async def _post_update(self, hook: JSON, update: JSON) -> bool:
        headers = {}
        if hook["secret_token"]:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
        if self._client is None:
            self._client = aiohttp.ClientSession()
        try:
            async with self._client.post(
                hook["url"], json=update, headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as resp:
                body = await resp.read()
                if not 200 <= resp.status < 300:
                    raise ValueError(f"Wrong response from the webhook: {resp.status} {resp.reason}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            hook["last_error_date"] = int(time.time())
            hook["last_error_message"] = str(err) or type(err).__name__
            return False
        # Telegram executes a method call returned as the webhook response body.
        with contextlib.suppress(ValueError):
            reply = json.loads(body) if body else None
            if isinstance(reply, dict) and isinstance(reply.get("method"), str):
                params = {k: v for k, v in reply.items() if k != "method"}
                await self.execute(reply["method"], params, hook["token"])
        return True


def update_chat(update: JSON) -> object:
    """The chat (else the user) an update is about: Telegram delivers one chat's updates in order."""
    for kind, body in update.items():
        if kind == "update_id" or not isinstance(body, dict):
            continue
        chat = body.get("chat") or (body.get("message") or {}).get("chat")
        if isinstance(chat, dict):
            return chat.get("id")
        if isinstance(body.get("from"), dict):
            return body["from"].get("id")
    return ("update", update.get("update_id"))


# ---------------------------------------------------------------------- entity parsing


class _Builder:
    """Accumulates plain text and entities (offsets in UTF-16 code units)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[JSON] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += utf16_len(text)

    def entity(self, kind: str, begin: int, **extra: Any) -> None:
        if self.pos > begin:
            self.entities.append({"type": kind, "offset": begin, "length": self.pos - begin,
                                  **extra})

    def result(self) -> tuple[str, list[JSON]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


def _parse_error(text: str) -> ApiError:
    return bad_request(f"can't parse entities: {text}")


def parse_text(text: str, parse_mode: str | None, entities: Any = None) -> tuple[str, list[JSON]]:
    """Turn text + parse_mode (or explicit entities) into (plain text, entities) like Telegram."""
    if isinstance(entities, list) and entities:
        return text, _clean(entities)
    mode = (parse_mode or "").lower()
    if mode == "html":
        return _parse_html(text)
    if mode in ("markdown", "markdownv2"):
        return _parse_markdown(text, v2=mode == "markdownv2")
    if mode:
        raise bad_request("unsupported parse_mode")
    return text, []


_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "span": "spoiler", "code": "code", "pre": "pre", "a": "text_link",
    "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}
_HTML_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_ATTR_RE = re.compile(r"""([a-zA-Z][\w-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


def _parse_html(src: str) -> tuple[str, list[JSON]]:
    """Telegram's HTML subset; errors mirror Telegram's "can't parse entities" texts."""
    out, stack, i, n = _Builder(), [], 0, len(src)

    def offset(k: int) -> int:
        return len(src[:k].encode())

    while i < n:
        if src[i] == "&":
            match = _HTML_ENTITY_RE.match(src, i)
            out.add(html.unescape(match.group()) if match else "&")
            i = match.end() if match else i + 1
            continue
        if src[i] != "<":
            j = min((k for k in (src.find("<", i), src.find("&", i)) if k >= 0), default=n)
            out.add(src[i:j])
            i = j
            continue
        start, closing = i, src.startswith("</", i)
        j = i + (2 if closing else 1)
        while j < n and not src[j].isspace() and src[j] != ">":
            j += 1
        name, end = src[i + (2 if closing else 1):j].lower(), src.find(">", j)
        if closing:
            if not stack:
                raise _parse_error(f"Unexpected end tag at byte offset {offset(start)}")
            tag, begin, attrs = stack[-1]
            if name and name != tag:
                raise _parse_error(f'Unmatched end tag at byte offset {offset(start)}, '
                                   f'expected "</{tag}>", found "</{name}>"')
            if end < 0 or src[j:end].strip():
                raise _parse_error(f'Can\'t find end tag corresponding to start tag "{tag}"')
            stack.pop()
            extra: JSON = {}
            if tag == "a":
                extra["url"] = attrs.get("href", "")
            elif tag == "tg-emoji":
                extra["custom_emoji_id"] = attrs.get("emoji-id", "")
            elif tag == "pre" and attrs.get("language"):
                extra["language"] = attrs["language"]
            kind = _HTML_TAGS[tag]
            if tag == "blockquote" and "expandable" in attrs:
                kind = "expandable_blockquote"
            if tag == "code" and stack and stack[-1][0] == "pre" and begin == stack[-1][1]:
                language = attrs.get("class", "").removeprefix("language-")
                if language:
                    stack[-1][2]["language"] = language
            else:
                out.entity(kind, begin, **extra)
            i = end + 1
            continue
        if j >= n:
            raise _parse_error(f"Unclosed start tag at byte offset {offset(start)}")
        if name not in _HTML_TAGS:
            raise _parse_error(f'Unsupported start tag "{name}" at byte offset {offset(start)}')
        if end < 0:
            raise _parse_error(f"Unclosed start tag at byte offset {offset(start)}")
        attrs = {m.group(1).lower(): html.unescape(next((g for g in m.groups()[1:] if g), ""))
                 for m in _ATTR_RE.finditer(src[j:end])}
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _parse_error('Tag "span" must have class "tg-spoiler"')
        stack.append((name, out.pos, attrs))
        i = end + 1
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


_MD_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD_KINDS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough",
             "||": "spoiler", "[": "text_link", "`": "code", "```": "pre"}
_MD_NAMES = {"bold": "Bold", "italic": "Italic", "underline": "Underline",
             "strikethrough": "Strikethrough", "spoiler": "Spoiler", "text_link": "TextUrl",
             "code": "Code", "pre": "Pre"}


def _parse_markdown(src: str, *, v2: bool) -> tuple[str, list[JSON]]:
    """MarkdownV2 (nesting, escapes, reserved characters) or legacy Markdown (no nesting).
    Blockquotes (``>``) are not parsed; ``>`` at a line start is kept as text."""
    out, stack, i, n = _Builder(), [], 0, len(src)
    escapable = None if v2 else "_*`["

    def fail(marker: str, at: int) -> ApiError:
        offset = len(src[:at].encode())
        if not v2:
            return _parse_error(f"Can't find end of the entity starting at byte offset {offset}")
        return _parse_error(f"Can't find end of {_MD_NAMES[_MD_KINDS[marker]]} entity at byte "
                            f"offset {offset}")

    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n and (src[i + 1] in escapable if escapable else
                                        ord(src[i + 1]) < 127):
            out.add(src[i + 1])
            i += 2
            continue
        if c == "`":  # code / pre: content is literal (backslash escapes only)
            tick = "```" if src.startswith("```", i) else "`"
            j, language = i + len(tick), ""
            if tick == "```" and (newline := src.find("\n", j)) >= 0 and \
                    re.fullmatch(r"[\w+-]*", src[j:newline]):
                language, j = src[j:newline], newline + 1
            begin, k = out.pos, j
            while k < n and not src.startswith(tick, k):
                step = 2 if v2 and src[k] == "\\" and k + 1 < n else 1
                out.add(src[k + step - 1])
                k += step
            if k >= n:
                raise fail(tick, i)
            out.entity(_MD_KINDS[tick], begin, **({"language": language} if language else {}))
            i = k + len(tick)
            continue
        if v2:
            marker = next((m for m in ("||", "__") if src.startswith(m, i)), None)
            marker = marker or (c if c in "*_~[" else None)
        else:
            marker = c if c in "*_[" else None
        if marker and stack and stack[-1][0] == marker and marker != "[":
            _, begin, _ = stack.pop()
            out.entity(_MD_KINDS[marker], begin)
            i += len(marker)
            continue
        if marker and (v2 or not stack):
            stack.append((marker, out.pos, i))
            i += len(marker)
            continue
        if c == "]" and stack and stack[-1][0] == "[":
            _, begin, at = stack.pop()
            i += 1
            url = None
            if src.startswith("(", i):
                close = i + 1
                while close < n and src[close] != ")":
                    close += 2 if v2 and src[close] == "\\" else 1
                if close >= n:
                    raise fail("[", at)
                url = re.sub(r"\\(.)", r"\1", src[i + 1:close]) if v2 else src[i + 1:close]
                i = close + 1
            if url is not None or v2:
                out.entity("text_link", begin, url=url if url is not None else "")
            continue
        if v2 and c in _MD_RESERVED and not (c == ">" and (i == 0 or src[i - 1] == "\n")):
            raise _parse_error(f"Character '{c}' is reserved and must be escaped with the "
                               "preceding '\\'")
        out.add(c)
        i += 1
    if stack:
        raise fail(stack[-1][0], stack[-1][2])
    return out.result()
