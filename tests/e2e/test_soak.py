"""The fault soak's correctness half in the suite (bench/soak.py is the long run with figures).

The bot runs as its own process against a SeaArt fake and a Kie fake (failover from the first to the
second, which a SeaArt outage for new work forces) that each answer 20% of API calls with a 429, a 5xx,
a hang or a malformed body, and a Discord fake that answers some message edits with 429 or 5xx; the
process is SIGKILLed while jobs are being created and polled, and a new one takes over the database.
Some commands ask for several images (count:3, a batch: one job per candidate, one shared message).
Members cancel or delete a share of the jobs along the way, press Vary or Re-roll on a share of the
images they get (a new job each), and reply to a share with an edit, one of them while the bot is down
(bot/testing/soak_replies.py: each reply answered exactly once), and @mention the bot with words after a share
of them, one while the bot is down (bot/testing/soak_mentions.py: none offered Imagine this twice, no chatter).
Once every job has ended, bot/testing/soak.py judges the run: nothing lost, no job created twice at the providers
(no prompt with more tasks than jobs), no job charged twice, the ledger balanced, every failure explained to the member.
A smaller run does the same with the two providers whose creates are the hardest to keep single:
Segmind (no idempotency and no cancel: a create sent twice is two paid images) failing over to Gemini
(its answer to a create is the image itself), under the hostile answers too (drips, JSON nested past the
parser). Another holds the ledger to binding quotas: members running out of units and of requests in
flight mid-run, under chaos and a kill, replayed in the order the bot wrote it; another a moderator's ban
and blocked term to the moment the moderator saw them confirmed, across a kill; another kie.ai's callbacks
(lost, replayed, forged, late, or due while the bot is down) across a kill. Two more tests put one
fault at one exact arrow of the flow and hold the bot to the same rules: a kill
while the member's command is being acknowledged, and a Discord 503 on the edit that tells the member
why their job failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.providers import provider_class
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.providers import Chaos, FakeGemini, FakeKie, FakeSeaArt, FakeSegmind
from bot.testing.providers._base import FakeProviderServer, Fault
from bot.testing.serving import free_port
from bot.testing.soak import (
    GENEROUS_QUOTAS,
    Audit,
    MemberActions,
    ProviderRecord,
    QuotaRules,
    Reworks,
    audit,
    db_rows,
    log_errors,
    ping_audit,
    pings_due,
    prompt_of,
    provider_record,
    providers_not_told,
    shows_an_image,
    unpinged,
)
from bot.testing.soak_mentions import Mentions
from bot.testing.soak_moderation import Moderator, Pauser, with_term
from bot.testing.soak_replies import ReplyEdits, is_batch
from bot.testing.soak_server_room import ServerRoom
from cogs.mention_prompts import LATE, OFFER
from tests.conftest import BOT_TOKEN, SEAART_KEY
from tests.e2e.bot_process import BotProcess, bot_env, discord_and_database, start_process

JOBS = 30
SEED = 7
# Every BATCH_EVERY-th command asks for three images (a batch).
BATCH_EVERY = 5


def stop(*procs: BotProcess | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


async def kill(proc: BotProcess, discord_fake: FakeDiscord) -> None:
    """SIGKILL the bot and wait until the fake Discord has seen its gateway connection close. Until then
    the dead connection still counts as live, so wait_until_ready would return at once and the next
    commands would go to a process that is gone (unanswered: "bot died first") instead of its successor."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    await discord_fake.wait_for(lambda: not discord_fake.connected, timeout=10)


def write_config(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    *fakes: tuple[str, FakeProviderServer[Any]],
    deadline: float = 20,
    quota: Mapping[str, object] = GENEROUS_QUOTAS,
) -> Path:
    """The bot's config: each named fake enabled (``segmind`` on its v2 queue), the first tried first and
    the rest taking over in order; SeaArt off unless named; ``quota`` the [quotas] section. Every request's
    end pings its member (``ping_after_seconds = 0``), so the pings meet the faults and kills too."""
    quotas = "\n".join(f"{key} = {json.dumps(value)}" for key, value in quota.items())
    names = [name for name, _ in fakes]
    sections = "" if "seaart" in names else "[providers.seaart]\nenabled = false\n"
    for name, fake in fakes:
        # Shorter than a chaos hang or drip: a held answer is a timeout the bot has to live with.
        sections += f'[providers.{name}]\nenabled = true\nbase_url = "{fake.base_url}"\nrequest_timeout = 1.0\n'
        sections += 'mode = "v2"\n' if name == "segmind" else ""
    if len(names) > 1:
        # A job the first turned down (5xx, 429 past the retries, an outage) moves to the next.
        sections += (
            f"[models]\nroutes = {{ nano_banana_2 = {json.dumps(names)}, nano_banana_pro = {json.dumps(names)} }}\n"
        )
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
{discord_and_database(tmp_path, discord_fake)}
{sections}
[imagine]
ping_after_seconds = 0
[jobs]
poll_schedule = "backoff"
poll_interval_seconds = 0.1
max_poll_interval_seconds = 0.5
progress_interval_seconds = 0.5
# Anything stuck expires (refunded, explained) well within the drain below.
deadline_seconds = {deadline:g}
[quotas]
{quotas}
""",
        encoding="utf-8",
    )
    return config


async def imagine(
    discord_fake: FakeDiscord,
    sent: list[FakeInteraction],
    first: int,
    count: int,
    actions: MemberActions | None = None,
    *,
    batches: bool = False,
    reworks: Reworks | None = None,
    replies: ReplyEdits | None = None,
    mentions: Mentions | None = None,
    members: Sequence[int] = (),
    gap: float = 0.05,
    term: bool = False,
) -> None:
    """Commands ``first`` .. ``first + count - 1``, ``gap`` s apart, from ``members`` in turn (default: the
    fake's member); ``term``: every seventh carries the term a moderator blocks (soak_moderation.py)."""
    for index in range(first, first + count):
        prompt = f"soak {SEED}-{index}: a ripe banana on a blue plate"
        prompt = with_term(prompt, index) if term else prompt
        options: dict[str, object] = {"prompt": prompt, "resolution": "1K"}
        if batches and index % BATCH_EVERY == 0:
            options["count"] = 3
        user_id = members[index % len(members)] if members else None
        sent.append(await discord_fake.slash_command("imagine", options, user_id=user_id))
        if actions is not None:
            actions.after_sent(sent[-1])
        if reworks is not None:
            reworks.after_sent(sent[-1])
        if replies is not None:
            replies.after_sent(sent[-1])
        if mentions is not None:
            mentions.after_sent(sent[-1])
        await asyncio.sleep(gap)


def copies_by_dm(discord_fake: FakeDiscord, message: FakeMessage, member: int) -> list[FakeMessage]:
    """The ✉️ copies of ``message``'s images the member has in their DMs (cogs/dm_reaction.py)."""
    return [dm for dm in discord_fake.dms_to(member) if dm.files and f"/{message.id})" in json.dumps(dm.embeds)]


def with_image(discord_fake: FakeDiscord, sent: list[FakeInteraction]) -> list[FakeInteraction]:
    """The single-image commands whose message shows their image (a reply to a batch must name one)."""
    messages = (discord_fake.messages.get(c.original_message_id or -1) for c in sent)
    return [c for c, m in zip(sent, messages, strict=True) if m is not None and shows_an_image(m) and not is_batch(c)]


async def settle(
    discord_fake: FakeDiscord,
    running: BotProcess,
    db: Path,
    sent: list[FakeInteraction],
    log: Path,
    replies: ReplyEdits | None = None,
) -> None:
    """Wait until no job of ``sent`` is lost and every job of ``replies`` has ended, or the bot exits; an
    exited bot cannot drain: say so, not "lost". A command still being answered would look unanswered, not
    lost: its answer is waited for first. A reply's job counts only once its row has ended: the member sees
    its image a moment before the bot records the delivery and its charge, and a judge that killed the
    bot in between would find the ledger one reservation short (seen once when two tests ran at a time)."""
    with contextlib.suppress(TimeoutError):
        await discord_fake.wait_for(lambda: all(i.acknowledged for i in sent), timeout=15)

    def drained() -> bool:
        if audit(db, discord_fake, {}, sent).lost:
            return False
        return replies is None or not replies.problems(db)

    with contextlib.suppress(TimeoutError):
        await discord_fake.wait_for(lambda: running.poll() is not None or drained(), timeout=45)
    assert running.poll() is None, "the bot exited: " + log.read_text(errors="replace")[-2000:]


def judged(
    db: Path,
    discord_fake: FakeDiscord,
    fakes: list[FakeProviderServer[Any]],
    sent: list[FakeInteraction],
    limits: QuotaRules | None = None,
) -> tuple[ProviderRecord, Audit, str]:
    """bot/testing/soak.py's verdict on the run, which must find no problem: nothing lost, no prompt with
    more tasks at the providers than jobs, nothing charged twice, the ledger balanced, every failure
    explained, and with ``limits`` no reservation past them; no request pinged twice, no ping mentioning
    anyone but its member. Returns the providers' record, the audit and its report (for later assertions'
    messages)."""
    record = provider_record(fakes)
    result = audit(db, discord_fake, record.tasks, sent, quotas=True, limits=limits, task_prompts=record.task_prompts)
    report = "\n".join(result.problems() + result.lines())
    assert result.problems() == [], report
    pinged, ping_problems = ping_audit(discord_fake)
    assert ping_problems == [], f"{pinged} requests pinged: {ping_problems}"
    return record, result, report


async def test_chaos_failover_batches_and_a_hard_kill_lose_nothing_and_charge_nothing_twice(tmp_path: Path) -> None:
    times = random.Random(SEED)
    seaart = FakeSeaArt(
        api_key=SEAART_KEY,
        provider_time=lambda: times.uniform(0.3, 1.5),
        chaos=Chaos(rate=0.2, seed=SEED, hang_seconds=2.0),
    )
    kie = FakeKie(
        flavour="kie",
        api_key=SEAART_KEY,
        provider_time=lambda: times.uniform(0.3, 1.5),
        chaos=Chaos(rate=0.2, seed=SEED + 1, hang_seconds=2.0),
    )
    log = tmp_path / "bot.log"
    db = tmp_path / "bot.sqlite3"
    env = bot_env() | {"KIE_API_KEY": SEAART_KEY}
    sent: list[FakeInteraction] = []
    first: BotProcess | None = None
    second: BotProcess | None = None
    async with FakeDiscord(bot_token=BOT_TOKEN) as discord_fake, seaart, kie:
        discord_fake.chaos(0.1, seed=SEED)
        # Some answers to commands and buttons are made by Discord, and reach the bot as a 5xx.
        discord_fake.lose_answers(0.1, seed=SEED)
        config = write_config(tmp_path, discord_fake, ("seaart", seaart), ("kie", kie))
        # Some members press Cancel or delete the message a moment later (some by reacting ❌), across the kill too.
        actions = MemberActions(discord_fake, 0.3, seed=SEED, delay=(0.1, 1.5), crosses=True)
        # Others press Vary or Re-roll on the image they got: a new job each, through the same faults; half of
        # those who vary, edit, zoom out or pan then change that step's words under its image (Change prompt).
        reworks = Reworks(discord_fake, 0.3, seed=SEED, patience=30, remixes=0.5)
        # And others reply to it with an edit, some while the bot is away (it must find those when back), some while
        # the image is still being made (they wait for it, across the kill too: cogs/early_replies.py).
        replies = ReplyEdits(
            discord_fake, 0.3, seed=SEED, patience=30, delay=(0.0, 2.0), early=0.5, early_after=(0.1, 0.5)
        )
        # And others write "@Bananacord <words>" after their command, live or while the bot is away.
        mentions = Mentions(discord_fake, 0.3, seed=SEED, delay=(0.0, 2.0))
        try:
            first = start_process(config, log, env)
            await discord_fake.wait_until_ready(timeout=30)
            await imagine(
                discord_fake,
                sent,
                0,
                JOBS // 2,
                actions,
                batches=True,
                reworks=reworks,
                replies=replies,
                mentions=mentions,
            )
            # Killed once the first image shows, while the last commands are being recorded and created.
            await discord_fake.wait_for(lambda: bool(with_image(discord_fake, sent)), timeout=20)
            await kill(first, discord_fake)
            # While it is down, a member replies to that image: Discord sends the reply to nobody. Another asks for
            # a copy of it (✉️), which Discord tells nobody either: the bot, back, reads it and sends the copy once.
            await replies.reply_to(with_image(discord_fake, sent)[0], live=False)
            enveloped = discord_fake.messages[with_image(discord_fake, sent)[0].original_message_id or -1]
            await discord_fake.react(enveloped.id, "✉️", user_id=discord_fake.other_member_id, seen=False)
            # A third asks the bot for an image by @mention: it must be offered one once the bot is back, once.
            away = await discord_fake.post_message(
                f"<@{discord_fake.bot_user_id}> a heron at dusk", user_id=discord_fake.admin_id, live=False
            )

            def copies() -> list[FakeMessage]:
                return copies_by_dm(discord_fake, enveloped, discord_fake.other_member_id)

            second = start_process(config, log, env)
            await discord_fake.wait_until_ready(timeout=30)
            # SeaArt is down for new work while the second half goes out: those jobs move to Kie.
            # Long enough that the four tries of every create it meets fall inside it, on a busy machine too.
            seaart.outage(6.0)
            await imagine(
                discord_fake,
                sent,
                JOBS // 2,
                JOBS - JOBS // 2,
                actions,
                batches=True,
                reworks=reworks,
                replies=replies,
                mentions=mentions,
            )
            await actions.finish()
            await reworks.finish()
            # And one replies live to an image of the second run (the seeded share may bring none).
            await discord_fake.wait_for(lambda: bool(with_image(discord_fake, sent[JOBS // 2 :])), timeout=30)
            await replies.reply_to(with_image(discord_fake, sent[JOBS // 2 :])[0], live=True)
            await replies.finish()
            await mentions.finish()
            await discord_fake.wait_for(lambda: bool(discord_fake.bot_replies_to(away.id)), timeout=30)
            sent += reworks.presses
            await settle(discord_fake, second, db, sent, log, replies)
            # The last ends' pings go just after their rows, one Discord failed after a few seconds: given that
            # before the bot is stopped (a stop here has no next start to send them, as the kill above has).
            with contextlib.suppress(TimeoutError):
                await discord_fake.wait_for(lambda: not unpinged(db, discord_fake), timeout=20)
            # The copy (unless a member deleted that message meanwhile, a seeded action).
            await discord_fake.wait_for(lambda: bool(copies()) or enveloped.deleted, timeout=30)
            await asyncio.sleep(0.5)  # a second copy would come now
        finally:
            stop(first, second)
    assert enveloped.deleted or len(copies()) == 1, [dm.embeds for dm in copies()]

    record, result, report = judged(db, discord_fake, [seaart, kie], sent)
    assert result.submitted == JOBS + len(reworks.presses)
    assert reworks.presses, "\n".join(reworks.lines(db))  # some members did keep working on their image
    # The chaos really happened, batches and failover were exercised, and most jobs still got through.
    assert seaart.chaos_events and discord_fake.chaos_faults, report
    assert kie.chaos_events, f"{len(kie.requests)} Kie calls\n{report}"
    assert result.candidates >= 3 * (JOBS // BATCH_EVERY) - 3, report  # a batch may be refused only if the bot died
    assert result.failed_over > 0 and kie.jobs, report
    assert result.delivered >= JOBS // 2, report
    # The members were pinged, each request once (judged), a ping Discord failed sent again, and one a kill came
    # before the row owing it sent by the next start (its sweep): every request whose end asks for one pinged.
    pinged = ping_audit(discord_fake)[0]
    assert pinged >= JOBS // 2 and unpinged(db, discord_fake) == [], f"{pinged} of {pings_due(db)} pinged\n{report}"
    assert actions.problems(db, record.finished) == []  # no Cancel the bot took was delivered or charged
    # Every running task cancelled was asked to stop.
    assert providers_not_told(db, record.cancels, record.finished) == []
    made = {a.outcome for a in actions.actions}
    assert {"clicked", "deleted", "crossed"} <= made, "\n".join(actions.lines(db))
    # Every reply answered once, its answer final, its jobs settled; some came while the bot was away, and some
    # while their image was still being made.
    assert replies.problems(db) == [], "\n".join(replies.problems(db) + replies.lines(db))
    posted = {r.outcome for r in replies.posted}
    assert {"live", "while away"} <= posted and any(o.startswith("early") for o in posted), "\n".join(replies.lines(db))
    # No mention offered twice, nor chatter; the one written while the bot was down offered once, saying so.
    assert mentions.problems() == [], "\n".join(mentions.problems() + mentions.lines())
    offered = [m for m in mentions.posted if m.message is not None and discord_fake.bot_replies_to(m.message.id)]
    assert offered, "\n".join(mentions.lines())  # the seeded mentions did draw offers (one per member a half-minute)
    assert [m.content for m in discord_fake.bot_replies_to(away.id)] == [f"{LATE}\n{OFFER}"]
    assert log_errors(log) == []  # every fault met as designed: no exception left to discord.py's logger


# The hostile answers among the faults, but not 256 MB of JSON: an answer that may carry an image (Segmind's,
# Gemini's) may be 96 MiB long, and streaming that much in the suite proves nothing bench/soak.py does not.
HOSTILE: tuple[Fault, ...] = ("429", "5xx", "hang", "malformed", "drip", "deep")


async def test_segmind_failing_over_to_gemini_under_hostile_answers_and_a_kill_creates_nothing_twice(
    tmp_path: Path,
) -> None:
    times = random.Random(SEED)
    segmind = FakeSegmind(
        api_key=SEAART_KEY,
        provider_time=lambda: times.uniform(0.3, 1.5),
        chaos=Chaos(rate=0.2, seed=SEED + 2, hang_seconds=2.0, faults=HOSTILE),
    )
    # Seeded so that faults fall among the first few calls: only the jobs Segmind's outage moves reach Gemini.
    gemini = FakeGemini(api_key=SEAART_KEY, chaos=Chaos(rate=0.2, seed=15, hang_seconds=2.0, faults=HOSTILE))
    log = tmp_path / "bot.log"
    db = tmp_path / "bot.sqlite3"
    env = bot_env() | {provider_class(name).key_env: SEAART_KEY for name in ("segmind", "gemini")}
    jobs = 20
    sent: list[FakeInteraction] = []
    first: BotProcess | None = None
    second: BotProcess | None = None
    async with FakeDiscord(bot_token=BOT_TOKEN) as discord_fake, segmind, gemini:
        discord_fake.chaos(0.1, seed=SEED)
        config = write_config(tmp_path, discord_fake, ("segmind", segmind), ("gemini", gemini))
        actions = MemberActions(discord_fake, 0.2, seed=SEED, delay=(0.1, 1.5))
        try:
            first = start_process(config, log, env)
            await discord_fake.wait_until_ready(timeout=30)
            await imagine(discord_fake, sent, 0, jobs // 2, actions, batches=True)
            # Killed while jobs are at the providers, not while a command is being acknowledged (the test
            # below does that): every command answered, then the first image shown.
            await discord_fake.wait_for(lambda: all(i.acknowledged for i in sent), timeout=15)
            await discord_fake.wait_for(lambda: bool(with_image(discord_fake, sent)), timeout=20)
            await kill(first, discord_fake)

            second = start_process(config, log, env)
            await discord_fake.wait_until_ready(timeout=30)
            # Segmind is down for new work from here on: the second half's jobs move to Gemini, however
            # late a busy machine sends their creates (a 6-s outage moved one job of fourteen in a CI run).
            segmind.outage(120.0)
            await imagine(discord_fake, sent, jobs // 2, jobs - jobs // 2, actions, batches=True)
            await actions.finish()
            await settle(discord_fake, second, db, sent, log)
        finally:
            stop(first, second)

    record, result, report = judged(db, discord_fake, [segmind, gemini], sent)
    assert result.submitted == jobs
    faults = {e.fault for e in segmind.chaos_events}
    assert {"hang", "outage"} <= faults and gemini.chaos_events, f"{sorted(faults)}\n{report}"
    assert result.failed_over >= jobs // 4 and gemini.requests, report
    assert result.delivered >= jobs // 2, report
    assert actions.problems(db, record.finished) == []
    assert "Traceback" not in log.read_text(errors="replace") and log_errors(log) == []


# How the fake kie.ai delivers a task's callback (bot/testing/providers/kie.py): at once, never, twice (a
# replay), signed with another key, or 3 s after the task ended.
CALLBACK_MODES = ("normal", "lost", "twice", "bad_signature", "late:3")
WEBHOOK_HMAC_KEY = "test-soak-webhook-key-51c2"


async def test_kie_callbacks_lost_replayed_forged_or_late_across_a_kill_lose_nothing(tmp_path: Path) -> None:
    """kie.ai calls the bot back when a task ends; under chaos some callbacks never come, come twice, come
    signed with another key or come after the job was polled to its end, and those due while the bot is
    killed reach nobody. Every job still ends once, settled and explained, by its callback or by the slow
    fallback poll."""
    times = random.Random(SEED)
    kie = FakeKie(
        flavour="kie",
        api_key=SEAART_KEY,
        provider_time=lambda: times.uniform(0.5, 2.0),
        chaos=Chaos(rate=0.2, seed=SEED + 3, hang_seconds=2.0),
        webhook_hmac_key=WEBHOOK_HMAC_KEY,
    )
    # In turns, so that every kind comes up among the twenty-odd tasks: half of them arrive as they should.
    kie.script_callbacks(*[mode for turn in range(30) for mode in ("normal", CALLBACK_MODES[1 + turn % 4])])
    log = tmp_path / "bot.log"
    db = tmp_path / "bot.sqlite3"
    env = bot_env() | {provider_class("kie").key_env: SEAART_KEY, "KIE_WEBHOOK_HMAC_KEY": WEBHOOK_HMAC_KEY}
    jobs = 20
    sent: list[FakeInteraction] = []
    first: BotProcess | None = None
    second: BotProcess | None = None
    async with FakeDiscord(bot_token=BOT_TOKEN) as discord_fake, kie:
        discord_fake.chaos(0.1, seed=SEED)
        config = write_config(tmp_path, discord_fake, ("kie", kie), deadline=30)
        port = free_port()
        # A job waiting for a callback is polled only every fallback_poll_seconds: a lost one costs that.
        config.write_text(
            config.read_text(encoding="utf-8")
            + f'[callbacks]\nenabled = true\npublic_url = "http://127.0.0.1:{port}"\nlisten_port = {port}\n'
            + "fallback_poll_seconds = 2\n"
            # A create whose answer a hang lost waits this long for its task's callback (bot/lost_tasks.py).
            + "lost_task_wait_seconds = 8\n",
            encoding="utf-8",
        )
        try:
            first = start_process(config, log, env)
            await discord_fake.wait_until_ready(timeout=30)
            await imagine(discord_fake, sent, 0, jobs // 2, batches=True)
            await discord_fake.wait_for(lambda: all(i.acknowledged for i in sent), timeout=15)
            await discord_fake.wait_for(lambda: bool(with_image(discord_fake, sent)), timeout=20)
            # Killed with tasks running: their callbacks come while no bot listens. It stays down until one has
            # (up to 5 s): a bot forked from the tests' fork server (tests/forked_cli.py) is back in a moment.
            await kill(first, discord_fake)
            with contextlib.suppress(TimeoutError):
                await discord_fake.wait_for(lambda: any(c.error for c in kie.callbacks), timeout=5)

            second = start_process(config, log, env)
            await discord_fake.wait_until_ready(timeout=30)
            await imagine(discord_fake, sent, jobs // 2, jobs - jobs // 2, batches=True)
            await settle(discord_fake, second, db, sent, log)
        finally:
            stop(first, second)

    _, result, report = judged(db, discord_fake, [kie], sent)
    assert result.delivered >= jobs // 2, report
    answers = Counter((c.mode.partition(":")[0], c.status) for c in kie.callbacks)
    # Callbacks woke jobs, forged ones were refused, and some came while the bot was down.
    assert answers[("normal", 200)] > 0, answers
    assert answers[("bad_signature", 401)] > 0 and not any(
        status not in (401, None) for mode, status in answers if mode == "bad_signature"
    ), answers
    assert any(status is None for _, status in answers), answers
    # A job whose task never called back (lost, or only with a forged signature) was delivered anyway.
    with contextlib.closing(sqlite3.connect(db)) as conn:
        states = dict(conn.execute("SELECT provider_job_id, state FROM jobs WHERE provider_job_id IS NOT NULL"))
    unheard = [t.task_id for t in kie.jobs.values() if t.callback_mode in ("lost", "bad_signature")]
    assert any(states.get(task) == "delivered" for task in unheard), (unheard, states)
    assert log_errors(log) == []
    assert WEBHOOK_HMAC_KEY not in log.read_text(errors="replace")


async def test_members_running_out_of_quota_under_chaos_and_a_kill_are_never_charged_past_their_limits(
    tmp_path: Path,
) -> None:
    """Three members with 2 units a day and one request generating at a time each send commands, each
    member one every 1.5 s or so (some of them batches of three, which cost three units), press Re-roll or
    Vary on what they get, and cancel some, under provider and Discord chaos, with the bot killed halfway.
    Each reservation is checked and written in one transaction (bot/quotas.py); replaying the ledger in the
    order it was written, none may take a member past either limit, a refused command or press is answered
    privately with the reason and leaves nothing behind, and the ledger balances: every image received
    charged once, the rest refunded."""
    times = random.Random(SEED)
    seaart = FakeSeaArt(
        api_key=SEAART_KEY,
        provider_time=lambda: times.uniform(0.3, 1.5),
        chaos=Chaos(rate=0.15, seed=SEED, hang_seconds=2.0),
    )
    limits = QuotaRules(daily=2, in_flight=1, deadline=20)  # write_config's deadline
    quota = {**GENEROUS_QUOTAS, "daily": limits.daily, "in_flight_per_user": limits.in_flight}
    log = tmp_path / "bot.log"
    db = tmp_path / "bot.sqlite3"
    sent: list[FakeInteraction] = []
    first: BotProcess | None = None
    second: BotProcess | None = None
    jobs = 24
    async with FakeDiscord(bot_token=BOT_TOKEN) as discord_fake, seaart:
        discord_fake.chaos(0.1, seed=SEED)
        discord_fake.lose_answers(0.1, seed=SEED)
        members = [discord_fake.member_id, discord_fake.snowflakes.next(), discord_fake.snowflakes.next()]
        config = write_config(tmp_path, discord_fake, ("seaart", seaart), quota=quota)
        actions = MemberActions(discord_fake, 0.2, seed=SEED, delay=(0.1, 1.5))
        reworks = Reworks(discord_fake, 0.4, seed=SEED, patience=30)
        try:
            first = start_process(config, log)
            await discord_fake.wait_until_ready(timeout=30)
            await imagine(
                discord_fake, sent, 0, jobs // 2, actions, batches=True, reworks=reworks, members=members, gap=0.5
            )
            await kill(first, discord_fake)
            second = start_process(config, log)
            await discord_fake.wait_until_ready(timeout=30)
            await imagine(
                discord_fake,
                sent,
                jobs // 2,
                jobs - jobs // 2,
                actions,
                batches=True,
                reworks=reworks,
                members=members,
                gap=0.5,
            )
            await actions.finish()
            await reworks.finish()
            sent += reworks.presses
            await settle(discord_fake, second, db, sent, log)
        finally:
            stop(first, second)

    record, result, report = judged(db, discord_fake, [seaart], sent, limits)
    # The limits did bind (members were turned away), and images still got through within them.
    assert result.refused["quota"] >= jobs // 4, report
    assert result.delivered >= len(members), report
    assert actions.problems(db, record.finished) == []
    charged = Counter(int(r["user_id"]) for r in db_rows(db, "SELECT user_id FROM ledger WHERE kind = 'commit'"))
    assert set(charged) <= set(members) and max(charged.values()) <= limits.daily, charged
    assert log_errors(log) == []


async def test_an_admin_changing_the_servers_room_under_chaos_and_a_kill_never_lets_more_images_start(
    tmp_path: Path,
) -> None:
    """Three members, each with one request generating at a time and three more waiting, the server two images at
    once, send commands (some batches of three) under provider and Discord chaos, the bot killed halfway, while an
    admin sets the server's images at once (``/quota server``) four times, between 1 and 4. Requests wait their
    turn for the member's room and the server's; raised, they start; lowered to 1, a waiting batch ends. No image may
    start past the limit in force then (between a change's sending and its answer either), and the soak's rules
    hold: nothing lost, nothing charged twice, the ledger balanced."""
    times = random.Random(SEED)
    seaart = FakeSeaArt(
        api_key=SEAART_KEY,
        provider_time=lambda: times.uniform(0.5, 2.0),
        chaos=Chaos(rate=0.1, seed=SEED, hang_seconds=2.0),
    )
    quota = {**GENEROUS_QUOTAS, "daily": 100, "in_flight_per_user": 1, "waiting_per_user": 3, "in_flight_per_guild": 2}
    log = tmp_path / "bot.log"
    db = tmp_path / "bot.sqlite3"
    sent: list[FakeInteraction] = []
    first: BotProcess | None = None
    second: BotProcess | None = None
    jobs = 24
    async with FakeDiscord(bot_token=BOT_TOKEN) as discord_fake, seaart:
        discord_fake.chaos(0.1, seed=SEED)
        members = [discord_fake.member_id, discord_fake.snowflakes.next(), discord_fake.snowflakes.next()]
        config = write_config(tmp_path, discord_fake, ("seaart", seaart), quota=quota)
        room = ServerRoom(discord_fake, 4, 2, seed=SEED)
        try:
            first = start_process(config, log)
            await discord_fake.wait_until_ready(timeout=30)
            changing = asyncio.create_task(room.act(spread=jobs * 0.4, start=time.monotonic()))
            await imagine(discord_fake, sent, 0, jobs // 2, batches=True, members=members, gap=0.4)
            await kill(first, discord_fake)
            second = start_process(config, log)
            await discord_fake.wait_until_ready(timeout=30)
            await imagine(discord_fake, sent, jobs // 2, jobs - jobs // 2, batches=True, members=members, gap=0.4)
            await changing
            await settle(discord_fake, second, db, sent, log)
        finally:
            stop(first, second)

    limits = QuotaRules(daily=100, in_flight=1, guild_in_flight=2, deadline=20, server_changes=tuple(room.made))
    _, result, report = judged(db, discord_fake, [seaart], sent, limits)
    assert len(room.made) == 4 and any(change.answered is not None for change in room.made), room.lines()
    assert result.delivered >= len(members), report
    assert log_errors(log) == []
    # Requests did wait their turn (so the changes had something to start or end).
    turns = log.read_text(encoding="utf-8").count("its turn has come")
    assert turns >= 1, report


async def test_a_ban_and_a_blocked_term_hold_from_the_moment_the_moderator_is_told_across_a_kill(
    tmp_path: Path,
) -> None:
    """Three members send commands (every seventh carries a term), press Re-roll, Vary or Edit on what they
    get and reply to it with an edit; part way, a moderator blocks the term and bans the second member,
    typing each again until the bot confirms it, under provider chaos and lost answers; then the bot is
    killed and a new one takes over. From each confirmation on, no command, press or reply by the banned
    member, and no command or press whose job would carry the term (a Re-roll of an older prompt too), may
    become a job, in either process. Last, the moderator pauses the whole server for a few seconds (/mod pause,
    then /mod resume): nothing made while it holds may become a job."""
    times = random.Random(SEED)
    seaart = FakeSeaArt(
        api_key=SEAART_KEY,
        provider_time=lambda: times.uniform(0.3, 1.5),
        chaos=Chaos(rate=0.1, seed=SEED, hang_seconds=2.0),
    )
    log = tmp_path / "bot.log"
    db = tmp_path / "bot.sqlite3"
    sent: list[FakeInteraction] = []
    first: BotProcess | None = None
    second: BotProcess | None = None
    async with FakeDiscord(bot_token=BOT_TOKEN) as discord_fake, seaart:
        discord_fake.lose_answers(0.1, seed=SEED)
        members = [discord_fake.member_id, discord_fake.snowflakes.next(), discord_fake.snowflakes.next()]
        config = write_config(tmp_path, discord_fake, ("seaart", seaart))
        moderator = Moderator(discord_fake, banned=members[1])
        pauser = Pauser(discord_fake)
        reworks = Reworks(discord_fake, 0.5, seed=SEED, patience=20, remixes=0.5)
        replies = ReplyEdits(discord_fake, 0.4, seed=SEED, patience=20, delay=(0.0, 1.0))

        def theirs() -> list[FakeInteraction]:
            return [c for c in with_image(discord_fake, sent) if c.user_id == members[1]]

        async def send(first: int, count: int) -> None:
            await imagine(
                discord_fake, sent, first, count, reworks=reworks, replies=replies, members=members, gap=0.2, term=True
            )

        try:
            first = start_process(config, log)
            await discord_fake.wait_until_ready(timeout=30)
            await send(0, 14)
            await discord_fake.wait_for(lambda: bool(theirs()), timeout=20)
            await moderator.act(0.0)
            # The banned member replies to an image they got before: no edit may come of it.
            await replies.reply_to(theirs()[0], live=True)
            await send(14, 7)
            await kill(first, discord_fake)
            second = start_process(config, log)
            await discord_fake.wait_until_ready(timeout=30)
            await send(21, 14)
            # Then the whole server paused for a few seconds (/mod pause, /mod resume), commands sent meanwhile.
            pausing = asyncio.create_task(pauser.act(0.0))
            await discord_fake.wait_for(lambda: pauser.pause.confirmed_at is not None, timeout=60)
            await send(35, 4)
            await pausing
            await send(39, 3)
            await reworks.finish()
            await replies.finish()
            sent += reworks.presses
            await settle(discord_fake, second, db, sent, log, replies)
        finally:
            stop(first, second)

    _, result, report = judged(db, discord_fake, [seaart], sent)
    paused_too_late = pauser.problems(db, sent, [r.message for r in replies.posted if r.message is not None])
    assert paused_too_late == [], "\n".join([*paused_too_late, *pauser.lines(0.0), report])
    paused, resumed = pauser.pause.confirmed_at, pauser.resume_typed
    assert paused is not None and resumed is not None and pauser.resume.confirmed_at is not None, pauser.lines(0.0)
    # Refused as paused, but the banned member's (a ban is checked first) and any press a ban or term refuses.
    during = [i for i in sent if paused < i.created_at < resumed and i.user_id != members[1]]
    assert during and result.refused["paused"] >= len(during) - result.refused["blocked term"], report
    banned_at, blocked_at = moderator.ban.confirmed_at, moderator.block.confirmed_at
    assert banned_at is not None and blocked_at is not None, "\n".join(moderator.lines(0.0))
    assert replies.problems(db) == [], "\n".join(replies.problems(db) + replies.lines(db))
    posted = [r.message for r in replies.posted if r.message is not None]
    stopped_too_late = moderator.problems(db, sent, posted)
    assert stopped_too_late == [], "\n".join([*stopped_too_late, report])
    # The rules had something to stop: commands by the banned member, and ones carrying the term, after them.
    after_ban = [i for i in sent if i.created_at > banned_at and i.user_id == members[1]]
    after_block = [i for i in sent[:35] if i.created_at > blocked_at and "pineapple" in (prompt_of(i) or "")]
    assert len(after_ban) >= 5 and len(after_block) >= 2, report
    # Refused as the ban says (cogs/policy.py checks a ban before the words), each named so in the report.
    assert result.refused["banned"] >= len(after_ban) and result.refused["other"] == 0, report
    assert log_errors(log) == []


async def test_a_kill_while_the_command_is_being_acknowledged_still_ends_the_job(tmp_path: Path) -> None:
    """The job row is written (held, with its reservation) before the bot defers the interaction; the
    bot dies while that defer is in flight, and Discord carries it out. The restarted bot must still end
    the job (image or explanation, reservation settled), not leave the member "thinking" for an hour."""
    log = tmp_path / "bot.log"
    db = tmp_path / "bot.sqlite3"
    first: BotProcess | None = None
    second: BotProcess | None = None
    async with FakeDiscord(bot_token=BOT_TOKEN) as discord_fake, FakeSeaArt(api_key=SEAART_KEY) as seaart:
        config = write_config(tmp_path, discord_fake, ("seaart", seaart), deadline=5)
        try:
            first = start_process(config, log)
            await discord_fake.wait_until_ready(timeout=30)
            discord_fake.hold_callbacks()
            interaction = await discord_fake.slash_command("imagine", {"prompt": "killed while deferring"})
            await discord_fake.wait_for(lambda: discord_fake.callbacks_waiting == 1, timeout=20)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            discord_fake.hold_callbacks(False)  # Discord got the defer: the member sees "thinking..."
            await discord_fake.wait_for(lambda: interaction.acknowledged, timeout=10)

            second = start_process(config, log)
            await discord_fake.wait_until_ready(timeout=30)
            await settle(discord_fake, second, db, [interaction], log)
        finally:
            stop(first, second)

    judged(db, discord_fake, [seaart], [interaction])


async def test_a_failed_jobs_final_message_survives_one_discord_503(tmp_path: Path) -> None:
    """One 503 from Discord (it sends them; discord.py's bot-token client does not retry a 503) on the
    edit that tells the member why the job failed: the job is over and refunded, and the member must
    still be told, not left looking at a progress embed."""
    log = tmp_path / "bot.log"
    db = tmp_path / "bot.sqlite3"
    proc: BotProcess | None = None
    async with FakeDiscord(bot_token=BOT_TOKEN) as discord_fake, FakeSeaArt(api_key=SEAART_KEY) as seaart:
        config = write_config(tmp_path, discord_fake, ("seaart", seaart))
        try:
            proc = start_process(config, log)
            await discord_fake.wait_until_ready(timeout=30)
            seaart.script("content_blocked")
            # The edit that says why (whichever route it takes), once.
            discord_fake.fail_next(
                "PATCH", r"/messages/", status=503, match=lambda r: "Blocked by" in json.dumps(r.json or {})
            )
            interaction = await discord_fake.slash_command("imagine", {"prompt": "blocked, then a 503"})
            await discord_fake.wait_for(lambda: any(r.status == 503 for r in discord_fake.requests), timeout=20)
            await settle(discord_fake, proc, db, [interaction], log)
        finally:
            stop(proc)

    judged(db, discord_fake, [seaart], [interaction])
