"""A member past their requests generating at once waits their turn instead of being refused (as Midjourney
queues a member's jobs): the request is taken, shown as waiting, and starts by itself when one of theirs ends
(bot/waiting_requests.py), through a restart too. Past ``waiting_per_user`` more, it is refused as before."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.providers import FakeSeaArt
from tests.conftest import Clock, answer_data, answered, make_settings, start_bot
from tests.e2e.test_buttons import button, labels
from tests.e2e.test_member_jobs import listed, private_list
from tests.e2e.test_quota_tiers import content, quota_shown
from tests.e2e.test_quotas import query
from tests.e2e.test_rework import delivered

DEADLINE = 120.0


def embed_of(discord_fake: FakeDiscord, interaction: FakeInteraction) -> dict[str, Any]:
    message = discord_fake.messages[interaction.original_message_id or 0]
    return dict(message.embeds[0])


def field(embed: dict[str, Any], name: str) -> str | None:
    return next((str(f["value"]) for f in embed.get("fields", []) if f["name"] == name), None)


def prompts_sent(seaart: FakeSeaArt) -> list[str]:
    return [str((r.json or {}).get("prompt", "")) for r in seaart.creates]


async def one_generating_one_waiting(discord_fake: FakeDiscord, settings: Settings) -> FakeInteraction:
    """The member's "first" generating (held at the provider), and their "second" shown waiting its turn behind it
    (a limit of one at once): the second's command."""
    await discord_fake.slash_command("imagine", {"prompt": "first"})
    await discord_fake.wait_for(lambda: query(settings, "SELECT state FROM jobs") == [("running",)], timeout=10)
    second = await discord_fake.slash_command("imagine", {"prompt": "second"})
    await discord_fake.wait_for(lambda: bool(second.original_message_id), timeout=10)
    await discord_fake.wait_for(lambda: field(embed_of(discord_fake, second), "Your turn") is not None, 10)
    return second


async def test_a_request_past_the_limit_waits_its_turn_through_a_restart_and_starts_when_one_ends(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    settings = make_settings(
        tmp_path,
        discord_fake,
        seaart,
        quotas={"daily": 20, "in_flight_per_user": 1, "waiting_per_user": 2},
        jobs={"deadline_seconds": DEADLINE},
    )
    member = discord_fake.member_id
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        first = await discord_fake.slash_command("imagine", {"prompt": "first"})
        await discord_fake.wait_for(lambda: query(settings, "SELECT state FROM jobs") == [("running",)], timeout=10)
        second = await discord_fake.slash_command("imagine", {"prompt": "second"})
        third = await discord_fake.slash_command("imagine", {"prompt": "third", "count": 2})
        await discord_fake.wait_for(lambda: second.original_message_id and third.original_message_id, timeout=10)
        # Taken, not refused: each is shown waiting its turn, with a Cancel, and no provider has seen them.
        await discord_fake.wait_for(lambda: "Cancel" in labels(discord_fake, third.original_message_id or 0), 10)
        waiting = embed_of(discord_fake, second)
        assert waiting["title"] == "🍌 Waiting for your turn…", waiting
        note = field(waiting, "Your turn") or ""
        assert note.startswith("You may have 1 request(s) generating at once: this one starts by itself"), note
        assert field(waiting, "Asked") is not None and field(waiting, "Started") is None, waiting
        assert embed_of(discord_fake, third)["title"] == "🍌 Waiting for your turn · 2 images…"
        # Past the two that may wait: refused, nothing recorded.
        fourth = await discord_fake.slash_command("imagine", {"prompt": "fourth"})
        await discord_fake.wait_for(lambda: bool(fourth.callbacks), timeout=10)
        refused = content(discord_fake, fourth)
        shown = await quota_shown(discord_fake, member)
        report = await answered(discord_fake, "usage report", {}, user_id=discord_fake.admin_id)
        own = listed(await private_list(discord_fake))
        outcomes = field(answer_data(discord_fake, report)["embeds"][0], "Outcomes") or ""
        await asyncio.sleep(0.5)  # time enough for a create, were one to go
        assert prompts_sent(seaart) == ["first"]
    finally:
        await running.close()
    assert "You already have 1 request(s) generating (limit 1) and 2 waiting to start" in refused, refused
    assert shown["Generating now"] == "1 of 1 · 2 waiting their turn", shown
    # The member's /jobs tells the requests waiting from the one generating.
    assert own.startswith("**Generating (3, 2 of them waiting their turn)**"), own
    assert "⏳ **Waiting for your turn** ·" in own and "⏳ **Waiting for your turn · 2 images** ·" in own, own
    # The server's report counts images: the first generating, the second's and the batch's two waiting.
    assert "1 generating · 3 waiting their turn" in outcomes, outcomes
    assert query(settings, "SELECT COUNT(*) FROM jobs WHERE json_extract(request_json, '$.prompt') = 'fourth'") == [
        (0,)
    ]

    # A restart finds them waiting still; they keep waiting while the first generates.
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await asyncio.sleep(0.5)
        assert prompts_sent(seaart) == ["first"]
        # The member takes back the batch that waits: nothing sent, nothing charged.
        third_message = discord_fake.messages[third.original_message_id or 0]
        await discord_fake.click(third_message.id, button(discord_fake, third_message.id, "Cancel"))
        await discord_fake.wait_for(
            lambda: query(settings, "SELECT DISTINCT state FROM jobs WHERE batch_id IS NOT NULL") == [("cancelled",)],
            timeout=10,
        )
        # The first ends: the second starts (its deadline from then), and ends in its own message.
        seaart.hold(False)
        await delivered(discord_fake, first)
        await delivered(discord_fake, second)
    finally:
        await running.close()
    assert prompts_sent(seaart) == ["first", "second"]
    charges = query(
        settings,
        "SELECT json_extract(request_json, '$.prompt'), charge_state, waits_for FROM jobs ORDER BY created_at, id",
    )
    assert sorted(charges) == [
        ("first", "committed", None),
        ("second", "committed", None),
        ("third", "refunded", 1),
        ("third", "refunded", 1),
    ]
    ((waited,),) = query(settings, "SELECT deadline_at - created_at FROM jobs WHERE request_json LIKE '%second%'")
    assert waited > DEADLINE + 0.5, "its deadline started when it did, not when it was taken"
    assert answer_data(discord_fake, second)["allowed_mentions"]["parse"] == []


async def test_a_request_the_server_has_no_room_for_waits_for_it_and_the_oldest_starts_first(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The server allows one image generating at once. Another member's request, and a third's, wait for its
    room (their own limits have room), each told why; they start in the order they were asked, each as the
    image before it ends. Before, each was refused: "This server already has 1 image(s) generating"."""
    settings = make_settings(
        tmp_path, discord_fake, seaart, quotas={"daily": 20, "in_flight_per_guild": 1, "in_flight_per_user": 2}
    )
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        first = await discord_fake.slash_command("imagine", {"prompt": "first"}, user_id=discord_fake.moderator_id)
        await discord_fake.wait_for(lambda: query(settings, "SELECT state FROM jobs") == [("running",)], timeout=10)
        second = await discord_fake.slash_command("imagine", {"prompt": "second"})
        await discord_fake.wait_for(lambda: bool(second.original_message_id), timeout=10)
        third = await discord_fake.slash_command("imagine", {"prompt": "third"}, user_id=discord_fake.admin_id)
        await discord_fake.wait_for(lambda: bool(third.original_message_id), timeout=10)
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, third), "Your turn") is not None, 10)
        waiting = [embed_of(discord_fake, asked) for asked in (second, third)]
        await asyncio.sleep(0.5)  # time enough for a create, were one to go
        assert prompts_sent(seaart) == ["first"]
        seaart.hold(False)
        await delivered(discord_fake, first)
        await delivered(discord_fake, second)
        await delivered(discord_fake, third)
    finally:
        await running.close()
    for embed in waiting:
        assert embed["title"] == "🍌 Waiting for your turn…", embed
        note = field(embed, "Your turn") or ""
        assert note.startswith("This server has as many images generating as it allows at once: this one starts"), note
    assert prompts_sent(seaart) == ["first", "second", "third"]
    spans = query(
        settings, "SELECT deadline_at - ?, finished_at FROM jobs ORDER BY created_at", settings.jobs.deadline_seconds
    )
    # One image at a time: each started once the one before it had ended.
    assert all(spans[n][0] >= spans[n - 1][1] for n in (1, 2)), spans
    assert query(settings, "SELECT DISTINCT charge_state FROM jobs") == [("committed",)]


async def test_a_request_waiting_when_quotas_are_turned_off_starts_at_the_next_start(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Quotas turned off (``[quotas] enabled = false``) and the bot restarted: nothing limits a request any more,
    so one still waiting starts at once, beside the one it waited for."""
    quotas = {"daily": 20, "in_flight_per_user": 1}
    settings = make_settings(tmp_path, discord_fake, seaart, quotas=quotas)
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await one_generating_one_waiting(discord_fake, settings)
    finally:
        await running.close()
    unlimited = make_settings(tmp_path, discord_fake, seaart, quotas={**quotas, "enabled": False})
    running = await start_bot(unlimited, discord_fake, Clock())
    try:
        await discord_fake.wait_for(lambda: prompts_sent(seaart) == ["first", "second"], timeout=10)
    finally:
        seaart.hold(False)
        await running.close()


async def test_an_admin_raising_a_members_limit_starts_their_waiting_request(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A request waits under the member's limit of requests at once; ``/quota set member: in_flight:2`` lets it
    start at once, beside the one it waited for (it waited under the limit it was taken with before)."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 20, "in_flight_per_user": 1})
    seaart.hold(True)
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    member = discord_fake.member_id
    try:
        second = await one_generating_one_waiting(discord_fake, settings)
        clock.offset += 120  # two minutes waiting
        await answered(discord_fake, "quota set", {"member": member, "in_flight": 2}, user_id=discord_fake.admin_id)
        await discord_fake.wait_for(lambda: prompts_sent(seaart) == ["first", "second"], timeout=5)
        # Its message says it started now, not when it was asked two minutes before.
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, second), "Started") is not None, 10)
        started = field(embed_of(discord_fake, second), "Started")
        ((asked,),) = query(settings, "SELECT created_at FROM jobs WHERE request_json LIKE '%second%'")
        seaart.hold(False)
        await delivered(discord_fake, second)
    finally:
        seaart.hold(False)
        await running.close()
    assert query(settings, "SELECT DISTINCT charge_state, waits_for FROM jobs") == [("committed", None)]
    at = int((started or "").removeprefix("<t:").removesuffix(":R>"))
    assert at >= float(str(asked)) + 119, (started, asked)


async def test_a_request_the_servers_lowered_limit_can_never_hold_ends_uncharged_saying_so(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """Two images waiting for the server's room, and the server's limit lowered to one (the config changed,
    the bot restarted): they could never start together, so they end, uncharged, saying why and what to ask
    for, rather than wait for good."""
    quotas = {"daily": 20, "in_flight_per_guild": 2}
    settings = make_settings(tmp_path, discord_fake, seaart, quotas=quotas)
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await discord_fake.slash_command("imagine", {"prompt": "first", "count": 2}, user_id=discord_fake.moderator_id)
        await discord_fake.wait_for(lambda: query(settings, "SELECT state FROM jobs") == [("running",)] * 2, 10)
        second = await discord_fake.slash_command("imagine", {"prompt": "second", "count": 2})
        await discord_fake.wait_for(lambda: bool(second.original_message_id), timeout=10)
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, second), "Your turn") is not None, 10)
    finally:
        await running.close()
    lowered = make_settings(tmp_path, discord_fake, seaart, quotas={**quotas, "in_flight_per_guild": 1})
    running = await start_bot(lowered, discord_fake, Clock())
    ended = "SELECT state, charge_state FROM jobs WHERE request_json LIKE '%second%'"
    try:
        await discord_fake.wait_for(lambda: embed_of(discord_fake, second)["title"] == "🍌 Cancelled", timeout=10)
        lines = field(embed_of(discord_fake, second), "Images") or ""
        # A batch's candidate is shown ended before its row is written (bot/job_messages.py ``_end_candidate``):
        # the last one's end, refund included, follows its drawing.
        await discord_fake.wait_for(lambda: query(settings, ended) == [("cancelled", "refunded")] * 2, timeout=10)
    finally:
        seaart.hold(False)
        await running.close()
    assert "This server now allows 1 image(s) generating at once, fewer than this request's 2" in lines, lines
    assert "Ask again for one image." in lines, lines
    assert prompts_sent(seaart) == ["first", "first"]


async def test_the_servers_room_goes_by_the_order_requests_were_asked_in(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The server allows two images at once and a moderator's two generate. A member's batch of two waits for
    the room; one image ends, freeing one place: an admin's single image asked then waits behind the batch (it
    does not take the place the batch waits to fill), and starts after it."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 20, "in_flight_per_guild": 2})
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await discord_fake.slash_command("imagine", {"prompt": "first", "count": 2}, user_id=discord_fake.moderator_id)
        await discord_fake.wait_for(lambda: len(seaart.jobs) == 2, timeout=10)
        batch = await discord_fake.slash_command("imagine", {"prompt": "batch", "count": 2})
        await discord_fake.wait_for(lambda: bool(batch.original_message_id), timeout=10)
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, batch), "Your turn") is not None, 10)
        seaart.release(next(iter(seaart.jobs)))
        await discord_fake.wait_for(
            lambda: query(settings, "SELECT COUNT(*) FROM jobs WHERE state = 'delivered'") == [(1,)], 10
        )
        single = await discord_fake.slash_command("imagine", {"prompt": "single"}, user_id=discord_fake.admin_id)
        await discord_fake.wait_for(lambda: bool(single.original_message_id), timeout=10)
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, single), "Your turn") is not None, 10)
        await asyncio.sleep(0.5)  # time enough for a create, were one to go
        sent_while_waiting = prompts_sent(seaart)
        seaart.hold(False)
        await delivered(discord_fake, single)
    finally:
        seaart.hold(False)
        await running.close()
    assert sent_while_waiting == ["first", "first"]
    assert prompts_sent(seaart) == ["first", "first", "batch", "batch", "single"]


async def test_a_request_whose_members_turn_came_while_the_server_is_full_says_it_waits_for_the_server(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The server allows two images at once: the member's and a moderator's generate, and an admin's waits for the
    room. The member's second waits for their first. Their first ends: the freed place goes to the admin's, asked
    before it; the member's second now waits for the server alone, and its message says so."""
    settings = make_settings(
        tmp_path, discord_fake, seaart, quotas={"daily": 20, "in_flight_per_user": 1, "in_flight_per_guild": 2}
    )
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await discord_fake.slash_command("imagine", {"prompt": "first"})
        await discord_fake.wait_for(lambda: len(seaart.jobs) == 1, timeout=10)
        first_task = next(iter(seaart.jobs))
        await discord_fake.slash_command("imagine", {"prompt": "moderator's"}, user_id=discord_fake.moderator_id)
        await discord_fake.wait_for(lambda: len(seaart.jobs) == 2, timeout=10)
        admins = await discord_fake.slash_command("imagine", {"prompt": "admin's"}, user_id=discord_fake.admin_id)
        await discord_fake.wait_for(lambda: bool(admins.original_message_id), timeout=10)
        second = await discord_fake.slash_command("imagine", {"prompt": "second"})
        await discord_fake.wait_for(lambda: bool(second.original_message_id), timeout=10)
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, second), "Your turn") is not None, 10)
        before = field(embed_of(discord_fake, second), "Your turn") or ""
        seaart.release(first_task)
        await discord_fake.wait_for(lambda: prompts_sent(seaart) == ["first", "moderator's", "admin's"], timeout=10)
        await discord_fake.wait_for(
            lambda: (field(embed_of(discord_fake, second), "Your turn") or "").startswith("This server"), timeout=10
        )
        seaart.hold(False)
        await delivered(discord_fake, second)
    finally:
        seaart.hold(False)
        await running.close()
    assert before.startswith("You may have 1 request(s) generating at once"), before
    assert prompts_sent(seaart) == ["first", "moderator's", "admin's", "second"]


async def test_a_waiting_request_says_what_waits_before_it_and_says_it_again_as_that_moves(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A member's third request waits behind their second, which waits for their first: its message says one of
    theirs waits before it; when the first ends and the second starts, it says nothing waits before it."""
    quotas = {"daily": 20, "in_flight_per_user": 1, "waiting_per_user": 3}
    settings = make_settings(tmp_path, discord_fake, seaart, quotas=quotas)
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        second = await one_generating_one_waiting(discord_fake, settings)
        third = await discord_fake.slash_command("imagine", {"prompt": "third"})
        await discord_fake.wait_for(lambda: bool(third.original_message_id), timeout=10)
        await discord_fake.wait_for(
            lambda: "before it" in (field(embed_of(discord_fake, third), "Your turn") or ""), 10
        )
        behind = field(embed_of(discord_fake, third), "Your turn") or ""
        alone = field(embed_of(discord_fake, second), "Your turn") or ""
        own = listed(await private_list(discord_fake))
        seaart.release(next(iter(seaart.jobs)))
        await discord_fake.wait_for(lambda: prompts_sent(seaart) == ["first", "second"], timeout=10)
        await discord_fake.wait_for(
            lambda: "before it" not in (field(embed_of(discord_fake, third), "Your turn") or "x before it"), 10
        )
        next_up = field(embed_of(discord_fake, third), "Your turn") or ""
    finally:
        seaart.hold(False)
        await running.close()
    assert "starts by itself when one of them ends, after the 1 of yours waiting before it." in behind, behind
    assert "before it" not in alone, alone
    assert "starts by itself when one of them ends. Nothing is charged" in next_up, next_up
    # /jobs says it too: the third waits after one of the member's own.
    assert "⏳ **Waiting for your turn** · after 1 of yours · Nano Banana 2 ·" in own, own


async def test_a_request_waiting_for_the_servers_room_says_how_many_images_wait_before_it(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """The server allows one image at once, a moderator's; a member's waits for the room, then an admin's, which says
    one image waits before it, and that none does once the member's has started."""
    quotas = {"daily": 20, "in_flight_per_user": 2, "in_flight_per_guild": 1}
    settings = make_settings(tmp_path, discord_fake, seaart, quotas=quotas)
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    try:
        await discord_fake.slash_command("imagine", {"prompt": "moderator's"}, user_id=discord_fake.moderator_id)
        await discord_fake.wait_for(lambda: len(seaart.jobs) == 1, timeout=10)
        members = await discord_fake.slash_command("imagine", {"prompt": "member's"})
        await discord_fake.wait_for(lambda: bool(members.original_message_id), timeout=10)
        admins = await discord_fake.slash_command("imagine", {"prompt": "admin's"}, user_id=discord_fake.admin_id)
        await discord_fake.wait_for(lambda: bool(admins.original_message_id), timeout=10)
        await discord_fake.wait_for(
            lambda: "before it" in (field(embed_of(discord_fake, admins), "Your turn") or ""), 10
        )
        behind = field(embed_of(discord_fake, admins), "Your turn") or ""
        seaart.release(next(iter(seaart.jobs)))
        await discord_fake.wait_for(lambda: prompts_sent(seaart) == ["moderator's", "member's"], timeout=10)
        await discord_fake.wait_for(
            lambda: "before it" not in (field(embed_of(discord_fake, admins), "Your turn") or "x before it"), 10
        )
        next_up = field(embed_of(discord_fake, admins), "Your turn") or ""
    finally:
        seaart.hold(False)
        await running.close()
    assert "starts by itself when there is room, after the 1 image(s) waiting before it." in behind, behind
    assert "starts by itself when there is room. Nothing is charged" in next_up, next_up


async def test_an_admin_raising_a_roles_tier_starts_the_waiting_requests_of_its_members(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """A moderator's second request waits for their first (one at once, the default). ``/quota set role:`` their
    role ``in_flight:2`` lets it start at once: the bot asks Discord for the roles of each member with a request
    waiting and puts those holding the role under their new limit. Before, it waited under the old one until the
    first ended. A member without the role keeps waiting."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 20, "in_flight_per_user": 1})
    seaart.hold(True)
    running = await start_bot(settings, discord_fake, Clock())
    moderator = {"user_id": discord_fake.moderator_id}
    try:
        await discord_fake.slash_command("imagine", {"prompt": "first"}, **moderator)
        await discord_fake.wait_for(lambda: prompts_sent(seaart) == ["first"], timeout=10)
        second = await discord_fake.slash_command("imagine", {"prompt": "second"}, **moderator)
        await discord_fake.wait_for(lambda: bool(second.original_message_id), timeout=10)
        await discord_fake.slash_command("imagine", {"prompt": "member's first"})
        await discord_fake.wait_for(lambda: len(prompts_sent(seaart)) == 2, timeout=10)
        members_second = await discord_fake.slash_command("imagine", {"prompt": "member's second"})
        await discord_fake.wait_for(lambda: bool(members_second.original_message_id), timeout=10)
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, second), "Your turn") is not None, 10)
        raised = await answered(
            discord_fake,
            "quota set",
            {"role": discord_fake.moderator_role_id, "in_flight": 2},
            user_id=discord_fake.admin_id,
        )
        await discord_fake.wait_for(lambda: "second" in prompts_sent(seaart), timeout=5)
        await asyncio.sleep(0.3)  # time enough for the member's second, were it to go
        sent = prompts_sent(seaart)
    finally:
        seaart.hold(False)
        await running.close()
    assert "member's second" not in sent, sent
    said = content(discord_fake, raised)
    assert "1 request(s) of theirs waiting their turn now wait under their new limits." in said, said


async def test_a_request_that_waited_its_turn_says_how_long_it_ran_apart_from_how_long_since_asked(
    tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt
) -> None:
    """ "Took 2m 35s" for a request that waited two and a half minutes and then generated for seconds read as a slow
    model: after such a wait, the time it ran comes first and the whole since its asking after it. The one it waited
    for generated the whole time, and says so plainly."""
    settings = make_settings(tmp_path, discord_fake, seaart, quotas={"daily": 20, "in_flight_per_user": 1})
    seaart.hold(True)
    clock = Clock()
    running = await start_bot(settings, discord_fake, clock)
    try:
        first = await discord_fake.slash_command("imagine", {"prompt": "first"})
        await discord_fake.wait_for(lambda: query(settings, "SELECT state FROM jobs") == [("running",)], timeout=10)
        second = await discord_fake.slash_command("imagine", {"prompt": "second"})
        await discord_fake.wait_for(lambda: bool(second.original_message_id), timeout=10)
        await discord_fake.wait_for(lambda: field(embed_of(discord_fake, second), "Your turn") is not None, 10)
        clock.offset += 150  # two and a half minutes pass with the first generating, the second waiting
        seaart.hold(False)
        await delivered(discord_fake, first)
        await delivered(discord_fake, second)
    finally:
        await running.close()
    first_took, second_took = (
        field(embed_of(discord_fake, first), "Took"),
        field(embed_of(discord_fake, second), "Took"),
    )
    assert re.fullmatch(r"2m 3\ds", first_took or ""), first_took
    assert re.fullmatch(r"\d{1,2}s \(2m 3\ds since asked\)", second_took or ""), second_took
