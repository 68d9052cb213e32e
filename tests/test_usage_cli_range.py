"""`bananacord usage` with a start or end the report cannot show: one line and exit 1, as for a date that is
not a date, not ``ValueError: year 10000 is out of range`` in a traceback once the report had been read.

A date-time within the years 1 to 9999 where it is written can fall outside them in UTC (the JSON's
since/until) or in the quota zone (the table's period); and 9999-12-31T23:59:59.999999 UTC, as a Unix time
(a float), rounds into the year 10000. Each case runs the real CLI as a subprocess on a real database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.store import Database
from tests.test_cli import cli, config, one_line

WEST_OF_UTC = '[quotas]\ntimezone = "Etc/GMT+12"\n'  # UTC-12: its 9999-12-31T23:59 is in 10000 in UTC
EAST_OF_UTC = '[quotas]\ntimezone = "Etc/GMT-14"\n'  # UTC+14


async def _make_database(path: Path) -> None:
    """The bot's database as its first start makes it (`usage` reads one; it never creates one)."""
    db = Database(path)
    await db.connect()
    await db.close()


def _usage(tmp_path: Path, zone: str, *args: str) -> tuple[int, str, str]:
    db = tmp_path / "bot.sqlite3"
    asyncio.run(_make_database(db))
    cfg = str(config(tmp_path, zone, db=db))
    result = cli(tmp_path, "usage", "--guild", "1", *args, "--config", cfg)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("zone", "args", "expected"),
    [
        pytest.param(
            WEST_OF_UTC,
            ["--since", "2024-01-01", "--until", "9999-12-31T23:59"],
            "until: '9999-12-31T23:59' is past the last moment a report can show (years 1 to 9999, in UTC and "
            "in Etc/GMT+12): give an earlier end",
            id="end-past-9999-in-utc-table",
        ),
        pytest.param(
            WEST_OF_UTC,
            ["--since", "2024-01-01", "--until", "9999-12-31T23:59", "--format", "json"],
            "until: '9999-12-31T23:59' is past the last moment",
            id="end-past-9999-in-utc-json",
        ),
        pytest.param(
            "",
            ["--since", "2024-01-01", "--until", "9999-12-31T23:59:59.999999", "--format", "json"],
            "until: '9999-12-31T23:59:59.999999' is past the last moment a report can show (years 1 to 9999, "
            "in UTC): give an earlier end",
            id="end-rounds-into-10000",
        ),
        pytest.param(
            "",
            ["--since", "0001-01-01T00:00+14:00", "--until", "2024-01-01"],
            "since: '0001-01-01T00:00+14:00' is before the first moment a report can show (years 1 to 9999, "
            "in UTC): give a later start",
            id="start-before-year-1-in-utc",
        ),
        pytest.param(
            WEST_OF_UTC,
            ["--since", "0001-01-01T00:00+00:00", "--until", "2024-01-01"],
            "since: '0001-01-01T00:00+00:00' is before the first moment a report can show (years 1 to 9999, "
            "in UTC and in Etc/GMT+12): give a later start",
            id="start-before-year-1-in-the-quota-zone",
        ),
        pytest.param(
            WEST_OF_UTC,
            ["--since", "9999-12-31T20:00", "--until", "9999-12-31T23:59", "--format", "csv"],
            "since: '9999-12-31T20:00' is past the last moment a report can show",
            id="start-past-9999-csv",
        ),
    ],
)
def test_a_bound_the_report_cannot_show_is_one_line(tmp_path: Path, zone: str, args: list[str], expected: str) -> None:
    code, stdout, stderr = _usage(tmp_path, zone, *args)
    assert code == 1, stdout + stderr  # as `--until 2024-13-01` is
    assert stdout == ""
    line = one_line(stderr)  # no traceback
    assert line.startswith("bananacord: ") and expected in line, line


def test_a_bad_date_is_refused_the_same_way(tmp_path: Path) -> None:
    code, _, stderr = _usage(tmp_path, "", "--since", "2024-01-01", "--until", "2024-13-01")
    assert code == 1
    assert "until: '2024-13-01' is not an ISO date or date-time" in one_line(stderr)


@pytest.mark.parametrize(
    ("zone", "args"),
    [
        pytest.param("", ["--since", "0001-01-01", "--until", "9999-12-31T23:59:59", "--format", "json"], id="utc"),
        pytest.param(WEST_OF_UTC, ["--since", "0001-01-01", "--until", "9999-12-31T11:59"], id="west-table"),
        pytest.param(EAST_OF_UTC, ["--since", "0001-01-01T14:00", "--until", "9999-12-31"], id="east-table"),
    ],
)
def test_the_widest_period_that_can_be_shown_still_reports(tmp_path: Path, zone: str, args: list[str]) -> None:
    code, stdout, stderr = _usage(tmp_path, zone, *args)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert stdout
