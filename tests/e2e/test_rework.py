"""Working on a delivered image through the fake Discord: Vary, Edit (with its modal) and Re-render 2K/4K;
who pays, who may, what the provider receives, after a restart, and on a day-old job whose attachment
links have expired (docs/architecture.md section 4.7)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import derive
from bot.config import Settings, load_settings
from bot.providers.families import NANO_BANANA_2, NANO_BANANA_PRO
from bot.testing.discord import PLAIN_MEMBER_PERMISSIONS, FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.providers import FakeGemini, FakeSeaArt, FakeSegmind
from cogs.imagine import Imagine
from tests.conftest import BOT_TOKEN, SEAART_KEY, Clock, RunningBot, answer_given, make_settings, png_bytes, start_bot
from tests.e2e.edits import told_privately
from tests.e2e.test_buttons import PANS, button, ephemeral_reply, finished_labels, labels

KEY = "rework-key"
STRANGER = 4242  # a member of the server who did not ask for the image
FULL = finished_labels("Re-render 2K", "Re-render 4K")
WIDE = finished_labels("Re-render 2K", "Re-render 4K", square=False)  # a landscape image: Make square too
# Under an image a Vary, a zoom or a pan made: the same, its Change prompt that step again with other words.
MADE_FROM_IT = finished_labels("Re-render 2K", "Re-render 4K")
MADE_FROM_A_WIDE_ONE = finished_labels("Re-render 2K", "Re-render 4K", square=False)


def query(settings: Settings, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute(sql, params).fetchall()


def jobs(settings: Settings) -> list[tuple[Any, ...]]:
    return query(settings, "SELECT user_id, state FROM jobs ORDER BY created_at")


def charges(settings: Settings, user_id: int) -> list[tuple[str, int]]:
    return query(settings, "SELECT kind, units FROM ledger WHERE user_id = ? ORDER BY id", user_id)


def made_from(message: FakeMessage) -> str:
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    return str(fields.get("Made from", ""))


async def garden_with_a_blocked_term(discord_fake: FakeDiscord, settings: Settings) -> FakeMessage:
    """A delivered image of a garden, once a moderator has blocked the term "forbidden"."""
    original = await imagine(discord_fake, {"prompt": "a garden"})
    await discord_fake.slash_command("mod blockterm add", {"term": "forbidden"}, user_id=discord_fake.moderator_id)
    await discord_fake.wait_for(lambda: bool(query(settings, "SELECT * FROM blocked_terms")), timeout=10)
    return original


async def settled(discord_fake: FakeDiscord, settings: Settings) -> None:
    """Every job finished and its charge settled (the row is written just after the last message edit)."""
    active = "SELECT COUNT(*) FROM jobs WHERE charge_state = 'reserved' OR state NOT IN ('delivered', 'failed')"
    await discord_fake.wait_for(lambda: query(settings, active) == [(0,)], timeout=10)


async def nothing_but_the_original(discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings) -> None:
    """After refusals: the one image the member asked for, sent and charged once; nothing else."""
    await settled(discord_fake, settings)
    assert len(seaart.creates) == 1 and len(jobs(settings)) == 1
    assert query(settings, "SELECT user_id, kind, units FROM ledger ORDER BY id") == [
        (discord_fake.member_id, "reserve", 1),
        (discord_fake.member_id, "commit", 1),
    ]


async def delivered(discord_fake: FakeDiscord, interaction: FakeInteraction) -> FakeMessage:
    """The message an interaction's job ends in, once it shows the image and its buttons."""

    def done() -> bool:
        mid = interaction.original_message_id
        message = discord_fake.messages.get(mid or 0)
        return message is not None and bool(message.files) and "Done" in message.embeds[0]["title"]

    await discord_fake.wait_for(done, timeout=20)
    await discord_fake.wait_for(lambda: labels(discord_fake, interaction.original_message_id or 0) != [], timeout=10)
    return discord_fake.messages[interaction.original_message_id or 0]


async def imagine(discord_fake: FakeDiscord, options: dict[str, Any], **kw: Any) -> FakeMessage:
    return await delivered(discord_fake, await discord_fake.slash_command("imagine", options, **kw))


async def fetch(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.read()


async def press(discord_fake: FakeDiscord, message: FakeMessage, label: str, **kw: Any) -> FakeInteraction:
    return await discord_fake.click(message.id, button(discord_fake, message.id, label), **kw)


async def double_clicked(discord_fake: FakeDiscord, message: FakeMessage, label: str) -> FakeInteraction:
    """A stranger's double click on ``label``: the press that started a job. Whichever Discord delivered first
    started it; the other is told only the first counts."""
    kw: dict[str, Any] = {"user_id": STRANGER, "permissions": PLAIN_MEMBER_PERMISSIONS}
    presses = await asyncio.gather(*(press(discord_fake, message, label, **kw) for _ in range(2)))
    await discord_fake.wait_for(lambda: all(p.callbacks for p in presses), timeout=10)
    started, refused = sorted(presses, key=lambda p: bool(p.callbacks[0]["data"].get("flags", 0) & 64))
    assert "only the first press counts" in await ephemeral_reply(discord_fake, refused)
    return started


# ---- Vary -------------------------------------------------------------------------------------------


async def test_vary_sends_this_image_and_the_members_references_and_charges_the_presser(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    refs = [discord_fake.add_attachment(png_bytes(colour=(i * 60, 0, 0)), f"r{i}.png", "image/png") for i in range(3)]
    options = {"prompt": "a lighthouse", "aspect_ratio": "3:2", "image1": refs[0], "image2": refs[1], "image3": refs[2]}
    original = await imagine(discord_fake, options)
    assert labels(discord_fake, original.id) == WIDE

    vary = await press(discord_fake, original, "Vary (Strong)", user_id=STRANGER, permissions=PLAIN_MEMBER_PERMISSIONS)
    result = await delivered(discord_fake, vary)

    assert vary.callbacks[0]["type"] == 4 and result.id != original.id  # a new message; the old one stays
    create = seaart.creates[1].json
    # This image first, then the member's references up to the model's limit (Nano Banana 2 on SeaArt: 3).
    assert create["image_urls"][1:] == [refs[0]["url"], refs[1]["url"]]
    assert create["prompt"] == derive.varied("a lighthouse", "vary", references=3)
    assert create["aspect_ratio"] == "3:2"
    status, data = await fetch(create["image_urls"][0])
    assert status == 200 and data == original.files[0].data
    assert "variation" in made_from(result) and f"/{original.channel_id}/{original.id})" in made_from(result)
    assert labels(discord_fake, result.id) == MADE_FROM_A_WIDE_ONE
    # Charged to whoever pressed it; the author paid for their own image only.
    await settled(discord_fake, settings)
    assert charges(settings, STRANGER) == [("reserve", 1), ("commit", 1)]
    assert charges(settings, discord_fake.member_id) == [("reserve", 1), ("commit", 1)]
    assert jobs(settings) == [(discord_fake.member_id, "delivered"), (STRANGER, "delivered")]


async def test_vary_subtle_asks_for_small_changes_and_a_strong_vary_of_its_result_words_the_first_prompt(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Midjourney's two Vary buttons: Subtle keeps the picture and changes small details, Strong makes a new
    take. Each says so to the model; a Vary of a variation words it from the member's prompt, not from the
    earlier instruction."""
    original = await imagine(discord_fake, {"prompt": "a lighthouse at dusk @everyone"})
    subtle = await delivered(discord_fake, await press(discord_fake, original, "Vary (Subtle)"))
    create = seaart.creates[1].json
    assert create["prompt"].startswith("Make a subtle variation of this image: keep its subject, composition")
    assert create["prompt"].endswith("It was made from this prompt: a lighthouse at dusk @everyone")
    status, data = await fetch(create["image_urls"][0])
    assert status == 200 and data == original.files[0].data and len(create["image_urls"]) == 1
    assert "A subtle variation" in made_from(subtle) and f"/{original.id})" in made_from(subtle)
    # Its alt text and its embed say what it shows, not the bot's instruction to the model ("Made from" says
    # what was done).
    assert subtle.attachments[0]["description"] == "a lighthouse at dusk @everyone"
    assert subtle.embeds[0]["description"] == "a lighthouse at dusk @everyone"
    assert labels(discord_fake, subtle.id) == MADE_FROM_IT

    strong = await delivered(discord_fake, await press(discord_fake, subtle, "Vary (Strong)"))
    create = seaart.creates[2].json
    assert create["prompt"] == derive.varied("a lighthouse at dusk @everyone", "vary")
    assert create["prompt"].count("It was made from") == 1
    status, data = await fetch(create["image_urls"][0])
    assert status == 200 and data == subtle.files[0].data
    assert "A strong variation" in made_from(strong) and f"/{subtle.id})" in made_from(strong)
    # The prompt is the member's text: in the embed, and never a ping.
    assert "@everyone" in strong.embeds[0]["description"] and strong.allowed_mentions == {"parse": []}
    await settled(discord_fake, settings)
    assert charges(settings, discord_fake.member_id) == [("reserve", 1), ("commit", 1)] * 3


async def test_a_vary_of_a_prompt_with_no_room_for_its_instruction_sends_the_prompt_as_typed(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """SeaArt takes 2,500 characters: a 2,450-character prompt had room, its Vary's instruction has not. The
    member is not refused as if they had typed more than they did: the prompt goes as typed, with the image."""
    prompt = ("a lighthouse on a cliff at dusk, " * 80)[:2450].strip()
    original = await imagine(discord_fake, {"prompt": prompt})
    varied = await delivered(discord_fake, await press(discord_fake, original, "Vary (Subtle)"))
    create = seaart.creates[1].json
    assert create["prompt"] == prompt and len(create["image_urls"]) == 1
    assert "A subtle variation" in made_from(varied)
    await settled(discord_fake, settings)
    assert charges(settings, discord_fake.member_id) == [("reserve", 1), ("commit", 1)] * 2


@pytest.fixture
async def segmind() -> AsyncIterator[FakeSegmind]:
    async with FakeSegmind(api_key=KEY) as fake:
        yield fake


def routed(tmp_path: Path, discord_fake: FakeDiscord, *route: tuple[str, dict[str, Any]]) -> Settings:
    """These providers enabled, in this failover order for Nano Banana 2 (the first is the default)."""
    names = [name for name, _ in route]
    providers: dict[str, Any] = {name: {"enabled": False} for name in ("seaart", "segmind", "gemini")}
    providers.update({name: {"enabled": True, **section} for name, section in route})
    return load_settings(
        None,
        environment=False,
        discord_token=BOT_TOKEN,
        seaart_api_key=SEAART_KEY,
        segmind_api_key=KEY,
        gemini_api_key=KEY,
        discord={"api_base_url": discord_fake.api_base_url, "gateway_url": discord_fake.gateway_url},
        database={"path": str(tmp_path / f"{'-'.join(names)}.sqlite3")},
        providers=providers,
        imagine={"default_provider": names[0]},
        models={"routes": {"nano_banana_2": names}},
        jobs={"poll_interval_seconds": 0.05, "max_poll_interval_seconds": 0.2, "progress_interval_seconds": 0},
    )


async def test_vary_draws_a_new_seed_where_the_provider_takes_one(
    tmp_path: Path, discord_fake: FakeDiscord, segmind: FakeSegmind
) -> None:
    settings = routed(tmp_path, discord_fake, ("segmind", {"base_url": segmind.base_url}))
    running = await start_bot(settings, discord_fake, Clock())
    try:
        original = await imagine(discord_fake, {"prompt": "a fox", "seed": 1234})
        await delivered(discord_fake, await press(discord_fake, original, "Vary (Strong)"))
        reroll = await press(discord_fake, original, "Re-roll")
        await delivered(discord_fake, reroll)
    finally:
        await running.close()
    first, varied, rerolled = (c.json for c in segmind.creates)
    assert first["seed"] == 1234
    # Re-roll repeats the request, but with a new seed: the same one would make a charged near-copy.
    assert isinstance(rerolled["seed"], int) and rerolled["seed"] != 1234
    assert rerolled["prompt"] == "a fox" and not rerolled.get("image_urls")
    assert isinstance(varied["seed"], int) and varied["seed"] != 1234
    assert varied["prompt"] == derive.varied("a fox", "vary") and len(varied["image_urls"]) == 1


async def test_vary_fails_over_like_imagine(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, segmind: FakeSegmind
) -> None:
    settings = routed(
        tmp_path, discord_fake, ("seaart", {"base_url": seaart.base_url}), ("segmind", {"base_url": segmind.base_url})
    )
    running = await start_bot(settings, discord_fake, Clock())
    try:
        ref = discord_fake.add_attachment(png_bytes(), "ref.png", "image/png")
        original = await imagine(discord_fake, {"prompt": "a harbour", "image1": ref})
        seaart.script("out_of_credit")
        result = await delivered(discord_fake, await press(discord_fake, original, "Vary (Strong)", user_id=STRANGER))
        await settled(discord_fake, settings)
    finally:
        await running.close()
    # SeaArt had the image but could not take the job; Segmind got the same references.
    assert seaart.creates[1].json["image_urls"] == segmind.creates[0].json["image_urls"]
    assert segmind.creates[0].json["image_urls"][1] == ref["url"]
    assert "segmind (after seaart: out of credit)" in str(result.embeds[0]["fields"])
    assert query(settings, "SELECT user_id, provider, state FROM jobs ORDER BY created_at")[1] == (
        STRANGER,
        "segmind",
        "delivered",
    )
    assert charges(settings, STRANGER) == [("reserve", 1), ("commit", 1)]


# ---- Edit -------------------------------------------------------------------------------------------


async def test_a_strangers_edit_opens_a_modal_and_is_charged_to_the_stranger(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    ref = discord_fake.add_attachment(png_bytes(), "face.png", "image/png")
    original = await imagine(discord_fake, {"prompt": "a cat in a hat", "image1": ref, "resolution": "2K"})

    edit = await press(discord_fake, original, "Edit", user_id=STRANGER, permissions=PLAIN_MEMBER_PERMISSIONS)
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    modal = edit.callbacks[0]
    assert modal["type"] == 9
    job_id = query(settings, "SELECT id FROM jobs")[0][0]
    assert modal["data"]["custom_id"] == f"bananacord:edit:{job_id}"
    assert modal["data"]["title"] == "Edit or reframe this image"
    await settled(discord_fake, settings)
    assert len(seaart.creates) == 1 and jobs(settings) == [(discord_fake.member_id, "delivered")]  # nothing yet

    submit = await discord_fake.submit_modal(edit, {"instruction": "make it night @everyone"})
    result = await delivered(discord_fake, submit)

    create = seaart.creates[1].json
    # The instruction is the prompt and this image the only reference; the other options are kept.
    assert create["prompt"] == "make it night @everyone" and create["resolution"] == "2K"
    assert len(create["image_urls"]) == 1
    status, data = await fetch(create["image_urls"][0])
    assert status == 200 and data == original.files[0].data
    assert result.embeds[0]["description"] == "make it night @everyone" and "An edit" in made_from(result)
    assert result.allowed_mentions == {"parse": []}
    await settled(discord_fake, settings)
    assert charges(settings, STRANGER) == [("reserve", 2), ("commit", 2)]  # Nano Banana 2 at 2K: 2 units
    assert charges(settings, discord_fake.member_id) == [("reserve", 2), ("commit", 2)]


async def test_an_empty_or_blocked_edit_is_refused_privately(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await garden_with_a_blocked_term(discord_fake, settings)
    for instruction, refusal in (("   ", "Say what should change"), ("add a forbidden statue", "not allow")):
        edit = await press(discord_fake, original, "Edit")
        await discord_fake.wait_for(lambda edit=edit: bool(edit.callbacks), timeout=10)
        submit = await discord_fake.submit_modal(edit, {"instruction": instruction})
        assert refusal in await ephemeral_reply(discord_fake, submit)
    await nothing_but_the_original(discord_fake, seaart, settings)


def shape_select(modal: dict[str, Any]) -> dict[str, Any]:
    """The Edit form's shape choice, as Discord's client shows it."""
    (select,) = [
        c["component"] for c in modal["data"]["components"] if c.get("component", {}).get("custom_id") == "shape"
    ]
    return dict(select)


async def test_a_new_shape_alone_reframes_the_image(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a lighthouse on a cliff", "aspect_ratio": "1:1"})
    edit = await press(discord_fake, original, "Edit", user_id=STRANGER, permissions=PLAIN_MEMBER_PERMISSIONS)
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)

    # The form offers to keep the image as it is (chosen), to zoom out, and every other shape Nano Banana 2
    # comes in (SeaArt serves them all).
    select = shape_select(edit.callbacks[0])
    options = [(o["value"], o["label"], bool(o.get("default"))) for o in select["options"]]
    assert options[:2] == [
        ("keep", "Keep it as it is (1:1)", True),
        ("zoom-out", "Zoom out: more of the scene, same shape (1:1)", False),
    ]
    # Then a pan each way, the shape it takes the nearest Nano Banana 2 has to half as wide (or tall) again.
    assert options[2:6] == [
        ("pan-left", "⬅️ Pan left: extend the scene, 3:2 (landscape)", False),
        ("pan-right", "➡️ Pan right: extend the scene, 3:2 (landscape)", False),
        ("pan-up", "⬆️ Pan up: extend the scene, 2:3 (portrait)", False),
        ("pan-down", "⬇️ Pan down: extend the scene, 2:3 (portrait)", False),
    ]
    assert [value for value, _, _ in options[6:]] == [r for r in NANO_BANANA_2.aspect_ratios if r != "1:1"]
    assert ("16:9", "New shape: 16:9 (landscape)", False) in options
    assert ("9:16", "New shape: 9:16 (portrait)", False) in options
    # The words may be left out now: a new frame alone is a change.
    (text,) = [c["component"] for c in edit.callbacks[0]["data"]["components"] if c["component"]["type"] == 4]
    assert text.get("required") is False

    submit = await discord_fake.submit_modal(edit, {"instruction": "", "shape": "16:9"})
    result = await delivered(discord_fake, submit)

    create = seaart.creates[1].json
    assert create["aspect_ratio"] == "16:9" and create["resolution"] == "1K"
    assert "16:9 (landscape) frame" in create["prompt"] and "continue the scene" in create["prompt"]
    assert len(create["image_urls"]) == 1
    assert (await fetch(create["image_urls"][0]))[1] == original.files[0].data
    assert (result.attachments[0]["width"], result.attachments[0]["height"]) == (1024, 576)
    note = made_from(result)
    assert "in a new shape (16:9)" in note and f"/{original.channel_id}/{original.id})" in note
    assert "16:9" in result.embeds[0]["fields"][0]["value"]  # the options line
    await settled(discord_fake, settings)
    assert charges(settings, STRANGER) == [("reserve", 1), ("commit", 1)]


async def test_words_and_a_new_shape_do_both_and_keeping_the_shape_keeps_it(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a meadow", "aspect_ratio": "4:3", "resolution": "2K"})
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    both = await delivered(
        discord_fake, await discord_fake.submit_modal(edit, {"instruction": "at night", "shape": "9:16"})
    )
    assert seaart.creates[1].json["prompt"] == "at night" and seaart.creates[1].json["aspect_ratio"] == "9:16"
    assert seaart.creates[1].json["resolution"] == "2K" and "An edit" in made_from(both)

    # The shape choice left alone (its default, "keep") is an edit in the image's own shape.
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    await delivered(discord_fake, await discord_fake.submit_modal(edit, {"instruction": "in snow"}))
    assert seaart.creates[2].json["prompt"] == "in snow" and seaart.creates[2].json["aspect_ratio"] == "4:3"

    # Midjourney's "--ar" at the end of the words asks for a shape too.
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    await delivered(discord_fake, await discord_fake.submit_modal(edit, {"instruction": "in fog --ar 21:9"}))
    assert seaart.creates[3].json["prompt"] == "in fog" and seaart.creates[3].json["aspect_ratio"] == "21:9"

    # Its other parameters: --no in words, the rest taken out and named privately once the edit has started.
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    submit = await discord_fake.submit_modal(edit, {"instruction": "in rain --no people --style 4b"})
    await delivered(discord_fake, submit)
    assert seaart.creates[4].json["prompt"] == "in rain, without people"
    assert await told_privately(discord_fake, submit) == [
        ("Left out `--style 4b`: Midjourney's parameters, which mean nothing to Nano Banana.", 64)
    ]


async def test_zoom_out_shows_more_of_the_scene_in_the_same_shape_or_a_new_one(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a cabin in the woods", "aspect_ratio": "3:2"})
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    result = await delivered(discord_fake, await discord_fake.submit_modal(edit, {"shape": "zoom-out"}))
    create = seaart.creates[1].json
    assert create["aspect_ratio"] == "3:2" and create["prompt"].startswith("Zoom out from this image into the same")
    assert (await fetch(create["image_urls"][0]))[1] == original.files[0].data
    assert "zoomed out" in made_from(result) and result.embeds[0]["description"] == "a cabin in the woods"

    # Zoomed out into a wider shape, Midjourney's way, with something to add.
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    values = {"instruction": "add a lake --ar 21:9", "shape": "zoom-out"}
    wider = await delivered(discord_fake, await discord_fake.submit_modal(edit, values))
    create = seaart.creates[2].json
    assert create["aspect_ratio"] == "21:9" and "into a 21:9 (landscape) frame" in create["prompt"]
    assert create["prompt"].endswith("Also: add a lake")
    # The embed shows what the image shows and what the member added, not the instruction to zoom.
    assert wider.embeds[0]["description"] == "a cabin in the woods\n\nAlso asked: add a lake"

    # A re-render of the zoomed-out image draws what it shows, larger: it does not zoom out a second time.
    await delivered(discord_fake, await press(discord_fake, result, "Re-render 2K"))
    create = seaart.creates[3].json
    assert create["prompt"] == "a cabin in the woods" and create["resolution"] == "2K"
    assert create["aspect_ratio"] == "3:2"
    await settled(discord_fake, settings)
    assert charges(settings, discord_fake.member_id)[-2:] == [("reserve", 2), ("commit", 2)]


async def test_the_zoom_out_button_is_the_edit_form_s_zoom_out_in_one_click(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Midjourney's members zoom out with one click; the Edit form's choice is three. The same request: the image
    alone, its shape kept, more of the scene asked for; charged to whoever pressed it; a double click is one."""
    original = await imagine(discord_fake, {"prompt": "a lighthouse on a rock", "aspect_ratio": "3:2"})
    result = await delivered(discord_fake, await double_clicked(discord_fake, original, "Zoom out"))

    create = seaart.creates[1].json
    assert create["prompt"] == derive.framed("", derive.Frame(zoom_out=True))[0]
    assert create["aspect_ratio"] == "3:2" and len(create["image_urls"]) == 1
    assert (await fetch(create["image_urls"][0]))[1] == original.files[0].data
    assert "zoomed out" in made_from(result) and result.embeds[0]["description"] == "a lighthouse on a rock"
    assert labels(discord_fake, result.id) == MADE_FROM_A_WIDE_ONE
    # A Vary of the zoomed-out image draws what it shows: it does not zoom out again.
    await delivered(discord_fake, await press(discord_fake, result, "Vary (Subtle)"))
    assert seaart.creates[2].json["prompt"] == derive.varied("a lighthouse on a rock", "vary_subtle")
    await settled(discord_fake, settings)
    assert len(seaart.creates) == 3
    assert charges(settings, STRANGER) == [("reserve", 1), ("commit", 1)]
    assert charges(settings, discord_fake.member_id) == [("reserve", 1), ("commit", 1)] * 2


async def test_a_pan_extends_the_scene_one_way_in_a_shape_with_room_for_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"default_model": "nano_banana_pro"})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        original = await imagine(discord_fake, {"prompt": "a road into the hills", "aspect_ratio": "16:9"})
        edit = await press(discord_fake, original, "Edit")
        await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
        result = await delivered(discord_fake, await discord_fake.submit_modal(edit, {"shape": "pan-right"}))
        create = seaart.creates[1].json
        # 16:9 half as wide again is 2.67:1; the widest Nano Banana Pro has is 21:9.
        assert create["aspect_ratio"] == "21:9"
        assert create["prompt"].startswith("Extend this image towards the right into a 21:9 (landscape) frame")
        assert "as it is at the left of the new frame" in create["prompt"]
        assert (await fetch(create["image_urls"][0]))[1] == original.files[0].data
        assert "➡️ The image of" in made_from(result) and "extended to the right into a 21:9 frame" in made_from(result)
        # Its Vary is a new take on what it shows, in its new shape, not a second pan.
        await delivered(discord_fake, await press(discord_fake, result, "Vary (Strong)"))
        varied = seaart.creates[2].json
        assert (varied["prompt"], varied["aspect_ratio"]) == (derive.varied("a road into the hills", "vary"), "21:9")

        # From 21:9 there is no wider shape on Nano Banana Pro: no pan sideways is offered, nor taken.
        edit = await press(discord_fake, result, "Edit")
        await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
        offered = [o["value"] for o in shape_select(edit.callbacks[0])["options"]]
        assert "pan-left" not in offered and "pan-right" not in offered and "pan-up" in offered
        refused = await discord_fake.submit_modal(edit, {"shape": "pan-left"}, modified_client=True)
        assert "cannot be extended left" in await ephemeral_reply(discord_fake, refused)
        assert len(seaart.creates) == 3
    finally:
        await running.close()


async def test_a_pan_button_is_the_edit_form_s_pan_in_one_click_and_offered_only_with_room(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Midjourney's arrows: one click extends the scene that way, the request the Edit form's pan makes, charged to
    whoever pressed it, a double click one job. A shape with no room that way has no button for it."""
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"default_model": "nano_banana_pro"})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        original = await imagine(discord_fake, {"prompt": "a road into the hills", "aspect_ratio": "16:9"})
        assert labels(discord_fake, original.id) == WIDE
        result = await delivered(discord_fake, await double_clicked(discord_fake, original, "Pan right"))

        # The Edit form's "Pan right", as test_a_pan_extends_the_scene_one_way_in_a_shape_with_room_for_it sends it.
        create = seaart.creates[1].json
        assert create["aspect_ratio"] == "21:9" and len(create["image_urls"]) == 1
        assert create["prompt"] == derive.framed("", derive.Frame(ratio="21:9", pan="right"))[0]
        assert (await fetch(create["image_urls"][0]))[1] == original.files[0].data
        assert "➡️ The image of" in made_from(result) and "extended to the right into a 21:9 frame" in made_from(result)
        assert result.embeds[0]["description"] == "a road into the hills"
        # 21:9 is Nano Banana Pro's widest shape: no pan sideways is offered under the result.
        wide = finished_labels("Re-render 2K", "Re-render 4K", pans=PANS[2:], square=False)
        assert labels(discord_fake, result.id) == wide
        await settled(discord_fake, settings)
        assert len(seaart.creates) == 2
        # A Nano Banana Pro image costs 3 units by default (config.example.toml [quotas]).
        assert charges(settings, STRANGER) == [("reserve", 3), ("commit", 3)]
        assert charges(settings, discord_fake.member_id) == [("reserve", 3), ("commit", 3)]
    finally:
        await running.close()


async def test_a_pan_button_with_no_room_that_way_is_refused_privately_and_nothing_is_made(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """An image asked in no shape shows every arrow (its shape is known only once it is seen): one that turns out
    as wide as the model goes is refused a pan sideways on the press, nothing made or charged; its pan up is
    worked out from the shape Discord shows."""
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"default_model": "nano_banana_pro"})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        original = await imagine(discord_fake, {"prompt": "a long train"})
        assert labels(discord_fake, original.id) == FULL  # square as delivered: room every way
        # The pans are chosen by the image's shape as delivered: one that came 21:9 would offer none sideways.
        cog = running.bot.get_cog("Imagine")
        job = await running.bot.services.runner.store.get(str(query(settings, "SELECT id FROM jobs")[0][0]))
        assert isinstance(cog, Imagine) and job is not None
        view = cog.build_view(job, "result", 2100 / 900)
        assert view is not None
        shown = [c["label"] for row in view.to_components() for c in row["components"]]
        assert shown == finished_labels("Re-render 2K", "Re-render 4K", pans=PANS[2:], square=False)
        # Nano Banana Pro asked no shape keeps its first reference's (docs/providers.md): Discord then shows the image
        # as 21:9. (The fake SeaArt knows the shapes of its own files only, so the fake Discord is told the size.)
        original.attachments[0]["width"], original.attachments[0]["height"] = 2100, 900
        for way in ("left", "right"):
            refused = await press(discord_fake, original, f"Pan {way}")
            text = await ephemeral_reply(discord_fake, refused)
            assert f"cannot be extended {way}" in text, text
        await settled(discord_fake, settings)
        assert len(seaart.creates) == 1
        assert charges(settings, discord_fake.member_id) == [("reserve", 3), ("commit", 3)]

        upwards = await delivered(discord_fake, await press(discord_fake, original, "Pan up"))
        assert "⬆️ The image of" in made_from(upwards) and "extended upwards into a 3:2 frame" in made_from(upwards)
        create = seaart.creates[1].json
        assert create["aspect_ratio"] == "3:2" and create["prompt"].startswith("Extend this image towards the top")
    finally:
        await running.close()


async def test_make_square_is_the_edit_form_s_new_shape_1_1_in_one_click_offered_only_where_not_square(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Midjourney's Make Square: a 16:9 image drawn again into a square frame, as the Edit form's "New shape: 1:1"
    sends it; a double click is one job, charged to the presser; the square result, or a square image, offers none
    and a press there all the same is refused privately."""
    original = await imagine(discord_fake, {"prompt": "a harbour at dawn", "aspect_ratio": "16:9"})
    assert labels(discord_fake, original.id)[-1] == "Make square"
    result = await delivered(discord_fake, await double_clicked(discord_fake, original, "Make square"))
    create = seaart.creates[1].json
    assert create["aspect_ratio"] == "1:1" and len(create["image_urls"]) == 1
    assert create["prompt"] == derive.framed("", derive.Frame(ratio="1:1"))[0]
    assert (await fetch(create["image_urls"][0]))[1] == original.files[0].data
    assert "in a new shape (1:1)" in made_from(result) and result.embeds[0]["description"] == "a harbour at dawn"
    assert labels(discord_fake, result.id) == MADE_FROM_IT  # square: no Make square
    crafted_id = f"bananacord:job:square:{query(settings, 'SELECT id FROM jobs ORDER BY created_at')[1][0]}"
    result.components.append({"type": 1, "components": [{"type": 2, "style": 2, "custom_id": crafted_id}]})
    refused = await discord_fake.click(result.id, crafted_id)
    assert "square already" in await ephemeral_reply(discord_fake, refused)
    await settled(discord_fake, settings)
    assert len(seaart.creates) == 2
    assert charges(settings, STRANGER) == [("reserve", 1), ("commit", 1)]


async def test_a_shape_the_model_does_not_offer_or_no_change_at_all_is_refused_privately(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, imagine={"default_model": "nano_banana_pro"})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        original = await imagine(discord_fake, {"prompt": "a garden"})
        edit = await press(discord_fake, original, "Edit")
        await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
        offered = [o["value"] for o in shape_select(edit.callbacks[0])["options"]]
        # A 1:1 image (the provider's default shape, asked for none): pans to 3:2 and 2:3.
        pans = ["pan-left", "pan-right", "pan-up", "pan-down"]
        assert offered == ["keep", "zoom-out", *pans, *(r for r in NANO_BANANA_PRO.aspect_ratios if r != "1:1")]
        cases: list[tuple[dict[str, Any], str]] = [
            ({"instruction": "  ", "shape": []}, "or pick a way to reframe it"),  # nothing typed, choice cleared
            ({"instruction": "", "shape": "keep"}, "or pick a way to reframe it"),
            # A modified client sends what the form did not offer: the refusal names what is.
            ({"instruction": "", "shape": "8:1"}, "Nano Banana Pro cannot be given the shape `8:1` here"),
            ({"instruction": "x", "shape": "@everyone"}, "Choose one of: 1:1, 16:9"),
            # The shape asked for twice, Midjourney's way in the words and in the choice, differently.
            ({"instruction": "wider --ar 4:3", "shape": "16:9"}, "You picked the shape 16:9 and typed `--ar 4:3`"),
            ({"instruction": "wider --ar 4:3", "shape": "pan-up"}, "You picked to pan up (in 2:3) and typed"),
            ({"instruction": "", "shape": "pan-sideways"}, "cannot be extended that way"),
        ]
        for values, refusal in cases:
            edit = await press(discord_fake, original, "Edit")
            await discord_fake.wait_for(lambda edit=edit: bool(edit.callbacks), timeout=10)
            submit = await discord_fake.submit_modal(edit, values, modified_client=True)
            assert refusal in await ephemeral_reply(discord_fake, submit)
        await settled(discord_fake, settings)
        # Nothing sent or charged but the original (Nano Banana Pro at 1K: 3 units).
        assert len(seaart.creates) == 1 and len(jobs(settings)) == 1
        assert charges(settings, discord_fake.member_id) == [("reserve", 3), ("commit", 3)]
    finally:
        await running.close()


# ---- Re-render --------------------------------------------------------------------------------------


async def test_rerender_draws_the_image_again_at_the_size_and_says_so(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a tiny house", "aspect_ratio": "4:3"})
    result = await delivered(discord_fake, await press(discord_fake, original, "Re-render 4K"))

    create = seaart.creates[1].json
    assert create["resolution"] == "4K" and create["prompt"] == "a tiny house" and create["aspect_ratio"] == "4:3"
    assert len(create["image_urls"]) == 1
    assert (await fetch(create["image_urls"][0]))[1] == original.files[0].data
    note = made_from(result)
    assert "Re-rendered at 4K" in note and "not a pixel-for-pixel upscale" in note
    assert result.attachments[0]["width"] == 4096  # the fake draws what it was asked for
    # Nothing above 4K: the re-render offers no further re-render.
    assert labels(discord_fake, result.id) == finished_labels(worded=False, square=False)  # 4:3
    await settled(discord_fake, settings)
    assert charges(settings, discord_fake.member_id) == [("reserve", 1), ("commit", 1), ("reserve", 3), ("commit", 3)]


async def test_rerender_over_quota_is_refused_privately_and_nothing_is_charged(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 3})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        original = await imagine(discord_fake, {"prompt": "a red door"})
        refused = await press(discord_fake, original, "Re-render 4K")
        assert "daily units" in await ephemeral_reply(discord_fake, refused)
        # 2K (2 units) still fits in what is left.
        await delivered(discord_fake, await press(discord_fake, original, "Re-render 2K"))
        await settled(discord_fake, settings)
    finally:
        await running.close()
    assert [c.json["resolution"] for c in seaart.creates] == ["1K", "2K"]
    assert charges(settings, discord_fake.member_id) == [("reserve", 1), ("commit", 1), ("reserve", 2), ("commit", 2)]
    assert len(jobs(settings)) == 2


@pytest.fixture
async def gemini_lite() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_key=KEY, models={"gemini-3.1-flash-lite-image": "flash"}) as fake:
        yield fake


async def test_rerender_is_offered_only_where_an_enabled_provider_serves_the_size(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, gemini_lite: FakeGemini
) -> None:
    # This Gemini model id draws 1K only.
    gemini = (
        "gemini",
        {"base_url": gemini_lite.base_url, "model_ids": {"nano_banana_2": "gemini-3.1-flash-lite-image"}},
    )
    running = await start_bot(routed(tmp_path, discord_fake, gemini), discord_fake, Clock())
    try:
        alone = await imagine(discord_fake, {"prompt": "a pebble"})
    finally:
        await running.close()
    assert labels(discord_fake, alone.id) == finished_labels()

    both_settings = routed(tmp_path, discord_fake, gemini, ("seaart", {"base_url": seaart.base_url}))
    running = await start_bot(both_settings, discord_fake, Clock())
    try:
        both = await imagine(discord_fake, {"prompt": "a stone"})
        assert labels(discord_fake, both.id) == FULL
        await delivered(discord_fake, await press(discord_fake, both, "Re-render 4K"))
    finally:
        await running.close()
    # Gemini (first in the route) drew both 1K images; only SeaArt serves 4K, so it got the re-render.
    assert len(gemini_lite.creates) == 2
    assert [c.json["resolution"] for c in seaart.creates] == ["4K"]


async def test_a_vary_keeps_to_the_bot_s_own_prompt_bound_where_the_provider_takes_longer(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """Gemini takes 20,000 characters, the bot sends at most 6,000 for a member (cogs/imagine.py
    PROMPT_MAX_CHARS): a 5,950-character prompt's Vary goes as typed, not refused as "would be 6,1xx"."""
    prompt = ("a lighthouse on a cliff at dusk, " * 200)[:5950].strip()
    async with FakeGemini(api_key=KEY) as gemini:
        settings = routed(tmp_path, discord_fake, ("gemini", {"base_url": gemini.base_url}))
        running = await start_bot(settings, discord_fake, Clock())
        try:
            original = await imagine(discord_fake, {"prompt": prompt})
            varied = await delivered(discord_fake, await press(discord_fake, original, "Vary (Strong)"))
        finally:
            await running.close()
    (first, again) = (c.json["contents"][-1]["parts"][0]["text"] for c in gemini.creates)
    assert first == again == prompt
    assert "A strong variation" in made_from(varied)


async def test_words_too_long_with_a_zoom_s_instruction_are_refused_saying_how_long_they_may_be(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """SeaArt takes 2,500 characters; 2,400 typed in the Edit form with Zoom out come to more with the zoom's
    instruction. The member is told of their own words and how many fit, not "the prompt is 2,6xx"."""
    original = await imagine(discord_fake, {"prompt": "a kite"})
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    words = ("a red kite over green hills, " * 100)[:2400].strip()
    submit = await discord_fake.submit_modal(edit, {"instruction": words, "shape": "zoom-out"})
    text = await ephemeral_reply(discord_fake, submit)
    assert f"Your words are {len(words):,} characters; with the bot's instruction for this, the prompt is" in text
    room = 2500 - (len(derive.framed(words, derive.Frame(zoom_out=True))[0]) - len(words))
    assert f"takes at most 2,500. Keep your words to {room:,}." in text and 2000 < room < 2400
    await nothing_but_the_original(discord_fake, seaart, settings)


# ---- who may ---------------------------------------------------------------------------------------


async def test_a_banned_members_presses_are_refused_privately(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a quiet lake"})
    ban = await discord_fake.slash_command(
        "mod ban", {"member": discord_fake.member_id, "reason": "spam"}, user_id=discord_fake.moderator_id
    )
    await answer_given(discord_fake, ban)
    # Edit is refused on the press, before the member types anything.
    for label in ("Vary (Subtle)", "Vary (Strong)", "Edit", "Re-render 2K", "Zoom out", "Pan left", "Re-roll"):
        refused = await press(discord_fake, original, label)
        text = await ephemeral_reply(discord_fake, refused)
        assert "banned" in text and "spam" in text, label
    await nothing_but_the_original(discord_fake, seaart, settings)


async def test_an_image_no_longer_on_the_message_is_refused_privately(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    original = await imagine(discord_fake, {"prompt": "a kite"})
    original.attachments = []  # as after someone removed the file from the message
    for label in ("Vary (Subtle)", "Vary (Strong)", "Edit", "Re-render 4K", "Zoom out", "Pan down"):
        refused = await press(discord_fake, original, label)
        assert "no longer on this message" in await ephemeral_reply(discord_fake, refused), label
    await nothing_but_the_original(discord_fake, seaart, settings)


# ---- restarts and old jobs -------------------------------------------------------------------------


async def test_buttons_and_an_open_edit_modal_work_after_a_restart(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    running = await start_bot(settings, discord_fake, Clock())
    try:
        original = await imagine(discord_fake, {"prompt": "a windmill"})
        edit = await press(discord_fake, original, "Edit", user_id=STRANGER)
        await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
        await settled(discord_fake, settings)
    finally:
        await running.close()

    running = await start_bot(settings, discord_fake, Clock())
    try:
        # The modal was opened by the previous process; its submit still starts the edit.
        edited = await delivered(discord_fake, await discord_fake.submit_modal(edit, {"instruction": "in winter"}))
        varied = await delivered(discord_fake, await press(discord_fake, original, "Vary (Strong)"))
        rerendered = await delivered(discord_fake, await press(discord_fake, original, "Re-render 2K"))
        await settled(discord_fake, settings)
    finally:
        await running.close()
    prompts = [(c.json["prompt"], c.json["resolution"], len(c.json.get("image_urls", []))) for c in seaart.creates]
    assert prompts == [
        ("a windmill", "1K", 0),
        ("in winter", "1K", 1),
        (derive.varied("a windmill", "vary"), "1K", 1),
        ("a windmill", "2K", 1),
    ]
    assert ["An edit" in made_from(edited), "variation" in made_from(varied)] == [True, True]
    assert "Re-rendered at 2K" in made_from(rerendered)
    assert charges(settings, STRANGER) == [("reserve", 1), ("commit", 1)]
    assert charges(settings, discord_fake.member_id) == [("reserve", 1), ("commit", 1)] * 2 + [
        ("reserve", 2),
        ("commit", 2),
    ]
    assert [state for _, state in jobs(settings)] == ["delivered"] * 4


async def test_a_day_old_job_renews_its_expired_links_for_reroll_and_vary(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    ref = discord_fake.add_attachment(png_bytes(colour=(1, 2, 3)), "sketch.png", "image/png")
    interaction = await discord_fake.slash_command("imagine", {"prompt": "a castle", "image1": ref})
    original = await delivered(discord_fake, interaction)
    assert seaart.creates[0].json["image_urls"] == [ref["url"]]

    # A day passes, for Discord's CDN and for the bot: every link handed out so far is dead.
    clock.offset += discord_fake.expire_attachment_urls()
    discord_fake.expire_token(interaction.token)
    assert (await fetch(ref["url"]))[0] == 404

    await delivered(discord_fake, await press(discord_fake, original, "Re-roll", user_id=STRANGER))
    await delivered(discord_fake, await press(discord_fake, original, "Vary (Strong)", user_id=STRANGER))

    refreshes = [r for r in discord_fake.requests if r.path == "/attachments/refresh-urls"]
    assert [r.json for r in refreshes] == [{"attachment_urls": [ref["url"]]}] * 2
    rerolled, varied = seaart.creates[1].json, seaart.creates[2].json
    (renewed,) = rerolled["image_urls"]
    assert renewed != ref["url"] and renewed.split("?")[0] == ref["url"].split("?")[0]
    assert varied["image_urls"][1] == renewed
    for url in (renewed, varied["image_urls"][0]):
        assert (await fetch(url))[0] == 200
    assert (await fetch(renewed))[1] == png_bytes(colour=(1, 2, 3))
    await settled(discord_fake, settings)
    assert [state for _, state in jobs(settings)] == ["delivered"] * 3
    assert charges(settings, STRANGER) == [("reserve", 1), ("commit", 1)] * 2


async def test_a_reference_gone_from_discord_is_refused_privately(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    ref = discord_fake.add_attachment(png_bytes(), "deleted.png", "image/png")
    original = await imagine(discord_fake, {"prompt": "a bridge", "image1": ref})
    clock.offset += discord_fake.expire_attachment_urls()
    discord_fake.delete_attachment(ref)
    for label in ("Re-roll", "Vary (Strong)", "Vary (Subtle)"):
        refused = await press(discord_fake, original, label)
        assert "no longer on Discord" in await ephemeral_reply(discord_fake, refused), label
    await nothing_but_the_original(discord_fake, seaart, settings)


async def test_an_image_linked_in_the_edit_form_is_a_reference_after_the_image(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """A form takes no files: an image's link (Copy Link) in its words is the way to add another image to an
    edit. It went to the model as words; now it is the second reference (cogs/typed_links.py)."""
    original = await imagine(discord_fake, {"prompt": "a cat"})
    hat = discord_fake.add_attachment(png_bytes(colour=(10, 90, 200)), "hat.png", "image/png")
    edit = await press(discord_fake, original, "Edit")
    await discord_fake.wait_for(lambda: bool(edit.callbacks), timeout=10)
    # The image's own link as well, which adds nothing: it is the first reference already.
    words = f"{hat['url']} on it {original.attachments[0]['url']}"
    result = await delivered(discord_fake, await discord_fake.submit_modal(edit, {"instruction": words}))
    create = seaart.creates[1].json
    assert create["prompt"] == "on it" and len(create["image_urls"]) == 2 and create["image_urls"][1] == hat["url"]
    status, data = await fetch(create["image_urls"][0])
    assert status == 200 and data == original.files[0].data
    assert "2 reference images" in str(result.embeds[0]["fields"])
    # A message's link, or a link with nothing to do with it, is refused; nothing more is made or charged.
    message_link = f"https://discord.com/channels/{discord_fake.guild_id}/{discord_fake.channel_id}/{original.id}"
    for instruction, refusal in ((f"like {message_link}", "not messages'"), (hat["url"], "a link and no words")):
        edit = await press(discord_fake, original, "Edit")
        await discord_fake.wait_for(lambda edit=edit: bool(edit.callbacks), timeout=10)
        submit = await discord_fake.submit_modal(edit, {"instruction": instruction})
        assert refusal in await ephemeral_reply(discord_fake, submit)
    await settled(discord_fake, settings)
    assert len(seaart.creates) == 2 and len(jobs(settings)) == 2
