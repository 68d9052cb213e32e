"""`bananacord usage` with --period and --since/--until together: refused in one line, exit 1, as /usage
refuses the pair. Before, --since made the period custom and the --period given was silently ignored (exit 0
with a report of another period than the one asked for). The real CLI as a subprocess on a real database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.store import Database
from tests.test_cli import cli, config, one_line


async def _make_database(path: Path) -> None:
    """The bot's database as its first start makes it (`usage` reads one; it never creates one)."""
    db = Database(path)
    await db.connect()
    await db.close()


def _usage(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    db = tmp_path / "bot.sqlite3"
    asyncio.run(_make_database(db))
    result = cli(tmp_path, "usage", "--guild", "1", *args, "--config", str(config(tmp_path, db=db)))
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "period"),
    [
        pytest.param(["--since", "2024-01-01", "--period", "day"], "day", id="since-and-day"),
        pytest.param(["--period", "week", "--since", "2023-12-01", "--until", "2024-02-01"], "week", id="week"),
        pytest.param(["--period", "month", "--since", "2024-01-01", "--until", "2024-02-01"], "month", id="month"),
    ],
)
def test_a_period_with_since_or_until_is_refused(tmp_path: Path, args: list[str], period: str) -> None:
    code, stdout, stderr = _usage(tmp_path, *args)
    assert code == 1, stdout + stderr
    assert stdout == ""
    assert one_line(stderr) == (  # no traceback
        f"bananacord: since and until only go with the custom period, not {period!r}: give either the period or "
        "since/until, not both"
    )
    # Either alone still reports: since/until make the period custom, a period alone is that period.
    at = args.index("--period")
    alone = args[:at] + args[at + 2 :]
    for given, shown in ((alone, "custom"), (args[at : at + 2], period), ([], "month")):
        code, stdout, stderr = _usage(tmp_path, *given)
        assert code == 0, stderr
        assert f"Period: {shown}, " in stdout
