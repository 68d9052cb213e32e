"""A result message within Discord's 6,000 characters for a whole embed, however long its parts.

Each part of the bot's embed has its own cap (the prompt 4,000 characters once escaped, what the model
said 1,024, the note with the Original link 1,024); together they can pass 6,000, and Discord refuses
such a message (400, code 50035), which delivery takes as final: the image made and billed is lost. The
real bot, the fake Discord (which enforces the total) and the fake SeaArt: the image must be delivered,
with the prompt shortened, not the link.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from bot.testing.providers.seaart import FakeJob
from tests.conftest import BOT_TOKEN, SEAART_KEY, Clock, final_message, make_settings, start_bot
from tests.discord_markdown import as_read, live_markdown

# A presigned S3/CDN link is often 600-1,500 characters; this one still fits the Note's 1,024.
SIGNATURE = "?X-Amz-Signature=" + "a" * 700
MODEL_TEXT = "Here is your picture. " * 60
# 2,499 characters, under every provider's limit, that escape to 4,165: cut to the description's 4,000.
PROMPT = "a--" * 833
TERMINAL = {"delivered", "failed", "blocked", "cancelled", "expired"}


class SignedLinksSeaArt(FakeSeaArt):
    """SeaArt answering with long signed result links and a model that says a lot."""

    def _outputs(self, job: FakeJob) -> list[dict[str, Any]]:
        return [{**output, "url": output["url"] + SIGNATURE} for output in super()._outputs(job)]

    def _result_body(self, job: FakeJob) -> dict[str, Any]:
        body = super()._result_body(job)
        body["outputs"].append({"type": "text", "text": MODEL_TEXT})
        return body


def job_row(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM jobs").fetchone()
    return dict(row) if row else {}


async def test_a_result_whose_parts_add_up_past_6000_is_delivered_with_the_prompt_shortened(tmp_path: Path) -> None:
    async with (
        SignedLinksSeaArt(api_key=SEAART_KEY, images="noise") as seaart,
        FakeDiscord(bot_token=BOT_TOKEN, attachment_size_limit=400_000) as discord_fake,
    ):
        settings = make_settings(tmp_path, discord_fake, seaart)
        db = settings.database.path
        running = await start_bot(settings, discord_fake, Clock())
        try:
            interaction = await discord_fake.slash_command("imagine", {"prompt": PROMPT})
            await discord_fake.wait_for(lambda: job_row(db).get("state") in TERMINAL, timeout=30)
        finally:
            await running.close()
        row = job_row(db)
        assert (row["state"], row["error_category"], row["charge_state"]) == ("delivered", None, "committed")
        message = final_message(discord_fake, interaction.id)
        assert message is not None and len(message.files) == 1
        embed = message.embeds[0]
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        parts = [embed["title"], embed["description"], embed["footer"]["text"], *fields, *fields.values()]
        assert sum(map(len, parts)) <= 6000

        assert embed["title"] == "🍌 Done"
        # The prompt gave way, cut between escapes: what is shown reads as the prompt's start, nothing live.
        description = embed["description"]
        assert len(description) < 4000 and description.endswith("…")
        kept = description.removesuffix("…")
        assert PROMPT.startswith(as_read(kept)) and len(as_read(kept)) > 1000
        assert not (len(kept) - len(kept.rstrip("\\"))) % 2 and live_markdown(kept) == []
        # What the model said and the Original link, with its whole signature, are kept.
        assert MODEL_TEXT.strip().startswith(as_read(fields["The model said"].removesuffix("…")))
        assert len(fields["The model said"]) == 1024
        links = re.findall(r"\[([^\]]*)\]\(([^)\s]*)\)", fields["Note"])
        assert [label for label, _ in links] == ["Original"] and links[0][1].endswith(SIGNATURE)
