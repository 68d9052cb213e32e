"""A reference image the bot could not fetch is said as such, not as the provider's refusal (bot/references.py,
bot/render.py), and its words carry no link, signature or address. Downloads go to a real server on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from bot import render
from bot.errors import ErrorCategory, InvalidRequestError
from bot.models import GenerationRequest, JobState, ReferenceImage
from bot.netguard import guarded_client
from bot.references import ReferenceFetchError, check_references
from bot.store.jobs import Job
from tests.test_hostile_review_fixes import Site

# A Discord CDN link's signature (bot/discord_refs.py expires_at): what makes a link Discord's attachment.
SIGNED = "?ex=6a000000&is=69f00000&hm=0123456789abcdef0123456789abcdef&"


def failed(category: ErrorCategory, message: str) -> Job:
    return Job(
        id="0123456789abcdef",
        state=JobState.FAILED,
        source="discord",
        provider="seaart",
        model="nano_banana_pro",
        request=GenerationRequest(model="nano_banana_pro", prompt="a pear"),
        deadline_at=1.75e9 + 3600,
        created_at=1.75e9,
        updated_at=1.75e9,
        next_poll_at=1.75e9,
        error_category=category,
        error_message=message,
    )


def test_a_reference_that_could_not_be_fetched_is_not_titled_a_provider_refusal() -> None:
    embed = render.failure_embed(failed(ErrorCategory.REFERENCE, "gone"), None, now=1.75e9)
    assert embed.title == "🍌 A reference image could not be fetched"
    refused = render.failure_embed(failed(ErrorCategory.BAD_INPUT, "no"), None, now=1.75e9)
    assert refused.title == "🍌 The provider refused the request"  # a genuine refusal keeps its title


async def refuse(site_status: int, path: str, *, body: bytes = b"") -> InvalidRequestError:
    """What checking one reference at ``path`` on a server answering ``site_status`` raises."""

    async def answer(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=site_status, body=body, content_type="image/png")

    async with Site(answer) as site, httpx.AsyncClient() as client:
        ref = ReferenceImage(url=f"{site.origin}{path}", content_type="image/png", size=len(body), filename="cat.png")
        with pytest.raises(InvalidRequestError) as raised:
            await check_references(client, [ref], max_bytes=1024, timeout=5)
    return raised.value


def assert_nothing_internal(text: str) -> None:
    for secret in ("http", "127.0.0.1", "ex=", "hm=", "/attachments/"):
        assert secret not in text, (secret, text)


@pytest.mark.parametrize("status", [403, 404])
async def test_a_discord_attachment_refused_may_have_been_deleted(status: int) -> None:
    error = await refuse(status, f"/attachments/1/2/cat.png{SIGNED}")
    assert isinstance(error, ReferenceFetchError)
    assert error.user_message == (
        f"The reference image `cat.png` could not be fetched: Discord no longer serves it (HTTP {status}). "
        "The image may have been deleted, or its link expired."
    )
    assert_nothing_internal(error.user_message)


async def test_another_link_refused_names_only_its_status() -> None:
    error = await refuse(404, "/some/cat.png?token=secret")
    assert isinstance(error, ReferenceFetchError)
    assert error.user_message == "The reference image `cat.png` could not be fetched: its server answered HTTP 404."
    assert "secret" not in error.user_message and "Discord" not in error.user_message


async def test_a_reference_at_an_internal_address_is_a_fetch_failure_naming_no_address() -> None:
    ref = ReferenceImage(url="http://10.1.2.3/cat.png" + SIGNED, content_type="image/png", size=1, filename="cat.png")
    async with guarded_client([]) as client:
        with pytest.raises(ReferenceFetchError) as raised:
            await check_references(client, [ref], max_bytes=1024, timeout=5)
    assert "internal network address" in raised.value.user_message
    assert "10.1.2.3" not in raised.value.user_message
    assert_nothing_internal(raised.value.user_message)


async def test_a_file_larger_than_allowed_is_the_file_s_fault_not_its_link_s() -> None:
    """Too large is a bad file (ErrorCategory.BAD_INPUT, as before), not a link that did not give it."""
    error = await refuse(200, f"/attachments/1/2/cat.png{SIGNED}", body=b"\x89PNG" + b"x" * 4096)
    assert not isinstance(error, ReferenceFetchError)
    assert "larger than this bot accepts" in error.user_message
