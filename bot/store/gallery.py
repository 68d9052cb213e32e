"""A server's gallery of its most starred images (cogs/gallery.py): where it is, and which images it has had."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.store import Database

# A claim whose post never came (the bot stopped between the two) is taken again after this long.
CLAIM_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class GallerySetting:
    channel_id: int
    stars: int  # members' ⭐ (the image's own member's not counted) that post an image


@dataclass(frozen=True, slots=True)
class GalleryPost:
    job_id: str
    channel_id: int
    message_id: int | None  # None: claimed, not posted (yet)


class GalleryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def setting(self, guild_id: int) -> GallerySetting | None:
        async with (
            self.db.read() as conn,
            conn.execute("SELECT channel_id, stars FROM galleries WHERE guild_id = ?", (guild_id,)) as cur,
        ):
            row = await cur.fetchone()
        return GallerySetting(int(row[0]), int(row[1])) if row else None

    async def set(self, guild_id: int, channel_id: int, stars: int, *, by: int, now: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO galleries (guild_id, channel_id, stars, set_by, set_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (guild_id) DO UPDATE SET channel_id = excluded.channel_id, stars = excluded.stars, "
                "set_by = excluded.set_by, set_at = excluded.set_at",
                (guild_id, channel_id, stars, by, now),
            )

    async def clear(self, guild_id: int) -> bool:
        """No gallery any more; whether there was one."""
        async with self.db.transaction() as conn:
            cur = await conn.execute("DELETE FROM galleries WHERE guild_id = ?", (guild_id,))
            return cur.rowcount > 0

    async def forget_channel(self, guild_id: int, channel_id: int) -> bool:
        """The gallery's channel was deleted: no gallery any more; whether it was the gallery."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM galleries WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
            )
            return cur.rowcount > 0

    async def claim(
        self,
        job_id: str,
        guild_id: int,
        original_message_id: int,
        channel_id: int,
        *,
        now: float,
        taking_over: bool = False,
    ) -> bool:
        """The image is this caller's to post: never claimed, or claimed over CLAIM_SECONDS ago (``taking_over``: by
        an earlier run, however lately) and never posted."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO gallery_posts (job_id, guild_id, original_message_id, channel_id, claimed_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET claimed_at = excluded.claimed_at, "
                "channel_id = excluded.channel_id "
                "WHERE gallery_posts.message_id IS NULL AND (gallery_posts.claimed_at < ? OR ?)",
                (job_id, guild_id, original_message_id, channel_id, now, now - CLAIM_SECONDS, taking_over),
            )
            return cur.rowcount > 0

    async def unposted(self) -> list[str]:
        """The images claimed and never posted (the bot stopped between the two), oldest claim first."""
        async with (
            self.db.read() as conn,
            conn.execute("SELECT job_id FROM gallery_posts WHERE message_id IS NULL ORDER BY claimed_at") as cur,
        ):
            return [str(row[0]) for row in await cur.fetchall()]

    async def posted(self, job_id: str, message_id: int) -> bool:
        """The post is made; False if its claim went meanwhile (the image deleted while it was being posted)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute("UPDATE gallery_posts SET message_id = ? WHERE job_id = ?", (message_id, job_id))
            return cur.rowcount > 0

    async def release(self, job_id: str) -> None:
        """The post failed: the next ⭐ tries again."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM gallery_posts WHERE job_id = ? AND message_id IS NULL", (job_id,))

    async def of_originals(self, message_ids: Sequence[int]) -> list[GalleryPost]:
        """The gallery's posts of the images these (deleted) messages showed."""
        marks = ", ".join("?" * len(message_ids))
        async with (
            self.db.read() as conn,
            conn.execute(
                f"SELECT job_id, channel_id, message_id FROM gallery_posts WHERE original_message_id IN ({marks})",
                tuple(message_ids),
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [GalleryPost(str(r[0]), int(r[1]), None if r[2] is None else int(r[2])) for r in rows]

    async def post_of(self, job_id: str) -> GalleryPost | None:
        """The gallery's post of the image, claimed or made."""
        async with (
            self.db.read() as conn,
            conn.execute("SELECT channel_id, message_id FROM gallery_posts WHERE job_id = ?", (job_id,)) as cur,
        ):
            row = await cur.fetchone()
        return GalleryPost(job_id, int(row[0]), None if row[1] is None else int(row[1])) if row else None

    async def posts_since(self, since: float, *, limit: int) -> list[tuple[int, GalleryPost]]:
        """The posts made of images claimed since ``since`` (wall clock), the latest first: (server, post)."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT guild_id, job_id, channel_id, message_id FROM gallery_posts WHERE claimed_at >= ? "
                "AND message_id IS NOT NULL ORDER BY claimed_at DESC LIMIT ?",
                (since, limit),
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [(int(r[0]), GalleryPost(str(r[1]), int(r[2]), int(r[3]))) for r in rows]

    async def job_of_post(self, message_id: int) -> str | None:
        """The image the gallery's post ``message_id`` shows, if it is one."""
        async with (
            self.db.read() as conn,
            conn.execute("SELECT job_id FROM gallery_posts WHERE message_id = ?", (message_id,)) as cur,
        ):
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def forget(self, job_ids: Sequence[str]) -> None:
        marks = ", ".join("?" * len(job_ids))
        async with self.db.transaction() as conn:
            await conn.execute(f"DELETE FROM gallery_posts WHERE job_id IN ({marks})", tuple(job_ids))
