"""Renewing expired Discord links (bot/discord_refs.py) with discord.py's own HTTP client against the fake
Discord: only stale links are sent, a reply's conversation is renewed too, and what cannot be renewed
is refused before anything starts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import discord
import pytest

from bot.discord_refs import ReferencesGoneError, RefreshFailedError, refresh_references
from bot.models import GenerationRequest, ReferenceImage, Turn
from bot.testing.discord import FakeDiscord, point_discord_py_at
from tests.conftest import png_bytes

TOKEN = "refs-test-token"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(bot_token=TOKEN) as discord_fake:
        yield discord_fake


@pytest.fixture
async def http(fake: FakeDiscord) -> AsyncIterator[discord.http.HTTPClient]:
    point_discord_py_at(fake.api_base_url, fake.gateway_url)
    client = discord.http.HTTPClient(asyncio.get_running_loop())
    await client.static_login(TOKEN)
    yield client
    await client.close()


def image(fake: FakeDiscord, name: str) -> ReferenceImage:
    att = fake.add_attachment(png_bytes(), f"{name}.png", "image/png")
    return ReferenceImage(url=att["url"], content_type="image/png", size=att["size"], filename=name)


def refresh_calls(fake: FakeDiscord) -> list[list[str]]:
    return [r.json["attachment_urls"] for r in fake.requests if r.path == "/attachments/refresh-urls"]


async def test_only_stale_links_are_renewed_the_conversations_included(
    fake: FakeDiscord, http: discord.http.HTTPClient
) -> None:
    old_ref, old_result, gone_turn_ref = image(fake, "ref"), image(fake, "result"), image(fake, "turn-ref")
    now = time.time() + fake.expire_attachment_urls()
    fresh = image(fake, "fresh")
    fake.delete_attachment(int(gone_turn_ref.url.split("/")[-2]))
    request = GenerationRequest(
        model="nano_banana_2",
        prompt="now at night",
        reference_images=(old_result, fresh, old_ref),
        history=(Turn(prompt="a house", reference_images=(gone_turn_ref,), result=old_result),),
    )
    assert await refresh_references(http, GenerationRequest(model="nano_banana_2", prompt="x"), now=now)
    assert refresh_calls(fake) == []  # nothing to renew, no call

    renewed = await refresh_references(http, request, now=now)

    assert refresh_calls(fake) == [[old_result.url, old_ref.url, gone_turn_ref.url]]
    first, kept, third = renewed.reference_images
    assert kept == fresh and first.url != old_result.url and third.url != old_ref.url
    (turn,) = renewed.history
    assert turn.result == first  # the same file, renewed once
    assert turn.reference_images == (gone_turn_ref,)  # gone: left as it was, the conversation goes without it
    assert renewed.prompt == request.prompt


async def test_a_reference_that_cannot_be_renewed_or_a_failed_call_is_refused(
    fake: FakeDiscord, http: discord.http.HTTPClient
) -> None:
    ref = image(fake, "ref")
    now = time.time() + fake.expire_attachment_urls()
    request = GenerationRequest(model="nano_banana_2", prompt="again", reference_images=(ref,))
    fake.fail_next("POST", "/attachments/refresh-urls", status=403, body={"code": 50001, "message": "Missing Access"})
    with pytest.raises(RefreshFailedError) as failed:
        await refresh_references(http, request, now=now)
    assert "Try again in a minute" in failed.value.user_message and "403" in failed.value.detail
    fake.delete_attachment(int(ref.url.split("/")[-2]))
    with pytest.raises(ReferencesGoneError) as gone:
        await refresh_references(http, request, now=now)
    assert "no longer on Discord" in gone.value.user_message
