"""The fake Discord must work with the REAL discord.py client, unchanged.

Each test runs a small commands.Bot (app commands, a persistent view) against bot.testing.discord over
real sockets and checks what the fake recorded.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from bot.testing.discord import FakeDiscord, FakeInteraction, point_discord_py_at


def png_bytes(color: tuple[int, int, int] = (255, 200, 0), size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


OUTPUT_PNG = png_bytes((10, 20, 30), (16, 12))


class AgainView(discord.ui.View):
    """Persistent: timeout None and a fixed custom_id, registered with bot.add_view in setup_hook."""

    def __init__(self, bot: EchoBot) -> None:
        super().__init__(timeout=None)
        self.bot = bot

    @discord.ui.button(label="Again", custom_id="echo:again", style=discord.ButtonStyle.primary)
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button[AgainView]) -> None:
        self.bot.clicks.append(interaction.user.id)
        await interaction.response.send_message("again!", ephemeral=True)

    @discord.ui.button(label="Shrink", custom_id="echo:shrink")
    async def shrink(self, interaction: discord.Interaction, button: discord.ui.Button[AgainView]) -> None:
        # Type 7: edits the clicked message; attachments=[] drops the image, components stay.
        await interaction.response.edit_message(content="shrunk", embed=None, attachments=[])

    @discord.ui.button(label="Later", custom_id="echo:later")
    async def later(self, interaction: discord.Interaction, button: discord.ui.Button[AgainView]) -> None:
        # Type 6, then edit the clicked message through @original.
        await interaction.response.defer()
        await interaction.edit_original_response(content="later")

    @discord.ui.button(label="Rename", custom_id="echo:rename")
    async def rename(self, interaction: discord.Interaction, button: discord.ui.Button[AgainView]) -> None:
        await interaction.response.send_modal(RenameModal())

    @discord.ui.button(label="Pick", custom_id="echo:pick")
    async def pick(self, interaction: discord.Interaction, button: discord.ui.Button[AgainView]) -> None:
        await interaction.response.send_modal(PickModal())

    @discord.ui.button(label="Bad form", custom_id="echo:bad")
    async def bad(self, interaction: discord.Interaction, button: discord.ui.Button[AgainView]) -> None:
        # A label's text may be at most 45 characters: Discord refuses the whole form.
        modal = discord.ui.Modal(title="Bad")
        modal.add_item(discord.ui.Label(text="x" * 46, component=discord.ui.TextInput(custom_id="bad:text")))
        try:
            await interaction.response.send_modal(modal)
        except discord.HTTPException as exc:
            self.bot.refused_codes.append(exc.code)


class PickModal(discord.ui.Modal, title="Pick"):
    """A select and an optional text input, each in a label (Discord's newer modal layout)."""

    colour: discord.ui.Label[PickModal] = discord.ui.Label(
        text="Colour",
        component=discord.ui.Select(
            custom_id="pick:colour",
            options=[
                discord.SelectOption(label="Red", value="red", default=True),
                discord.SelectOption(label="Blue", value="blue"),
            ],
            min_values=0,
            required=False,
        ),
    )
    note: discord.ui.Label[PickModal] = discord.ui.Label(
        text="Note", component=discord.ui.TextInput(custom_id="pick:note", required=False)
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        select, text = self.colour.component, self.note.component
        assert isinstance(select, discord.ui.Select) and isinstance(text, discord.ui.TextInput)
        await interaction.response.send_message(f"picked {select.values} note {text.value!r}", ephemeral=True)


class RenameModal(discord.ui.Modal, title="Rename"):
    name: discord.ui.TextInput[RenameModal] = discord.ui.TextInput(label="New name", custom_id="rename:name")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"renamed to {self.name.value}", ephemeral=True)


class EchoBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        # guild_ready_timeout is passed through to ConnectionState (default 2 s before on_ready).
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.2)
        self.guild_id = guild_id
        self.clicks: list[int] = []
        self.interactions: list[discord.Interaction] = []
        self.refused_codes: list[int] = []

    async def setup_hook(self) -> None:
        self.add_view(AgainView(self))

        @app_commands.command(name="echo", description="Echo text and an image back")
        async def echo(interaction: discord.Interaction, text: str, image: discord.Attachment) -> None:
            self.interactions.append(interaction)
            await interaction.response.defer(thinking=True)
            data = await image.read()  # downloads from the fake's /attachments route
            embed = discord.Embed(title=text, description=f"{len(data)} bytes in")
            embed.set_image(url="attachment://out.png")
            await interaction.edit_original_response(
                embed=embed,
                attachments=[discord.File(io.BytesIO(OUTPUT_PNG), filename="out.png")],
                view=AgainView(self),
            )

        @app_commands.command(name="secret", description="Answer only to the caller")
        async def secret(interaction: discord.Interaction) -> None:
            self.interactions.append(interaction)
            await interaction.response.send_message("shh", ephemeral=True)

        @app_commands.command(name="twice", description="Defer, then two follow-ups")
        async def twice(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send("one")  # replaces the "thinking..." message
            await interaction.followup.send("two", file=discord.File(io.BytesIO(OUTPUT_PNG), "two.png"))

        @app_commands.command(name="late", description="Answer after a while")
        async def late(interaction: discord.Interaction, seconds: float) -> None:
            await asyncio.sleep(seconds)
            try:
                await interaction.response.send_message("here at last")
            except discord.NotFound as exc:
                self.refused_codes.append(exc.code)

        @app_commands.command(name="pick", description="Autocompleted style")
        async def pick(interaction: discord.Interaction, style: str) -> None:
            await interaction.response.send_message(style)

        @pick.autocomplete("style")
        async def pick_style(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            styles = ["photo", "pixel", "watercolor"]
            return [app_commands.Choice(name=s, value=s) for s in styles if s.startswith(current)]

        self.tree.add_command(twice)
        self.tree.add_command(late)
        self.tree.add_command(pick)
        mod = app_commands.Group(name="mod", description="Moderation")
        safety = app_commands.Group(name="safety", description="Safety settings", parent=mod)

        @safety.command(name="show", description="Show the safety level")
        @app_commands.describe(level="0-5", who="whose settings")
        async def show(
            interaction: discord.Interaction, level: app_commands.Range[int, 0, 5], who: discord.Member
        ) -> None:
            self.interactions.append(interaction)
            perms = interaction.permissions
            await interaction.response.send_message(
                f"level={level} who={who.id} manage_guild={perms.manage_guild}", ephemeral=True
            )

        self.tree.add_command(echo)
        self.tree.add_command(secret)
        guild = discord.Object(self.guild_id)
        self.tree.add_command(mod, guild=guild)
        await self.tree.sync()
        await self.tree.sync(guild=guild)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord(attachment_size_limit=256 * 1024) as fake:
        point_discord_py_at(fake.api_base_url, fake.gateway_url)
        try:
            yield fake
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


class RunningBot:
    def __init__(self, bot: EchoBot, task: asyncio.Task[None]) -> None:
        self.bot, self.task = bot, task

    async def close(self) -> None:
        await self.bot.close()
        # connect() returns after close(); an exception here means the client died (e.g. a KeyError
        # while parsing one of the fake's payloads), which must fail the test.
        await asyncio.wait_for(self.task, 5)


async def start_bot(fake: FakeDiscord) -> RunningBot:
    bot = EchoBot(fake.guild_id)
    await bot.login(fake.bot_token)
    task = asyncio.create_task(bot.connect())
    await fake.wait_until_ready()
    return RunningBot(bot, task)


@pytest.fixture
async def running(fake: FakeDiscord) -> AsyncIterator[RunningBot]:
    running = await start_bot(fake)
    try:
        yield running
    finally:
        await running.close()


async def run_echo(fake: FakeDiscord, text: str = "hello") -> FakeInteraction:
    att = fake.add_attachment(png_bytes(), "in.png", "image/png")
    inter = await fake.slash_command("echo", {"text": text, "image": att})
    await fake.wait_for(
        lambda: inter.original_message_id is not None and fake.messages[inter.original_message_id].edits >= 1
    )
    return inter


async def test_login_sync_and_gateway(fake: FakeDiscord, running: RunningBot) -> None:
    bot = running.bot
    assert bot.user is not None and bot.user.id == fake.bot_user_id
    assert bot.application_id == fake.application_id
    assert {c["name"] for c in fake.commands} == {"echo", "secret", "twice", "late", "pick"}
    assert [c["name"] for c in fake.guild_commands[fake.guild_id]] == ["mod"]
    assert all("id" in c and "version" in c for c in fake.commands)
    await asyncio.wait_for(bot.wait_until_ready(), 5)
    guild = bot.get_guild(fake.guild_id)
    assert guild is not None and guild.owner_id == fake.owner_id
    nsfw = guild.get_channel(fake.nsfw_channel_id)
    assert isinstance(nsfw, discord.TextChannel) and nsfw.is_nsfw()
    assert {r.name for r in guild.roles} >= {"@everyone", "Moderator", "Admin"}
    assert fake.identify_count == 1
    assert not [r for r in fake.requests if r.unknown_route]


async def test_defer_then_edit_with_file_embed_and_persistent_view(fake: FakeDiscord, running: RunningBot) -> None:
    inter = await run_echo(fake, "hello")
    assert inter.callbacks[0]["type"] == 5
    assert inter.response_delay is not None and inter.response_delay < 3
    assert inter.original_message_id is not None
    msg = fake.messages[inter.original_message_id]
    assert not msg.loading and not msg.ephemeral and msg.edits == 1
    assert [f.data for f in msg.files] == [OUTPUT_PNG]
    assert msg.files[0].filename == "out.png" and msg.files[0].content_type == "image/png"
    assert msg.attachments[0]["width"] == 16 and msg.attachments[0]["height"] == 12
    assert msg.embeds[0]["title"] == "hello" and msg.embeds[0]["description"].startswith(str(len(png_bytes())))
    # Discord points attachment:// embed images at the uploaded file.
    assert msg.embeds[0]["image"]["url"] == msg.attachments[0]["url"]
    assert any(r.method == "GET" and r.path.startswith("/attachments/") and r.status == 200 for r in fake.requests)
    patch = next(r for r in fake.requests if r.method == "PATCH" and r.path.endswith("/messages/@original"))
    assert patch.files[0].data == OUTPUT_PNG and patch.json is not None and "attachments" in patch.json

    click = await fake.click(msg.id, "echo:again")
    await fake.wait_for(lambda: bool(click.callbacks))
    assert click.callbacks[0]["type"] == 4 and click.callbacks[0]["data"]["flags"] & 64
    assert click.original_message_id is not None
    reply = fake.messages[click.original_message_id]
    assert reply.ephemeral and reply.content == "again!"
    assert running.bot.clicks == [fake.member_id]
    # The fake sent MESSAGE_CREATE/UPDATE for the non-ephemeral response, so the client cached it.
    await fake.wait_for(lambda: any(m.id == msg.id and m.attachments for m in running.bot.cached_messages))

    shrink = await fake.click(msg.id, "echo:shrink")
    await fake.wait_for(lambda: msg.edits == 2)
    assert shrink.callbacks[0]["type"] == 7 and shrink.original_message_id == msg.id
    assert msg.content == "shrunk" and msg.attachments == [] and msg.files == [] and msg.embeds == []
    assert "echo:again" in str(msg.components)

    later = await fake.click(msg.id, "echo:later")
    await fake.wait_for(lambda: msg.edits == 3)
    assert later.callbacks[0]["type"] == 6 and later.original_message_id == msg.id
    assert msg.content == "later"

    rename = await fake.click(msg.id, "echo:rename")
    await fake.wait_for(lambda: bool(rename.callbacks))
    assert rename.callbacks[0]["type"] == 9
    submitted = await fake.submit_modal(rename, {"rename:name": "Bob"})
    await fake.wait_for(lambda: bool(submitted.callbacks))
    assert submitted.callbacks[0]["data"]["content"] == "renamed to Bob"


async def test_a_form_with_a_select_is_submitted_as_discords_client_sends_it(
    fake: FakeDiscord, running: RunningBot
) -> None:
    inter = await run_echo(fake, "hello")
    message_id = inter.original_message_id or 0

    async def submitted(values: dict[str, str | list[str]]) -> str:
        pick = await fake.click(message_id, "echo:pick")
        await fake.wait_for(lambda: bool(pick.callbacks))
        assert pick.callbacks[0]["type"] == 9
        answer = await fake.submit_modal(pick, values)
        await fake.wait_for(lambda: bool(answer.callbacks))
        return str(answer.callbacks[0]["data"]["content"])

    # Left alone, the select sends its default option and the optional text input nothing.
    assert await submitted({}) == "picked ['red'] note ''"
    assert await submitted({"pick:colour": ["blue"], "pick:note": "hi"}) == "picked ['blue'] note 'hi'"
    assert await submitted({"pick:colour": []}) == "picked [] note ''"
    # A value the select does not offer is not something Discord's client can send.
    pick = await fake.click(message_id, "echo:pick")
    await fake.wait_for(lambda: bool(pick.callbacks))
    with pytest.raises(AssertionError, match="not offered"):
        await fake.submit_modal(pick, {"pick:colour": "green"})

    # A form breaking Discord's limits is refused as Discord does: 400 Invalid Form Body, no form shown.
    bad = await fake.click(message_id, "echo:bad")
    await fake.wait_for(lambda: bool(running.bot.refused_codes))
    assert running.bot.refused_codes == [50035] and bad.callbacks == []


async def test_followups_after_defer(fake: FakeDiscord, running: RunningBot) -> None:
    inter = await fake.slash_command("twice")
    await fake.wait_for(lambda: len(inter.followup_ids) == 2)
    assert inter.callbacks[0]["type"] == 5 and inter.callbacks[0]["data"]["flags"] == 64
    first, second = (fake.messages[i] for i in inter.followup_ids)
    # The first follow-up replaced the loading message and kept its ephemerality.
    assert first.id == inter.original_message_id and first.content == "one" and first.ephemeral
    assert not first.loading and first.edits == 1
    assert second.content == "two" and not second.ephemeral and second.files[0].data == OUTPUT_PNG


async def test_an_answer_past_the_window_is_refused_as_discord_does(fake: FakeDiscord, running: RunningBot) -> None:
    fake.answer_window = 0.5
    in_time = await fake.slash_command("late", {"seconds": 0.0})
    too_late = await fake.slash_command("late", {"seconds": 1.0})
    await fake.wait_for(lambda: bool(running.bot.refused_codes), timeout=10)
    assert running.bot.refused_codes == [10062]  # Unknown interaction
    assert [c["type"] for c in in_time.callbacks] == [4] and too_late.callbacks == []
    assert [m.content for m in fake.messages.values()] == ["here at last"]


async def test_autocomplete(fake: FakeDiscord, running: RunningBot) -> None:
    inter = await fake.autocomplete("pick", {"style": "p"}, focused="style")
    await fake.wait_for(lambda: bool(inter.callbacks))
    assert inter.callbacks[0]["type"] == 8
    assert [c["value"] for c in inter.callbacks[0]["data"]["choices"]] == ["photo", "pixel"]


async def test_ephemeral_answer_is_invisible_to_the_bot_token(fake: FakeDiscord, running: RunningBot) -> None:
    inter = await fake.slash_command("secret")
    await fake.wait_for(lambda: bool(inter.callbacks))
    assert inter.callbacks == [{"type": 4, "data": inter.callbacks[0]["data"]}]
    assert inter.original_message_id is not None
    msg = fake.messages[inter.original_message_id]
    assert msg.ephemeral and msg.flags & 64 and msg.content == "shh"
    assert fake.messages_in(fake.channel_id) == [msg]
    channel = running.bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.NotFound):
        await channel.fetch_message(msg.id)

    # A second acknowledgement is refused like Discord does (discord.py checks locally, so post directly).
    url = f"{fake.api_base_url}/interactions/{inter.id}/{inter.token}/callback"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"type": 4, "data": {"content": "x"}}) as resp,
    ):
        assert resp.status == 400 and (await resp.json())["code"] == 40060
    assert len(inter.callbacks) == 1

    nsfw = await fake.slash_command("secret", channel_id=fake.nsfw_channel_id)
    await fake.wait_for(lambda: bool(nsfw.callbacks))
    channel = running.bot.interactions[-1].channel
    assert isinstance(channel, discord.TextChannel) and channel.is_nsfw()


async def test_expired_token_then_bot_token_edit(fake: FakeDiscord, running: RunningBot) -> None:
    inter = await run_echo(fake)
    interaction = running.bot.interactions[-1]
    fake.expire_token(inter.token)
    with pytest.raises(discord.HTTPException) as excinfo:
        await interaction.edit_original_response(content="too late")
    assert excinfo.value.status == 401 and excinfo.value.code == 50027

    channel = running.bot.get_channel(fake.channel_id)
    assert isinstance(channel, discord.TextChannel)
    assert inter.original_message_id is not None
    await channel.get_partial_message(inter.original_message_id).edit(content="via bot token")
    msg = fake.messages[inter.original_message_id]
    assert msg.content == "via bot token" and msg.edits == 2
    assert [f.data for f in msg.files] == [OUTPUT_PNG]  # attachments kept when the edit does not list them


async def test_oversize_upload_is_413(fake: FakeDiscord, running: RunningBot) -> None:
    inter = await run_echo(fake)
    interaction = running.bot.interactions[-1]
    big = discord.File(io.BytesIO(b"\0" * (fake.attachment_size_limit + 1)), filename="big.png")
    with pytest.raises(discord.HTTPException) as excinfo:
        await interaction.edit_original_response(attachments=[big])
    assert excinfo.value.status == 413 and excinfo.value.code == 40005
    assert inter.original_message_id is not None
    assert [f.data for f in fake.messages[inter.original_message_id].files] == [OUTPUT_PNG]


async def test_restarted_bot_identifies_again(fake: FakeDiscord) -> None:
    first = await start_bot(fake)
    await first.close()
    second = await start_bot(fake)
    try:
        await fake.wait_for(lambda: fake.identify_count == 2)
        inter = await fake.slash_command("secret")
        await fake.wait_for(lambda: bool(inter.callbacks))
        assert len(second.bot.interactions) == 1 and not first.bot.interactions
    finally:
        await second.close()


async def test_stale_connection_of_a_killed_bot_is_ignored(fake: FakeDiscord) -> None:
    # The first bot "dies" without closing its websocket; the replacement must get the interactions.
    first = await start_bot(fake)
    second = await start_bot(fake)
    try:
        assert fake.identify_count == 2
        inter = await fake.slash_command("secret")
        await fake.wait_for(lambda: bool(inter.callbacks))
        assert len(second.bot.interactions) == 1 and not first.bot.interactions
    finally:
        await second.close()
        await first.close()


async def test_dropped_gateway_resumes(fake: FakeDiscord, running: RunningBot) -> None:
    await fake.drop_gateway()
    await fake.wait_for(lambda: fake.resume_count == 1)
    inter = await fake.slash_command("secret")
    await fake.wait_for(lambda: bool(inter.callbacks))
    assert fake.identify_count == 1


async def test_injected_failures_are_retried(fake: FakeDiscord, running: RunningBot) -> None:
    # discord.py retries a 429 (with Via + retry_after) after retry_after, and a 500 after 1 s.
    fake.fail_next("POST", r"/callback$", status=429)
    fake.fail_next("PATCH", r"/messages/@original$", status=500)
    inter = await run_echo(fake)
    callbacks = [r.status for r in fake.requests if r.path.endswith("/callback")]
    patches = [r.status for r in fake.requests if r.method == "PATCH"]
    assert callbacks == [429, 200] and patches == [500, 200]
    assert len(inter.callbacks) == 1


async def test_group_subcommand_options_and_permissions(fake: FakeDiscord, running: RunningBot) -> None:
    inter = await fake.slash_command("mod safety show", {"level": 3, "who": fake.admin_id}, user_id=fake.admin_id)
    await fake.wait_for(lambda: bool(inter.callbacks))
    content = inter.callbacks[0]["data"]["content"]
    assert content == f"level=3 who={fake.admin_id} manage_guild=True"
    assert inter.payload["data"]["guild_id"] == str(fake.guild_id)

    plain = await fake.slash_command("mod safety show", {"level": 0, "who": fake.member_id})
    await fake.wait_for(lambda: bool(plain.callbacks))
    assert plain.callbacks[0]["data"]["content"].endswith("manage_guild=False")

    with pytest.raises(AssertionError, match="no option 'bogus'"):
        await fake.slash_command("mod safety show", {"level": 1, "who": fake.member_id, "bogus": 1})
    with pytest.raises(AssertionError, match="not a registered"):
        await fake.slash_command("nope")
    with pytest.raises(AssertionError, match="max_value"):
        await fake.slash_command("mod safety show", {"level": 9, "who": fake.member_id})


async def test_rest_details(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(fake.api_base_url + "/nope") as resp:
            assert resp.status == 404 and resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {"code": 0, "message": "404: Not Found"}
        async with http.get(fake.api_base_url + "/users/@me") as resp:
            assert resp.status == 401
        headers = {"Authorization": f"Bot {fake.bot_token}"}
        async with http.get(fake.api_base_url + "/users/@me", headers=headers) as resp:
            assert resp.status == 200 and "X-RateLimit-Remaining" not in resp.headers
        att = fake.add_attachment(b"GIF89a\x02\x00\x03\x00", "a b.gif", None, size=50_000_000)
        assert att["size"] == 50_000_000 and (att["width"], att["height"]) == (2, 3)
        assert "content_type" not in att
        async with http.get(att["url"]) as resp:
            assert resp.status == 200 and await resp.read() == b"GIF89a\x02\x00\x03\x00"
    unknown = [r for r in fake.requests if r.unknown_route]
    assert [r.path for r in unknown] == ["/nope"]
    flag: list[bool] = []
    with pytest.raises(TimeoutError, match="bool\\(flag\\)"):
        await fake.wait_for(lambda: bool(flag), timeout=0.1)


async def test_an_enforced_nonce_returns_the_first_message_and_makes_no_second(
    fake: FakeDiscord, running: RunningBot
) -> None:
    """As Discord documents ``enforce_nonce``: the same author and nonce within a few minutes gets the
    earlier message back. discord.py sets it whenever a nonce is given."""
    channel = running.bot.get_partial_messageable(fake.channel_id)
    first = await channel.send("once", nonce="job:1")
    again = await channel.send("once, sent again", nonce="job:1")
    other = await channel.send("another", nonce="job:2")
    plain = [await channel.send("no nonce") for _ in range(2)]
    assert again.id == first.id and other.id != first.id and plain[0].id != plain[1].id
    texts = [m.content for m in fake.messages_in(fake.channel_id) if m.author_id is None]
    assert texts == ["once", "another", "no nonce", "no nonce"]


async def test_a_deleted_channel_is_gone_with_its_messages_and_the_client_is_told(fake: FakeDiscord) -> None:
    """As Discord deletes a channel: CHANNEL_DELETE to the client (discord.py drops it from the guild and
    dispatches guild_channel_delete), no MESSAGE_DELETE for its messages, and every call on it 404 with
    code 10003 (Unknown Channel)."""
    doomed = fake.add_channel("doomed")
    running = await start_bot(fake)
    try:
        bot = running.bot
        deleted: list[int] = []

        async def on_guild_channel_delete(channel: discord.abc.GuildChannel) -> None:
            deleted.append(channel.id)

        bot.add_listener(on_guild_channel_delete)
        posted = await bot.get_partial_messageable(doomed).send("soon gone")
        await fake.delete_channel(doomed)
        await fake.wait_for(lambda: deleted == [doomed], timeout=5)
        guild = bot.get_guild(fake.guild_id)
        assert guild is not None and guild.get_channel(doomed) is None
        with pytest.raises(discord.NotFound) as refused:
            await bot.get_partial_messageable(doomed).fetch_message(posted.id)
        assert refused.value.code == 10003
        with pytest.raises(discord.NotFound):
            await bot.get_partial_messageable(doomed).send("into the void")
    finally:
        await running.close()
    assert fake.messages[posted.id].deleted and doomed not in fake.channels
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert deletes == []  # the bot deleted nothing: the channel took its message with it


async def test_a_thread_is_the_guild_s_thread_not_its_channel_and_its_deletion_is_told(fake: FakeDiscord) -> None:
    """A thread (``add_thread``) comes in GUILD_CREATE's threads (discord.py: guild.get_thread), is left out
    of the guild's channel list, takes messages like a channel, and its deletion is THREAD_DELETE."""
    thread_id = fake.add_thread(fake.channel_id, "a forum post")
    running = await start_bot(fake)
    try:
        bot = running.bot
        guild = bot.get_guild(fake.guild_id)
        assert guild is not None
        thread = guild.get_thread(thread_id)
        assert thread is not None and thread.parent_id == fake.channel_id and guild.get_channel(thread_id) is None
        assert thread_id not in [c.id for c in await guild.fetch_channels()]
        posted = await thread.send("in the thread")
        assert fake.messages[posted.id].channel_id == thread_id
        deleted: list[int] = []

        async def on_raw_thread_delete(payload: discord.RawThreadDeleteEvent) -> None:
            deleted.append(payload.thread_id)

        bot.add_listener(on_raw_thread_delete)
        await fake.delete_channel(thread_id)
        await fake.wait_for(lambda: deleted == [thread_id], timeout=5)
        assert guild.get_thread(thread_id) is None and fake.messages[posted.id].deleted
    finally:
        await running.close()


async def test_a_bot_removed_from_the_guild_is_told_and_kept_out(fake: FakeDiscord) -> None:
    """GUILD_DELETE without ``unavailable`` (discord.py: on_guild_remove, the guild dropped), the guild's
    channels 403 Missing Access (50001) to the bot's token, and a new session's READY without the guild."""
    running = await start_bot(fake)
    try:
        bot = running.bot
        removed: list[int] = []

        async def on_guild_remove(guild: discord.Guild) -> None:
            removed.append(guild.id)

        bot.add_listener(on_guild_remove)
        await fake.remove_bot()
        await fake.wait_for(lambda: removed == [fake.guild_id], timeout=5)
        assert bot.get_guild(fake.guild_id) is None
        with pytest.raises(discord.Forbidden) as refused:
            await bot.get_partial_messageable(fake.channel_id).send("still here?")
        assert refused.value.code == 50001
    finally:
        await running.close()
    again = await start_bot(fake)
    try:
        await asyncio.wait_for(again.bot.wait_until_ready(), 5)
        assert list(again.bot.guilds) == []
    finally:
        await again.close()


async def test_standalone_entry_point() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.testing.discord", "--port", "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert line.startswith("api_base_url: http://127.0.0.1:")
        api = line.split(": ", 1)[1].strip()
        async with aiohttp.ClientSession() as http, http.get(api + "/gateway") as resp:
            assert (await resp.json())["url"].startswith("ws://127.0.0.1:")
    finally:
        proc.terminate()
        await proc.wait()
