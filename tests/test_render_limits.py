"""Every embed bot/render.py draws for a job stays within what Discord takes: 6,000 characters in all
(title, description, field names and values, footer, author name) and each part's own cap, whatever the
prompt, the model's words, the result's link, the error and the notes added to it. Checked with the fake
Discord's own validation (bot/testing/discord/validation.py), the one that refuses with 50035.

The e2e case (a long prompt, long model words and a long signed link, delivered): tests/e2e/test_long_embeds.py.
"""

from __future__ import annotations

import io
import re
import string
from dataclasses import replace

import discord
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import render
from bot.delivery import _note_waiting
from bot.errors import ErrorCategory
from bot.images import PreparedImage
from bot.job_list import jobs_embed
from bot.models import Derivation, GenerationRequest, JobResult, JobState, ProviderAttempt, ReferenceImage
from bot.prompts import clean_prompt
from bot.store.jobs import Job
from bot.testing.discord.validation import validate_message
from tests.discord_markdown import as_read, live_markdown

SNOWFLAKE = 9_223_372_036_854_775_807  # the longest a Discord id gets
NOW = 1.75e9
EMBED_CHARS = 6000  # Discord's, for the whole embed
# The derivations whose prompt is the bot's instruction to the model, not the member's words.
SOURCES = ("reference", "reprompt")  # the actions of GenerationRequest.came_from
INSTRUCTED = {"vary", "vary_subtle", "pan", "zoom_out", "reframe"}
# What long hostile or unlucky text is made of: Markdown marks that double when escaped, links, emoji.
PIECES = ["a--", "**", "\\", "[x](https://evil.example/)", "snake_case", "🍌", "<@1>", "\n", " ", "é"]
# Short or long: the long ones (hundreds to thousands of pieces) are what add up past 6,000.
TEXT = st.one_of(
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=30).map("".join),
    # Any 200 to 2,500 pieces: drawn as one string of piece numbers, not as one list element per piece (each
    # element a draw of its own took Hypothesis longer than rendering the text).
    st.text(alphabet=string.digits[: len(PIECES)], min_size=200, max_size=2500).map(
        lambda picks: "".join(PIECES[int(pick)] for pick in picks)
    ),
    st.builds(lambda piece, n: piece * n, st.sampled_from(PIECES), st.integers(300, 3000)),
)
# Presigned links run from a few hundred to well over a thousand characters; brackets and spaces too.
LINK = st.builds(
    lambda n, tail: f"https://cdn.example/r/image.png?X-Amz-Signature={'a' * n}{tail}",
    st.integers(0, 2500),
    st.sampled_from(["", ")[Free](https://phish.example/)", " <x>\\"]),
)


@st.composite
def jobs(draw: st.DrawFn, index: int | None = None) -> Job:
    prompt = draw(TEXT)
    derived = draw(st.sampled_from([None, "vary", "vary_subtle", "edit", "pan", "zoom_out", "reframe", "upscale"]))
    # A Vary's or a reframe's prompt is the bot's instruction; the embed shows the words its image was made from
    # and what the member added (bot/derive.py).
    instructed = derived in INSTRUCTED
    subject = (draw(TEXT) or "y") if instructed else None
    added = draw(st.one_of(st.just(subject), st.just(""), TEXT)) if instructed else None
    request = GenerationRequest(
        model="nano_banana_pro",
        # Empty once cleaned (control or invisible characters alone, as GenerationRequest cleans it) is refused
        # before any job is made: never a job's prompt.
        prompt=prompt if clean_prompt(prompt) else "x",
        reference_images=tuple(
            ReferenceImage(url=f"https://r.example/{i}.png", content_type="image/png", size=1)
            for i in range(draw(st.integers(0, 3)))
        ),
        aspect_ratio=draw(st.sampled_from([None, "21:9"])),
        resolution=draw(st.sampled_from([None, "4K"])),
        seed=draw(st.sampled_from([None, 2**31 - 1])),
        output_format=draw(st.sampled_from([None, "png"])),
        thinking_level=draw(st.sampled_from([None, "minimal"])),
        web_search=draw(st.booleans()),
        derived_from=Derivation(
            action=derived,
            job_id="f" * 16,
            message_url=f"https://discord.com/channels/{SNOWFLAKE}/{SNOWFLAKE}/1",
            way=draw(st.sampled_from([None, "left", "down"])) if derived == "pan" else None,
        )
        if derived
        else None,
        # Use as reference's or Change prompt's source, alone or under a Vary of its image (which names the Vary).
        came_from=draw(st.sampled_from([None, *(Derivation(action=a, job_id="e" * 16) for a in SOURCES)])),
        subject=subject,
        member_words=added,
    )
    state = draw(st.sampled_from(list(JobState)))
    category = draw(st.sampled_from([None, *ErrorCategory]))
    return Job(
        id=draw(st.sampled_from(["0123456789abcdef", "j" * 32])),
        state=state,
        source="discord",
        provider="seaart",
        model="nano_banana_pro",
        request=request,
        deadline_at=NOW + 3600,
        created_at=NOW - draw(st.integers(0, 100_000)),
        updated_at=NOW,
        user_id=draw(st.sampled_from([None, SNOWFLAKE])),
        cancelled_by=draw(st.sampled_from([None, SNOWFLAKE])),
        cancel_requested=draw(st.sampled_from([None, "show"])),
        submit_started_at=draw(st.sampled_from([None, NOW])),
        next_poll_at=NOW + 60,
        result=JobResult(text=draw(st.one_of(st.none(), TEXT))),
        error_category=category,
        error_message=draw(st.one_of(st.none(), TEXT)),
        cost_micro_usd=draw(st.sampled_from([None, 123_456_789])),
        tried_providers=[
            ProviderAttempt(provider=name, category="rate_limited", reason="busy")
            for name in draw(st.lists(st.sampled_from(["segmind", "kie", "gemini" * 40]), max_size=8))
        ],
        batch_index=index,
    )


def image(source_url: str | None, reencoded: bool) -> PreparedImage:
    return PreparedImage(
        file=io.BytesIO(b""),
        size=1,
        filename="result.jpg",
        content_type="image/jpeg",
        width=4096,
        height=4096,
        reencoded=reencoded,
        original_size=30_000_000,
        source_url=source_url,
    )


def assert_discord_takes(embed: discord.Embed, *, literal_description: bool = True) -> None:
    assert validate_message(None, [embed.to_dict()], [], 0, 0) == []
    assert len(embed) <= EMBED_CHARS
    # Whatever was cut still reads as text: no lone backslash before its ellipsis, nothing live.
    cut = [f.value or "" for f in embed.fields if f.name == "The model said"]
    for text in [embed.description or ""] * literal_description + cut:
        kept = text.removesuffix("…")
        assert not (len(kept) - len(kept.rstrip("\\"))) % 2
        assert live_markdown(kept) == []


def with_every_note(embed: discord.Embed, batch: list[Job]) -> discord.Embed:
    """The notes bot/delivery.py adds to a message still generating, each as long as it gets."""
    render.note_unconfirmed(embed, NOW + 600, batch if len(batch) > 1 else ())
    waiting = [replace(job, state=JobState.QUEUED, submit_started_at=None, error_message="w" * 2000) for job in batch]
    _note_waiting(embed, waiting, NOW)
    assert "Waiting" in [f.name for f in embed.fields]
    render.note_restarting(embed)
    return embed


@settings(max_examples=150, deadline=None)
@given(jobs(), st.one_of(st.none(), LINK), st.booleans())
def test_a_result_message_is_always_one_discord_takes(job: Job, link: str | None, reencoded: bool) -> None:
    job = replace(job, state=JobState.DELIVERED, error_category=None, error_message=None)
    embed = render.result_embed(job, None, image(link, reencoded), now=NOW)
    assert_discord_takes(embed)
    assert embed.title == "🍌 Done"
    fields = {f.name: f.value or "" for f in embed.fields}
    if reencoded and link:
        # The Original link whole, or none and the member told why; never one cut short.
        targets = re.findall(r"\[Original\]\(([^)\s]*)\)", fields["Note"])
        assert targets == [render.link_target(link)] or (not targets and "too long to show" in fields["Note"])
        if len(link) <= 800:
            assert targets
    if job.result.text and job.result.text.strip():
        # It gives way after the prompt, and keeps a few lines of its own.
        said = fields["The model said"]
        assert job.result.text.strip().startswith(as_read(said.removesuffix("…")))
        assert len(said) >= min(len(render.literal(job.result.text.strip(), 1024)), 300 - 1)


@settings(max_examples=100, deadline=None)
@given(jobs())
def test_a_failure_message_is_always_one_discord_takes(job: Job) -> None:
    embed = render.failure_embed(job, None, now=NOW)
    assert_discord_takes(embed)
    assert "What happened" in [f.name for f in embed.fields]


@settings(max_examples=100, deadline=None)
@given(jobs())
def test_a_progress_message_with_every_note_is_always_one_discord_takes(job: Job) -> None:
    job = replace(job, state=JobState.RUNNING)
    assert_discord_takes(render.progress_embed(job, None, now=NOW, typical=(10, 400)))
    assert_discord_takes(with_every_note(render.progress_embed(job, None, now=NOW, typical=(10, 400)), [job]))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 4).flatmap(lambda n: st.tuples(*(jobs(index=i + 1) for i in range(n)))), st.booleans())
def test_a_batch_message_is_always_one_discord_takes(drawn: tuple[Job, ...], notes: bool) -> None:
    batch = [replace(job, batch_id="b") for job in drawn]
    embed = render.batch_embed(batch, None, now=NOW, typical=(10, 400))
    assert_discord_takes(with_every_note(embed, batch) if notes else embed)


@settings(max_examples=25, deadline=None)
@given(st.lists(jobs(), min_size=1, max_size=20), st.one_of(st.none(), st.text(max_size=200)))
def test_the_jobs_list_is_always_one_discord_takes(listed: list[Job], note: str | None) -> None:
    active = [job for job in listed if not job.terminal]
    ended = [job for job in listed if job.terminal]
    # Its description is the bot's list (bold headings, links to messages): tests/test_job_list.py reads it.
    assert_discord_takes(jobs_embed(active, ended, note=note), literal_description=False)


def test_the_prompt_gives_way_first_and_keeps_its_start() -> None:
    """Over 6,000 in all: the prompt is shortened to what the rest leaves; the model's words stay whole."""
    prompt = "a--" * 833  # escapes to 4,165 characters
    job = Job(
        id="0123456789abcdef",
        state=JobState.DELIVERED,
        source="discord",
        provider="seaart",
        model="nano_banana_pro",
        request=GenerationRequest(model="nano_banana_pro", prompt=prompt),
        deadline_at=NOW,
        created_at=NOW - 30,
        updated_at=NOW,
        user_id=SNOWFLAKE,
        result=JobResult(text="Here is your picture. " * 60),
    )
    link = "https://cdn.example/r/image.png?X-Amz-Signature=" + "a" * 700
    embed = render.result_embed(job, None, image(link, True), now=NOW)
    assert_discord_takes(embed)
    assert len(embed) >= EMBED_CHARS - 1  # cut no more than needed (a backslash goes with its mark)
    fields = {f.name: f.value or "" for f in embed.fields}
    assert len(fields["The model said"]) == 1024 and link in fields["Note"]
    description = embed.description or ""
    assert prompt.startswith(as_read(description.removesuffix("…"))) and description.endswith("…")


@settings(max_examples=100, deadline=None)
@given(jobs(), st.sampled_from([None, 1, 4]))
def test_an_image_s_alt_text_fits_discord_s_1024_characters_and_names_its_candidate(
    job: Job, index: int | None
) -> None:
    job = replace(job, batch_id=None if index is None else "b" * 16, batch_index=index)
    alt = render.alt_text(job)
    assert 0 < len(alt) <= render.ALT_TEXT_CHARS
    # A Vary's or a reframe's image is described by the words it was made from, not the bot's instruction.
    origin = job.request.derived_from
    words = job.request.subject if origin and origin.action in INSTRUCTED else job.request.prompt
    assert words
    assert alt.startswith(words[:500])
    assert alt.endswith(f" (#{index})") if index is not None else alt == render.truncate(words, render.ALT_TEXT_CHARS)
