"""What /preferences, /admin defaults and /admin providers show agrees with what /imagine does: stored
preferences a new model cannot take are said and marked unused, the provider order shown is the one used, and
a provider out of credit is tried again once its mark lapses, so a saved preference only it offers comes
back. The real bot, the fake Discord and fake providers."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from bot.catalogue import UNHEALTHY_RETRY_SECONDS
from bot.config import Settings
from bot.testing.discord import ADMIN_PERMISSIONS, FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, RunningBot, answer_data, answered, start_bot
from tests.e2e.edits import states
from tests.e2e.test_failover import Fakes, done, fakes, rows  # noqa: F401
from tests.e2e.test_preferences import shown


def content(discord_fake: FakeDiscord, interaction: FakeInteraction) -> str:
    return str(answer_data(discord_fake, interaction).get("content") or "")


def embed_fields(discord_fake: FakeDiscord, interaction: FakeInteraction) -> dict[str, str]:
    return {f["name"]: f["value"] for f in answer_data(discord_fake, interaction)["embeds"][0]["fields"]}


def health(settings: Settings) -> list[tuple[str, int]]:
    with sqlite3.connect(settings.database.path) as conn:
        return conn.execute("SELECT provider, healthy FROM provider_health ORDER BY provider").fetchall()


async def test_choosing_a_model_says_which_stored_preferences_it_cannot_take_and_shows_them_unused(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """512 and 8:1 are Nano Banana 2's (the server's model), not Pro's. Choosing Pro was taken without a word and
    the screen still read "Resolution 512 · Aspect ratio 8:1" while every /imagine went out square at 1K."""
    saved = shown(
        discord_fake, await answered(discord_fake, "preferences", {"resolution": "512", "aspect_ratio": "8:1"})
    )
    assert (saved["Resolution"], saved["Aspect ratio"]) == ("512", "8:1")

    pro = await answered(discord_fake, "preferences", {"model": "nano_banana_pro"})
    warning = content(discord_fake, pro)
    assert warning.startswith("Saved. Nano Banana Pro does not offer your aspect ratio 8:1 and resolution 512"), warning
    after = shown(discord_fake, pro)
    assert after["Model"] == "Nano Banana Pro"
    assert after["Resolution"] == "512 (not offered by Nano Banana Pro; not used)", after
    assert after["Aspect ratio"] == "8:1 (not offered by Nano Banana Pro; not used)", after

    # The screen says what /imagine does: neither is sent.
    await answered(discord_fake, "imagine", {"prompt": "a tall lighthouse"})
    await discord_fake.wait_for(lambda: states(settings) == ["delivered"], timeout=30)
    body = seaart.creates[0].json
    assert body is not None and "aspect_ratio" not in body and body.get("image_size") == "1K", body

    # Kept, not dropped: back on the server's model they are in use again, and nothing is left to warn of.
    back = await answered(discord_fake, "preferences", {"forget": "model"})
    assert content(discord_fake, back) == ""
    again = shown(discord_fake, back)
    assert (again["Resolution"], again["Aspect ratio"]) == ("512", "8:1")


async def test_a_server_model_change_marks_stored_preferences_the_new_model_cannot_take(
    running_bot: RunningBot, discord_fake: FakeDiscord, seaart: FakeSeaArt, settings: Settings
) -> None:
    """/admin defaults model: moves every member without a model of their own to that model; their screen
    judged stored values against nothing and listed a 512 Pro does not offer as in force."""
    admin = {"user_id": discord_fake.admin_id, "permissions": ADMIN_PERMISSIONS}
    await answered(discord_fake, "preferences", {"resolution": "512", "aspect_ratio": "16:9"})
    await answered(discord_fake, "admin defaults", {"model": "nano_banana_pro"}, **admin)
    viewed = await answered(discord_fake, "preferences", {})
    assert content(discord_fake, viewed) == "", "only a change the member makes is warned of"
    seen = shown(discord_fake, viewed)
    assert seen["Model"] == "Nano Banana Pro (server default)"
    assert seen["Resolution"] == "512 (not offered by Nano Banana Pro; not used)", seen
    assert seen["Aspect ratio"] == "16:9", "one Pro offers is in use"

    await answered(discord_fake, "admin defaults", {"model": "nano_banana_2"}, **admin)
    back = shown(discord_fake, await answered(discord_fake, "preferences", {}))
    assert (back["Resolution"], back["Aspect ratio"]) == ("512", "16:9")


async def test_admin_defaults_shows_the_provider_order_imagine_uses(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    """The stored provider (segmind) turned off, `[imagine] default_provider = "kie"`: /imagine goes to Kie first
    (cogs/policy.py admit), but /admin defaults showed "seaart → kie", the bare route order."""
    both = fakes.settings(tmp_path, discord_fake, ["seaart", "kie", "segmind"])
    running = await start_bot(both, discord_fake, Clock())
    try:
        await answered(discord_fake, "admin defaults", {"provider": "segmind"}, user_id=discord_fake.admin_id)
    finally:
        await running.close()
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"], imagine={"default_provider": "kie"})
    running = await start_bot(settings, discord_fake, Clock())
    try:
        show = embed_fields(
            discord_fake, await answered(discord_fake, "admin defaults", {}, user_id=discord_fake.admin_id)
        )
        await answered(discord_fake, "imagine", {"prompt": "a fox"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
    finally:
        await running.close()
    assert [r["provider"] for r in rows(settings)] == ["kie"]
    assert show["Provider order"].startswith("kie → seaart\nThis server's provider `segmind` is not in use"), show


async def test_a_provider_out_of_credit_is_tried_again_once_its_mark_lapses(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    """Kie ran out of credit once, then its owner topped it up. Only a job Kie took cleared its mark, and while
    marked a saved png (only Kie offers formats) was left out, so nothing went to Kie again until a restart:
    the png was gone for good, and /admin providers said Kie needed attention."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    fakes.kie.script("out_of_credit")
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    admin = {"user_id": discord_fake.admin_id}
    try:
        await answered(discord_fake, "preferences", {"output_format": "png"})
        marked_from = clock()
        await discord_fake.slash_command("imagine", {"prompt": "a harbour at dawn"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        await discord_fake.wait_for(lambda: health(settings) == [("kie", 0)], timeout=10)
        marked_by = clock()
        await discord_fake.slash_command("imagine", {"prompt": "a harbour at noon"})
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
        marked = embed_fields(discord_fake, await answered(discord_fake, "admin providers", {}, **admin))

        clock.offset += UNHEALTHY_RETRY_SECONDS  # the owner topped Kie up meanwhile (its script is spent)
        lapsed = embed_fields(discord_fake, await answered(discord_fake, "admin providers", {}, **admin))
        await discord_fake.slash_command("imagine", {"prompt": "a harbour at dusk"})
        await discord_fake.wait_for(lambda: done(settings, 3), timeout=30)
        await discord_fake.wait_for(lambda: health(settings) == [("kie", 1)], timeout=10)
        working = embed_fields(discord_fake, await answered(discord_fake, "admin providers", {}, **admin))
    finally:
        await running.close()
    made = [(r["state"], r["provider"], json.loads(r["request_json"]).get("output_format")) for r in rows(settings)]
    assert made == [
        ("delivered", "seaart", None),  # Kie refused it (out of credit): failed over without the png
        ("delivered", "seaart", None),  # Kie marked: the png left out, SeaArt makes it
        ("delivered", "kie", "png"),  # the mark lapsed: Kie tried again, and it works
    ], made
    retry = re.search(r"\nLast failed <t:\d+:R>: tried last until <t:(\d+):t>, then in turn again\.", marked["kie"])
    assert retry is not None and "credit" in marked["kie"].lower(), marked["kie"]
    assert int(marked_from + UNHEALTHY_RETRY_SECONDS) <= int(retry[1]) <= int(marked_by + UNHEALTHY_RETRY_SECONDS)
    assert lapsed["kie"].startswith("🔄 ") and ": tried in turn again now;" in lapsed["kie"], lapsed["kie"]
    assert working["kie"].startswith("✅ working"), working["kie"]
    assert len(fakes.kie.creates) == 2


async def test_a_provider_recorded_out_of_credit_is_marked_as_it_was_after_a_restart(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    """A restart kept no mark: a provider recorded out of credit was put first again at once, and the first job it
    took did not record it working, so /admin providers said "shown working once a job goes through there" for
    good. The recorded mark is read back: tried last for what is left of it, and recorded working once it works."""
    settings = fakes.settings(tmp_path, discord_fake, ["seaart", "kie"])
    fakes.kie.script("out_of_credit")
    clock = Clock()
    admin = {"user_id": discord_fake.admin_id}
    running = await start_bot(settings, discord_fake, clock)
    try:
        await answered(discord_fake, "preferences", {"output_format": "png"})
        await discord_fake.slash_command("imagine", {"prompt": "a harbour at dawn"})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
        await discord_fake.wait_for(lambda: health(settings) == [("kie", 0)], timeout=10)
    finally:
        await running.close()
    running = await start_bot(settings, discord_fake, clock)
    try:
        after_restart = embed_fields(discord_fake, await answered(discord_fake, "admin providers", {}, **admin))
        await discord_fake.slash_command("imagine", {"prompt": "a harbour at noon"})
        await discord_fake.wait_for(lambda: done(settings, 2), timeout=30)
        clock.offset += UNHEALTHY_RETRY_SECONDS  # topped up meanwhile (Kie's script is spent)
        await discord_fake.slash_command("imagine", {"prompt": "a harbour at dusk"})
        await discord_fake.wait_for(lambda: done(settings, 3), timeout=30)
        await discord_fake.wait_for(lambda: health(settings) == [("kie", 1)], timeout=10)
        working = embed_fields(discord_fake, await answered(discord_fake, "admin providers", {}, **admin))
    finally:
        await running.close()
    made = [(r["state"], r["provider"], json.loads(r["request_json"]).get("output_format")) for r in rows(settings)]
    assert made == [
        ("delivered", "seaart", None),  # Kie refused it: failed over without the png
        ("delivered", "seaart", None),  # restarted, Kie still marked: the png left out
        ("delivered", "kie", "png"),  # the mark lapsed: Kie works, and is recorded working
    ], made
    assert after_restart["kie"].startswith("⚠️ ") and "tried last until" in after_restart["kie"], after_restart
    assert working["kie"].startswith("✅ working"), working["kie"]
