"""`bananacord demo`: the real bot against the bundled fakes, offline, in a few seconds.

Starts the fake Discord and the fake SeaArt on 127.0.0.1, runs the real Bananacord (its setup_hook,
cogs and poller) on a fresh SQLite file, performs one /imagine with a reference image as a member
would, and prints what that member sees. Nothing leaves the machine: the settings are the demo's own,
and no ``BANANACORD_*`` variable, token or provider key in the environment is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from bot.app import Bananacord, point_discord_at
from bot.config import ENV_PREFIX, SECRET_ENV_VARS, load_settings
from bot.errors import BananacordError
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage, UploadedFile
from bot.testing.providers import FakeSeaArt

DEMO_SEAART_KEY = "demo-seaart-key"
DEMO_BOT_TOKEN = "demo-bot-token"


def _reference_png() -> bytes:
    img = Image.new("RGB", (256, 256), (250, 220, 60))
    ImageDraw.Draw(img).ellipse((48, 48, 208, 208), fill=(60, 40, 20))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _describe(message: FakeMessage) -> list[str]:
    return _render(message.embeds, message.components, message.files, _alts(message))


def _alts(message: FakeMessage) -> list[str | None]:
    """Each attachment's alt text (its ``description``), in the order of ``message.files``."""
    return [attachment.get("description") for attachment in message.attachments]


def _render(
    embeds: list[Any], components: list[Any], files: list[UploadedFile], alts: Sequence[str | None] = ()
) -> list[str]:
    lines = []
    for embed in embeds:
        lines.append(f"  ┌ {embed.get('title', '')}")
        if embed.get("description"):
            lines.append(f"  │ {embed['description']}")
        for field in embed.get("fields", []):
            lines.append(f"  │ {field['name']}: {field['value']}")
        if embed.get("footer"):
            lines.append(f"  │ {embed['footer'].get('text', '')}")
        lines.append("  └")
    for n, file in enumerate(files):
        lines.append(f"  📎 {file.filename} ({len(file.data) / 1024:.0f} KiB, {file.content_type})")
        if n < len(alts) and alts[n]:
            lines.append(f"     alt text: {alts[n]}")
    buttons = [c.get("label") for row in components for c in row.get("components", [])]
    if buttons:
        lines.append("  buttons: " + " | ".join(f"[{b}]" for b in buttons))
    return lines


def _ignored_variables() -> list[str]:
    """The settings and keys exported here that the demo leaves alone (names only, never values)."""
    secrets = set(SECRET_ENV_VARS.values())
    return sorted(name for name in os.environ if name.upper().startswith(ENV_PREFIX) or name in secrets)


# An interaction answered with a message only its member sees (Discord's EPHEMERAL flag).
EPHEMERAL = 64


def _refusal(interaction: FakeInteraction) -> dict[str, Any] | None:
    """The private answer the member got instead of a job (a quota, a moderation refusal), or None."""
    if not interaction.callbacks:
        return None
    callback = interaction.callbacks[0]
    data: dict[str, Any] = callback.get("data") or {}
    if callback.get("type") == 4 and int(data.get("flags") or 0) & EPHEMERAL:
        return data
    return None


def _told(discord_fake: FakeDiscord, interaction: FakeInteraction) -> list[str]:
    """What the member has on screen for ``interaction``: its private answer, or the bot's message."""
    if (refusal := _refusal(interaction)) is not None:
        content, embeds, components = refusal.get("content"), refusal.get("embeds"), refusal.get("components")
        files: list[UploadedFile] = []
        alts: list[str | None] = []
    else:
        mid = interaction.original_message_id
        message = discord_fake.messages.get(mid) if mid is not None else None
        if message is None:
            return ["  (nothing: the bot has not answered)"]
        content, embeds, components, files = message.content, message.embeds, message.components, message.files
        alts = _alts(message)
    lines = [f"  {line}" for line in str(content or "").splitlines()]
    return lines + _render(list(embeds or []), list(components or []), files, alts)


def _check_out_dir(out_dir: Path) -> bool:
    """Make sure the image can be written to ``out_dir`` before the demo runs (it used to end in a traceback
    after the whole demo, for a file or an unwritable path); True if the folder was made here."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BananacordError(f"--out {out_dir} is a file: name a folder for the image")
    made = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # Written and removed at once: only a real write proves the folder takes files (root ignores modes
        # that os.access reports, a read-only mount does not).
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        if made:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise BananacordError(f"cannot write the image to --out {out_dir}: {exc.strerror or exc}") from None
    return made


async def run_demo(*, out_dir: Path, prompt: str, timeout: float = 60.0) -> int:
    """The demo; SIGTERM ends it as Ctrl-C does, its bot, fakes and temporary folder closed and removed."""
    made = _check_out_dir(out_dir)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None  # asyncio.run's task
    terminated: list[bool] = []

    def on_sigterm() -> None:
        # Without a handler SIGTERM killed the process at once, leaving its bananacord-demo-* folder behind.
        terminated.append(True)
        main.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    finished = False
    try:
        code = await _demo(out_dir=out_dir, prompt=prompt, timeout=timeout)
        finished = True
        return code
    except asyncio.CancelledError:
        if not terminated:
            raise  # Ctrl-C: asyncio.run turns it into KeyboardInterrupt, exit 130
        print("bananacord: demo stopped (SIGTERM); its temporary files were removed", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if made and not finished:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # made for this demo, which wrote nothing: empty, so removed


# The button the demo presses under its image (cogs/imagine.py BUTTONS).
VARY_SUBTLE = "Vary (Subtle)"


async def _image_of(
    discord_fake: FakeDiscord, interaction: FakeInteraction, what: str, timeout: float
) -> FakeMessage | None:
    """The message ``interaction`` (a command or a press) ends in, once it shows its image; None, having said
    why, when the bot refused it or no image came within ``timeout`` seconds."""

    def delivered() -> bool:
        mid = interaction.original_message_id
        return mid is not None and bool(discord_fake.messages[mid].files)

    try:
        await discord_fake.wait_for(lambda: delivered() or _refusal(interaction) is not None, timeout)
    except TimeoutError:
        print(f"No image came back within {timeout:g} s. The member sees:")
        print("\n".join(_told(discord_fake, interaction)))
        print(f"bananacord: the demo's {what} did not finish in time", file=sys.stderr)
        return None
    if not delivered():
        print("The bot refused the request. The member was told (only they see it):")
        print("\n".join(_told(discord_fake, interaction)))
        print(f"bananacord: the demo's {what} was refused (above: what the member was told)", file=sys.stderr)
        return None
    assert interaction.original_message_id is not None
    return discord_fake.messages[interaction.original_message_id]


def _show(seaart: FakeSeaArt, message: FakeMessage, heading: str) -> None:
    """What SeaArt received for the latest job, and ``message`` as the member sees it."""
    create = seaart.creates[-1]
    print(f"SeaArt received: POST {create.path}")
    print(f"  body: {create.json}")
    print(f"\n{heading}")
    print("\n".join(_describe(message)))


async def _demo(*, out_dir: Path, prompt: str, timeout: float) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bananacord-demo-") as tmp:
        async with (
            FakeDiscord(bot_token=DEMO_BOT_TOKEN) as discord_fake,
            FakeSeaArt(api_key=DEMO_SEAART_KEY) as seaart,
        ):
            settings = load_settings(
                None,
                environment=False,
                discord_token=DEMO_BOT_TOKEN,
                seaart_api_key=DEMO_SEAART_KEY,
                discord={"api_base_url": discord_fake.api_base_url, "gateway_url": discord_fake.gateway_url},
                database={"path": str(Path(tmp) / "demo.sqlite3")},
                providers={"seaart": {"base_url": seaart.base_url}},
                jobs={
                    "poll_interval_seconds": 0.2,
                    "max_poll_interval_seconds": 0.5,
                    "progress_interval_seconds": 0,
                },
            )
            point_discord_at(settings.discord.api_base_url, settings.discord.gateway_url)
            bot = Bananacord(settings, guild_ready_timeout=0.2)
            connect: asyncio.Task[None] | None = None
            try:
                # Inside the try: a set-up that fails in login (setup_hook: a config error) has opened the
                # database, whose thread kept the process alive for ever unless the bot is closed.
                await bot.login(DEMO_BOT_TOKEN)
                connect = asyncio.create_task(bot.connect())
                await discord_fake.wait_until_ready(timeout=15)
                if ignored := _ignored_variables():
                    print(f"(Ignored here, the demo uses its own settings: {', '.join(ignored)})")
                print(
                    f"Bot online as {bot.user} with /imagine registered on a fake Discord at "
                    f"{discord_fake.api_base_url}"
                )
                ref = discord_fake.add_attachment(_reference_png(), "sketch.png", "image/png")
                print(f'\nA member types:  /imagine prompt:"{prompt}" aspect_ratio:16:9 image1:sketch.png\n')
                interaction = await discord_fake.slash_command(
                    "imagine", {"prompt": prompt, "aspect_ratio": "16:9", "image1": ref}
                )
                message = await _image_of(discord_fake, interaction, "/imagine", timeout)
                if message is None:
                    return 1
                _show(seaart, message, "The member sees (message edited in place):")
                # Keeping working on it: the button a member presses under the image, as Discord sends it.
                print(f"\nThe member presses [{VARY_SUBTLE}] under it.\n")
                (custom_id,) = [
                    str(c["custom_id"])
                    for row in message.components
                    for c in row.get("components", [])
                    if c.get("label") == VARY_SUBTLE
                ]
                pressed = await discord_fake.click(message.id, custom_id)
                varied = await _image_of(discord_fake, pressed, VARY_SUBTLE, timeout)
                if varied is None:
                    return 1
                _show(seaart, varied, "The member sees (a new message, the first one left as it was):")
                written = []
                for file in [*message.files, *varied.files]:
                    path = out_dir / file.filename
                    path.write_bytes(file.data)
                    written.append(path)
                print(f"\nImages written to {', '.join(str(p) for p in written)}")
                print(f"Demo finished in {time.monotonic() - started:.1f} s. Run it for real: see README.md.")
            finally:
                await bot.close()
                if connect is not None:
                    connect.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await connect
    return 0
