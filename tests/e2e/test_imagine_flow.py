"""The real bot (setup_hook, cogs, poller) against the fake Discord and the fake SeaArt, over sockets."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.config import Settings
from bot.prompt_parameters import IMAGE_WEIGHT_ALONE, IN_WORDS
from bot.testing.discord import FakeDiscord
from bot.testing.providers import Chaos, FakeSeaArt
from tests.conftest import (
    BOT_TOKEN,
    SEAART_KEY,
    Clock,
    RunningBot,
    final_message,
    make_settings,
    png_bytes,
    start_bot,
)
from tests.e2e.edits import told_privately
from tests.e2e.test_buttons import finished_labels


def states(settings: Settings) -> list[str]:
    return [row["state"] for row in job_rows(settings)]


def job_rows(settings: Settings) -> list[sqlite3.Row]:
    with sqlite3.connect(settings.database.path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM jobs ORDER BY created_at").fetchall()


async def test_imagine_with_reference_is_delivered(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    ref = discord_fake.add_attachment(png_bytes(), "ref.png", "image/png")
    interaction = await discord_fake.slash_command(
        "imagine",
        {"prompt": "a banana astronaut @everyone", "aspect_ratio": "16:9", "resolution": "2K", "image1": ref},
    )

    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)

    # Answered at once with the job's own message (public, "Queued" and a Cancel button), within Discord's window.
    answer = interaction.callbacks[0]
    assert answer["type"] == 4 and not answer["data"].get("flags", 0) & 64
    assert "Queued" in answer["data"]["embeds"][0]["title"] and answer["data"]["components"]
    # SeaArt received exactly the documented request.
    assert len(seaart.creates) == 1
    create = seaart.creates[0]
    assert create.method == "POST" and create.path == "/model/v1/queue/nano_banana_2"
    assert create.headers["Authorization"] == f"Bearer {SEAART_KEY}"
    assert create.json == {
        "prompt": "a banana astronaut @everyone",
        "image_urls": [ref["url"]],
        "aspect_ratio": "16:9",
        "resolution": "2K",
    }
    # The member's message now holds a decodable image and the embed.
    message = final_message(discord_fake, interaction.id)
    assert message is not None
    assert len(message.files) == 1
    with Image.open(io.BytesIO(message.files[0].data)) as img:
        img.load()
        assert img.size[0] > img.size[1]  # 16:9
    embed = message.embeds[0]
    assert "Done" in embed["title"]
    assert embed["description"] == "a banana astronaut @everyone"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "Nano Banana 2" in fields["Model"] and "16:9" in fields["Model"] and "2K" in fields["Model"]
    assert "Took" in fields
    # The embed shows the uploaded file (Discord rewrites attachment:// to the attachment's URL).
    assert embed["image"]["url"] in {
        f"attachment://{message.files[0].filename}",
        message.attachments[0]["url"],
    }
    # Its alt text (what a screen reader says for it) is the prompt.
    assert message.attachments[0]["description"] == "a banana astronaut @everyone"
    # Prompts are user text: nothing may ping.
    assert message.allowed_mentions == {"parse": []}
    labels = [c["label"] for row in message.components for c in row["components"]]
    # A 2K image offers a re-render at 4K only (tests/e2e/test_rework.py has each button's flow).
    assert labels == finished_labels("Re-render 4K", square=False)  # 16:9: Make square too
    rows = job_rows(settings)
    assert [r["state"] for r in rows] == ["delivered"]
    assert rows[0]["provider_job_id"] == create_request_id(seaart)


def create_request_id(seaart: FakeSeaArt) -> str:
    (request_id,) = seaart.jobs
    return request_id


MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("options", "attachments", "expected"),
    [
        ({"prompt": "   "}, [], "prompt is empty"),
        ({"prompt": "x" * 2501}, [], "at most 2,500"),
        ({"prompt": "four refs"}, [("a.png", "image/png", None)] * 4, "at most 3 reference"),
        ({"prompt": "text file"}, [("notes.txt", "text/plain", None)], "not a supported image"),
        ({"prompt": "no type"}, [("mystery", None, None)], "not a supported image"),
        ({"prompt": "huge"}, [("big.png", "image/png", 11 * MiB)], "at most 10 MiB"),
        ({"prompt": "pro ratio", "model": "nano_banana_pro", "aspect_ratio": "1:8"}, [], "aspect ratio 1:8"),
        ({"prompt": "pro 512", "model": "nano_banana_pro", "resolution": "512"}, [], "resolution 512"),
        ({"prompt": "pro --ar 1:8", "model": "nano_banana_pro"}, [], "aspect ratio 1:8"),
        ({"prompt": "a fox --ar 4:3", "aspect_ratio": "16:9"}, [], "`aspect_ratio:16:9` and typed `--ar 4:3`"),
        ({"prompt": "--ar 16:9"}, [], "nothing but parameters"),
        ({"prompt": "a fox --seed 7", "seed": 8}, [], "`seed:8` and typed `--seed 7`"),
        ({"prompt": "a fox --seed 99999999999"}, [], "`--seed` takes a whole number from 0 to 2,147,483,647"),
        ({"prompt": "foxes --seed 7", "count": 2}, [], "`count:2` with `seed:7`"),
        ({"prompt": "foxes --r 3", "count": 2}, [], "`count:2` and typed `--repeat 3`"),
        ({"prompt": "foxes --repeat 40"}, [], "`--repeat` makes 1 to 4 images here"),
        ({"prompt": "foxes --seed 7 --r 2"}, [], "`count:2` with `seed:7`"),
    ],
    ids=[
        "blank",
        "too-long",
        "too-many-refs",
        "non-image",
        "no-content-type",
        "oversized",
        "ratio",
        "resolution",
        "ratio-typed",
        "two-ratios",
        "only-a-ratio",
        "two-seeds",
        "seed-too-large",
        "typed-seed-and-count",
        "repeat-and-count",
        "repeat-too-many",
        "typed-seed-and-repeat",
    ],
)
async def test_bad_input_is_refused_privately(
    running_bot: RunningBot,
    discord_fake: FakeDiscord,
    seaart: FakeSeaArt,
    settings: Settings,
    options: dict[str, Any],
    attachments: list[tuple[str, str | None, int | None]],
    expected: str,
) -> None:
    for index, (name, ctype, size) in enumerate(attachments, start=1):
        extra = {"size": size} if size is not None else {}
        options[f"image{index}"] = discord_fake.add_attachment(png_bytes(), name, ctype, **extra)
    interaction = await discord_fake.slash_command("imagine", options)
    await discord_fake.wait_for(lambda: bool(interaction.callbacks), timeout=10)
    callback = interaction.callbacks[0]
    assert callback["type"] == 4, callback
    assert callback["data"]["flags"] & 64, "must be ephemeral"
    assert expected in callback["data"]["content"]
    assert callback["data"]["allowed_mentions"] == {"parse": []}
    assert job_rows(settings) == []
    assert seaart.requests == []


async def test_four_references_are_fine_on_pro(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    options: dict[str, Any] = {"prompt": "collage", "model": "nano_banana_pro", "aspect_ratio": "21:9"}
    for index in range(1, 5):
        options[f"image{index}"] = discord_fake.add_attachment(png_bytes(), f"r{index}.png", "image/png")
    await discord_fake.slash_command("imagine", options)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    body = seaart.creates[0].json
    assert seaart.creates[0].path == "/model/v1/queue/nano_banana_pro"
    assert len(body["image_urls"]) == 4 and body["aspect_ratio"] == "21:9"


async def test_a_ratio_typed_at_the_end_of_the_prompt_is_the_images_shape(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    # As members coming from Midjourney type it; the same ratio in the option as well is no conflict.
    for n, options in enumerate(
        ({"prompt": "a fox in the snow --ar 16:9"}, {"prompt": "a fox --ar 9:16", "aspect_ratio": "9:16"}), start=1
    ):
        interaction = await discord_fake.slash_command("imagine", options)
        await discord_fake.wait_for(lambda n=n: states(settings) == ["delivered"] * n, timeout=20)
        message = final_message(discord_fake, interaction.id)
        assert message is not None and message.embeds[0]["description"] == options["prompt"].split(" --ar")[0]
    first, second = (create.json for create in seaart.creates)
    assert (first["prompt"], first["aspect_ratio"]) == ("a fox in the snow", "16:9")
    assert (second["prompt"], second["aspect_ratio"]) == ("a fox", "9:16")
    assert states(settings) == ["delivered", "delivered"]


async def test_midjourney_s_parameters_at_the_end_of_the_prompt_are_read_not_drawn(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """ "--ar 16:9 --v 6" went to the model as words, the shape with them: only an --ar at the very end was read.
    Now the run of parameters ending the prompt is: the shape and the seed as the options are, --no in words,
    and the parameters Nano Banana has no use for taken out and named to the member, privately."""
    prompt = "a fox in the snow --ar 16:9 --v 6.1 --style raw --no text, watermark \u2014chaos 20"
    interaction = await discord_fake.slash_command("imagine", {"prompt": prompt})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    (create,) = seaart.creates
    assert create.json is not None
    # --style raw is said in words (bot/prompt_parameters.py IN_WORDS); the rest left out and named.
    sent = f"a fox in the snow, {IN_WORDS['raw']}, without text, watermark"
    assert (create.json["prompt"], create.json["aspect_ratio"]) == (sent, "16:9")
    message = final_message(discord_fake, interaction.id)
    assert message is not None and message.embeds[0]["description"] == sent
    assert await told_privately(discord_fake, interaction) == [
        ("Left out `--v 6.1 --chaos 20`: Midjourney's parameters, which mean nothing to Nano Banana.", 64)
    ]


async def test_midjourney_s_tile_and_niji_are_asked_in_words(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """`--tile` (a seamless pattern) and `--niji 6` (Midjourney's anime model) were left out and named; Nano Banana
    takes both in words, as `--no`: the member gets the tile they asked for, and no note saying it was dropped."""
    interaction = await discord_fake.slash_command("imagine", {"prompt": "a wallpaper of lemons --tile --niji 6"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    (create,) = seaart.creates
    assert create.json is not None
    expected = "a wallpaper of lemons, as a seamless, tileable pattern whose edges wrap around, in a Japanese anime"
    assert create.json["prompt"] == f"{expected} illustration style"
    assert interaction.followup_ids == []


async def test_midjourney_s_multi_prompt_parts_and_weights_are_said_in_words(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """`space:: ship::2 fog::-1` went to the model as typed, the "::2" drawn as noise and the weights lost: now the
    parts are listed, the heaviest named, the one weighed below zero left out (bot/multi_prompts.py), in /imagine and
    in a reply's edit; "::2" with nothing to weigh is refused, nothing made."""
    interaction = await discord_fake.slash_command("imagine", {"prompt": "space:: ship::2 fog::-1 --ar 16:9"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    (create,) = seaart.creates
    assert create.json is not None and create.json["aspect_ratio"] == "16:9"
    sent = "space, ship, with the most emphasis on ship, without fog"
    assert create.json["prompt"] == sent
    message = final_message(discord_fake, interaction.id)
    assert message is not None and message.embeds[0]["description"] == sent
    assert interaction.followup_ids == []  # nothing left out: no note

    await discord_fake.post_message("at night:: rain::-1", reply_to=message.id)
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=20)
    assert seaart.creates[-1].json is not None and seaart.creates[-1].json["prompt"] == "at night, without rain"

    refused = await discord_fake.slash_command("imagine", {"prompt": "::2 --ar 1:1"})
    await discord_fake.wait_for(lambda: bool(refused.callbacks), timeout=10)
    assert "nothing but parameters" in str(refused.callbacks[-1])
    assert len(seaart.creates) == 2


async def test_midjourney_s_image_weight_is_said_where_there_are_references_and_named_where_there_are_none(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """`--iw 2` was left out and named: with a reference image it now asks the model to follow the images closely;
    with none, it is named with why."""
    fox = discord_fake.add_attachment(png_bytes(colour=(200, 120, 40)), "fox.png", "image/png")
    weighed = await discord_fake.slash_command("imagine", {"prompt": "this fox in the snow --iw 2", "image1": fox})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    assert seaart.creates[-1].json is not None and seaart.creates[-1].json["prompt"] == (
        "this fox in the snow. Follow the reference images closely: they count more than the words."
    )
    assert weighed.followup_ids == []  # taken: no note

    alone = await discord_fake.slash_command("imagine", {"prompt": "a fox in the snow --iw 2"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 2, timeout=20)
    assert seaart.creates[-1].json is not None and seaart.creates[-1].json["prompt"] == "a fox in the snow"
    ((note, flags),) = await told_privately(discord_fake, alone)
    assert flags & 64 and note.startswith("Left out `--iw 2`: ") and note.endswith(IMAGE_WEIGHT_ALONE)


async def test_midjourney_s_repeat_is_the_count(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """`--repeat 3` (`--r 3`) runs Midjourney's prompt three times: here, three images of one batch, as `count:3`."""
    await discord_fake.slash_command("imagine", {"prompt": "three foxes --r 3"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"] * 3, timeout=20)
    assert [create.json["prompt"] for create in seaart.creates if create.json] == ["three foxes"] * 3
    assert len({row["batch_id"] for row in job_rows(settings)}) == 1


async def test_result_delivered_after_token_expired(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt, clock: Clock
) -> None:
    """The job outlives the 15-minute interaction token: the bot edits the message with its own token."""
    settings = make_settings(tmp_path, discord_fake, seaart, jobs={"deadline_seconds": 3600})
    running = await start_bot(settings, discord_fake, clock)
    try:
        await _deliver_after_expiry(discord_fake, seaart, settings, clock)
    finally:
        await running.close()


async def _deliver_after_expiry(
    discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings, clock: Clock
) -> None:
    seaart.hold(True)
    interaction = await discord_fake.slash_command("imagine", {"prompt": "slow banana"})
    await discord_fake.wait_for(lambda: states(settings) == ["running"], timeout=10)
    discord_fake.expire_token(interaction.token)
    clock.offset = 16 * 60  # the bot's own view of time agrees the token is gone
    seaart.release()
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    message = final_message(discord_fake, interaction.id)
    assert message is not None and len(message.files) == 1
    bot_edits = [
        r
        for r in discord_fake.requests
        if r.method == "PATCH" and r.path == f"/channels/{message.channel_id}/messages/{message.id}"
    ]
    assert bot_edits and bot_edits[-1].headers["Authorization"] == f"Bot {BOT_TOKEN}"


async def test_token_rejected_early_falls_back_to_bot_token(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """Discord may reject the token before our clock says so (401 / 50027): still delivered."""
    seaart.hold(True)
    interaction = await discord_fake.slash_command("imagine", {"prompt": "early expiry"})
    await discord_fake.wait_for(lambda: states(settings) == ["running"], timeout=10)
    discord_fake.expire_token(interaction.token)
    seaart.release()
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=20)
    message = final_message(discord_fake, interaction.id)
    assert message is not None and len(message.files) == 1
    rejected = [r for r in discord_fake.requests if interaction.token in r.path and r.method == "PATCH"]
    assert rejected, "the webhook edit was tried first"


async def test_a_provider_asking_for_ten_minutes_of_quiet_has_its_member_told_so(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """SeaArt answers the create 429 with Retry-After: 600. That is longer than a call waits, so the job ends
    rate limited, uncharged; its member reads when to try again. Before, "Try again in a minute", whatever
    the provider had asked for."""
    seaart.chaos = Chaos(rate=1.0, faults=("429",), retry_after="600")
    interaction = await discord_fake.slash_command("imagine", {"prompt": "a banana in a queue"})
    await discord_fake.wait_for(lambda: states(settings) == ["failed"], timeout=20)
    (job,) = job_rows(settings)
    assert job["error_category"] == "rate_limited" and job["charge_state"] == "refunded"
    assert job["error_message"] == "SeaArt is rate limiting the bot right now. Try again in about 10 minutes."
    await discord_fake.wait_for(
        lambda: "about 10 minutes" in str(getattr(final_message(discord_fake, interaction.id), "embeds", "")),
        timeout=10,
    )
    assert seaart.jobs == {}


async def test_auto_is_offered_as_a_shape_and_refused_clearly_where_no_provider_has_it(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """The option's description says "auto lets the model choose": the list offers it (it was reachable
    only as `--ar auto` typed in the prompt). SeaArt has no auto, so here it is refused, privately, naming
    the shapes that are offered; nothing is created or charged."""
    command = next(c for c in discord_fake.commands if c["name"] == "imagine")
    ratios = [c["value"] for c in next(o for o in command["options"] if o["name"] == "aspect_ratio")["choices"]]
    assert ratios[0] == "auto" and "16:9" in ratios and len(ratios) <= 25
    interaction = await discord_fake.slash_command("imagine", {"prompt": "a fox", "aspect_ratio": "auto"})
    await discord_fake.wait_for(lambda: bool(interaction.callbacks), timeout=10)
    answer = interaction.callbacks[0]["data"]
    assert answer["flags"] & 64 and "does not offer aspect ratio auto" in answer["content"], answer
    assert states(settings) == [] and seaart.creates == []
