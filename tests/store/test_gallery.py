"""bot/store/gallery.py on a real SQLite file: one post per image, whatever comes at once or stops between."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import Database
from bot.store.gallery import CLAIM_SECONDS, GalleryPost, GallerySetting, GalleryStore


@pytest.fixture
async def gallery(tmp_path: Path) -> AsyncIterator[GalleryStore]:
    database = Database(tmp_path / "bot.sqlite3")
    await database.connect()
    yield GalleryStore(database)
    await database.close()


async def test_an_image_is_claimed_once_and_a_claim_cut_short_is_taken_again_later(gallery: GalleryStore) -> None:
    assert await gallery.claim("job1", 1, 100, 50, now=1000.0)
    assert not await gallery.claim("job1", 1, 100, 50, now=1001.0), "a second ⭐ at once: being posted"
    # The bot stopped between the claim and the post: nobody posts it until the claim is old, then the next ⭐ does.
    assert not await gallery.claim("job1", 1, 100, 50, now=1000.0 + CLAIM_SECONDS - 1)
    assert await gallery.claim("job1", 1, 100, 50, now=1000.0 + CLAIM_SECONDS + 1)
    await gallery.posted("job1", 900)
    assert not await gallery.claim("job1", 1, 100, 50, now=1000.0 + 10 * CLAIM_SECONDS), "posted: never again"
    assert await gallery.job_of_post(900) == "job1" and await gallery.job_of_post(901) is None
    assert await gallery.of_originals([100, 101]) == [GalleryPost("job1", 50, 900)]


async def test_a_failed_post_is_let_go_and_a_deleted_image_forgotten(gallery: GalleryStore) -> None:
    assert await gallery.claim("job2", 1, 200, 50, now=0.0)
    await gallery.release("job2")
    assert await gallery.claim("job2", 1, 200, 50, now=1.0), "the next ⭐ tries again at once"
    assert await gallery.posted("job2", 901)
    await gallery.release("job2")  # a posted one is not let go
    assert await gallery.of_originals([200]) == [GalleryPost("job2", 50, 901)]
    await gallery.forget(["job2"])
    assert await gallery.of_originals([200]) == []
    # Claimed, then its image deleted while the post was being made: the post is told its claim is gone.
    assert await gallery.claim("job4", 1, 400, 50, now=2.0)
    await gallery.forget(["job4"])
    assert not await gallery.posted("job4", 904) and await gallery.of_originals([400]) == []


async def test_a_servers_gallery_is_set_changed_and_ended_with_its_channel(gallery: GalleryStore) -> None:
    assert await gallery.setting(1) is None
    await gallery.set(1, 50, 3, by=7, now=0.0)
    await gallery.set(1, 60, 2, by=7, now=1.0)
    assert await gallery.setting(1) == GallerySetting(60, 2)
    assert not await gallery.forget_channel(1, 50), "another channel deleted"
    assert await gallery.forget_channel(1, 60) and await gallery.setting(1) is None
    assert not await gallery.clear(1)


async def test_a_claim_an_earlier_run_left_is_taken_over_at_once(gallery: GalleryStore) -> None:
    """The next start posts what the last run claimed and never posted, however lately that run claimed it (it is
    gone); a posted one it never takes."""
    assert await gallery.claim("job3", 1, 300, 50, now=100.0)
    assert not await gallery.claim("job3", 1, 300, 50, now=101.0)
    assert await gallery.claim("job3", 1, 300, 50, now=101.0, taking_over=True)
    assert await gallery.unposted() == ["job3"]
    await gallery.posted("job3", 902)
    assert not await gallery.claim("job3", 1, 300, 50, now=102.0, taking_over=True)
    assert await gallery.unposted() == []


async def test_the_posts_of_a_time_are_those_made_latest_first(gallery: GalleryStore) -> None:
    """What a return after a time away reads for ❌: posts made (not claims yet to post) of that time, latest first."""
    for n, at in enumerate((100.0, 200.0, 300.0, 400.0)):
        assert await gallery.claim(f"job{n}", 7, 1000 + n, 50, now=at)
    for n in (0, 1, 3):
        assert await gallery.posted(f"job{n}", 2000 + n)
    assert await gallery.posts_since(150.0, limit=10) == [
        (7, GalleryPost("job3", 50, 2003)),
        (7, GalleryPost("job1", 50, 2001)),
    ]
    assert await gallery.posts_since(0.0, limit=1) == [(7, GalleryPost("job3", 50, 2003))]
