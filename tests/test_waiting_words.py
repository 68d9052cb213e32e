"""What a request waiting its turn says in its message (bot/render.py): how long such requests take once started,
not "Usually takes" as though the wait were in it, and what waits before it."""

from __future__ import annotations

from dataclasses import replace

import discord

from bot import render
from bot.models import GenerationRequest, JobState
from bot.store.jobs import Job

NOW = 1.75e9


def job(**changes: object) -> Job:
    request = GenerationRequest(model="nano_banana_2", prompt="a fox")
    base = Job(
        id="0123456789abcdef",
        state=JobState.QUEUED,
        source="discord",
        provider="seaart",
        model="nano_banana_2",
        request=request,
        deadline_at=NOW + 600,
        created_at=NOW - 30,
        updated_at=NOW,
        next_poll_at=NOW,
    )
    return replace(base, **changes)


def fields(embed: discord.Embed) -> dict[str, str]:
    return {str(f.name): str(f.value) for f in embed.fields}


def test_a_waiting_request_says_how_long_it_takes_once_started_and_what_waits_before_it() -> None:
    waiting = fields(render.progress_embed(job(waits_for=1), None, now=NOW, typical=(20, 40), ahead=2))
    assert waiting[render.TAKES_ONCE_STARTED] == render.duration_span(20, 40) and "Usually takes" not in waiting
    assert "when one of them ends, after the 2 of yours waiting before it." in waiting[render.TURN_FIELD]
    started = fields(render.progress_embed(job(state=JobState.RUNNING), None, now=NOW, typical=(20, 40)))
    assert "Usually takes" in started and render.TAKES_ONCE_STARTED not in started
    batch = [job(id=f"{n}" * 16, batch_id="b" * 16, batch_index=n, waits_for=0) for n in range(2)]
    shown = fields(render.batch_embed(batch, None, now=NOW, typical=(20, 40), ahead=3))
    assert render.TAKES_ONCE_STARTED in shown
    assert "when there is room, after the 3 image(s) waiting before it." in shown[render.TURN_FIELD]
