"""A backup taken while a paid-for image waits to be posted, restored after the database is lost, lets the real
bot post that image: `bananacord db backup` copies the images waiting in ``<database>.results/`` with the
database, and `db restore` puts both back (bot/db_copy.py).

Before, a backup held the database only: restored, the job found its image gone and failed ("The image was
lost before it could be posted", refunded) though the provider had made and billed it
(tests/e2e/test_inline_memory.py shows that ending for a folder emptied under the bot)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bot.testing.discord import FakeDiscord
from tests.e2e.test_failover import Fakes, rows
from tests.e2e.test_inline_memory import delivered_after_a_restart, stopped_before_its_upload
from tests.test_cli import acli, config


async def test_a_restored_backup_posts_the_image_that_waited_when_it_was_made(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    fakes = Fakes()
    async with fakes.seaart, fakes.kie, fakes.segmind, fakes.gemini:
        settings = fakes.settings(tmp_path, discord_fake, ["gemini"])
        db = settings.database.path
        interaction = await stopped_before_its_upload(discord_fake, settings, "kept through a restore")
        (job,) = rows(settings)
        png = (Path(f"{db}.results") / f"{job['id']}-1").read_bytes()

        cfg = str(config(tmp_path, db=db))
        code, stderr = await acli(tmp_path, "db", "backup", str(tmp_path / "backup.sqlite3"), "--config", cfg)
        assert code == 0, stderr
        # The disk under the database is lost: the database, its WAL and the waiting image with it.
        for lost in db.parent.glob(f"{db.name}*"):
            shutil.rmtree(lost) if lost.is_dir() else lost.unlink()
        code, stderr = await acli(tmp_path, "db", "restore", str(tmp_path / "backup.sqlite3"), "--config", cfg)
        assert code == 0, stderr

        assert await delivered_after_a_restart(discord_fake, settings, interaction) == png
    (delivered,) = rows(settings)
    assert (delivered["id"], delivered["charge_state"]) == (job["id"], "committed")
    assert len(fakes.gemini.jobs) == 1  # made once, never asked for again
    assert os.listdir(f"{db}.results") == []
