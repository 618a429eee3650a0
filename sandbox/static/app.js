/* Sandbox web chat. Plain JavaScript, no build step.
 *
 * Safety rule: everything that comes from the bot or a user is put on the page with
 * document.createTextNode / textContent and attributes set through the DOM, never parsed as HTML.
 * Formatting comes from Telegram entities (offsets in UTF-16 code units, which is exactly how
 * JavaScript strings index), and links keep only http(s) and mailto URLs.
 */
"use strict";
(() => {
  const API = "/sandbox/api";
  const $ = (id) => document.getElementById(id);
  const t = (text, values) => window.SandboxText.t(text, values);
  const locale = () => window.SandboxText.locale;

  const state = {
    bot: null,
    adminId: 1000,
    adminIds: new Set(),
    users: new Map(),
    channels: new Map(),
    view: null,            // {kind: "user" | "channel", id}
    actingUser: null,      // who presses, pays and joins (the selected user, kept while viewing a channel)
    lastNonAdmin: null,
    messages: new Map(),   // message_id -> message of the chat on screen
    unread: new Map(),     // chat_id -> count
    typingTimer: null,
    connected: false,
    everConnected: false,
  };

  // ---------------------------------------------------------------- small helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  async function api(method, path, body) {
    const options = { method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(API + path, options);
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok) throw new Error((data && data.error) || `HTTP ${response.status}`);
    return data;
  }

  function safeUrl(raw) {
    try {
      const url = new URL(String(raw), window.location.href);
      return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
    } catch (err) {
      return null;
    }
  }

  function colorClass(id) { return "c" + (Math.abs(Number(id) || 0) % 7); }

  function avatar(name, id, small) {
    const node = el("div", `avatar ${colorClass(id)}${small ? " small" : ""}`);
    node.textContent = Array.from(String(name || "?").trim())[0] || "?";
    return node;
  }

  function userName(user) {
    if (!user) return "";
    return [user.first_name, user.last_name].filter(Boolean).join(" ");
  }

  function stars(amount, currency) {
    return currency === "XTR" ? `⭐️ ${amount}` : `${amount} ${currency}`;
  }

  function clock(unix) {
    return new Date(unix * 1000).toLocaleTimeString(locale() || [], { hour: "2-digit", minute: "2-digit" });
  }

  function fileUrl(fileId) { return `/sandbox/files/${encodeURIComponent(fileId)}`; }

  function dateTime(unix) { return new Date(unix * 1000).toLocaleString(locale()); }

  function isAdmin(id) { return state.adminIds.has(Number(id)); }

  function viewedChatId() { return state.view ? state.view.id : null; }

  let toastTimer = null;
  function toast(text) {
    const box = $("toast");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 3200);
  }

  function modal(title, body, actions) {
    $("modal-title").textContent = title;
    const bodyBox = $("modal-body");
    bodyBox.replaceChildren();
    if (body instanceof Node) bodyBox.append(body); else bodyBox.textContent = body || "";
    const actionBox = $("modal-actions");
    actionBox.replaceChildren();
    for (const [label, handler] of actions || [["OK", null]]) {
      const button = el("button", "", label);
      button.type = "button";
      button.addEventListener("click", () => { closeModal(); if (handler) handler(); });
      actionBox.append(button);
    }
    $("modal").hidden = false;
    const first = actionBox.querySelector("button");
    if (first) first.focus();
  }

  function closeModal() { $("modal").hidden = true; }

  // ---------------------------------------------------------------- entities -> DOM

  function entityNode(entity, slice) {
    switch (entity.type) {
      case "bold": return el("b");
      case "italic": return el("i");
      case "underline": return el("u");
      case "strikethrough": return el("s");
      case "code": return el("code");
      case "pre": {
        const pre = el("pre");
        const code = el("code");
        if (entity.language) code.dataset.language = String(entity.language);
        pre.append(code);
        return { outer: pre, inner: code };
      }
      case "blockquote":
      case "expandable_blockquote": return el("blockquote");
      case "spoiler": {
        const node = el("span", "spoiler");
        node.title = t("Spoiler: click to reveal");
        node.addEventListener("click", () => node.classList.toggle("revealed"));
        return node;
      }
      case "text_link": return linkNode(entity.url);
      case "url": return linkNode(/^[a-z][a-z0-9+.-]*:/i.test(slice) ? slice : `http://${slice}`);
      case "email": return linkNode(`mailto:${slice}`);
      case "bot_command": {
        const node = el("span", "command");
        node.title = t("Send this command");
        node.addEventListener("click", () => sendText(slice));
        return node;
      }
      case "mention":
      case "text_mention": return el("span", "mention");
      case "hashtag":
      case "cashtag": return el("span", "hashtag");
      default: return el("span");
    }
  }

  function linkNode(raw) {
    const url = safeUrl(raw);
    if (!url) {
      const span = el("span", "link");
      span.title = t("Link not opened in the sandbox: {url}", { url: String(raw) });
      return span;
    }
    const a = el("a");
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.addEventListener("click", (event) => {
      if (handleSpecialLink(url)) event.preventDefault();
    });
    return a;
  }

  /** Render `text` with Telegram `entities` into `parent` (text nodes only). */
  function renderText(parent, text, entities) {
    text = String(text || "");
    const list = (Array.isArray(entities) ? entities : [])
      .filter((e) => e && Number.isInteger(e.offset) && Number.isInteger(e.length) && e.length > 0
        && e.offset >= 0 && e.offset < text.length)
      .slice()
      .sort((a, b) => a.offset - b.offset || b.length - a.length);

    function build(start, end, items, into, linkify) {
      let pos = start;
      let i = 0;
      while (i < items.length) {
        const entity = items[i];
        if (entity.offset >= end) break;
        if (entity.offset < pos) { i += 1; continue; }  // overlaps a sibling: ignore
        if (entity.offset > pos) plain(into, text.slice(pos, entity.offset), linkify);
        const stop = Math.min(entity.offset + entity.length, end);
        const inner = [];
        let j = i + 1;
        while (j < items.length && items[j].offset < stop) { inner.push(items[j]); j += 1; }
        const made = entityNode(entity, text.slice(entity.offset, stop));
        const outer = made.outer || made;
        build(entity.offset, stop, inner, made.inner || made, linkify && !NO_LINKIFY.has(entity.type));
        into.append(outer);
        pos = stop;
        i = j;
      }
      if (pos < end) plain(into, text.slice(pos, end), linkify);
    }
    build(0, text.length, list, parent, true);
    return parent;
  }

  // Like Telegram's apps: /commands and http(s) URLs in plain text can be tapped.
  const NO_LINKIFY = new Set(["code", "pre", "text_link", "url", "email", "bot_command", "mention",
    "text_mention", "hashtag", "cashtag", "custom_emoji"]);
  const AUTO_RE = /(?<![\w/@])\/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])|\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

  function plain(into, chunk, linkify) {
    if (!linkify) { into.append(document.createTextNode(chunk)); return; }
    let pos = 0;
    for (const match of chunk.matchAll(AUTO_RE)) {
      if (match.index > pos) into.append(document.createTextNode(chunk.slice(pos, match.index)));
      const found = match[0];
      const node = found.startsWith("/") ? entityNode({ type: "bot_command" }, found) : linkNode(found);
      node.textContent = found;
      into.append(node);
      pos = match.index + found.length;
    }
    if (pos < chunk.length) into.append(document.createTextNode(chunk.slice(pos)));
  }

  // ---------------------------------------------------------------- links and actions

  /** Invite links join the channel, sandbox invoice links open the pay sheet. True if handled. */
  function handleSpecialLink(url) {
    if (/^https:\/\/t\.me\/\+/.test(url)) {
      joinLink(url);
      return true;
    }
    let parsed = null;
    try { parsed = new URL(url); } catch (err) { return false; }
    const match = parsed.pathname.match(/^\/sandbox\/invoice\/([^/]+)$/);
    if (parsed.origin === window.location.origin && match) {
      openInvoiceSheet(decodeURIComponent(match[1]));
      return true;
    }
    return false;
  }

  /** A sandbox pay page (a stand-in on this machine) in the page's language, as the real services
   * show theirs in the payer's; any other URL as it is. */
  function inPageLanguage(url) {
    const parsed = new URL(url);
    if (parsed.hostname === window.location.hostname && parsed.pathname.startsWith("/pay/")) {
      parsed.searchParams.set("lang", window.SandboxText.lang);
    }
    return parsed.href;
  }

  function openLink(raw) {
    const url = safeUrl(raw);
    if (!url) { toast(t("This link type is not supported in the sandbox.")); return; }
    if (handleSpecialLink(url)) return;
    window.open(inPageLanguage(url), "_blank", "noopener,noreferrer");
  }

  async function sendText(text) {
    const userId = state.actingUser;
    if (!userId || !text.trim()) return;
    if (!state.view || state.view.kind !== "user" || state.view.id !== userId) selectUser(userId);
    try {
      await api("POST", "/send", { user_id: userId, text });
    } catch (err) {
      toast(t("Could not send: {error}", { error: err.message }));
    }
  }

  async function press(message, button, node) {
    node.classList.add("busy");
    try {
      await api("POST", "/press", { user_id: state.actingUser, message_id: message.message_id,
        data: button.callback_data });
    } catch (err) {
      toast(t("Button failed: {error}", { error: err.message }));
    } finally {
      setTimeout(() => node.classList.remove("busy"), 400);
    }
  }

  async function pay(invoiceRef, amountText) {
    const userId = state.actingUser;
    if (!userId) { toast(t("Pick a user first.")); return; }
    const waiting = el("div");
    waiting.append(el("span", "spinner"), document.createTextNode(t(
      "Paying {amount} as {name}… waiting for the bot to confirm.",
      { amount: amountText, name: userName(state.users.get(userId)) })));
    modal(t("Payment"), waiting, [[t("Hide"), null]]);
    let result;
    try {
      result = await api("POST", "/pay", { user_id: userId,
        ...(typeof invoiceRef === "number" ? { message_id: invoiceRef } : { invoice: invoiceRef }) });
    } catch (err) {
      modal(t("Payment failed"), err.message);
      return;
    }
    if (result.ok) {
      closeModal();
      toast(t("Paid {amount}.\nCharge {charge}", { amount: amountText, charge: result.telegram_payment_charge_id }));
    } else if (result.reason === "timeout") {
      modal(t("Payment failed"), result.error_message);
    } else {
      const body = el("div");
      body.append(el("div", "", t("The bot declined the payment:")), el("p", "decline", result.error_message));
      modal(t("Payment declined"), body);
    }
  }

  async function openInvoiceSheet(slug) {
    let invoice;
    try {
      invoice = await api("GET", `/invoices/${encodeURIComponent(slug)}`);
    } catch (err) {
      modal(t("Invoice"), err.message);
      return;
    }
    const body = el("div");
    body.append(el("div", "invoice-title", invoice.title), el("div", "invoice-desc", invoice.description),
      el("div", "big", stars(invoice.total_amount, invoice.currency)));
    if (invoice.subscription_period) {
      body.append(el("div", "invoice-sub", t("Subscription: renews every {days} days",
        { days: Math.round(invoice.subscription_period / 86400) })));
    }
    const picker = el("select");
    picker.setAttribute("aria-label", t("Pay as"));
    for (const user of state.users.values()) {
      const option = el("option", "", `${userName(user)} (${user.id})`);
      option.value = String(user.id);
      if (user.id === state.actingUser) option.selected = true;
      picker.append(option);
    }
    body.append(el("div", "invoice-sub", t("Pay as:")), picker);
    modal(t("Invoice link"), body, [[t("Cancel"), null], [t("Pay"), () => {
      const userId = Number(picker.value);
      if (userId) selectUser(userId);
      pay(slug, stars(invoice.total_amount, invoice.currency));
    }]]);
  }

  const JOIN_ERRORS = {
    INVITE_HASH_EXPIRED: "This invite link has expired or was already used.",
    INVITE_HASH_INVALID: "This invite link is not valid.",
    USER_BANNED_IN_CHANNEL: "You are banned from this channel.",
    USER_ALREADY_PARTICIPANT: "You are already a member of this channel.",
    INVITE_REQUEST_SENT: "Your request to join was sent to the channel's admins.",
  };

  async function joinLink(url) {
    const userId = state.actingUser;
    if (!userId) { toast(t("Pick a user first.")); return; }
    try {
      const result = await api("POST", "/join", { user_id: userId, link: url });
      if (result.ok) {
        toast(t("{name} joined {channel}.", { name: userName(state.users.get(userId)), channel: result.chat.title }));
      } else {
        modal(t("Can't join"), `${t(JOIN_ERRORS[result.error] || "Telegram refused.")} (${result.error})`);
      }
    } catch (err) {
      modal(t("Can't join"), err.message);
    }
  }

  // ---------------------------------------------------------------- messages

  function isBotMessage(message) {
    return Boolean((message.from && message.from.is_bot) || message.sender_chat);
  }

  function keyboardNode(message) {
    const rows = message.reply_markup && message.reply_markup.inline_keyboard;
    if (!Array.isArray(rows) || !rows.length) return null;
    const box = el("div", "kb");
    for (const row of rows) {
      if (!Array.isArray(row)) continue;
      const line = el("div", "kb-row");
      for (const button of row) {
        const node = el("button", "kb-btn", button.text);
        node.type = "button";
        if (button.pay) {
          node.classList.add("pay");
          node.addEventListener("click", () => pay(message.message_id,
            message.invoice ? stars(message.invoice.total_amount, message.invoice.currency) : "the invoice"));
        } else if (typeof button.callback_data === "string") {
          node.dataset.callback = button.callback_data;
          node.addEventListener("click", () => press(message, button, node));
        } else if (button.url) {
          const special = /^https:\/\/t\.me\/\+/.test(button.url);
          node.classList.add(special ? "join" : "url");
          node.title = String(button.url);
          node.addEventListener("click", () => openLink(button.url));
        } else if (button.copy_text && button.copy_text.text) {
          node.addEventListener("click", () => {
            navigator.clipboard.writeText(String(button.copy_text.text)).then(
              () => toast(t("Copied.")), () => toast(String(button.copy_text.text)));
          });
        } else {
          node.disabled = true;
          node.title = t("This button type is not available in the sandbox");
        }
        line.append(node);
      }
      box.append(line);
    }
    return box;
  }

  function serviceNode(message) {
    const node = el("div", "service");
    node.dataset.id = String(message.message_id);
    const paid = message.successful_payment;
    const refund = message.refunded_payment;
    const body = paid || refund;
    const who = userName(message.from);
    const text = paid ? t("{name} paid {amount}", { name: who, amount: stars(paid.total_amount, paid.currency) })
      : t("{amount} refunded to {name}", { name: who, amount: stars(refund.total_amount, refund.currency) });
    node.append(document.createTextNode(paid && paid.is_recurring
      ? t("{text} (subscription until {date})",
        { text, date: new Date(paid.subscription_expiration_date * 1000).toLocaleDateString(locale()) })
      : text));
    node.append(el("br"), el("small", "mono", body.telegram_payment_charge_id));
    return node;
  }

  function messageNode(message) {
    if (message.successful_payment || message.refunded_payment) return serviceNode(message);
    const chatId = viewedChatId();
    const fromBot = isBotMessage(message);
    const own = !fromBot && message.from && message.from.id === chatId;
    const wrap = el("div", `msg ${own ? "out" : "in"}${message.sender_chat ? " post" : ""}`);
    wrap.dataset.id = String(message.message_id);
    const bubble = el("div", "bubble");
    if (message.sender_chat && message.chat && message.chat.type === "channel") {
      bubble.append(el("div", "sender", message.sender_chat.title));
    }
    if (message.forward_origin) {
      const origin = message.forward_origin;
      const name = origin.sender_user ? userName(origin.sender_user)
        : origin.chat ? origin.chat.title : origin.sender_user_name || t("someone");
      bubble.append(el("div", "forwarded", t("Forwarded from {name}", { name })));
    }
    if (message.reply_to_message) {
      const quoted = message.reply_to_message;
      const quote = el("div", "quote");
      quote.append(el("b", "", quoted.from ? userName(quoted.from) : t("Message")),
        document.createTextNode(quoted.text || quoted.caption || "…"));
      bubble.append(quote);
    }
    if (Array.isArray(message.photo) && message.photo.length) {
      const image = el("img", "photo");
      image.alt = t("photo");
      image.loading = "lazy";
      image.src = fileUrl(message.photo[message.photo.length - 1].file_id);
      image.addEventListener("error", () => image.replaceWith(el("div", "photo-missing", t("🖼 photo (not available offline)"))));
      bubble.append(image);
    }
    if (message.document) {
      const doc = el("a", "doc");
      doc.href = fileUrl(message.document.file_id);
      doc.download = String(message.document.file_name || "file");
      const info = el("div");
      info.append(el("div", "doc-name", message.document.file_name || t("file")),
        el("div", "doc-size", message.document.file_size
          ? t("{size} KB", { size: Math.ceil(message.document.file_size / 1024) }) : t("document")));
      doc.append(el("div", "doc-icon", "📄"), info);
      bubble.append(doc);
    }
    if (message.invoice) {
      const invoice = el("div", "invoice");
      invoice.append(el("div", "invoice-title", message.invoice.title),
        el("div", "invoice-desc", message.invoice.description),
        el("div", "invoice-amount", stars(message.invoice.total_amount, message.invoice.currency)),
        el("div", "invoice-sub", t("Invoice")));
      bubble.append(invoice);
    }
    if (typeof message.text === "string") {
      bubble.append(renderText(el("div", "text"), message.text, message.entities));
    } else if (typeof message.caption === "string") {
      bubble.append(renderText(el("div", "text"), message.caption, message.caption_entities));
    } else if (!message.photo && !message.document && !message.invoice) {
      const kinds = Object.keys(message).filter((k) => !["message_id", "date", "chat", "from", "sender_chat", "reply_markup", "edit_date"].includes(k));
      bubble.append(el("div", "unsupported", `[${kinds.join(", ") || "empty"} message]`));
    }
    const meta = el("span", "meta", message.edit_date ? t("edited {time}", { time: clock(message.date) }) : clock(message.date));
    bubble.append(meta);
    wrap.append(bubble);
    let keyboard = keyboardNode(message);
    if (message.invoice && !(keyboard && keyboard.querySelector(".pay"))) {
      // Telegram shows its own Pay button when the bot sent no keyboard.
      keyboard = keyboard || el("div", "kb");
      const row = el("div", "kb-row");
      const payButton = el("button", "kb-btn pay", t("Pay {amount}", { amount: stars(message.invoice.total_amount, message.invoice.currency) }));
      payButton.type = "button";
      payButton.addEventListener("click", () => pay(message.message_id, stars(message.invoice.total_amount, message.invoice.currency)));
      row.append(payButton);
      keyboard.prepend(row);
    }
    if (keyboard) wrap.append(keyboard);
    return wrap;
  }

  function scrollToBottom(force) {
    const box = $("messages");
    if (force || box.scrollHeight - box.scrollTop - box.clientHeight < 160) box.scrollTop = box.scrollHeight;
  }

  function putMessage(message, { flash } = {}) {
    const box = $("messages");
    const empty = box.querySelector(".empty");
    if (empty) empty.remove();
    state.messages.set(message.message_id, message);
    const node = messageNode(message);
    const existing = box.querySelector(`[data-id="${CSS.escape(String(message.message_id))}"]`);
    if (existing) {
      existing.replaceWith(node);
    } else {
      const later = Array.from(box.children).find((child) => Number(child.dataset.id) > message.message_id);
      if (later) box.insertBefore(node, later); else box.append(node);
    }
    if (flash) {
      node.classList.add("flash");
      setTimeout(() => node.classList.remove("flash"), 1000);
    }
    scrollToBottom(!existing);
  }

  function removeMessage(messageId) {
    state.messages.delete(messageId);
    const node = $("messages").querySelector(`[data-id="${CSS.escape(String(messageId))}"]`);
    if (node) node.remove();
  }

  function renderReplyKeyboard(markup) {
    const box = $("reply-kb");
    box.replaceChildren();
    const rows = markup && Array.isArray(markup.keyboard) ? markup.keyboard : [];
    box.hidden = !rows.length || !state.view || state.view.kind !== "user";
    for (const row of rows) {
      const line = el("div", "kb-row");
      for (const button of row) {
        const label = typeof button === "string" ? button : button.text;
        const node = el("button", "", label);
        node.type = "button";
        node.addEventListener("click", () => sendText(String(label)));
        line.append(node);
      }
      box.append(line);
    }
  }

  // ---------------------------------------------------------------- sidebar

  function renderUsers() {
    const list = $("user-list");
    list.replaceChildren();
    for (const user of state.users.values()) {
      const item = el("li", "item");
      item.dataset.userId = String(user.id);
      if (state.view && state.view.kind === "user" && state.view.id === user.id) item.classList.add("active");
      const main = el("div", "item-main");
      const name = el("div", "item-name", userName(user));
      if (user.is_admin) name.append(el("span", "badge", t("admin")));
      if (user.blocked) name.append(el("span", "badge warn", t("blocked bot")));
      main.append(name, el("div", "item-sub",
        `id ${user.id} · ${(user.language_code || "—").toUpperCase()}${user.username ? " · @" + user.username : ""}`));
      item.append(avatar(user.first_name, user.id), main);
      const count = state.unread.get(user.id) || 0;
      if (count) item.append(el("div", "unread hot", count));
      item.addEventListener("click", () => selectUser(user.id));
      list.append(item);
    }
    if (!state.users.size) list.append(el("li", "item-sub", t("No users yet.")));
    $("admin-label").textContent = t("Act as admin (id {id})", { id: state.adminId });
    $("admin-switch").checked = Boolean(state.view && state.view.kind === "user" && isAdmin(state.view.id));
  }

  function renderChannels() {
    const list = $("channel-list");
    list.replaceChildren();
    for (const channel of state.channels.values()) {
      const item = el("li", "item");
      item.dataset.chatId = String(channel.id);
      if (state.view && state.view.kind === "channel" && state.view.id === channel.id) item.classList.add("active");
      const main = el("div", "item-main");
      main.append(el("div", "item-name", channel.title),
        el("div", "item-sub", channel.username ? `@${channel.username}` : `id ${channel.id}`));
      item.append(avatar(channel.title, channel.id), main);
      const count = state.unread.get(channel.id) || 0;
      if (count) item.append(el("div", "unread", count));
      item.addEventListener("click", () => selectChannel(channel.id));
      list.append(item);
    }
    if (!state.channels.size) list.append(el("li", "item-sub", t("No channels.")));
  }

  // ---------------------------------------------------------------- views

  function setHeader() {
    const view = state.view;
    const avatarBox = $("chat-avatar");
    const langButton = $("lang-toggle");
    const blockButton = $("block-toggle");
    if (!view) return;
    if (view.kind === "user") {
      const user = state.users.get(view.id) || { id: view.id, first_name: t("User {id}", { id: view.id }) };
      $("chat-title").textContent = `${userName(user)} ↔ ${state.bot ? state.bot.first_name : t("bot")}`;
      $("chat-sub").textContent = t("as {name} · id {id} · {lang}",
        { name: userName(user), id: user.id, lang: (user.language_code || "—").toUpperCase() });
      avatarBox.replaceWith(Object.assign(avatar(user.first_name, user.id), { id: "chat-avatar" }));
      langButton.hidden = false;
      langButton.textContent = (user.language_code || "en") === "ru" ? "RU → EN" : "EN → RU";
      blockButton.hidden = false;
      blockButton.textContent = user.blocked ? t("Unblock bot") : t("Block bot");
      blockButton.classList.toggle("on", Boolean(user.blocked));
    } else {
      const channel = state.channels.get(view.id) || { id: view.id, title: t("Channel") };
      $("chat-title").textContent = channel.title;
      $("chat-sub").textContent = `${t("channel")}${channel.username ? " · @" + channel.username : ""} · id ${channel.id}`;
      avatarBox.replaceWith(Object.assign(avatar(channel.title, channel.id), { id: "chat-avatar" }));
      langButton.hidden = true;
      blockButton.hidden = true;
    }
    $("chat-sub").classList.remove("typing");
  }

  function renderChannelInfo(data) {
    const box = $("channel-info");
    box.replaceChildren();
    if (!data || data.chat.type !== "channel") { box.hidden = true; return; }
    box.hidden = false;
    box.append(el("h4", "", t("Members")));
    const members = el("ul");
    for (const member of data.members || []) {
      const li = el("li");
      li.append(el("span", `status ${member.status}`, t(member.status)), document.createTextNode(
        `${userName(member.user)} (${member.user.id})${member.until_date ? t(" until {date}", { date: dateTime(member.until_date) }) : ""}`));
      members.append(li);
    }
    if (!members.children.length) members.append(el("li", "", t("Nobody has joined yet.")));
    box.append(members);
    const links = data.invite_links || [];
    if (links.length) {
      box.append(el("h4", "", t("Invite links")));
      const list = el("ul");
      for (const link of links) {
        const li = el("li");
        const url = el("span", "mono join-link", link.invite_link);
        url.title = t("Join as {name}", { name: userName(state.users.get(state.actingUser)) || t("the selected user") });
        url.addEventListener("click", () => joinLink(link.invite_link));
        const notes = [link.name, link.member_limit ? t("{joined}/{limit} used", { joined: link.joined, limit: link.member_limit })
          : t("{joined} joined", { joined: link.joined }),
        link.expire_date ? t("expires {date}", { date: dateTime(link.expire_date) }) : null,
        link.is_revoked ? t("revoked") : null].filter(Boolean).join(" · ");
        li.append(url, el("span", "item-sub", notes));
        list.append(li);
      }
      box.append(list);
    }
  }

  async function loadChat() {
    const view = state.view;
    if (!view) return;
    let data;
    try {
      data = await api("GET", `/chats/${view.id}`);
    } catch (err) {
      toast(err.message);
      return;
    }
    if (state.view !== view) return;  // switched meanwhile
    if (data.user) state.users.set(data.user.id, data.user);
    const box = $("messages");
    box.replaceChildren();
    state.messages = new Map();
    for (const message of data.messages) {
      state.messages.set(message.message_id, message);
      box.append(messageNode(message));
    }
    if (!data.messages.length) {
      box.append(el("div", "empty", view.kind === "user"
        ? t("No messages yet. Send /start to begin.") : t("The bot has not posted here yet.")));
    }
    renderReplyKeyboard(data.reply_keyboard);
    renderChannelInfo(view.kind === "channel" ? data : null);
    setHeader();
    scrollToBottom(true);
  }

  // Show a chat ("user" or "channel"): only users' chats take input. Returns the composer's input.
  function openView(kind, id) {
    const writable = kind === "user";
    state.view = { kind, id };
    state.unread.delete(id);
    localStorage.setItem("sandbox.view", JSON.stringify(state.view));
    const input = $("composer-input");
    input.disabled = !writable;
    $("send-btn").disabled = !writable;
    $("menu-btn").disabled = !writable;
    input.placeholder = writable ? t("Message") : t("Only the bot posts in channels");
    $("commands").hidden = true;
    $("app").classList.add("show-chat");
    renderUsers();
    renderChannels();
    setHeader();
    loadChat();
    return input;
  }

  function selectUser(userId) {
    userId = Number(userId);
    state.actingUser = userId;
    if (!isAdmin(userId)) state.lastNonAdmin = userId;
    const input = openView("user", userId);
    if (operatorOpen()) loadInvoices();
    if (window.matchMedia("(min-width: 721px)").matches) input.focus();
  }

  function selectChannel(chatId) {
    openView("channel", Number(chatId));
  }

  async function showCommands() {
    const box = $("commands");
    if (!box.hidden) { box.hidden = true; return; }
    if (!state.actingUser) return;
    let data;
    try {
      data = await api("GET", `/commands?user_id=${state.actingUser}`);
    } catch (err) {
      toast(err.message);
      return;
    }
    box.replaceChildren();
    for (const command of data.commands) {
      const row = el("div", "cmd");
      row.append(el("b", "", `/${command.command}`), el("span", "", command.description));
      row.addEventListener("click", () => { box.hidden = true; sendText(`/${command.command}`); });
      box.append(row);
    }
    if (!data.commands.length) box.append(el("div", "cmd", t("The bot has not set any commands.")));
    box.hidden = false;
  }

  // ---------------------------------------------------------------- live events

  function bump(chatId) {
    state.unread.set(chatId, (state.unread.get(chatId) || 0) + 1);
    if (state.users.has(chatId)) renderUsers(); else renderChannels();
  }

  function showTyping(chatId) {
    if (viewedChatId() !== chatId) return;
    const sub = $("chat-sub");
    sub.textContent = t("{bot} is typing…", { bot: state.bot ? state.bot.first_name : t("bot") });
    sub.classList.add("typing");
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(setHeader, 5000);
  }

  function onEvent(event) {
    const onScreen = event.chat_id !== null && event.chat_id === viewedChatId();
    switch (event.type) {
      case "message":
        if (operatorOpen() && event.chat_id === state.actingUser && isBotMessage(event.message)) scheduleInvoices();
        if (onScreen) {
          putMessage(event.message);
          if (isBotMessage(event.message) && "reply_keyboard" in event) renderReplyKeyboard(event.reply_keyboard);
          if (isBotMessage(event.message)) setHeader();
        } else if (isBotMessage(event.message) || event.message.refunded_payment) {
          bump(event.chat_id);
        }
        break;
      case "edit":
        if (operatorOpen() && event.chat_id === state.actingUser) scheduleInvoices();
        if (onScreen) putMessage(event.message, { flash: true });
        break;
      case "delete":
        if (onScreen) removeMessage(event.message_id);
        break;
      case "callback_answer": {
        const answer = event.answer || {};
        if (answer.text) {
          if (answer.show_alert) modal(state.bot ? state.bot.first_name : t("Bot"), answer.text);
          else toast(answer.text);
        }
        if (answer.url) openLink(answer.url);
        break;
      }
      case "chat_action":
        showTyping(event.chat_id);
        break;
      case "user":
        if (event.user) {
          state.users.set(event.user.id, event.user);
          renderUsers();
          if (state.view && state.view.kind === "user" && state.view.id === event.user.id) setHeader();
        }
        break;
      case "member":
      case "invite_link":
        if (onScreen) loadChat();
        break;
      case "pre_checkout_answer": {
        const body = $("modal-body");
        if (!$("modal").hidden && event.ok && body.querySelector(".spinner")) {
          body.replaceChildren(el("span", "spinner"), document.createTextNode(t("Confirmed by the bot. Charging…")));
        }
        break;
      }
      default:
        break;
    }
  }

  function connect() {
    const source = new EventSource(`${API}/events`);
    const conn = $("conn");
    source.addEventListener("hello", () => {
      const reconnected = state.everConnected;
      state.connected = true;
      state.everConnected = true;
      conn.className = "conn ok";
      conn.textContent = t("live");
      if (reconnected) { refreshState().then(loadChat); }
    });
    source.onmessage = (message) => {
      try { onEvent(JSON.parse(message.data)); } catch (err) { console.error(err); }
    };
    source.onerror = () => {
      state.connected = false;
      conn.className = "conn bad";
      conn.textContent = t("reconnecting…");
    };
  }


  // ---------------------------------------------------------------- operator panel
  // Posts go to /sandbox/api/operator, which signs them and sends them to the bot's real ingest routes.

  const operator = { ingest: false, url: null, signals: [], invoicesTimer: null };

  function operatorOpen() { return !$("operator").hidden; }

  function toggleOperator(show) {
    const open = show === undefined ? $("operator").hidden : Boolean(show);
    $("operator").hidden = !open;
    $("operator-toggle").setAttribute("aria-expanded", String(open));
    $("operator-toggle").classList.toggle("on", open);
    localStorage.setItem("sandbox.operator", open ? "open" : "");
    if (open) { loadOperator(); loadInvoices(); }
  }

  function number(text) {
    const value = Number(text);
    return Number.isFinite(value)
      ? value.toLocaleString(locale(), { maximumFractionDigits: 8 }) : String(text);
  }

  // The form's example signal, written as the page's readers write numbers (the panel reads both).
  const SIGNAL_EXAMPLE = { en: { entry: "142.5", targets: "150, 158" }, ru: { entry: "142,5", targets: "150; 158" } };

  function localiseExample() {
    const form = $("op-signal-form");
    const lang = window.SandboxText.lang;
    const now = SIGNAL_EXAMPLE[lang];
    const other = SIGNAL_EXAMPLE[lang === "ru" ? "en" : "ru"];
    for (const name of Object.keys(now)) {
      if (form.elements[name].value === other[name]) form.elements[name].value = now[name];
    }
  }

  function opResult(text, bad) {
    const box = $("op-result");
    box.textContent = text;
    box.classList.toggle("bad", Boolean(bad));
  }

  function refusal(result) {
    const body = result.body;
    const reason = body && typeof body === "object" ? body.error || JSON.stringify(body) : String(body);
    return t("The bot refused it ({status}): {reason}", { status: result.status, reason });
  }

  async function operatorCall(button, path, body) {
    button.disabled = true;
    opResult(t("Sending…"));
    try {
      return await api("POST", `/operator${path}`, body || {});
    } catch (err) {
      opResult(err.message, true);
      return null;
    } finally {
      button.disabled = false;
    }
  }

  async function loadOperator() {
    try {
      const data = await api("GET", "/operator/state");
      operator.ingest = data.ingest;
      operator.url = data.ingest_url;
      operator.signals = data.signals;
    } catch (err) {
      opResult(err.message, true);
    }
    renderOperator();
  }

  function eventLabel(event) {
    if (event.startsWith("tp_hit:")) return t("Target {level} hit", { level: event.slice(7) });
    return event === "sl_hit" ? t("Stop hit") : t("Closed");
  }

  function opButton(label, className, handler) {
    const button = el("button", `ghost ${className}`, label);
    button.type = "button";
    button.addEventListener("click", () => handler(button));
    return button;
  }

  function renderOperator() {
    const ingest = $("op-ingest");
    ingest.textContent = operator.ingest ? t("Ingest is on: {url}", { url: operator.url })
      : t("Ingest is off: SIGNAL_WEBHOOK_SECRET is not set.");
    ingest.classList.toggle("off", !operator.ingest);
    const list = $("op-signals");
    list.replaceChildren();
    for (const signal of operator.signals.slice().reverse()) {
      const item = el("li", "op-signal");
      item.dataset.signalId = signal.id;
      item.append(el("div", "op-signal-title",
        `${signal.symbol} · ${t(signal.side)} · ${t("Entry")} ${number(signal.entry)}`));
      if (signal.events.length) {
        item.append(el("div", "item-sub", t("Events sent: {events}", { events: signal.events.map(eventLabel).join(", ") })));
      }
      const buttons = el("div", "op-buttons");
      signal.targets.forEach((price, index) => buttons.append(opButton(
        t("Target {level} hit", { level: index + 1 }), "op-tp", (b) => postEvent(b, signal, { type: "tp_hit", level: index + 1 }))));
      buttons.append(opButton(t("Stop hit"), "op-sl", (b) => postEvent(b, signal, { type: "sl_hit" })));
      const close = el("form", "op-close");
      const price = el("input");
      price.name = "price";
      price.value = Number(signal.entry).toLocaleString(locale(), { maximumFractionDigits: 8, useGrouping: false });
      price.inputMode = "decimal";
      price.setAttribute("aria-label", t("Close at"));
      const closeButton = el("button", "ghost", t("Close at"));
      closeButton.type = "submit";
      close.append(closeButton, price);
      close.addEventListener("submit", (event) => {
        event.preventDefault();
        postEvent(closeButton, signal, { type: "closed", price: price.value });
      });
      item.append(buttons, close);
      list.append(item);
    }
    if (!operator.signals.length) list.append(el("li", "item-sub", t("None yet.")));
  }

  async function postSignal(form) {
    const body = {};
    for (const name of ["ecosystem", "symbol", "side", "entry", "targets", "stop", "timeframe", "note"]) {
      body[name] = form.elements[name].value;
    }
    const result = await operatorCall($("op-post-signal"), "/signal", body);
    if (!result) return;
    if (result.status === 202) {
      opResult(t("Signal {symbol} posted ({status}): subscribers get it now, Free users after their delay.",
        { symbol: body.symbol.toUpperCase(), status: result.status }));
    } else if (result.status === 200) {
      opResult(t("Already received: nothing changed ({status}).", { status: result.status }));
    } else {
      opResult(refusal(result), true);
    }
    loadOperator();
  }

  async function postEvent(button, signal, body) {
    const result = await operatorCall(button, `/signal/${encodeURIComponent(signal.id)}/event`, body);
    if (!result) return;
    if (result.status === 202) opResult(t("The bot accepted it ({status}).", { status: result.status }));
    else if (result.status === 200) opResult(t("Already received: nothing changed ({status}).", { status: result.status }));
    else opResult(refusal(result), true);
    loadOperator();
  }

  async function postWhales(button) {
    const result = await operatorCall(button, "/whales");
    if (!result) return;
    if (result.status === 200) {
      opResult(t("Stored {stored} trades of {wallets} wallets ({status}). Open /whales to see the board.",
        { stored: result.body.stored, wallets: result.wallets, status: result.status }));
    } else {
      opResult(refusal(result), true);
    }
  }

  function scheduleInvoices() {
    clearTimeout(operator.invoicesTimer);
    operator.invoicesTimer = setTimeout(loadInvoices, 300);
  }

  async function loadInvoices() {
    if (!operatorOpen()) return;
    const userId = state.actingUser;
    const list = $("op-invoices");
    const user = state.users.get(userId);
    $("op-invoices-hint").textContent = user
      ? t("Open invoices of {name}, on the payment services' own pages:", { name: userName(user) }) : t("Pick a user first.");
    if (!user) { list.replaceChildren(); return; }
    let data;
    try {
      data = await api("GET", `/operator/invoices?user_id=${userId}`);
    } catch (err) {
      opResult(err.message, true);
      return;
    }
    if (state.actingUser !== userId) return;  // switched meanwhile
    list.replaceChildren();
    for (const invoice of data.invoices) {
      const item = el("li");
      const link = el("a", "op-pay", t("Open the {provider} page · {amount}", {
        provider: invoice.title, amount: `${number(invoice.amount)} ${String(invoice.currency).replace("_", " ")}` }));
      const url = safeUrl(invoice.url);
      if (!url) continue;
      link.href = inPageLanguage(url);
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.dataset.provider = invoice.provider;
      item.append(link);
      list.append(item);
    }
    if (!data.invoices.length) {
      list.append(el("li", "item-sub", t("No open Crypto Pay or KryptoExpress invoice. Buy something with crypto in the chat first.")));
    }
  }

  // ---------------------------------------------------------------- page language

  function setPageLang(lang) {
    window.SandboxText.setLang(lang);
    $("page-lang-en").classList.toggle("on", window.SandboxText.lang === "en");
    $("page-lang-ru").classList.toggle("on", window.SandboxText.lang === "ru");
    $("conn").textContent = state.connected ? t("live") : t(state.everConnected ? "reconnecting…" : "connecting…");
    if (state.bot) {
      $("bot-name").textContent = `${state.bot.first_name} · @${state.bot.username}`;
      document.title = t("Sandbox · @{bot}", { bot: state.bot.username });
    }
    localiseExample();
    renderUsers();
    renderChannels();
    if (state.view) {
      $("composer-input").placeholder = state.view.kind === "user" ? t("Message") : t("Only the bot posts in channels");
      loadChat();
    }
    if (operatorOpen()) { renderOperator(); loadInvoices(); }
  }

  // ---------------------------------------------------------------- start-up

  async function refreshState() {
    const data = await api("GET", "/state");
    state.bot = data.bot;
    state.adminId = data.admin_id;
    state.adminIds = new Set(data.admin_ids);
    state.users = new Map(data.users.map((u) => [u.id, u]));
    state.channels = new Map(data.channels.map((c) => [c.id, c]));
    $("bot-name").textContent = `${data.bot.first_name} · @${data.bot.username}`;
    document.title = t("Sandbox · @{bot}", { bot: data.bot.username });
    renderUsers();
    renderChannels();
  }

  function wire() {
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("composer-input");
      const text = input.value;
      if (!text.trim()) return;
      input.value = "";
      $("commands").hidden = true;
      sendText(text);
    });
    $("menu-btn").addEventListener("click", showCommands);
    $("page-lang-en").addEventListener("click", () => setPageLang("en"));
    $("page-lang-ru").addEventListener("click", () => setPageLang("ru"));
    $("operator-toggle").addEventListener("click", () => toggleOperator());
    $("operator-close").addEventListener("click", () => toggleOperator(false));
    $("op-signal-form").addEventListener("submit", (event) => {
      event.preventDefault();
      postSignal(event.target);
    });
    $("op-whales").addEventListener("click", (event) => postWhales(event.currentTarget));
    $("op-invoices-refresh").addEventListener("click", loadInvoices);
    $("back").addEventListener("click", () => $("app").classList.remove("show-chat"));
    $("modal").addEventListener("click", (event) => { if (event.target === $("modal")) closeModal(); });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { closeModal(); $("commands").hidden = true; }
    });
    $("admin-switch").addEventListener("change", async (event) => {
      if (event.target.checked) {
        if (!state.users.has(state.adminId)) {
          try {
            const user = await api("POST", "/users", { id: state.adminId, first_name: "Admin", language_code: "en" });
            state.users.set(user.id, user);
          } catch (err) {
            toast(err.message);
            event.target.checked = false;
            return;
          }
        }
        selectUser(state.adminId);
      } else {
        const fallback = state.lastNonAdmin || Array.from(state.users.keys()).find((id) => !isAdmin(id));
        if (fallback) selectUser(fallback); else renderUsers();
      }
    });
    $("new-user-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.target;
      const error = $("new-user-error");
      error.textContent = "";
      const body = { first_name: form.first_name.value, language_code: form.language_code.value };
      if (form.id.value.trim()) body.id = form.id.value.trim();
      try {
        const user = await api("POST", "/users", body);
        state.users.set(user.id, user);
        form.reset();
        $("new-user-box").open = false;
        selectUser(user.id);
      } catch (err) {
        error.textContent = err.message;
      }
    });
    $("lang-toggle").addEventListener("click", async () => {
      const user = state.view && state.users.get(state.view.id);
      if (!user) return;
      try {
        const updated = await api("POST", "/users", { id: user.id, first_name: user.first_name,
          username: user.username, language_code: (user.language_code || "en") === "ru" ? "en" : "ru" });
        state.users.set(updated.id, updated);  // the "user" event re-renders the list and the header
        toast(t("{name} now uses {lang}. Send /start to see it.", { name: userName(updated), lang: updated.language_code.toUpperCase() }));
      } catch (err) {
        toast(err.message);
      }
    });
    $("block-toggle").addEventListener("click", async () => {
      const user = state.view && state.users.get(state.view.id);
      if (!user) return;
      try {
        const updated = await api("POST", `/users/${user.id}/block`, { blocked: !user.blocked });
        state.users.set(updated.id, updated);  // the "user" event re-renders the list and the header
      } catch (err) {
        toast(err.message);
      }
    });
  }

  async function main() {
    window.SandboxText.apply();
    $("page-lang-en").classList.toggle("on", window.SandboxText.lang === "en");
    $("page-lang-ru").classList.toggle("on", window.SandboxText.lang === "ru");
    localiseExample();
    wire();
    connect();
    try {
      await refreshState();
    } catch (err) {
      $("bot-name").textContent = t("sandbox not reachable");
      return;
    }
    let saved = null;
    try { saved = JSON.parse(localStorage.getItem("sandbox.view") || "null"); } catch (err) { saved = null; }
    if (saved && saved.kind === "channel" && state.channels.has(saved.id)) {
      selectChannel(saved.id);
    } else if (saved && saved.kind === "user" && state.users.has(saved.id)) {
      selectUser(saved.id);
    } else {
      const first = Array.from(state.users.values()).find((u) => !u.is_admin) || state.users.values().next().value;
      if (first) selectUser(first.id); else $("new-user-box").open = true;
      $("app").classList.remove("show-chat");
    }
    if (localStorage.getItem("sandbox.operator") === "open") toggleOperator(true);
    const invoice = window.location.pathname.match(/^\/sandbox\/invoice\/([^/]+)$/);
    if (invoice) openInvoiceSheet(decodeURIComponent(invoice[1]));
  }

  document.addEventListener("DOMContentLoaded", main);
})();
