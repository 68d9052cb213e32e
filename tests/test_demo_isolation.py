"""`bananacord demo` and the test suite read no operator setting or key from the environment: with
BANANACORD_* overrides pointing a provider elsewhere and its key exported, nothing reaches that address.

Before, both loaded settings with the environment: the demo sent its prompt, with ``Authorization: Bearer
<KIE_API_KEY>``, to whatever BANANACORD_PROVIDERS__KIE__BASE_URL said (kie.ai itself by default: a billed
request), and so did the tests' bots."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.testing.discord import FakeDiscord, FakeInteraction

ROOT = Path(__file__).resolve().parents[1]
CANARY = "CANARY-KIE-123"


class Listener:
    """A TCP server on 127.0.0.1 that records whatever reaches it (it should be nothing)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                data = b""
                try:
                    while chunk := conn.recv(65536):
                        data += chunk
                        if b"\r\n\r\n" in data:
                            break
                except OSError:
                    pass
                self.received.append(data or b"(connected)")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def operator_env(listener: Listener) -> dict[str, str]:
    """An operator's shell: kie enabled and made the default, every provider and Discord pointed at the
    listener, keys and a token exported."""
    return {
        "BANANACORD_IMAGINE__DEFAULT_PROVIDER": "kie",
        "BANANACORD_PROVIDERS__KIE__ENABLED": "true",
        "BANANACORD_PROVIDERS__KIE__BASE_URL": listener.url,
        "BANANACORD_PROVIDERS__SEAART__BASE_URL": listener.url,
        "BANANACORD_DISCORD__API_BASE_URL": listener.url + "/api/v10",
        "KIE_API_KEY": CANARY,
        "SEAART_API_KEY": CANARY + "-seaart",
        "DISCORD_TOKEN": CANARY + "-token",
    }


def run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float, tmpdir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``args`` with this environment plus ``env``; temporary files in ``tmpdir`` (default ``cwd``)."""
    base = {k: v for k, v in os.environ.items() if k not in env}
    env = {**base, "TMPDIR": str(tmpdir or cwd), **env}
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def test_the_demo_sends_nothing_to_where_the_environment_points(tmp_path: Path, listener: Listener) -> None:
    try:
        result: subprocess.CompletedProcess[str] | None = run(
            [sys.executable, "-m", "bot", "demo", "--out", "out"], tmp_path, operator_env(listener), 30
        )
    except subprocess.TimeoutExpired:
        result = None  # before: it waited on the listener, which never answers
    time.sleep(0.2)  # a request in flight as the demo ended would still be seen
    assert listener.received == []
    assert result is not None, "the demo did not finish in 30 s"
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Demo finished" in result.stdout
    assert CANARY not in result.stdout + result.stderr
    # The image as a member has it: its alt text, and the buttons to keep working on it; one of which the demo
    # presses, the image going to SeaArt with the instruction, and a second image written.
    assert "alt text: A ripe banana wearing sunglasses on a beach" in result.stdout
    assert "[Vary (Subtle)] | [Vary (Strong)] | [Edit]" in result.stdout
    assert "The member presses [Vary (Subtle)]" in result.stdout
    assert "'prompt': 'Make a subtle variation" in result.stdout
    assert "Made from: 🔀 A subtle variation" in result.stdout
    assert len(list((tmp_path / "out").glob("bananacord-*.png"))) == 2
    # It says what it left alone, by name.
    assert "Ignored here, the demo uses its own settings: BANANACORD_DISCORD__API_BASE_URL" in result.stdout
    assert "KIE_API_KEY" in result.stdout


def test_the_demo_is_not_held_by_a_quota_in_the_environment(tmp_path: Path) -> None:
    """BANANACORD_QUOTAS__DAILY=0 made the demo's member refused; the demo hung 62 s and ended in a
    TimeoutError traceback from the fake Discord."""
    started = time.monotonic()
    result = run([sys.executable, "-m", "bot", "demo", "--out", "out"], tmp_path, {"BANANACORD_QUOTAS__DAILY": "0"}, 30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_the_test_suite_sends_nothing_to_where_the_environment_points(tmp_path: Path, listener: Listener) -> None:
    """tests/conftest.py: make_settings reads no variable, and the session runs without the operator's."""
    result = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/e2e/test_imagine_flow.py::test_imagine_with_reference_is_delivered",
        ],
        ROOT,
        operator_env(listener),
        120,
        tmpdir=tmp_path,
    )
    time.sleep(0.2)
    assert listener.received == []
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout


async def test_the_demo_shows_what_a_refused_member_was_told(discord_fake: FakeDiscord) -> None:
    """What the demo prints instead of a traceback when the member's /imagine is refused (or when nothing
    came back in time): the private answer, or the bot's message as it stands."""
    from bot.demo import _refusal, _told  # here: the other tests here run (and fail) on code without them

    told = "An admin has set your daily quota to 0 units, so you cannot make images."
    refused = FakeInteraction(id=1, token="t", type=2, user_id=2, channel_id=3, guild_id=4)
    refused.callbacks.append({"type": 4, "data": {"content": told, "flags": 64, "embeds": [{"title": "Quota"}]}})
    assert _refusal(refused) is not None
    assert _told(discord_fake, refused) == [f"  {told}", "  ┌ Quota", "  └"]
    silent = FakeInteraction(id=5, token="t", type=2, user_id=2, channel_id=3, guild_id=4)
    assert _refusal(silent) is None
    assert _told(discord_fake, silent) == ["  (nothing: the bot has not answered)"]
    public = FakeInteraction(id=6, token="t", type=2, user_id=2, channel_id=3, guild_id=4)
    public.callbacks.append({"type": 4, "data": {"embeds": [{"title": "Queued"}]}})
    assert _refusal(public) is None
