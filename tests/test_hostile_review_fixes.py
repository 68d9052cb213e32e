"""Fixes from a hostile review: a key cut by an excerpt, the CLI's and start-up's unguarded clients, the address
guard behind a proxy, links with a user name and password, and job ids made of dots. Every test talks to real
servers over sockets (a proxy too, in a subprocess with the proxy in its own environment)."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import pytest
from aiohttp import web

from bot.check import check_providers
from bot.config import Settings, load_settings
from bot.errors import AuthError, DeliveryError, SubmitUncertainError
from bot.fetch import download_to, redact_url
from bot.logs import RedactingFilter, Redactor
from bot.models import GenerationRequest
from bot.netguard import guarded_client, trusted_hosts_for
from bot.providers._http import redact, usable_job_id
from bot.providers.kie import SinancodeProvider
from bot.providers.seaart import SeaArtProvider
from bot.service import check_model_ids
from bot.transport import AiohttpTransport

# 44 characters, as the reviewer's: long enough that what an excerpt's cut leaves of it is recognisable.
KEY = "sk-CANARYKEY0123456789abcdefghijklmnopqrstuv"
PASSWORD = "CANARY-CDN-PASSWORD-42"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def key_fragments(text: str, least: int = 8) -> list[str]:
    """Every run of ``least`` or more characters of KEY that ``text`` holds."""
    return [KEY[i : i + least] for i in range(len(KEY) - least + 1) if KEY[i : i + least] in text]


def echo_at_cut(limit: int = 300) -> str:
    """An error body that echoes the key where a ``limit``-character excerpt cuts it: 40 of its 44 characters
    fall before the cut."""
    wording = "Incorrect API key provided: "
    pad = limit - len('{"error":"' + wording) - 40
    return '{"error":"' + "x" * pad + wording + KEY + '"}'


class Site:
    """An aiohttp server on 127.0.0.1 answering every path with ``handler``; remembers what reached it."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.seen: list[str] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(f"{request.method} {request.path_qs}")
        return await self.handler(request)

    async def __aenter__(self) -> Site:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = int(self.runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def seaart_settings(tmp_path: Path, origin: str) -> Settings:
    return load_settings(
        None,
        environment=False,
        seaart_api_key=KEY,
        database={"path": str(tmp_path / "db.sqlite3")},
        providers={"seaart": {"enabled": True, "base_url": origin, "request_timeout": 5.0}},
    )


def gemini_settings(tmp_path: Path, origin: str) -> Settings:
    return load_settings(
        None,
        environment=False,
        gemini_api_key=KEY,
        database={"path": str(tmp_path / "db.sqlite3")},
        providers={"seaart": {"enabled": False}, "gemini": {"enabled": True, "base_url": origin}},
    )


# --- 1. a key the excerpt's cut falls inside ------------------------------------------------------------------


async def test_a_key_echoed_where_the_excerpt_is_cut_is_redacted_whole_in_the_error_and_the_log(
    tmp_path: Path,
) -> None:
    """A 401 echoing the key 40 characters before the 300-character cut: the excerpt was cut, then redacted, so
    the key was no longer found whole and 40 of its 44 characters reached the error's detail and the log."""

    async def rejected(request: web.Request) -> web.Response:
        return web.Response(status=401, text=echo_at_cut(), content_type="application/json")

    async with Site(rejected) as site:
        settings = seaart_settings(tmp_path, site.origin)
        async with guarded_client(trusted_hosts_for(settings)) as client:
            provider = SeaArtProvider.from_settings(settings, client)
            with pytest.raises(AuthError) as rejected_key:
                await provider.submit(GenerationRequest(model="nano_banana_2", prompt="a lemon"))
    detail = rejected_key.value.detail
    assert "Incorrect API key provided" in detail, detail
    assert key_fragments(detail) == [], detail
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(Redactor(settings.secret_values())))
    logger = logging.getLogger("tests.hostile_review.excerpt")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("submit failed: %s", detail)
    finally:
        logger.removeHandler(handler)
    assert key_fragments(stream.getvalue()) == [], stream.getvalue()


def test_what_is_left_of_a_key_some_caller_cut_before_redacting_is_removed() -> None:
    """The adapters cut a provider's message (``message[:300]``) before redacting it; the log filter sees lines
    built from such excerpts. Both now remove a key's start left at a cut, not only the key whole."""
    cut = f"failed: message='Incorrect API key provided: {KEY}'"[:75]
    assert KEY[:20] in cut and KEY not in cut
    assert key_fragments(redact(cut, [KEY])) == []
    assert key_fragments(Redactor([KEY])(cut)) == []
    # Text merely sharing the key's first few characters is left alone.
    assert redact("sk-CAN is not it", [KEY]) == "sk-CAN is not it"


async def test_check_providers_prints_no_part_of_a_key_echoed_at_the_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bananacord check --providers` prints each check's detail to stdout, outside the log's filter."""

    async def rejected(request: web.Request) -> web.Response:
        return web.Response(status=401, text=echo_at_cut(), content_type="application/json")

    async with Site(rejected) as site:
        problems = await check_providers(seaart_settings(tmp_path, site.origin))
    out = capsys.readouterr().out
    assert "KEY REJECTED" in out and "Incorrect API key provided" in out, out
    assert key_fragments(out) == [], out
    assert problems and all(key_fragments(problem) == [] for problem in problems), problems


# --- 2. the CLI's and start-up's clients are the bot's own ----------------------------------------------------


def gzipped_error(status: int) -> Handler:
    async def answer(request: web.Request) -> web.Response:
        body = gzip.compress(json.dumps({"error": {"code": status, "message": "no such thing"}}).encode())
        return web.Response(
            status=status, body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    return answer


# Over every adapter's bound on an answer (Gemini's, which carries images inline, is 96 MiB).
DECLARED = 128 * 1024 * 1024


def oversized_error(status: int) -> Handler:
    """An answer declaring DECLARED bytes: the start of it sent, the rest held back (the bounded transport
    refuses it from its headers; a plain client waited to read it all)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
        response.content_length = DECLARED
        await response.prepare(request)
        await response.write(b'{"error": {"message": "' + b"x" * 65536)
        await asyncio.sleep(60)  # cancelled when the server stops
        return response

    return answer


@pytest.mark.parametrize(
    ("answer", "refusal"), [(gzipped_error, "UnaskedEncoding"), (oversized_error, "AnswerTooLarge")]
)
async def test_check_providers_reads_through_the_bounded_transport(
    answer: Callable[[int], Handler], refusal: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain httpx client inflated a gzip answer nobody asked for (1 MB became 3.2 GB of memory) and read
    answers past the adapters' 4 MiB bound. The bot's transport refuses both before reading the body."""
    async with Site(answer(401)) as site:
        await check_providers(seaart_settings(tmp_path, site.origin))
    out = capsys.readouterr().out
    assert refusal in out, out
    assert "KEY REJECTED" not in out, "the answer was read"


@pytest.mark.parametrize(
    ("answer", "refusal"), [(gzipped_error, "UnaskedEncoding"), (oversized_error, "AnswerTooLarge")]
)
async def test_the_start_up_model_check_reads_through_the_bounded_transport(
    answer: Callable[[int], Handler], refusal: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`run` asks Gemini for its model ids before starting. Read whole, a 404 says the id is unknown and `run`
    refuses to start; refused unread, the check is inconclusive: a warning naming the refusal."""
    caplog.set_level(logging.WARNING, logger="bot.service")
    async with Site(answer(404)) as site:
        await check_model_ids(gemini_settings(tmp_path, site.origin))
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.service"]
    assert any("could not confirm its model ids" in w and refusal in w for w in warnings), warnings


# --- 3. the address guard behind a proxy ------------------------------------------------------------------------

PROXIED_CLIENT = """
import asyncio, io, json, sys
from bot.errors import DeliveryError
from bot.fetch import download_to
from bot.netguard import guarded_client

async def main(urls):
    outcomes = []
    async with guarded_client(["127.0.0.1"]) as client:  # the proxy, and the host standing for a CDN
        for url in urls:
            try:
                await download_to(io.BytesIO(), client, url, max_bytes=1 << 20, timeout=20)
                outcomes.append("fetched")
            except DeliveryError as exc:
                outcomes.append(("retryable " if exc.retryable else "refused ") + exc.user_message)
    print(json.dumps(outcomes))

asyncio.run(main(sys.argv[1:]))
"""


class ForwardProxy:
    """A minimal forward proxy: GETs by absolute URI, fetched and passed on; remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.session: aiohttp.ClientSession | None = None

    async def forward(self, request: web.Request) -> web.Response:
        self.asked.append(str(request.url))
        assert self.session is not None
        try:
            async with self.session.get(str(request.url)) as upstream:
                return web.Response(status=upstream.status, body=await upstream.read())
        except aiohttp.ClientError:
            return web.Response(status=502)


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[ForwardProxy, Site]]:
    forward = ForwardProxy()
    async with aiohttp.ClientSession() as session, Site(forward.forward) as site:
        forward.session = session
        yield forward, site


async def test_behind_a_proxy_an_internal_name_is_refused_before_anything_is_sent(
    proxy: tuple[ForwardProxy, Site],
) -> None:
    """With HTTP_PROXY set, aiohttp resolves only the proxy's name, and the guard left names to that resolver:
    ``http://localhost:PORT/...`` was fetched through the proxy. Now a proxied request's name is resolved and
    checked before it is sent. One that does not resolve here is left to the proxy (an egress proxy that does the
    DNS: refusing it threw away images made and paid for). A trusted host goes through."""
    forward, proxy_site = proxy

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG internal-only", content_type="image/png")

    async with Site(image) as internal:
        urls = [
            f"http://localhost:{internal.port}/latest/meta-data/iam",
            "http://nothing-here.invalid/x.png",
            f"{internal.origin}/trusted.png",
        ]
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
        env.update(HTTP_PROXY=proxy_site.origin, PYTHONPATH=os.pathsep.join(sys.path))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            textwrap.dedent(PROXIED_CLIENT),
            *urls,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    internal_name, unresolvable, trusted = json.loads(out)
    assert internal_name.startswith("refused ") and "internal network address" in internal_name, internal_name
    assert unresolvable.startswith("retryable "), unresolvable  # the proxy could not resolve it either: 502
    assert trusted == "fetched", trusted
    # The proxy was asked for the name only it could resolve, and the trusted host; never the internal name.
    assert forward.asked == ["http://nothing-here.invalid/x.png", f"{internal.origin}/trusted.png"], forward.asked
    assert internal.seen == ["GET /trusted.png"], internal.seen


# --- 4. links with a user name and password ------------------------------------------------------------------


async def test_a_link_with_a_user_name_and_password_is_refused_once_without_naming_them() -> None:
    """httpx made an Authorization header of the userinfo and aiohttp refused to send both: a ValueError that
    no caller caught (six delivery attempts with tracebacks, a job's step retried until its deadline)."""

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG", content_type="image/png")

    async with Site(image) as cdn, guarded_client(["127.0.0.1"]) as client:
        url = f"http://cdnuser:{PASSWORD}@127.0.0.1:{cdn.port}/result.png?X-Amz-Signature=CANARYSIG"
        with pytest.raises(DeliveryError) as refused:
            await download_to(io.BytesIO(), client, url, max_bytes=1 << 20, timeout=5)
    assert not refused.value.retryable
    assert "user name or password" in refused.value.user_message, refused.value.user_message
    assert PASSWORD not in refused.value.detail and "CANARYSIG" not in refused.value.detail, refused.value.detail
    assert cdn.seen == []


async def test_the_transport_refuses_what_aiohttp_will_not_build_as_an_httpx_error() -> None:
    """Without the guard (any client on the bot's transport), aiohttp's ValueError is an httpx error now: one
    every caller maps (nothing was sent, and the same request fails the same way)."""

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG", content_type="image/png")

    async with Site(image) as cdn, httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get(f"http://cdnuser:{PASSWORD}@127.0.0.1:{cdn.port}/result.png")
    assert cdn.seen == []


def test_redact_url_drops_the_user_name_and_password() -> None:
    assert redact_url(f"https://cdnuser:{PASSWORD}@cdn.example/a@b.png?sig=1") == "https://cdn.example/a@b.png"
    assert redact_url("https://cdn.example/a.png?sig=1") == "https://cdn.example/a.png"


# --- 5. job ids made of dots ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", [".", "..", " .. ", "..."])
async def test_a_task_id_made_of_dots_is_not_followed(task_id: str, tmp_path: Path) -> None:
    """quote("..") leaves it, and httpx removes the dot segment: the poll of ``{base}/tasks/..``, sent with the
    key, went to ``{base}/``. Such an id is not one the bot can follow: the create may have made a task, so it
    is uncertain (never sent again), and nothing is polled."""

    async def api(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"task_id": task_id})
        return web.json_response({"status": "completed", "result": {"images": ["https://cdn.example/x.png"]}})

    async with Site(api) as site:
        settings = load_settings(
            None,
            environment=False,
            sinancode_api_key=KEY,
            database={"path": str(tmp_path / "db.sqlite3")},
            providers={"seaart": {"enabled": False}, "sinancode": {"enabled": True, "base_url": f"{site.origin}/v1"}},
        )
        async with guarded_client(trusted_hosts_for(settings)) as client:
            provider = SinancodeProvider.from_settings(settings, client)
            with pytest.raises(SubmitUncertainError):
                await provider.submit(GenerationRequest(model="nano_banana_2", prompt="a lemon"))
    assert [seen.split()[0] for seen in site.seen] == ["POST"], site.seen
    assert usable_job_id(task_id) is None
    assert usable_job_id("task.1..2") == "task.1..2"
