"""The fake Discord's CDN signs attachment URLs with an expiry, refuses expired ones and renews them
through POST /attachments/refresh-urls, as Discord does (docs/fake-discord.md section 2.4)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from PIL import Image

from bot.testing.discord import FakeDiscord


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (255, 200, 0)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(bot_token="cdn-test-token") as discord_fake:
        yield discord_fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def status(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url) as resp:
        await resp.read()
        return resp.status


async def refresh(
    http: aiohttp.ClientSession, fake: FakeDiscord, body: object, *, auth: bool = True
) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"Bot {fake.bot_token}"} if auth else {}
    resp = await http.post(fake.api_base_url + "/attachments/refresh-urls", json=body, headers=headers)
    await resp.read()
    return resp


def signature(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_urls_are_signed_expire_and_are_renewed(fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
    att = fake.add_attachment(png_bytes(), "in put.png", "image/png")
    url = att["url"]
    params = signature(url)
    assert params.keys() == {"ex", "is", "hm"} and url.endswith("&")
    assert int(params["ex"], 16) - int(params["is"], 16) == 24 * 3600
    assert await status(http, url) == 200
    unsigned = url.split("?")[0]
    tampered = url.replace(params["hm"], "0" * len(params["hm"]))
    assert [await status(http, u) for u in (unsigned, tampered)] == [404, 404]

    passed = fake.expire_attachment_urls()
    assert passed == 24 * 3600
    async with http.get(url) as resp:
        assert resp.status == 404 and await resp.text() == "This content is no longer available."

    resp = await refresh(http, fake, {"attachment_urls": [url, "https://example.com/a.png"]})
    assert resp.status == 200
    answer = json.loads(await resp.read())["refreshed_urls"]
    assert [entry["original"] for entry in answer] == [url, "https://example.com/a.png"]
    renewed = answer[0]["refreshed"]
    assert renewed != url and renewed.split("?")[0] == unsigned
    assert await status(http, renewed) == 200
    # What it cannot renew comes back unchanged.
    assert answer[1]["refreshed"] == "https://example.com/a.png"
    assert [r.path for r in fake.requests if r.path == "/attachments/refresh-urls"] == ["/attachments/refresh-urls"]


async def test_messages_are_served_with_fresh_urls_and_deleted_files_are_gone(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": f"Bot {fake.bot_token}"}
    form = aiohttp.FormData()
    payload = {"embeds": [{"title": "t", "image": {"url": "attachment://out.png"}}]}
    form.add_field("payload_json", json.dumps(payload), content_type="application/json")
    form.add_field("files[0]", png_bytes(), filename="out.png", content_type="application/octet-stream")
    async with http.post(f"{fake.api_base_url}/channels/{fake.channel_id}/messages", data=form, headers=headers) as r:
        created = await r.json()
    old = created["attachments"][0]["url"]
    assert created["embeds"][0]["image"]["url"] == old and await status(http, old) == 200

    clock_moved = fake.expire_attachment_urls()
    assert clock_moved > 0 and await status(http, old) == 404
    path = f"{fake.api_base_url}/channels/{fake.channel_id}/messages/{created['id']}"
    async with http.get(path, headers=headers) as r:
        served = await r.json()
    fresh = served["attachments"][0]["url"]
    assert fresh != old and served["embeds"][0]["image"]["url"] == fresh
    assert await status(http, fresh) == 200

    async with http.delete(path, headers=headers) as r:
        assert r.status == 204
    assert await status(http, fresh) == 404
    answer = json.loads(await (await refresh(http, fake, {"attachment_urls": [fresh]})).read())
    assert answer["refreshed_urls"] == [{"original": fresh, "refreshed": fresh}]

    other = fake.add_attachment(png_bytes(), "gone.png", "image/png")
    fake.delete_attachment(other)
    assert await status(http, other["url"]) == 404


async def test_refresh_is_checked_like_discord(fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
    url = fake.add_attachment(png_bytes(), "a.png", "image/png")["url"]
    assert (await refresh(http, fake, {"attachment_urls": [url]}, auth=False)).status == 401
    for body in ({}, {"attachment_urls": "x"}, {"attachment_urls": []}, {"attachment_urls": [url] * 51}):
        resp = await refresh(http, fake, body)
        assert resp.status == 400 and json.loads(await resp.read())["code"] == 50035, body
