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
from bot.references import CheckedReferences, ReferencePasses, check_references
from tests.conftest import png_bytes
from tests.test_hostile_review_fixes import Site

PICTURE = png_bytes((48, 32))


async def serve(request: web.Request) -> web.StreamResponse:
    if request.path.startswith("/slow"):
        await asyncio.sleep(30)  # a download still on its way when the check is cancelled
    if request.path.startswith("/late"):
        await asyncio.sleep(0.5)  # long enough for other jobs to come and wait on its check
    if request.path.startswith("/bad"):
        return web.Response(body=b"<html>a login page</html>", content_type="image/png")
    return web.Response(body=PICTURE, content_type="image/png")


def ref(site: Site, path: str) -> ReferenceImage:
    return ReferenceImage(url=f"{site.origin}{path}", content_type="image/png", size=len(PICTURE), filename=path[1:])


def checking(
    client: httpx.AsyncClient, refs: list[ReferenceImage], passes: ReferencePasses, *, keep: bool, timeout: float = 5
) -> asyncio.Future[CheckedReferences]:
    """One job's check of ``refs`` with ``passes``, started."""
    return asyncio.ensure_future(
        check_references(client, refs, max_bytes=1 << 20, timeout=timeout, keep=keep, passes=passes)
    )


async def seen(site: Site, requests: int) -> None:
    """Until ``site`` has had this many requests (a loaded machine may take a while to send one)."""
    for _ in range(500):
        if len(site.seen) >= requests:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{site.seen} after 5 s, waiting for {requests} request(s)")


def open_temporary_files() -> int:
    """Files of this process's open in the temporary folder itself (the spools: deleted on disk, open until
    closed). Not in folders under it: an earlier test's SQLite file in its pytest folder may stay open until
    the garbage collector closes its connection, during this test."""
    folder = tempfile.gettempdir()
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed by now
        found += os.path.dirname(target.removesuffix(" (deleted)")) == folder
    return found


async def test_kept_files_hold_what_each_link_served_one_per_link_until_closed() -> None:
    before = open_temporary_files()
    async with Site(serve) as site, httpx.AsyncClient() as client:
        refs = [ref(site, "/a.png"), ref(site, "/b.png"), ref(site, "/a.png")]
        with await check_references(client, refs, max_bytes=1 << 20, timeout=5, keep=True) as checked:
            assert set(checked.files) == {refs[0].url, refs[1].url}, "the same link twice: one file"
            assert open_temporary_files() == before + 2
            for file in checked.files.values():
                file.seek(0)
                assert file.read() == PICTURE
    assert open_temporary_files() == before
    assert sorted(site.seen) == ["GET /a.png", "GET /b.png"], "the same link twice is downloaded once"


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


# ---- ReferencePasses: the jobs of a batch check each link once ----------------------------------------------


async def test_a_batch_s_jobs_checking_the_same_link_download_it_once() -> None:
    """Three jobs of one /imagine count:3 check the same reference at once: one download, three passes; a job
    that holds the link to a smaller cap than the size that passed checks it itself (and is refused); a pass
    older than PASS_SECONDS is checked again."""
    now = [1000.0]
    passes = ReferencePasses(clock=lambda: now[0], seconds=600)
    async with Site(serve) as site, httpx.AsyncClient() as client:
        link = [ref(site, "/a.png")]

        async def job(cap: int) -> CheckedReferences:
            return await check_references(client, link, max_bytes=cap, timeout=5, passes=passes)

        checked = await asyncio.gather(job(1 << 20), job(1 << 20), job(1 << 20))
        at_once = list(site.seen)
        with pytest.raises(InvalidRequestError) as too_small:
            await job(len(PICTURE) - 1)
        now[0] += 601
        await job(1 << 20)
    assert [c.files for c in checked] == [{}, {}, {}], "nothing is kept without keep"
    assert at_once == ["GET /a.png"]
    assert "`a.png`" in too_small.value.user_message
    assert site.seen == ["GET /a.png"] * 3, "the smaller cap and the stale pass each downloaded it again"


@pytest.mark.parametrize("keep", [False, True], ids=["passes", "kept-files"])
async def test_a_link_that_fails_is_refused_to_every_job_in_its_own_words(keep: bool) -> None:
    """A failure is not shared: each job downloads the link and meets the refusal itself (a 5xx may pass for
    the next one), nothing counts as passed, and no file is left open."""
    passes = ReferencePasses()
    before = open_temporary_files()
    async with Site(serve) as site, httpx.AsyncClient() as client:
        refs = [ref(site, "/bad.png")]
        results = await asyncio.gather(
            *(check_references(client, refs, max_bytes=1 << 20, timeout=5, keep=keep, passes=passes) for _ in range(3)),
            return_exceptions=True,
        )
    assert all(isinstance(r, InvalidRequestError) and "`bad.png`" in r.user_message for r in results), results
    assert site.seen == ["GET /bad.png"] * 3
    assert open_temporary_files() == before


@pytest.mark.parametrize("keep", [False, True], ids=["passes", "kept-files"])
async def test_a_check_stopped_midway_leaves_the_jobs_waiting_on_it_to_check_for_themselves(keep: bool) -> None:
    """The first job's check is cancelled (a stop, or that job's Cancel) while a second job waits on it (for
    its pass, or a copy of its file): the second is not cancelled with it, checks the link itself, and nothing
    is left open."""
    passes = ReferencePasses()
    before = open_temporary_files()
    async with Site(serve) as site, httpx.AsyncClient() as client:
        slow = [ref(site, "/slow.png")]
        first = checking(client, slow, passes, keep=keep, timeout=60)
        await seen(site, 1)  # the first's download is on its way
        second = checking(client, slow, passes, keep=keep, timeout=60)
        await asyncio.sleep(0.2)
        assert site.seen == ["GET /slow.png"], "the second waits on the first's check"
        first.cancel()
        await seen(site, 2)
        assert not second.done()
        assert site.seen == ["GET /slow.png", "GET /slow.png"], "the second is checking the link itself now"
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
    assert first.cancelled()
    assert open_temporary_files() == before


# ---- ReferencePasses with keep: the jobs of a Gemini batch download each link once, each gets its own file ----


async def test_a_batch_s_jobs_keeping_the_same_links_download_each_once_and_get_files_of_their_own() -> None:
    """Three jobs of one /imagine count:3 for a provider that takes the images inline (Gemini) keep two links:
    each link is downloaded once, and each job gets a file of its own holding its bytes, which it closes when
    its create has gone, whatever the others do with theirs."""
    passes = ReferencePasses()
    before = open_temporary_files()
    async with Site(serve) as site, httpx.AsyncClient() as client:
        refs = [ref(site, "/late-a.png"), ref(site, "/b.png")]

        async def job() -> CheckedReferences:
            return await check_references(client, refs, max_bytes=1 << 20, timeout=5, keep=True, passes=passes)

        batch = await asyncio.gather(job(), job(), job())
        assert sorted(site.seen) == ["GET /b.png", "GET /late-a.png"], "each link once for the batch"
        assert open_temporary_files() == before + 6, "two files for each of the three jobs"
        files = [file for checked in batch for file in checked.files.values()]
        assert len({id(file) for file in files}) == 6
        batch[0].close()
        for checked in batch[1:]:
            assert set(checked.files) == {r.url for r in refs}
            for file in checked.files.values():
                file.seek(0)
                assert file.read() == PICTURE, "the first job's files closed, the others' are whole"
            checked.close()
    assert open_temporary_files() == before


async def test_a_job_keeping_a_link_to_a_smaller_cap_checks_it_itself_and_is_refused() -> None:
    passes = ReferencePasses()
    async with Site(serve) as site, httpx.AsyncClient() as client:
        link = [ref(site, "/late.png")]
        first = check_references(client, link, max_bytes=1 << 20, timeout=5, keep=True, passes=passes)
        small = check_references(client, link, max_bytes=len(PICTURE) - 1, timeout=5, keep=True, passes=passes)
        kept, refused = await asyncio.gather(first, small, return_exceptions=True)
    assert isinstance(kept, CheckedReferences) and list(kept.files) == [link[0].url]
    kept.close()
    assert isinstance(refused, InvalidRequestError) and "`late.png`" in refused.user_message
    assert site.seen == ["GET /late.png"] * 2


async def test_a_keeping_job_stopped_while_it_waits_leaves_the_others_their_files_and_no_file_open() -> None:
    """Of three jobs keeping one link, the second is stopped while the first downloads it: the first and the
    third get their files, the stopped job none (no copy is made for it, or one made is closed)."""
    passes = ReferencePasses()
    before = open_temporary_files()
    async with Site(serve) as site, httpx.AsyncClient() as client:
        link = [ref(site, "/late.png")]
        first, second, third = (checking(client, link, passes, keep=True) for _ in range(3))
        await asyncio.sleep(0.2)
        second.cancel()
        kept = [await first, await third]
        with pytest.raises(asyncio.CancelledError):
            await second
        assert site.seen == ["GET /late.png"]
        assert open_temporary_files() == before + 2
        for checked in kept:
            (file,) = checked.files.values()
            file.seek(0)
            assert file.read() == PICTURE
            checked.close()
    assert open_temporary_files() == before


async def test_jobs_that_keep_files_and_jobs_that_do_not_share_one_check_of_a_link() -> None:
    """A batch moved partly to another provider (SeaArt fetches links itself, Gemini keeps files): whichever
    checks the link first, the others wait on it; those keeping files get copies of their own."""
    passes = ReferencePasses()
    before = open_temporary_files()
    async with Site(serve) as site, httpx.AsyncClient() as client:
        link = [ref(site, "/late.png")]
        jobs = [checking(client, link, passes, keep=keep) for keep in (False, True, False, True)]
        checked = await asyncio.gather(*jobs)
        assert site.seen == ["GET /late.png"]
        assert [list(c.files) for c in checked] == [[], [link[0].url], [], [link[0].url]]
        for c in checked:
            for file in c.files.values():
                file.seek(0)
                assert file.read() == PICTURE
            c.close()
        link = [ref(site, "/late-b.png")]
        jobs = [checking(client, link, passes, keep=keep) for keep in (True, False, True)]
        checked = await asyncio.gather(*jobs)
        assert site.seen == ["GET /late.png", "GET /late-b.png"]
        assert [len(c.files) for c in checked] == [1, 0, 1]
        for c in checked:
            c.close()
    assert open_temporary_files() == before
