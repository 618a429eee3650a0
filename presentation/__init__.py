"""Shared wording and formatting, below both handlers/ and processing/.

Imports only services/db data types, aiogram i18n and the standard library; returns HTML strings for
Telegram's HTML parse mode (user and external text escaped here). Services return data and say nothing:
a built-in product's fulfiller takes its wording from here (`AiTokenTexts`, `PlanTexts`), and
`ai_tokens_product` / `plan_product` here are those products' registrations with it."""
