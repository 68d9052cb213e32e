"""bot/dm_copies.py: a copy's card names its jobs in a way ``copied_jobs`` reads back (the reading after a start
looks for a copy sent but not recorded by it: cogs/dm_reaction.py)."""

from __future__ import annotations

import discord

from bot.dm_copies import copied_jobs, copy_card
from bot.models import JobState
from tests.test_job_list import job


def test_a_copy_s_card_names_the_jobs_it_copies_and_no_other_embed_does() -> None:
    one = job(1, JobState.DELIVERED)
    batch = [job(n, JobState.DELIVERED, batch="b", index=n) for n in (2, 3, 4)]
    assert copied_jobs(copy_card([one], None, None, [])) == {one.id}
    assert copied_jobs(copy_card(batch, "https://discord.com/channels/1/2/3", None, ["a note"])) == {
        each.id for each in batch
    }
    notice = discord.Embed(title="Done", description="x")
    notice.set_footer(text=f"Job {one.id}")
    assert copied_jobs(notice) == set()
    assert copied_jobs(discord.Embed(title=copy_card([one], None, None, []).title)) == set()
