"""bot/job_list.py: the /jobs list stays inside one embed description in the worst case, a batch is one
line, and a prompt shows as written (the e2e test, tests/e2e/test_member_jobs.py, covers the rest)."""

from __future__ import annotations

import dataclasses

from bot import derive
from bot.errors import ErrorCategory
from bot.job_list import DESCRIPTION_CHARS, ENDED_SHOWN, GENERATING_SHOWN, jobs_embed
from bot.models import GenerationRequest, JobState, ReferenceImage
from bot.store.jobs import Job

SNOWFLAKE = 9_223_372_036_854_775_807  # the longest a Discord id gets: 19 digits
HOSTILE = "[win](https://x.example) **_~~`|" * 200


def job(n: int, state: JobState, *, batch: str | None = None, index: int | None = None) -> Job:
    return Job(
        id=f"{n:016x}",
        state=state,
        source="discord",
        provider="seaart",
        model="nano_banana_pro",
        request=GenerationRequest(model="nano_banana_pro", prompt=HOSTILE),
        deadline_at=2e9,
        created_at=1.7e9 + n,
        updated_at=1.7e9 + n,
        guild_id=SNOWFLAKE,
        channel_id=SNOWFLAKE,
        message_id=SNOWFLAKE,
        batch_id=batch,
        batch_index=index,
        cancel_requested="show" if state is JobState.RUNNING and n % 2 else None,
        error_category=ErrorCategory.CANCELLED if state is JobState.CANCELLED else None,
    )


def test_the_longest_list_fits_one_description_with_every_line_it_promises() -> None:
    active = [job(n, JobState.SUBMITTED) for n in range(GENERATING_SHOWN + 3)]
    ended = [job(100 + n, JobState.CANCELLED) for n in range(ENDED_SHOWN * 4)]
    note = "✖️ Cancelling 11 requests: you will not be charged for them."
    text = str(jobs_embed(active, ended, note=note).description)
    assert len(text) <= DESCRIPTION_CHARS
    assert text.count("**Waiting for the provider**") == GENERATING_SHOWN and "…and 3 more." in text
    assert text.count("**Cancelled**") == ENDED_SHOWN and text.startswith(note)
    # Every line's prompt shows as text: no live link or emphasis.
    assert "[win](" not in text and "\\[win\\]\\(https\\://x.example\\)" in text


def test_a_batch_is_one_line_and_its_ended_candidates_are_not_listed_apart() -> None:
    batch = [
        job(1, JobState.DELIVERED, batch="b", index=1),
        job(2, JobState.RUNNING, batch="b", index=2),
    ]
    text = str(jobs_embed([batch[1]], [batch[0]]).description)
    generating, latest = text.split("**Latest**")
    assert "**Generating (1)**" in generating and "**1 of 2 ready · 2 images**" in generating
    assert "None yet" in latest  # its delivered candidate belongs to the batch still generating


def test_a_call_in_flight_is_listed_as_generating_and_one_waiting_for_its_lane_as_queued() -> None:
    """A Gemini job stays queued in its row while Google draws it: listed as such it read "Queued"."""
    drawing = dataclasses.replace(job(1, JobState.QUEUED), submit_started_at=1.7e9 + 2)
    waiting = job(2, JobState.QUEUED)
    text = str(jobs_embed([drawing, waiting], []).description)
    assert "🎨 **Generating**" in text and "⏳ **Queued**" in text


def test_a_vary_or_reframe_is_listed_by_what_was_done_and_the_prompt_its_image_was_made_from() -> None:
    original = GenerationRequest(model="nano_banana_pro", prompt="a lighthouse at dusk")
    shown = ReferenceImage(url="https://cdn.discordapp.com/attachments/1/2/a.png", content_type="image/png", size=10)
    subtle = derive.vary(original, shown, ("0123456789abcdef", None), limit=1, strength="vary_subtle")
    zoomed = derive.edit(original, shown, "", ("0123456789abcdef", None), frame=derive.Frame(zoom_out=True))
    edited = derive.edit(original, shown, "make it night", ("0123456789abcdef", None))
    lines = [
        str(jobs_embed([], [dataclasses.replace(job(n, JobState.DELIVERED), request=r)]).description)
        for n, r in enumerate((subtle, zoomed, edited, original))
    ]
    assert subtle.prompt.startswith("Make a subtle variation") and "*Vary (Subtle):* a lighthouse at dusk" in lines[0]
    assert zoomed.prompt.startswith("Zoom out from") and "*Zoom out:* a lighthouse at dusk" in lines[1]
    assert "make it night" in lines[2] and "a lighthouse at dusk" in lines[3]
    assert not any("Make a" in text or "Zoom out from" in text for text in lines)


def test_a_blend_with_words_is_listed_by_them_and_one_without_by_what_it_asked() -> None:
    """/blend's prompt is its instruction, then the member's words (cogs/blend.py): those words name it."""
    worded = GenerationRequest(
        model="nano_banana_pro", prompt=f"{derive.BLEND}: as a watercolour", member_words="as a watercolour"
    )
    bare = GenerationRequest(model="nano_banana_pro", prompt=f"{derive.BLEND}.", member_words="")
    # A prompt that merely starts like it, typed to /imagine (no member_words), is the member's own.
    typed = GenerationRequest(model="nano_banana_pro", prompt=f"{derive.BLEND} at night")
    lines = [
        str(jobs_embed([], [dataclasses.replace(job(n, JobState.DELIVERED), request=r)]).description)
        for n, r in enumerate((worded, bare, typed))
    ]
    assert "*Blend:* as a watercolour" in lines[0] and derive.BLEND not in lines[0]
    # Each line shows the start of its words (80 characters).
    assert "\nBlend these images into one new image" in lines[1] and "*Blend:*" not in lines[1]
    assert "\nBlend these images into one new image" in lines[2] and "*Blend:*" not in lines[2]
