"""Channel posts end to end: the real app in the sandbox, over real HTTP, DeepSeek stand-in included."""

from sandbox.runner import SANDBOX_ADMIN_ID, SANDBOX_CHANNEL_ID, running_sandbox

ADMIN = SANDBOX_ADMIN_ID


def bot_message_with(sb, chat_id, fragment):
    def check():
        found = [m for m in sb.telegram.chat_messages(chat_id, bot_only=True) if fragment in m.get("text", "")]
        return found[-1] if found else None
    return check


async def test_post_now_puts_a_post_in_the_sandbox_channel(tmp_path):
    async with running_sandbox(tmp_path, gmgn_promo_link="https://gmgn.ai/?ref=sandbox") as sb:
        sb.telegram.add_user(ADMIN, "Admin")
        sb.telegram.send_text(ADMIN, "/post_now promo")
        (post,) = await sb.telegram.wait_for(lambda: sb.telegram.chat_messages(SANDBOX_CHANNEL_ID), timeout=10)
        assert "promo" in post["text"].lower()
        assert {"type": "text_link", "url": "https://gmgn.ai/?ref=sandbox"}.items() <= \
            next(e for e in post["entities"] if e["type"] == "text_link").items()
        await sb.telegram.wait_for(bot_message_with(sb, ADMIN, "is in the channel"))
        (call,) = [c for c in sb.deepseek.calls if c.path.endswith("/chat/completions")]
        assert "Write a promo post." in call.messages[-1]["content"]


async def test_preview_publish_in_the_sandbox_and_a_dead_model_still_posts(tmp_path):
    async with running_sandbox(tmp_path) as sb:
        sb.deepseek.fail_mode = "500"
        sb.app.deepseek.backoff = 0
        sb.telegram.add_user(ADMIN, "Admin")
        sb.telegram.send_text(ADMIN, "/preview tip")
        await sb.telegram.wait_for(bot_message_with(sb, ADMIN, "this is the template"), timeout=10)
        sb.telegram.press_button(ADMIN, "✅ Publish")
        (post,) = await sb.telegram.wait_for(lambda: sb.telegram.chat_messages(SANDBOX_CHANNEL_ID), timeout=10)
        assert post["text"].startswith("💡 Trading tip: Momentum")
        await sb.telegram.wait_for(bot_message_with(sb, ADMIN, "is in the channel"))
        sb.telegram.send_text(ADMIN, "/schedule")
        schedule = await sb.telegram.wait_for(bot_message_with(sb, ADMIN, "Last posts"))
        assert "tip · momentum · ✅ posted" in schedule["text"]
