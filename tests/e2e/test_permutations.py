"""Choices in braces in a prompt (Midjourney's permutation prompts), through the fake Discord and the fake SeaArt:
``a {red, green} boat`` is one batch of two images, each sent its own prompt, shown in one message that says which
choice each is, re-rolled and reworded as one; too many, a choice in a parameter, a choice that leaves no words
and a blocked word in any choice refused whole, privately, nothing made or charged (bot/permutations.py,
cogs/prompt_choices.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.testing.discord import ADMIN_PERMISSIONS, FakeDiscord
from bot.testing.providers import FakeSeaArt, FakeSegmind
from cogs.errors import TYPED_BACK
from cogs.imagine import CHOICES_NOT_COUNT
from cogs.prompt_choices import ONE_INSTRUCTION
from cogs.remix import INSTRUCTION_ID
from tests.conftest import Clock, RunningBot, answer_given, start_bot
from tests.e2e.edits import followups
from tests.e2e.test_batches import batch_message, custom_id, fields, refusal
from tests.e2e.test_buttons import ephemeral_reply
from tests.e2e.test_change_prompt import opened_form
from tests.e2e.test_member_jobs import listed, private_list
from tests.e2e.test_rework import KEY, charges, imagine, jobs, press, query, routed, settled
from tests.e2e.test_typed_back import refusal_of


def shown_text(text: str) -> str:
    """Markdown as Discord shows it: the bot escapes a member's words (``1\\:1`` is seen as ``1:1``)."""
    return re.sub(r"\\(.)", r"\1", text)


def bodies_sent(seaart: FakeSeaArt, settings: Settings) -> list[dict[str, Any]]:
    """What SeaArt was sent for each job, in the order the jobs were made, a batch's in candidate order (its
    creates leave side by side, in any order)."""
    order = "SELECT provider_job_id FROM jobs ORDER BY created_at, batch_index"
    return [seaart.jobs[str(task)].body for (task,) in query(settings, order)]


def prompts_sent(seaart: FakeSeaArt, settings: Settings) -> list[str]:
    return [str(body["prompt"]) for body in bodies_sent(seaart, settings)]


async def test_each_choice_is_an_image_of_one_batch_shown_re_rolled_and_reworded_together(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    typed = "a {red, green} paper boat on a pond @everyone"
    message = await batch_message(discord_fake, {"prompt": typed, "aspect_ratio": "16:9"})
    await discord_fake.wait_for(lambda: jobs(settings) == [(discord_fake.member_id, "delivered")] * 2, timeout=20)
    # One batch of two jobs, each its own prompt; the options typed go with both.
    assert prompts_sent(seaart, settings) == [
        "a red paper boat on a pond @everyone",
        "a green paper boat on a pond @everyone",
    ]
    assert {create.json["aspect_ratio"] for create in seaart.creates} == {"16:9"}
    rows = query(settings, "SELECT batch_id, batch_index, message_id FROM jobs ORDER BY batch_index")
    assert len({row[0] for row in rows}) == 1 and rows[0][0] is not None
    assert [row[1] for row in rows] == [1, 2] and {row[2] for row in rows} == {message.id}

    # The message shows the words as typed, and which choice each image is; each image's alt text its own prompt.
    await discord_fake.wait_for(lambda: "Done · 2 images" in message.embeds[0]["title"], timeout=10)
    assert message.embeds[0]["description"] == typed
    assert fields(message)["Images"] == "**#1** “red” ✅ ready\n**#2** “green” ✅ ready"
    assert [a["description"] for a in message.attachments] == [
        "a red paper boat on a pond @everyone (#1)",
        "a green paper boat on a pond @everyone (#2)",
    ]
    await settled(discord_fake, settings)
    assert charges(settings, discord_fake.member_id) == [("reserve", 1)] * 2 + [("commit", 1)] * 2
    # /jobs lists it once, by the words as typed.
    assert "a {red, green} paper boat on a pond @everyone" in listed(await private_list(discord_fake))

    # Another member's Re-roll: each choice again, charged to them.
    await discord_fake.click(message.id, custom_id(message, "Re-roll"), user_id=discord_fake.moderator_id)
    await discord_fake.wait_for(lambda: len(jobs(settings)) == 4 and all(j[1] == "delivered" for j in jobs(settings)))
    assert prompts_sent(seaart, settings)[2:] == prompts_sent(seaart, settings)[:2]
    assert [j[0] for j in jobs(settings)[2:]] == [discord_fake.moderator_id] * 2

    # Change prompt holds the words with their choices; three choices now make three images, whatever the batch.
    opened = await press(discord_fake, message, "Change prompt")
    assert (await opened_form(discord_fake, opened))["value"] == "a {red, green} paper boat on a pond @everyone"
    await discord_fake.submit_modal(opened, {"prompt": "a {blue, white, yellow} boat"})
    await discord_fake.wait_for(lambda: len(jobs(settings)) == 7 and all(j[1] == "delivered" for j in jobs(settings)))
    assert prompts_sent(seaart, settings)[4:] == ["a blue boat", "a white boat", "a yellow boat"]
    assert {create.json["aspect_ratio"] for create in seaart.creates[4:]} == {"16:9"}  # the request's own shape


async def test_a_count_makes_that_many_of_each_choice_and_words_in_braces_without_a_choice_are_words(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    await batch_message(discord_fake, {"prompt": "a {cat, dog} --repeat 2"})
    await discord_fake.wait_for(lambda: len(jobs(settings)) == 4 and all(j[1] == "delivered" for j in jobs(settings)))
    assert prompts_sent(seaart, settings) == ["a cat", "a cat", "a dog", "a dog"]

    await batch_message(discord_fake, {"prompt": "a sign saying {hello}, and a brace { left open"})
    await discord_fake.wait_for(lambda: len(jobs(settings)) == 5 and all(j[1] == "delivered" for j in jobs(settings)))
    assert prompts_sent(seaart, settings)[4] == "a sign saying {hello}, and a brace { left open"
    assert query(settings, "SELECT batch_id FROM jobs ORDER BY created_at DESC LIMIT 1") == [(None,)]


async def test_a_parameter_s_choices_are_each_prompt_s_own_and_change_prompt_asks_them_again(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Midjourney's ``--ar {1:1, 16:9}``: the same words in two shapes, each image in its own; Change prompt's words
    ask both shapes again, not the first image's shape for both."""
    message = await batch_message(discord_fake, {"prompt": "a heron at dawn --ar {1:1, 16:9}"})
    await discord_fake.wait_for(lambda: jobs(settings) == [(discord_fake.member_id, "delivered")] * 2, timeout=20)
    assert [(b["prompt"], b["aspect_ratio"]) for b in bodies_sent(seaart, settings)] == [
        ("a heron at dawn", "1:1"),
        ("a heron at dawn", "16:9"),
    ]
    await discord_fake.wait_for(lambda: "Done · 2 images" in message.embeds[0]["title"], timeout=10)
    assert shown_text(fields(message)["Images"]) == "**#1** “1:1” ✅ ready\n**#2** “16:9” ✅ ready"
    assert shown_text(message.embeds[0]["description"]) == "a heron at dawn --ar {1:1, 16:9}"
    assert fields(message)["Model"].startswith("Nano Banana 2 · 1:1 / 16:9 · ")  # each image's shape

    opened = await press(discord_fake, message, "Change prompt")
    assert (await opened_form(discord_fake, opened))["value"] == "a heron at dawn --ar {1:1, 16:9}"
    await discord_fake.submit_modal(opened, {"prompt": "a heron at dusk --ar {1:1, 16:9}"})
    await discord_fake.wait_for(lambda: len(jobs(settings)) == 4 and all(j[1] == "delivered" for j in jobs(settings)))
    assert [(b["prompt"], b["aspect_ratio"]) for b in bodies_sent(seaart, settings)[2:]] == [
        ("a heron at dusk", "1:1"),
        ("a heron at dusk", "16:9"),
    ]


async def test_too_many_choices_a_choice_in_a_parameter_or_a_blocked_word_in_one_refuse_the_whole_command(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    await discord_fake.slash_command("mod blockterm add", {"term": "forbidden"}, user_id=discord_fake.moderator_id)
    await discord_fake.wait_for(lambda: bool(query(settings, "SELECT * FROM blocked_terms")), timeout=10)
    admin = await discord_fake.slash_command(
        "admin defaults", {"max_count": 3}, user_id=discord_fake.admin_id, permissions=ADMIN_PERMISSIONS
    )
    await answer_given(discord_fake, admin)
    refused: list[tuple[dict[str, object], str]] = [
        ({"prompt": "a {red, blue} {car, bus}"}, "make 4 prompts, one image each"),
        ({"prompt": "{a,b}" * 40}, "make more than 10,000 prompts"),
        (
            {"prompt": "a {red, green} bird", "count": 2},
            "make 2 prompts, and you asked for 2 images of each: 4 in all; this server makes up to 3 per command",
        ),
        ({"prompt": "a {cat --repeat 2, dog}"}, "`--repeat` asks for that many images of every choice"),
        ({"prompt": "a bird --ar {1:1, 16:9}", "aspect_ratio": "1:1"}, "You chose `aspect_ratio:1:1` and typed"),
        ({"prompt": "{, }"}, "leaves nothing to draw"),
        ({"prompt": "a {tidy, forbidden} garden"}, "does not allow"),
        # Each prompt written out is judged: braces do not hide a term across them.
        ({"prompt": "a forbid{den, ding} garden"}, "does not allow"),
    ]
    for options, said in refused:
        interaction = await discord_fake.slash_command("imagine", options)
        await answer_given(discord_fake, interaction)
        text = refusal(discord_fake, interaction.id)
        assert said in refusal_of(text), (options, text)
        if len(str(options["prompt"])) < 100:
            assert text.endswith(f"{TYPED_BACK}\n```\n{options['prompt']}\n```"), text  # the words given back
    assert jobs(settings) == [] and seaart.requests == []

    # An empty choice is a choice of its own: "a dog" and "a big dog".
    await batch_message(discord_fake, {"prompt": "a {, big} dog"})
    await settled(discord_fake, settings)
    assert prompts_sent(seaart, settings) == ["a dog", "a big dog"]
    assert charges(settings, discord_fake.member_id) == [("reserve", 1)] * 2 + [("commit", 1)] * 2


async def test_an_edit_s_choices_edit_the_image_once_each_and_a_reply_s_are_refused(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The Edit form's ``make it {night, winter}`` is an edit of the image for each choice, in one message; its
    Change prompt holds the words as typed and edits the same image again for each new choice; Edit with Nano
    Banana and Use as reference take choices too. A reply's answer is one image: its choices are refused
    privately, nothing made (sent as typed, the model would draw one muddle of them)."""
    original = await imagine(discord_fake, {"prompt": "a lighthouse"})
    (shown,) = original.attachments
    opened = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    submitted = await discord_fake.submit_modal(opened, {"instruction": "make it {night, winter}"})
    await discord_fake.wait_for(lambda: len(jobs(settings)) == 3 and all(j[1] == "delivered" for j in jobs(settings)))
    edits = bodies_sent(seaart, settings)[1:]
    assert [b["prompt"] for b in edits] == ["make it night", "make it winter"]
    assert all(b["image_urls"][0].split("?")[0] == shown["url"].split("?")[0] for b in edits)
    assert submitted.original_message_id is not None
    batch = discord_fake.messages[submitted.original_message_id]
    await discord_fake.wait_for(lambda: "Done · 2 images" in batch.embeds[0]["title"], timeout=10)
    assert shown_text(batch.embeds[0]["description"]) == "make it {night, winter}"
    assert shown_text(fields(batch)["Images"]) == "**#1** “night” ✅ ready\n**#2** “winter” ✅ ready"

    # Change prompt: the same image edited again, once for each new choice.
    opened = await press(discord_fake, batch, "Change prompt")
    assert (await opened_form(discord_fake, opened))["value"] == "make it {night, winter}"
    await discord_fake.submit_modal(opened, {"prompt": "make it {rainy, foggy, sunny}"})
    await discord_fake.wait_for(lambda: len(jobs(settings)) == 6 and all(j[1] == "delivered" for j in jobs(settings)))
    again = bodies_sent(seaart, settings)[3:]
    assert [b["prompt"] for b in again] == ["make it rainy", "make it foggy", "make it sunny"]
    assert all(b["image_urls"][0].split("?")[0] == shown["url"].split("?")[0] for b in again)

    menu = await discord_fake.message_command("Edit with Nano Banana", original.id)
    await discord_fake.wait_for(lambda: bool(menu.callbacks), timeout=10)
    await discord_fake.submit_modal(menu, {INSTRUCTION_ID: "add a {boat, whale}"})
    await discord_fake.wait_for(lambda: len(jobs(settings)) == 8 and all(j[1] == "delivered" for j in jobs(settings)))
    assert [b["prompt"] for b in bodies_sent(seaart, settings)[6:]] == ["add a boat", "add a whale"]

    # A parameter in an edit's choice (its frame is one) and a reply's choices are refused, nothing made.
    opened = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    words = "make it {night --ar 16:9, winter}"
    text = await ephemeral_reply(discord_fake, await discord_fake.submit_modal(opened, {"instruction": words}))
    assert "In an edit, choices in braces take words" in refusal_of(text)
    await discord_fake.post_message("make it {night, winter}", reply_to=original.id)
    await discord_fake.wait_for(lambda: bool(discord_fake.dms_to(discord_fake.member_id)), timeout=10)
    assert ONE_INSTRUCTION in discord_fake.dms_to(discord_fake.member_id)[0].content
    await settled(discord_fake, settings)
    assert len(seaart.creates) == 8

    opened = await press(discord_fake, original, "Use as reference")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    await discord_fake.submit_modal(opened, {"prompt": "this lighthouse {at night, in winter}"})
    await discord_fake.wait_for(lambda: len(jobs(settings)) == 10 and all(j[1] == "delivered" for j in jobs(settings)))
    made = bodies_sent(seaart, settings)[8:]
    assert [b["prompt"] for b in made] == ["this lighthouse at night", "this lighthouse in winter"]
    assert made[0]["image_urls"] == made[1]["image_urls"] and len(made[0]["image_urls"]) == 1


@pytest.fixture
async def segmind() -> AsyncIterator[FakeSegmind]:
    async with FakeSegmind(api_key=KEY) as fake:
        yield fake


async def test_choices_that_go_to_different_providers_are_each_reserved_at_their_own_price(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, segmind: FakeSegmind
) -> None:
    """``--ar {1:1, auto}`` with SeaArt first: SeaArt has no "auto", so that choice goes to Segmind. Each image is
    reserved as its provider makes it (its price), in the one transaction, and charged so."""
    settings = routed(
        tmp_path, discord_fake, ("seaart", {"base_url": seaart.base_url}), ("segmind", {"base_url": segmind.base_url})
    )
    running = await start_bot(settings, discord_fake, Clock())
    try:
        message = await batch_message(discord_fake, {"prompt": "a fox in snow --ar {1:1, auto}"})
        await discord_fake.wait_for(lambda: [j[1] for j in jobs(settings)] == ["delivered"] * 2, timeout=20)
        assert [c.json["aspect_ratio"] for c in seaart.creates] == ["1:1"]
        assert len(segmind.creates) == 1 and segmind.creates[0].json["prompt"] == "a fox in snow"
        rows = query(settings, "SELECT provider, cost_micro_usd FROM jobs ORDER BY batch_index")
        assert [row[0] for row in rows] == ["seaart", "segmind"] and rows[0][1] != rows[1][1]
        await settled(discord_fake, settings)
        reserved = query(settings, "SELECT provider, kind, cost_micro_usd FROM ledger ORDER BY id")
        assert sorted(reserved) == sorted(
            [(provider, kind, cost) for provider, cost in rows for kind in ("reserve", "commit")]
        )
        await discord_fake.wait_for(lambda: "Done · 2 images" in message.embeds[0]["title"], timeout=10)
        assert "each" in message.embeds[0]["footer"]["text"] and "–" in message.embeds[0]["footer"]["text"]
    finally:
        await running.close()


async def test_a_saved_count_is_not_asked_of_each_choice_and_the_member_is_told(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    saved = await discord_fake.slash_command("preferences", {"count": 3})
    await answer_given(discord_fake, saved)
    command = await discord_fake.slash_command("imagine", {"prompt": "a {cat, dog} on a sofa"})
    await discord_fake.wait_for(lambda: [j[1] for j in jobs(settings)] == ["delivered"] * 2, timeout=20)
    await discord_fake.wait_for(lambda: bool(command.followup_ids), timeout=10)
    ((note, flags),) = followups(discord_fake, command)
    assert flags & 64 and note == CHOICES_NOT_COUNT.format(count=3), note


async def test_an_edit_s_empty_choice_beside_a_reframe_is_the_reframe_alone(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Zoom out with `{, add a lake}`: the zoom out alone and the zoom out with a lake, side by side."""
    original = await imagine(discord_fake, {"prompt": "a cabin in the woods", "aspect_ratio": "3:2"})
    opened = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(opened.callbacks), timeout=10)
    await discord_fake.submit_modal(opened, {"instruction": "{, add a lake}", "shape": "zoom-out"})
    await discord_fake.wait_for(lambda: len(jobs(settings)) == 3 and all(j[1] == "delivered" for j in jobs(settings)))
    zoomed = [b["prompt"] for b in bodies_sent(seaart, settings)[1:]]
    assert all(p.startswith("Zoom out from this image into the same") for p in zoomed), zoomed
    assert not zoomed[0].endswith("add a lake") and zoomed[1].endswith("Also: add a lake")
