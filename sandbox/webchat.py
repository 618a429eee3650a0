"""The sandbox's web chat: a page where a person talks to the bot as one or more Telegram users.

Mounted on the Telegram stand-in's aiohttp app (same port), so it must be created before the
stand-in starts::

    telegram = TelegramStandIn()
    chat = WebChat(telegram, admin_id=1000)
    await telegram.start(port=8081)
    print(chat.url)                      # http://127.0.0.1:8081/sandbox/

The page (``sandbox/static/``: plain HTML, CSS and JavaScript, no build step) renders messages from
their entities with DOM text nodes only, never as HTML, and is served with a strict
Content-Security-Policy (no inline script), so hostile text and names stay text.

JSON API (``/sandbox/api``; errors are ``{"error": text}`` with a 4xx status):

=======================================  ===================================================
``GET  /state``                          bot, admin id, users, channels
``GET  /users`` / ``POST /users``        list / create or update ``{id?, first_name, language_code?, username?}``
``POST /users/{id}/block``               ``{"blocked": bool}``: the user blocks / unblocks the bot
``GET  /chats/{chat_id}``                chat, messages (current state), reply keyboard, channel members
``GET  /commands?user_id=``              the command menu Telegram would show this user
``POST /send``                           ``{user_id, text}``: the user writes to the bot
``POST /press``                          ``{user_id, message_id, data}``: taps a callback button
``POST /pay``                            ``{user_id, message_id? | invoice?}``: pays (pre-checkout round trip)
``GET  /invoices/{slug}``                an invoice link's invoice
``POST /join``                           ``{user_id, link}``: opens a channel invite link
``GET  /events``                         Server-Sent Events: everything the stand-in publishes
=======================================  ===================================================

Files the bot sent are served at ``/sandbox/files/{file_id}``. The page's own wording is English or
Russian (``static/i18n.js``); its operator panel's API (``/sandbox/api/operator``) is
sandbox/operator_panel.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.telegram import JoinRefused, TelegramStandIn

log = logging.getLogger(__name__)

JSON = dict[str, Any]
STATIC = Path(__file__).with_name("static")
PREFIX = "/sandbox"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SAFE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
FIRST_USER_ID = 1001
MAX_USER_ID = 2**52
KEEPALIVE_SECONDS = 15.0
_LANGUAGE_RE = re.compile(r"[a-z]{2}(?:-[A-Za-z]{2,4})?")
_USERNAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{4,31}")
_CLOSE: JSON = {"type": "_close"}


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def json_route(handler: Any) -> Any:
    """An aiohttp handler from ``handler(request, body) -> result``: the body must be a JSON object (POST),
    the result is sent as JSON, an ``ApiError`` as ``{"error": text}`` with its status."""
    async def wrapped(request: web.Request) -> web.Response:
        try:
            body: JSON = {}
            if request.method == "POST" and request.can_read_body:
                try:
                    body = await request.json()
                except ValueError:
                    raise ApiError(400, "the body must be a JSON object") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "the body must be a JSON object")
            result, status = await handler(request, body), 200
        except ApiError as err:
            result, status = {"error": err.text}, err.status
        return web.json_response(result, status=status, headers={
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    return wrapped


class WebChat:
    """Routes of the web chat on ``telegram.app``; see the module docstring."""

    def __init__(self, telegram: TelegramStandIn, *, admin_id: int = 1000,
                 admin_ids: list[int] | None = None) -> None:
        self.telegram = telegram
        #: The user the page's "act as admin" switch selects.
        self.admin_id = admin_id
        self.admin_ids = set(admin_ids or [admin_id])
        self._queues: set[asyncio.Queue[JSON]] = set()
        app = telegram.app
        api = f"{PREFIX}/api"
        app.router.add_get("/", self._root)
        app.router.add_get(PREFIX, self._root)
        app.router.add_get(f"{PREFIX}/", self._index)
        app.router.add_get(f"{PREFIX}/invoice/{{slug}}", self._index)
        app.router.add_get(f"{PREFIX}/static/{{name}}", self._static)
        app.router.add_get(f"{PREFIX}/files/{{file_id}}", self._file)
        app.router.add_get(f"{api}/state", json_route(self._state))
        app.router.add_get(f"{api}/users", json_route(self._users))
        app.router.add_post(f"{api}/users", json_route(self._create_user))
        app.router.add_post(f"{api}/users/{{user_id}}/block", json_route(self._block))
        app.router.add_get(f"{api}/chats/{{chat_id}}", json_route(self._chat))
        app.router.add_get(f"{api}/commands", json_route(self._commands))
        app.router.add_post(f"{api}/send", json_route(self._send))
        app.router.add_post(f"{api}/press", json_route(self._press))
        app.router.add_post(f"{api}/pay", json_route(self._pay))
        app.router.add_get(f"{api}/invoices/{{slug}}", json_route(self._invoice))
        app.router.add_post(f"{api}/join", json_route(self._join))
        app.router.add_get(f"{api}/events", self._events)
        app.on_shutdown.append(self._close_streams)

    @property
    def url(self) -> str:
        """The page's address (once the stand-in is started)."""
        if not self.telegram.base_url:
            raise RuntimeError("the Telegram stand-in is not started")
        return f"{self.telegram.base_url}{PREFIX}/"

    # ------------------------------------------------------------------ driving helpers

    def ensure_user(self, user_id: int, first_name: str, language_code: str = "en",
                    username: str | None = None) -> JSON:
        """Create the user unless they exist (keeps an existing user's name and language)."""
        if user_id in self.telegram.users:
            return dict(self.telegram.users[user_id])
        user = self.telegram.add_user(user_id, first_name, username=username, language_code=language_code)
        self.telegram.publish({"type": "user", "chat_id": None, "user": self._user_json(user_id)})
        return user

    def next_user_id(self) -> int:
        taken = set(self.telegram.users) | self.admin_ids | {self.telegram.bot_user["id"]}
        user_id = FIRST_USER_ID
        while user_id in taken:
            user_id += 1
        return user_id

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _int(value: Any, name: str) -> int:
        if isinstance(value, bool):
            raise ApiError(400, f"{name} must be an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"{name} must be an integer") from None

    def _known_user(self, value: Any) -> int:
        user_id = self._int(value, "user_id")
        if user_id not in self.telegram.users:
            raise ApiError(404, f"no user {user_id}; create it first")
        return user_id

    def _user_json(self, user_id: int) -> JSON:
        user = dict(self.telegram.users[user_id])
        user["is_admin"] = user_id in self.admin_ids
        user["blocked"] = user_id in self.telegram.blocked
        return user

    def _channels(self) -> list[JSON]:
        return [dict(s.chat) for s in self.telegram.chats.values() if s.chat["type"] == "channel"]

    # ------------------------------------------------------------------ pages and files

    async def _root(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{PREFIX}/")

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(body=(STATIC / "index.html").read_bytes(), content_type="text/html",
                            charset="utf-8", headers={"Content-Security-Policy": CSP,
                                                      "X-Content-Type-Options": "nosniff",
                                                      "Referrer-Policy": "no-referrer",
                                                      "Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        path = STATIC / name
        if "/" in name or name.startswith(".") or path.suffix not in types or not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(), content_type=types[path.suffix], charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        seen: set[str] = set()
        data = self.telegram.files.get(file_id)
        while isinstance(data, str) and data in self.telegram.files and data not in seen:
            seen.add(data)  # sent again by file_id: follow it to the upload
            file_id, data = data, self.telegram.files[data]
        if isinstance(data, str) and data.startswith(("http://", "https://")):
            raise web.HTTPFound(data)
        if not isinstance(data, bytes):
            raise web.HTTPNotFound()
        meta = self.telegram.file_meta.get(file_id, {})
        content_type = str(meta.get("content_type") or "application/octet-stream").lower()
        headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
        if content_type not in SAFE_IMAGES:  # anything else downloads, never renders as a page
            name = re.sub(r"[^\w.\- ]", "_", str(meta.get("file_name") or file_id))[:100]
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
            if content_type.startswith(("text/html", "image/svg", "application/xhtml", "text/xml")):
                content_type = "application/octet-stream"
        return web.Response(body=data, content_type=content_type, headers=headers)

    # ------------------------------------------------------------------ API

    async def _state(self, request: web.Request, body: JSON) -> JSON:
        return {"bot": dict(self.telegram.bot_user), "admin_id": self.admin_id,
                "admin_ids": sorted(self.admin_ids), "users": await self._users(request, body),
                "channels": self._channels(),
                "pre_checkout_timeout": self.telegram.pre_checkout_timeout}

    async def _users(self, request: web.Request, body: JSON) -> list[JSON]:
        return [self._user_json(uid) for uid in sorted(self.telegram.users)]

    async def _create_user(self, request: web.Request, body: JSON) -> JSON:
        user_id = self.next_user_id() if body.get("id") in (None, "") else self._int(body["id"], "id")
        if not 1 <= user_id < MAX_USER_ID or user_id == self.telegram.bot_user["id"]:
            raise ApiError(400, "id must be a positive Telegram user id (not the bot's)")
        first_name = str(body.get("first_name") or "").strip()
        if not 1 <= len(first_name) <= 64:
            raise ApiError(400, "first_name must be 1-64 characters")
        language = str(body.get("language_code") or "en").strip()
        if not _LANGUAGE_RE.fullmatch(language):
            raise ApiError(400, "language_code must look like en or ru")
        username = str(body.get("username") or "").strip().lstrip("@") or None
        if username and not _USERNAME_RE.fullmatch(username):
            raise ApiError(400, "username must be 5-32 letters, digits or _")
        self.telegram.add_user(user_id, first_name, username=username, language_code=language)
        user = self._user_json(user_id)
        self.telegram.publish({"type": "user", "chat_id": None, "user": user})
        return user

    async def _block(self, request: web.Request, body: JSON) -> JSON:
        user_id = self._known_user(request.match_info["user_id"])
        blocked = bool(body.get("blocked", True))
        if blocked and user_id not in self.telegram.blocked:
            self.telegram.block(user_id)
        elif not blocked and user_id in self.telegram.blocked:
            self.telegram.unblock(user_id)
        user = self._user_json(user_id)
        self.telegram.publish({"type": "user", "chat_id": None, "user": user})
        return user

    async def _chat(self, request: web.Request, body: JSON) -> JSON:
        chat_id = self._int(request.match_info["chat_id"], "chat_id")
        state = self.telegram.chats.get(chat_id)
        if state is None:
            raise ApiError(404, f"no chat {chat_id}")
        result: JSON = {"chat": dict(state.chat), "messages": self.telegram.chat_messages(chat_id),
                        "reply_keyboard": state.reply_keyboard}
        if state.chat["type"] == "channel":
            result["members"] = self.telegram.channel_members(chat_id)
            result["invite_links"] = [dict(r.info, joined=r.joined)
                                      for r in self.telegram.invite_links.values() if r.chat_id == chat_id]
        else:
            result["user"] = self._user_json(chat_id) if chat_id in self.telegram.users else None
        return result

    async def _commands(self, request: web.Request, body: JSON) -> JSON:
        """Telegram's scope precedence for a private chat: chat, all private chats, default;
        each with the user's language first."""
        user_id = self._known_user(request.query.get("user_id"))
        language = str(self.telegram.users[user_id].get("language_code") or "")
        for scope in ({"type": "chat", "chat_id": user_id}, {"type": "all_private_chats"}, None):
            for lang in ([language] if language else []) + [""]:
                commands = self.telegram.commands(scope, lang)
                if commands:
                    return {"commands": commands}
        return {"commands": []}

    async def _send(self, request: web.Request, body: JSON) -> JSON:
        user_id = self._known_user(body.get("user_id"))
        text = str(body.get("text") or "")
        if not text.strip():
            raise ApiError(400, "text is empty")
        if len(text) > 4096:
            raise ApiError(400, "text is longer than 4096 characters")
        return {"message": self.telegram.send_text(user_id, text)}

    async def _press(self, request: web.Request, body: JSON) -> JSON:
        user_id = self._known_user(body.get("user_id"))
        message_id = self._int(body.get("message_id"), "message_id")
        try:
            query_id = self.telegram.press(user_id, message_id, str(body.get("data") or ""))
        except ValueError as err:
            raise ApiError(404, str(err)) from None
        return {"callback_query_id": query_id}

    async def _pay(self, request: web.Request, body: JSON) -> JSON:
        user_id = self._known_user(body.get("user_id"))
        invoice = body.get("invoice") or body.get("message_id")
        if invoice is not None and not isinstance(invoice, (int, str)):
            raise ApiError(400, "invoice must be a message id or an invoice link")
        try:
            return await self.telegram.pay_invoice(user_id, invoice)
        except ValueError as err:
            raise ApiError(404, str(err)) from None

    async def _invoice(self, request: web.Request, body: JSON) -> JSON:
        record = self.telegram.invoices.get(request.match_info["slug"])
        if record is None or record.link is None:
            raise ApiError(404, "no such invoice link")
        return {"slug": record.slug, "link": record.link, **record.to_json(), "prices": record.prices,
                "subscription_period": record.subscription_period}

    async def _join(self, request: web.Request, body: JSON) -> JSON:
        user_id = self._known_user(body.get("user_id"))
        link = str(body.get("link") or "")
        try:
            member = self.telegram.join_via_link(user_id, link)
        except JoinRefused as err:
            return {"ok": False, "error": err.code}
        chat_id = self.telegram.invite_links[link].chat_id
        return {"ok": True, "member": member, "chat": dict(self.telegram.chats[chat_id].chat)}

    # ------------------------------------------------------------------ live updates

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no", "X-Content-Type-Options": "nosniff"})
        await response.prepare(request)
        queue = self.telegram.subscribe()
        self._queues.add(queue)
        try:
            await response.write(b"retry: 1000\n\nevent: hello\ndata: {}\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if event is _CLOSE:
                    break
                data = json.dumps(event, ensure_ascii=False, default=str)
                await response.write(f"data: {data}\n\n".encode())
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self._queues.discard(queue)
            self.telegram.unsubscribe(queue)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write_eof()
        return response

    async def _close_streams(self, app: web.Application) -> None:
        for queue in list(self._queues):
            queue.put_nowait(_CLOSE)
