"""The files of a job's checked references (bot/references.py ``check_references(keep=True)``): one per link,
holding what the link served, for a create that sends them inline (Gemini reads them rather than download every
reference a second time: tests/e2e/test_gemini_reference_retry.py). Whatever happens, no file is left open:
one bad reference ends the job, and every file made for it is closed (and so gone) at once."""

from __future__ import annotations

import asyncio
import os
import tempfile

import httpx
import pytest
from aiohttp import web

from bot.errors import InvalidRequestError
from bot.models import ReferenceImage
from bot.references import check_references
from tests.conftest import png_bytes
from tests.test_hostile_review_fixes import Site

PICTURE = png_bytes((48, 32))


async def serve(request: web.Request) -> web.StreamResponse:
    if request.path.startswith("/slow"):
        await asyncio.sleep(30)  # a download still on its way when the check is cancelled
    if request.path.startswith("/bad"):
        return web.Response(body=b"<html>a login page</html>", content_type="image/png")
    return web.Response(body=PICTURE, content_type="image/png")


def ref(site: Site, path: str) -> ReferenceImage:
    return ReferenceImage(url=f"{site.origin}{path}", content_type="image/png", size=len(PICTURE), filename=path[1:])


def open_temporary_files() -> int:
    """Files of this process's open in the temporary folder (the spools: deleted on disk, open until closed)."""
    folder = tempfile.gettempdir()
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed by now
        found += target.startswith(folder)
    return found


async def test_kept_files_hold_what_each_link_served_one_per_link_until_closed() -> None:
    before = open_temporary_files()
    async with Site(serve) as site, httpx.AsyncClient() as client:
        refs = [ref(site, "/a.png"), ref(site, "/b.png"), ref(site, "/a.png")]
        with await check_references(client, refs, max_bytes=1 << 20, timeout=5, keep=True) as checked:
            assert set(checked.files) == {refs[0].url, refs[1].url}, "the same link twice: one file"
            assert open_temporary_files() == before + 2, "the second download of a.png was closed"
            for file in checked.files.values():
                file.seek(0)
                assert file.read() == PICTURE
    assert open_temporary_files() == before
    assert sorted(site.seen) == ["GET /a.png", "GET /a.png", "GET /b.png"]


async def test_one_bad_reference_leaves_no_file_of_the_others_open() -> None:
    before = open_temporary_files()
    async with Site(serve) as site, httpx.AsyncClient() as client:
        refs = [ref(site, "/a.png"), ref(site, "/bad.png"), ref(site, "/c.png")]
        with pytest.raises(InvalidRequestError) as refused:
            await check_references(client, refs, max_bytes=1 << 20, timeout=5, keep=True)
    assert "`bad.png`" in refused.value.user_message
    assert open_temporary_files() == before


async def test_nothing_is_kept_unless_asked() -> None:
    before = open_temporary_files()
    async with Site(serve) as site, httpx.AsyncClient() as client:
        checked = await check_references(client, [ref(site, "/a.png")], max_bytes=1 << 20, timeout=5)
    assert checked.files == {}
    assert open_temporary_files() == before


async def test_a_check_cancelled_after_some_files_came_leaves_none_open() -> None:
    """A stop while one reference is still downloading and another is in its file already: gather hands back
    nothing when cancelled, so the finished file is closed by the check itself, not left to the collector."""
    before = open_temporary_files()
    async with Site(serve) as site, httpx.AsyncClient() as client:
        refs = [ref(site, "/a.png"), ref(site, "/slow.png")]
        check = asyncio.create_task(check_references(client, refs, max_bytes=1 << 20, timeout=60, keep=True))
        for _ in range(500):  # until a.png is checked (its file open) and slow.png's file waits for its bytes
            await asyncio.sleep(0.01)
            if len(site.seen) == 2 and open_temporary_files() == before + 2:
                break
        assert open_temporary_files() == before + 2
        await asyncio.sleep(0.2)  # a.png's check (a thread) has ended; slow.png has sent nothing
        check.cancel()
        with pytest.raises(asyncio.CancelledError):
            await check
        assert open_temporary_files() == before
