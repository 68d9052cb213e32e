"""`bananacord generate --provider X` for every provider, and `bananacord check --providers`, as a user
runs them: a subprocess with a config file and keys in the environment, against the fakes."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot.testing.providers import FakeGemini, FakeKie, FakeSeaArt, FakeSegmind
from tests.forked_cli import run_bot

KEY = "cli-provider-key"
ENV_KEYS = ["SEAART_API_KEY", "KIE_API_KEY", "SINANCODE_API_KEY", "SEGMIND_API_KEY", "GEMINI_API_KEY"]


class Fakes:
    def __init__(self) -> None:
        self.by_name = {
            "seaart": FakeSeaArt(api_key=KEY),
            "kie": FakeKie(flavour="kie", api_key=KEY),
            "sinancode": FakeKie(flavour="sinancode", api_key=KEY),
            "segmind": FakeSegmind(api_key=KEY),
            "gemini": FakeGemini(api_key=KEY),
        }

    def config(self, tmp_path: Path, enabled: set[str]) -> Path:
        lines = [f'[database]\npath = "{tmp_path / "cli.sqlite3"}"\n']
        for name, fake in self.by_name.items():
            lines.append(
                f"[providers.{name}]\nenabled = {'true' if name in enabled else 'false'}\n"
                f'base_url = "{fake.base_url}"\nrequest_timeout = 5.0\n'
            )
        lines.append("[jobs]\npoll_interval_seconds = 0.05\nmax_poll_interval_seconds = 0.2\n")
        path = tmp_path / "config.toml"
        path.write_text("\n".join(lines), encoding="utf-8")
        return path


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    f = Fakes()
    for fake in f.by_name.values():
        await fake.start()
    yield f
    for fake in f.by_name.values():
        await fake.stop()


async def cli(*args: str, keys: dict[str, str]) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and not k.startswith("BANANACORD_")}
    # In a thread: the fake providers answer on this test's event loop.
    done = await asyncio.to_thread(run_bot, list(args), env={**env, **keys}, cwd=os.getcwd(), timeout=90)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("provider", ["seaart", "kie", "sinancode", "segmind", "gemini"])
async def test_generate_with_every_provider(provider: str, fakes: Fakes, tmp_path: Path) -> None:
    config = fakes.config(tmp_path, {provider})
    out = tmp_path / "out"
    code, stdout, stderr = await cli(
        "--config",
        str(config),
        "generate",
        "--provider",
        provider,
        "--aspect-ratio",
        "3:2",
        "--resolution",
        "1K",
        "--out",
        str(out),
        "a lemon in space",
        keys={f"{provider.upper()}_API_KEY": KEY},
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["state"] == "delivered" and summary["provider"] == provider
    assert summary["estimated_cost_usd"] and summary["estimated_cost_usd"] > 0
    (path,) = summary["files"]
    with Image.open(path) as img:
        img.load()
        assert img.width > img.height  # 3:2
    assert len(fakes.by_name[provider].creates) == 1
    assert KEY not in stdout + stderr


async def test_check_providers_reports_each(fakes: Fakes, tmp_path: Path) -> None:
    config = fakes.config(tmp_path, {"seaart", "kie", "segmind", "gemini"})
    keys = {
        "DISCORD_TOKEN": "t",
        "SEAART_API_KEY": KEY,
        "KIE_API_KEY": KEY,
        "SEGMIND_API_KEY": KEY,
        "GEMINI_API_KEY": KEY,
    }
    code, stdout, stderr = await cli("--config", str(config), "check", "--providers", keys=keys)
    assert code == 0, stdout + stderr
    for name in ("seaart", "kie", "segmind", "gemini"):
        line = next(line for line in stdout.splitlines() if line.strip().startswith(name) and "reachable" in line)
        assert "key accepted" in line, line
    assert "every enabled provider answered" in stdout
    # Nothing was generated while checking.
    for fake in fakes.by_name.values():
        assert fake.creates == []

    bad = {**keys, "KIE_API_KEY": "wrong-key"}
    code, stdout, _ = await cli("--config", str(config), "check", "--providers", keys=bad)
    assert code == 1
    assert "kie: the provider rejected KIE_API_KEY" in stdout and "wrong-key" not in stdout

    await fakes.by_name["gemini"].stop()
    code, stdout, _ = await cli("--config", str(config), "check", "--providers", keys=keys)
    assert code == 1 and "gemini:" in stdout and "unreachable" in stdout


async def test_generate_sends_kie_no_callback_url_as_it_serves_none(fakes: Fakes, tmp_path: Path) -> None:
    """With [callbacks] on for the bot, `generate` still serves no callbacks: its create names no callBackUrl
    (the task's end would go to the running bot), and a create whose answer is lost fails at once rather
    than wait for a callback that cannot come (bot/lost_tasks.py)."""
    config = fakes.config(tmp_path, {"kie"})
    with config.open("a", encoding="utf-8") as f:
        f.write('\n[callbacks]\nenabled = true\npublic_url = "https://bot.example"\n')
    kie = fakes.by_name["kie"]
    keys = {"KIE_API_KEY": KEY, "KIE_WEBHOOK_HMAC_KEY": "cli-webhook-key"}
    out = ("--out", str(tmp_path / "out"))
    code, stdout, stderr = await cli(
        "--config", str(config), "generate", "--provider", "kie", *out, "a lime", keys=keys
    )
    assert code == 0, stderr
    assert json.loads(stdout)["state"] == "delivered"
    assert "callBackUrl" not in kie.creates[0].json

    kie.script("create_hang")  # the task is made, its answer never comes (request_timeout 5 s)
    began = asyncio.get_running_loop().time()
    code, stdout, stderr = await cli(
        "--config", str(config), "generate", "--provider", "kie", *out, "a lemon", keys=keys
    )
    summary = json.loads(stdout)
    assert summary["state"] == "failed" and summary["error"]["category"] == "uncertain", summary
    assert asyncio.get_running_loop().time() - began < 30, "it did not wait for a callback"
