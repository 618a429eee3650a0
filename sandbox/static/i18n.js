/* The web chat's own wording in English and Russian (the bot's messages come in each user's language).
 *
 * Keys are the English text, as with gettext; `{name}` placeholders are filled by `t(text, values)`.
 * The page's language is the one picked with the EN / RU switch (kept in localStorage), else the
 * browser's. Elements in index.html carry `data-t` (text), `data-t-title`, `data-t-placeholder` and
 * `data-t-label` (aria-label) with the English text; `apply()` fills them in the page's language.
 */
"use strict";
window.SandboxText = (() => {
  const RU = {
    // index.html
    "Sandbox chat": "Песочница",
    "Bot sandbox": "Песочница бота",
    "connecting…": "подключение…",
    "Talk to the bot as the sandbox admin": "Писать боту от имени администратора песочницы",
    "Users": "Пользователи",
    "+ New user": "+ Новый пользователь",
    "First name": "Имя",
    "id (auto)": "id (сам)",
    "Language": "Язык",
    "Add user": "Добавить",
    "Channels": "Каналы",
    "Back to the list": "Назад к списку",
    "Pick a user": "Выберите пользователя",
    "Switch the user's language": "Сменить язык пользователя",
    "Pick or create a user on the left, then say /start.": "Выберите или создайте пользователя слева и отправьте /start.",
    "Bot commands": "Команды бота",
    "Message": "Сообщение",
    "Send": "Отправить",
    "Page language": "Язык страницы",
    // chat
    "Spoiler: click to reveal": "Спойлер: нажмите, чтобы открыть",
    "Send this command": "Отправить эту команду",
    "Link not opened in the sandbox: {url}": "Ссылка не открывается в песочнице: {url}",
    "This link type is not supported in the sandbox.": "Такие ссылки песочница не открывает.",
    "Could not send: {error}": "Не отправлено: {error}",
    "Button failed: {error}": "Кнопка не сработала: {error}",
    "Pick a user first.": "Сначала выберите пользователя.",
    "Paying {amount} as {name}… waiting for the bot to confirm.": "Оплата {amount} от имени {name}… ждём подтверждения бота.",
    "Payment": "Оплата",
    "Hide": "Скрыть",
    "Payment failed": "Оплата не прошла",
    "Paid {amount}.\nCharge {charge}": "Оплачено {amount}.\nПлатёж {charge}",
    "The bot declined the payment:": "Бот отклонил оплату:",
    "Payment declined": "Оплата отклонена",
    "Invoice": "Счёт",
    "Subscription: renews every {days} days": "Подписка: продлевается каждые {days} дн.",
    "Pay as": "Платит",
    "Pay as:": "Платит:",
    "Invoice link": "Ссылка на счёт",
    "Cancel": "Отмена",
    "Pay": "Оплатить",
    "Pay {amount}": "Оплатить {amount}",
    "This invite link has expired or was already used.": "Срок ссылки-приглашения истёк, или она уже использована.",
    "This invite link is not valid.": "Ссылка-приглашение недействительна.",
    "You are banned from this channel.": "Вы заблокированы в этом канале.",
    "You are already a member of this channel.": "Вы уже участник этого канала.",
    "Your request to join was sent to the channel's admins.": "Заявка на вступление отправлена администраторам канала.",
    "Telegram refused.": "Telegram отказал.",
    "{name} joined {channel}.": "{name} вступает в канал {channel}.",
    "Can't join": "Не удалось вступить",
    "Copied.": "Скопировано.",
    "This button type is not available in the sandbox": "Такие кнопки в песочнице недоступны",
    "{name} paid {amount}": "{name} оплачивает {amount}",
    "{amount} refunded to {name}": "{amount} возвращено: {name}",
    "{text} (subscription until {date})": "{text} (подписка до {date})",
    "Forwarded from {name}": "Переслано от {name}",
    "someone": "кого-то",
    "photo": "фото",
    "🖼 photo (not available offline)": "🖼 фото (недоступно без сети)",
    "file": "файл",
    "document": "документ",
    "{size} KB": "{size} КБ",
    "edited {time}": "изменено {time}",
    "admin": "админ",
    "blocked bot": "бот заблокирован",
    "No users yet.": "Пользователей пока нет.",
    "Act as admin (id {id})": "Я администратор (id {id})",
    "Act as admin": "Я администратор",
    "No channels.": "Каналов нет.",
    "User {id}": "Пользователь {id}",
    "bot": "бот",
    "Bot": "Бот",
    "as {name} · id {id} · {lang}": "от имени {name} · id {id} · {lang}",
    "Unblock bot": "Разблокировать бота",
    "Block bot": "Заблокировать бота",
    "Channel": "Канал",
    "channel": "канал",
    "Members": "Участники",
    "member": "участник",
    "kicked": "исключён",
    "left": "вышел",
    "administrator": "администратор",
    "creator": "создатель",
    "restricted": "ограничен",
    " until {date}": " до {date}",
    "Nobody has joined yet.": "Пока никто не вступил.",
    "Invite links": "Ссылки-приглашения",
    "Join as {name}": "Вступить от имени {name}",
    "the selected user": "выбранного пользователя",
    "{joined}/{limit} used": "использовано {joined} из {limit}",
    "{joined} joined": "вступило: {joined}",
    "expires {date}": "истекает {date}",
    "revoked": "отозвана",
    "No messages yet. Send /start to begin.": "Сообщений пока нет. Отправьте /start, чтобы начать.",
    "The bot has not posted here yet.": "Бот здесь ещё ничего не публиковал.",
    "Only the bot posts in channels": "В каналах публикует только бот",
    "The bot has not set any commands.": "Бот не задал команд.",
    "{bot} is typing…": "{bot} печатает…",
    "live": "на связи",
    "reconnecting…": "переподключение…",
    "Confirmed by the bot. Charging…": "Бот подтвердил. Списываем…",
    "sandbox not reachable": "песочница недоступна",
    "{name} now uses {lang}. Send /start to see it.": "{name} теперь на языке {lang}. Отправьте /start, чтобы увидеть.",
    "Sandbox · @{bot}": "Песочница · @{bot}",
    // operator panel
    "🛠 Operator panel": "🛠 Пульт оператора",
    "Operator panel": "Пульт оператора",
    "Close": "Закрыть",
    "What an operator's systems send the bot, through its real signed HTTP routes.":
      "То, что системы оператора отправляют боту, через его настоящие подписанные HTTP-маршруты.",
    "Ingest is on: {url}": "Приём данных включён: {url}",
    "Ingest is off: SIGNAL_WEBHOOK_SECRET is not set.": "Приём данных выключен: не задан SIGNAL_WEBHOOK_SECRET.",
    "Post a signal": "Опубликовать сигнал",
    "Ecosystem": "Экосистема",
    "Pair": "Пара",
    "Side": "Направление",
    "long": "лонг",
    "short": "шорт",
    "Entry": "Вход",
    "Targets (comma-separated)": "Цели (через точку с запятой)",
    "Stop": "Стоп",
    "Timeframe": "Таймфрейм",
    "Note": "Заметка",
    "Post signal": "Опубликовать",
    "Signals posted here": "Сигналы отсюда",
    "None yet.": "Пока нет.",
    "Target {level} hit": "Цель {level} достигнута",
    "Stop hit": "Стоп сработал",
    "Close at": "Закрыть по",
    "Closed": "Закрыт",
    "Close at {price}": "Закрыть по {price}",
    "Events sent: {events}": "Отправленные события: {events}",
    "Whale trades": "Сделки китов",
    "A realistic batch: ten wallets trading over the last six days, and one large trade each just now.":
      "Правдоподобная пачка: десять кошельков торгуют последние шесть дней, и у каждого — одна крупная сделка только что.",
    "Post sample whale trades": "Отправить сделки китов",
    "Pay pages": "Страницы оплаты",
    "Open invoices of {name}, on the payment services' own pages:": "Открытые счета пользователя {name} на страницах платёжных сервисов:",
    "No open Crypto Pay or KryptoExpress invoice. Buy something with crypto in the chat first.":
      "Открытых счетов Crypto Pay или KryptoExpress нет. Сначала купите что-нибудь в чате за криптовалюту.",
    "Open the {provider} page · {amount}": "Открыть страницу {provider} · {amount}",
    "Refresh": "Обновить",
    "Sending…": "Отправляем…",
    "The bot accepted it ({status}).": "Бот принял ({status}).",
    "Already received: nothing changed ({status}).": "Уже получено: ничего не изменилось ({status}).",
    "The bot refused it ({status}): {reason}": "Бот отказал ({status}): {reason}",
    "Stored {stored} trades of {wallets} wallets ({status}). Open /whales to see the board.":
      "Сохранено сделок: {stored}, кошельков: {wallets} ({status}). Откройте /whales, чтобы увидеть рейтинг.",
    "Signal {symbol} posted ({status}): subscribers get it now, Free users after their delay.":
      "Сигнал {symbol} опубликован ({status}): подписчики получают его сразу, бесплатный тариф — с задержкой.",
  };

  const saved = (() => { try { return localStorage.getItem("sandbox.lang"); } catch (err) { return null; } })();
  let lang = saved === "ru" || saved === "en" ? saved
    : String(navigator.language || "en").toLowerCase().startsWith("ru") ? "ru" : "en";

  function t(text, values) {
    let out = lang === "ru" && Object.prototype.hasOwnProperty.call(RU, text) ? RU[text] : text;
    if (values) out = out.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all));
    return out;
  }

  function apply(root) {
    const scope = root || document;
    document.documentElement.lang = lang;
    for (const node of scope.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    for (const node of scope.querySelectorAll("[data-t-title]")) node.title = t(node.dataset.tTitle);
    for (const node of scope.querySelectorAll("[data-t-placeholder]")) node.placeholder = t(node.dataset.tPlaceholder);
    for (const node of scope.querySelectorAll("[data-t-label]")) node.setAttribute("aria-label", t(node.dataset.tLabel));
  }

  function setLang(next) {
    lang = next === "ru" ? "ru" : "en";
    try { localStorage.setItem("sandbox.lang", lang); } catch (err) { /* private mode: this page only */ }
    apply();
  }

  return { t, apply, setLang, get lang() { return lang; }, get locale() { return lang === "ru" ? "ru-RU" : undefined; } };
})();
