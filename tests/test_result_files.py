"""bot/result_files.py on a real folder: what is kept, what the start-up sweep and a job's end remove,
and that a name from a row can never point outside the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.result_files import ResultFiles

RUNNING, ENDED = "0123456789abcdef", "fedcba9876543210"


async def test_kept_files_go_when_their_job_ends_or_no_unfinished_job_names_them(tmp_path: Path) -> None:
    files = ResultFiles.beside(tmp_path / "bot.sqlite3")
    assert files.directory == tmp_path / "bot.sqlite3.results"
    names = [await files.keep(job, n, f"{job}-{n}".encode()) for job in (RUNNING, ENDED) for n in (1, 2)]
    assert names == [f"{RUNNING}-1", f"{RUNNING}-2", f"{ENDED}-1", f"{ENDED}-2"]
    assert files.path(names[1]).read_bytes() == f"{RUNNING}-2".encode()
    # A write the last process did not finish, even for a running job, and a file of no job at all.
    (files.directory / f"{RUNNING}-3.part").write_bytes(b"half")
    (files.directory / "notes.txt").write_text("not ours")

    assert files.sweep(unfinished=[RUNNING]) == 3
    assert sorted(p.name for p in files.directory.iterdir()) == [f"{RUNNING}-1", f"{RUNNING}-2", "notes.txt"]
    await files.discard(RUNNING)
    assert [p.name for p in files.directory.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("name", ["../bot.sqlite3", "/etc/passwd", "0123456789abcdef-1/../../x", "ABCDEF0123456789-1"])
def test_a_name_that_is_not_ours_is_never_followed(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not a result file name"):
        ResultFiles.beside(tmp_path / "bot.sqlite3").path(name)


def test_nothing_to_sweep_without_a_folder(tmp_path: Path) -> None:
    files = ResultFiles.beside(tmp_path / "bot.sqlite3")
    assert files.sweep(unfinished=[]) == 0 and not files.directory.exists()
