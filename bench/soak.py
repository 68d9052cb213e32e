"""The fault soak: the REAL bot under a flaky provider, a flaky Discord and hard kills; nothing may be lost.

The bot runs as its own process (`python -m bot run`, bench/harness.py) against fakes in this process:
  * the --providers fakes (FakeSeaArt, FakeKie as Kie or sinancode, FakeSegmind on its v2 queue, in time
    mode: each job takes --min..--max s; FakeGemini, which answers a create with the image) with chaos:
    --chaos of each one's API calls answer 429 (in that provider's words: Retry-After, Segmind's reset
    time, Gemini's RetryInfo; Kie names no wait), a 5xx, hang (the work is done, the
    answer held --hang s), or a malformed body (bot/testing/providers/_base.py Chaos); --faults adds
    hostile answers (drip: a body that never ends; huge: 256 MB of JSON; deep: JSON nested past the
    parser). With two, the bot fails jobs over from the first to the second (a 5xx or a 429 past the
    retry budget on the create), which must never make a job twice: a hung or malformed create may
    have made the task;
    and for --outage seconds while the bot runs undisturbed (centred before its first restart), the first
    refuses every create with a 503 (a provider down for new work: what sends jobs to the second);
  * FakeDiscord with chaos on message edits and webhook calls: --discord-chaos of them answer 429 (with
    retry_after, as Discord does) or a 5xx (bot/testing/discord/driver.py FakeDiscord.chaos); and
    --lost-answers of the bot's answers to commands and buttons, and of its posts (replies, notes,
    DMs), are carried out and then answered with a 5xx (FakeDiscord.lose_answers): the bot must find
    the message it cannot tell it made, and a post discord.py sends again must not make a second;
  * --kills SIGKILLs of the bot process while the commands are going out, each followed by a restart
    on the same database; and --terms graceful stops (SIGTERM, as a deploy or `docker stop` sends),
    among the kills, each of which must end with the process exiting 0 by itself within its shutdown
    grace (plus 10 s), then a restart;
  * --channel-delete: that share of the commands goes to a second channel, which a moderator deletes three
    quarters into the sending (CHANNEL_DELETE, or unseen if no bot is connected then): its jobs must end
    cancelled and uncharged like those whose message was deleted;
  * --db-locks: that many times during the sending, another program (this script) holds the bot's
    database's write lock for --db-lock-seconds (as a DB browser with an edit not yet written does):
    every write of the bot waits its busy_timeout and fails meanwhile; commands must still be answered
    in Discord's 3 s (the fake Discord refuses a later answer, as Discord does), and a create answered
    meanwhile must be kept, not abandoned;
  * members who change their minds: --cancels of the commands get their Cancel button pressed or their
    message deleted (half each; half of the deletions by a ❌ reaction the bot carries out) 0.2 to --max + 1 s
    after they were sent (bot/testing/soak.py MemberActions), kills and faults notwithstanding.
  * batches: --batches of the commands ask for count:2 to 4 (one job per candidate, one shared message
    and one Cancel for all of them), half of them by choices in braces instead (``..., {at dawn, at noon}``:
    a prompt per candidate, bot/permutations.py); 15% of all commands give a style reference as Midjourney's
    members do, ``--sref <an image's link>`` (bot/reference_roles.py: the provider is sent what it is for);
  * members who keep working: once --reworks of the commands have their image, Vary, Re-roll, Edit or Use as
    reference (its form filled in), Re-render 2K, Zoom out or the message menu's remix is used on it
    (bot/testing/soak.py Reworks), a new job in a new message, judged as a command is; --remixes of the
    Vary, Edit, zoom out and pan steps get Change prompt pressed under their own image once it shows (that
    step again with other words); some react ✉️ instead (a copy by DM), while the bot is down too (Discord
    tells nobody: the bot reads it back when it is up, cogs/missed_reactions.py), and a bystander reacts ✉️ on
    a share of their messages while the image is still being made (the copy comes once it shows,
    cogs/image_waits.py); no ✉️ may bring two copies, and the report counts those on images shown that brought
    none;
  * members who reply: --replies of the single-image commands get a reply asking for an edit once their
    image shows (bot/testing/soak_replies.py; --early-replies of those while it is still being made, which
    cogs/early_replies.py carries out once it shows), live if the bot is on the gateway, else while it is away
    (Discord never delivers those; the bot must find them in the channel's history when back). Each must
    be answered by exactly one reply of the bot's that ends final, every job it caused settled;
  * members who @mention the bot: with --mentions, that share of the commands is followed by their member writing
    "@Bananacord <words>" (a fifth of them chatter) in the channel, live or while the bot is away
    (bot/testing/soak_mentions.py): no mention may be offered Imagine this twice, through kills and readings of
    the history, nor chatter at all.
Every /imagine carries its own prompt. Quotas are on with limits no soak reaches, so the ledger is
exercised; unless --quota-daily is given: then the commands come from --members members in turn (seeded),
each allowed that many units a day and --in-flight requests generating at once, so members run out
mid-run (their presses, replies and batches too) and the audit replays the ledger to check that no
reservation took a member past either limit, kills and faults notwithstanding. With --server-changes N, an
admin sets the server's images at once (/quota server) N times during the sending, and every image's start is
held to the limit in force then (bot/testing/soak_server_room.py).
With --moderation, a moderator blocks a term every seventh prompt carries and bans the second member (so
--members 2 or more) --moderation seconds into the sending, typing each command again until the bot
confirms it (bot/testing/soak_moderation.py): no command or press made after a confirmation may become a
job it forbids.
With --pause S, a moderator pauses image making in the whole server S s into the sending for a few seconds, typing
/mod pause and then /mod resume until the bot confirms each (bot/testing/soak_moderation.py Pauser): no command,
press or reply made while it holds may become a job.
With --ping-after 0, every request's end pings its member (cogs/ready_pings.py), so the pings meet the
faults too: Discord's 5xx on a post it made, kills between an end and its ping (the next start's sweep owes it);
no request may be pinged twice, and no ping may mention anyone but its member.
After the commands, the bot gets --drain seconds to bring every job to an end; then it is stopped and
bot/testing/soak.py judges the run: jobs submitted, delivered, failed with a clear message,
lost (must be 0), created twice at a provider (0: no more tasks, summed over the providers, than the
command made jobs), charged twice (0), and the ledger's balance.
The exit status is 1 if any invariant fails, with the offending jobs listed.

Run from the project root with the venv active: `python bench/soak.py` (about 3 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, get_args

from harness import (
    BOT_TOKEN,
    PROVIDER_KEY,
    BotProcess,
    BotSource,
    Config,
    base_config,
    bench_folder,
    kill_bot,
    machine,
    render_config,
    start_bot,
    stop_bot,
)

from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.discord.faults import CALLBACK_PATHS
from bot.testing.providers import Chaos, FakeGemini, FakeKie, FakeSeaArt, FakeSegmind
from bot.testing.providers._base import FAULTS, FakeProviderServer, Fault, ImageStyle, make_png
from bot.testing.serving import free_port
from bot.testing.soak import (
    GENEROUS_QUOTAS,
    Audit,
    MemberActions,
    QuotaRules,
    Reworks,
    ServerRoomChange,
    audit,
    log_errors,
    log_secrets,
    ping_audit,
    pings_due,
    provider_record,
    providers_not_told,
    unpinged,
)
from bot.testing.soak_mentions import Mentions
from bot.testing.soak_moderation import PAUSE_SECONDS, Moderator, Pauser, with_term
from bot.testing.soak_replies import ReplyEdits
from bot.testing.soak_server_room import ServerRoom


@dataclass(frozen=True)
class Plan:
    jobs: int
    spread: float
    low: float
    high: float
    chaos: float
    discord_chaos: float
    hang: float
    faults: tuple[Fault, ...]
    retry_after: str
    request_timeout: float
    kills: int
    terms: int
    cancels: float
    batches: float
    reworks: float
    remixes: float
    replies: float
    lost_answers: float
    providers: tuple[str, ...]
    outage: float
    deadline: float
    drain: float
    seed: int
    keep: bool
    log_level: str = "INFO"
    images: ImageStyle = "gradient"
    channel_delete: float = 0.0  # share of the commands sent in a second channel, deleted mid-run
    db_locks: int = 0  # times another program holds the database's write lock during the sending
    db_lock_seconds: float = 8.0  # for this long each
    busy_timeout: float | None = None  # [database] busy_timeout_seconds (None: the bot's default, 5 s)
    members: int = 1  # the commands come from this many members, in seeded turns
    quota_daily: int | None = None  # units a member may use a day (None: limits no soak reaches)
    in_flight: int = 2  # requests a member may have generating at once, with quota_daily
    waiting: int = 3  # requests a member past that may have waiting their turn (the bot's default, 3)
    guild_in_flight: int | None = None  # images the server may have generating at once, with quota_daily
    guild_monthly: int | None = None  # units the server may use a month, with quota_daily
    moderation: float | None = None  # seconds into the sending when a moderator blocks a term and bans a member
    pause: float | None = None  # seconds into the sending when a moderator pauses the server (for PAUSE_SECONDS)
    callbacks: bool = False  # kie.ai calls the bot back (CALLBACK_MIX: some lost, replayed, forged or late)
    ping_after: float | None = None  # [imagine] ping_after_seconds (None: the bot's default, 45 s)
    server_changes: int = 0  # times an admin changes the server's images at once while sending, with quota_daily
    mentions: float = 0.0  # share of the commands their member follows with an @mention of the bot with words
    early_replies: float = 0.3  # share of the replies posted while their image is still being made

    def quotas(self) -> dict[str, Any]:
        """The [quotas] section the bot runs with."""
        if self.quota_daily is None:
            return dict(GENEROUS_QUOTAS)
        server = {"in_flight_per_guild": self.guild_in_flight or GENEROUS_QUOTAS["in_flight_per_guild"]}
        if self.guild_monthly is not None:
            server["guild_monthly_units"] = self.guild_monthly
        member = {"daily": self.quota_daily, "in_flight_per_user": self.in_flight, "waiting_per_user": self.waiting}
        return {**GENEROUS_QUOTAS, **member, **server}

    def limits(self, server_changes: Sequence[ServerRoomChange] = ()) -> QuotaRules | None:
        """What the audit holds the ledger to: the binding quotas, if any, with the server's images at once as an
        admin changed them (``server_changes``)."""
        if self.quota_daily is None:
            return None
        return QuotaRules(
            self.quota_daily,
            self.in_flight,
            self.guild_in_flight,
            self.guild_monthly,
            self.waiting,
            deadline=self.deadline,
            server_changes=tuple(server_changes),
        )


@dataclass
class DoomedChannel:
    """A second channel that takes a share of the commands and is deleted three quarters into the sending
    (CHANNEL_DELETE, or, when no bot is connected then, deleted unseen)."""

    channel_id: int
    share: float
    sent: int = 0
    deleted: str = ""  # how and when: "live at N s" or "while the bot was away at N s"

    def pick(self, discord_fake: FakeDiscord, draw: random.Random) -> int | None:
        if self.channel_id in discord_fake.channels and draw.random() < self.share:
            self.sent += 1
            return self.channel_id
        return None

    async def delete_at(self, discord_fake: FakeDiscord, delay: float, began: float) -> None:
        await asyncio.sleep(delay)
        try:
            await discord_fake.delete_channel(self.channel_id)
            how = "live"
        except TimeoutError:  # no bot connected for 10 s: it finds the channel gone when it is back
            discord_fake.remove_channel(self.channel_id)
            how = "while the bot was away"
        self.deleted = f"{how} at {time.monotonic() - began:.1f} s"


async def hold_database_locks(db: Path, plan: Plan, began: float) -> list[str]:
    """--db-locks times, evenly through the sending (between the restarts' moments), hold the database's
    write lock for --db-lock-seconds from this process, as another program would; what happened, for the
    report."""
    held: list[str] = []
    for n in range(plan.db_locks):
        at = began + plan.spread * (n + 0.5) / plan.db_locks
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        other = sqlite3.connect(db, isolation_level=None, timeout=30)
        try:
            other.execute("BEGIN IMMEDIATE")  # waits (blocking this loop) while the bot is mid-write: ms
            taken = time.monotonic()
            await asyncio.sleep(plan.db_lock_seconds)
            other.execute("ROLLBACK")
            held.append(f"{taken - began:.1f}-{time.monotonic() - began:.1f} s")
        finally:
            other.close()
    return held


# What a graceful stop gives the steps talking to a provider ([jobs] shutdown_grace_seconds, the default).
SHUTDOWN_GRACE = 20.0

LOST_ANSWER_PATHS = rf"{CALLBACK_PATHS}|^/channels/\d+/messages$"

# The fakes a soak can run, by provider name; all take chaos (bot/testing/providers/_base.py), all but Gemini
# time mode too (Gemini answers a create with the image: it has no job time). Segmind runs its v2 queue.
SOAK_PROVIDERS = ("seaart", "kie", "sinancode", "segmind", "gemini")
# --callbacks: how the fake kie.ai delivers each task's callback (bot/testing/providers/kie.py), drawn per
# task: most arrive, some never do (the job must still be polled to its end), some are replayed, signed
# with another key or sent after the job was polled to its end; and any sent while the bot is down are lost.
CALLBACK_MIX = (("normal", 0.55), ("lost", 0.15), ("twice", 0.1), ("bad_signature", 0.1), ("late:6", 0.1))
WEBHOOK_HMAC_KEY = "bench-webhook-hmac-key"
# A job expecting a callback is polled this often anyway ([callbacks] fallback_poll_seconds): short enough
# that a lost callback's job ends well within the soak's deadline.
CALLBACK_FALLBACK_POLL = 10.0


def make_fakes(plan: Plan) -> dict[str, FakeProviderServer[Any]]:
    """One fake per provider of the plan, each with its own seeded provider times and chaos."""
    fakes: dict[str, FakeProviderServer[Any]] = {}
    for index, name in enumerate(plan.providers):
        times = random.Random(f"{plan.seed}-{name}")
        chaos = Chaos(
            rate=plan.chaos,
            seed=plan.seed + 1000 * index,
            faults=plan.faults,
            hang_seconds=plan.hang,
            retry_after=plan.retry_after,
        )
        if name == "gemini":
            fakes[name] = FakeGemini(api_key=PROVIDER_KEY, chaos=chaos, images=plan.images)
            continue
        options: dict[str, Any] = {
            "api_key": PROVIDER_KEY,
            "provider_time": lambda times=times: times.uniform(plan.low, plan.high),
            "chaos": chaos,
            "images": plan.images,
        }
        if name == "seaart":
            fakes[name] = FakeSeaArt(**options)
        elif name == "segmind":
            fakes[name] = FakeSegmind(**options)
        elif name == "kie" and plan.callbacks:
            kie = FakeKie(flavour="kie", webhook_hmac_key=WEBHOOK_HMAC_KEY, **options)
            modes = random.Random(f"{plan.seed}-callbacks")
            kinds, weights = zip(*CALLBACK_MIX, strict=True)
            # More than any soak creates: every create, retries and failovers included, draws its own.
            kie.script_callbacks(*modes.choices(kinds, weights, k=10 * plan.jobs))
            fakes[name] = kie
        else:
            fakes[name] = FakeKie(flavour="sinancode" if name == "sinancode" else "kie", **options)
    return fakes


def is_api_call(path: str) -> bool:
    return not path.startswith(("/files/", "/hostile/"))


def write_config(
    workdir: Path, discord_fake: FakeDiscord, fakes: dict[str, FakeProviderServer[Any]], plan: Plan
) -> Path:
    config: Config = base_config(discord_fake, workdir)
    for name in SOAK_PROVIDERS:
        fake = fakes.get(name)
        # Shorter than a chaos hang, so a held answer is a timeout the bot has to handle.
        section: dict[str, Any] = {"enabled": fake is not None, "request_timeout": plan.request_timeout}
        if fake is not None:
            section["base_url"] = fake.base_url
        config[f"providers.{name}"] = section
    # Failover in the order given (the first provider first).
    route = list(plan.providers)
    config["models"] = {"routes": {"nano_banana_2": route, "nano_banana_pro": route}, "failover": True}
    config["jobs"] = {
        "concurrency": 64,
        "deadline_seconds": plan.deadline,
        "progress_interval_seconds": 2.0,
        "shutdown_grace_seconds": SHUTDOWN_GRACE,
    }
    config["quotas"] = plan.quotas()
    if plan.callbacks:
        port = free_port()
        config["callbacks"] = {
            "enabled": True,
            "public_url": f"http://127.0.0.1:{port}",
            "listen_port": port,
            "fallback_poll_seconds": CALLBACK_FALLBACK_POLL,
        }
    if plan.busy_timeout is not None:
        config["database"]["busy_timeout_seconds"] = plan.busy_timeout
    if plan.ping_after is not None:
        config["imagine"] = {"ping_after_seconds": plan.ping_after}
    config[""] = {"log_level": plan.log_level}
    text, _ = render_config(config)
    path = workdir / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


# The share of commands asking for a shape other than a square (``send_through_restarts``).
SHAPED = 0.3
# The share of batches asked for by choices in braces rather than a count, and the choices they take from.
CHOSEN = 0.5
CHOICES = ("at dawn", "at noon", "at dusk", "at night")
# The share of commands given a style reference as Midjourney's members give one (``--sref <an image's link>``, half
# of them with a weight), an image posted in the channel before the sending: one reference more to fetch, a sentence
# more in the prompt sent.
STYLED = 0.15


async def send_through_restarts(
    discord_fake: FakeDiscord,
    prompts: list[str],
    plan: Plan,
    actions: MemberActions,
    reworks: Reworks,
    replies: ReplyEdits,
    members: list[int],
    doomed: DoomedChannel | None = None,
    mentions: Mentions | None = None,
) -> list[FakeInteraction]:
    """One /imagine per prompt, evenly over the plan's spread, each from one of ``members`` (seeded), a
    seeded share of them batches (count 2-4), a share (SHAPED) asking for a shape other than a square (so their
    images offer Make square and the pans a wide or tall image has), a share (STYLED) a style reference by an
    image's link after ``--sref``, each handed to ``actions``; a share of them
    in ``doomed``'s
    channel while it exists. A command due while
    the bot is down waits for the new process (the fake dispatches only to a live gateway connection)."""
    sent: list[FakeInteraction] = []
    batches = random.Random(f"{plan.seed}-batches")
    channels = random.Random(f"{plan.seed}-channels")
    who = random.Random(f"{plan.seed}-members")
    shapes = random.Random(f"{plan.seed}-shapes")
    styled = random.Random(f"{plan.seed}-styled")
    style = discord_fake.add_attachment(make_png(64, 64), "style.png", "image/png")["url"]
    start = time.monotonic()
    gap = plan.spread / (len(prompts) - 1) if len(prompts) > 1 else 0.0
    for index, prompt in enumerate(prompts):
        await asyncio.sleep(max(0.0, start + index * gap - time.monotonic()))
        options: dict[str, Any] = {"prompt": prompt, "resolution": "1K"}
        if batches.random() < plan.batches:
            count = batches.randint(2, 4)
            if batches.random() < CHOSEN:
                options["prompt"] = f"{prompt}, {{{', '.join(CHOICES[:count])}}}"
            else:
                options["count"] = count
        if shapes.random() < SHAPED:
            options["aspect_ratio"] = shapes.choice(("16:9", "3:2", "9:16"))
        if styled.random() < STYLED:
            # Half of them weighed, as Midjourney's members often do (``--sw``: a sentence of another strength).
            weight = f" --sw {styled.choice((25, 300))}" if styled.random() < 0.5 else ""
            options["prompt"] = f"{options['prompt']} --sref {style}{weight}"
        channel_id = doomed.pick(discord_fake, channels) if doomed is not None else None
        user_id = who.choice(members)
        for _ in range(6):
            if doomed is not None:
                # A bot to take it first: the channel may be deleted while the command waits for one.
                with contextlib.suppress(TimeoutError):
                    await discord_fake.wait_until_ready(timeout=10)
            if doomed is not None and channel_id is not None and channel_id not in discord_fake.channels:
                channel_id = None  # deleted while the command waited for a bot: it is typed elsewhere
                doomed.sent -= 1
            with contextlib.suppress(TimeoutError):
                sent.append(
                    await discord_fake.slash_command("imagine", options, channel_id=channel_id, user_id=user_id)
                )
                actions.after_sent(sent[-1])
                reworks.after_sent(sent[-1])
                replies.after_sent(sent[-1])
                if mentions is not None:
                    mentions.after_sent(sent[-1])
                break
        else:
            raise RuntimeError(f"no bot to send {prompt!r} to for a minute")
    return sent


@dataclass
class Run:
    audit: Audit
    restarts: int
    stops: list[str]  # each graceful stop: how long it took and how it ended
    drained_after: float | None
    wall: float
    provider_faults: dict[str, Counter[str]]  # by provider
    discord_faults: Counter[int]
    lost_answers: int  # interaction answers Discord carried out whose answer to the bot was a 5xx
    lost_posts: int  # the bot's own posts (replies, notes, DMs) Discord made whose answer was a 5xx
    provider_calls: dict[str, int]
    discord_calls: int
    member_actions: list[str]
    action_problems: list[str]
    reply_problems: list[str]
    envelope_problems: list[str]  # a ✉️ answered with more than one copy
    mention_problems: list[str]  # --mentions: one offered twice, chatter offered, an offer not saying what it should
    log_errors: list[str]  # the bot's ERROR and CRITICAL lines, every process's
    log_secrets: list[str]  # lines of the bot's log carrying its token or a provider's key (masked)
    channel_deleted: str = ""  # --channel-delete: what was sent there and how it went
    moderation: list[str] = field(default_factory=list)  # --moderation: how the moderator's commands went
    moderation_problems: list[str] = field(default_factory=list)  # jobs a confirmed rule should have stopped
    db_locks: list[str] = field(default_factory=list)  # --db-locks: when the lock was held
    callbacks: str = ""  # --callbacks: what the fake kie.ai sent and how the bot answered
    lost_creates: str = ""  # --callbacks: creates whose answer was lost, and how many were taken up
    pinged: int = 0  # requests whose end pinged their member (cogs/ready_pings.py)
    pings_due: int = 0  # requests whose end asks for a ping where every end pings (--ping-after 0)
    unpinged: list[str] = field(default_factory=list)  # those of them not pinged, with their owed row's state
    ping_problems: list[str] = field(default_factory=list)  # a request pinged twice, a ping mentioning others

    def problems(self) -> list[str]:
        return (
            self.audit.problems()
            + [f"cancel: {p}" for p in self.action_problems]
            + [f"reply: {p}" for p in self.reply_problems]
            + [f"envelope: {p}" for p in self.envelope_problems]
            + [f"mention: {p}" for p in self.mention_problems]
            + [f"moderation: {p}" for p in self.moderation_problems]
            + [f"bot log: {line}" for line in self.log_errors]
            + [f"credential in the bot's log: {line}" for line in self.log_secrets]
            + [f"graceful stop: {stop}" for stop in self.stops if not stop.startswith("exited 0")]
            + [f"ping: {p}" for p in self.ping_problems]
        )


def outage_start(spread: float, outage: float, restarts: int) -> float:
    """When the first provider's outage begins (seconds into the sending): centred in the stretch before the
    first restart, while the bot runs undisturbed, so that the creates it refuses are the bot's to move to the
    next provider. It began a quarter into the sending whatever the restarts, and with two kills and two
    SIGTERMs it fell on them (the first stop at a fifth, taking up to 7 s): seeds 164 and 165 moved no job."""
    if restarts == 0:
        return spread / 4
    before_first = spread / (restarts + 1)
    return max(0.5, (before_first - outage) / 2)


def restart_events(kills: int, terms: int) -> list[str]:
    """The order of the restarts: graceful stops and kills taking turns, a stop first."""
    events: list[str] = []
    for n in range(max(kills, terms)):
        events += ["SIGTERM"] if n < terms else []
        events += ["SIGKILL"] if n < kills else []
    return events


def stop_verdict(bot: BotProcess, took: float) -> str:
    """How a graceful stop went: "exited 0 after N s", or what went wrong (an error exit, or SIGKILLed
    after the bot outlived its shutdown grace by 10 s)."""
    code = bot.proc.returncode
    if code == 0:
        return f"exited 0 after {took:.1f} s"
    if code == -signal.SIGKILL:
        return f"still running {took:.0f} s after SIGTERM (grace {SHUTDOWN_GRACE:g} s): killed"
    return f"exited {code} after {took:.1f} s"


async def run_soak(plan: Plan) -> Run:
    fakes = make_fakes(plan)
    began = time.monotonic()
    with bench_folder("soak", plan.keep) as workdir:
        async with FakeDiscord(bot_token=BOT_TOKEN) as discord_fake, contextlib.AsyncExitStack() as stack:
            for fake in fakes.values():
                await stack.enter_async_context(fake)
            discord_fake.chaos(plan.discord_chaos, seed=plan.seed)
            if plan.db_locks:
                discord_fake.answer_window = 3.0  # as on Discord: a command answered later is refused
            # Commands' and buttons' answers, and the bot's own posts (its replies, notes and DMs).
            discord_fake.lose_answers(plan.lost_answers, seed=plan.seed, path_regex=LOST_ANSWER_PATHS)
            config = write_config(workdir, discord_fake, fakes, plan)
            db = workdir / "bot.sqlite3"
            env = BotSource().env({"KIE_WEBHOOK_HMAC_KEY": WEBHOOK_HMAC_KEY} if plan.callbacks else None)
            # Unique per run as well as per command: a prompt with more tasks than jobs is a double create.
            prompts = [f"soak {plan.seed}-{i}: a ripe banana on a blue plate" for i in range(plan.jobs)]
            if plan.moderation is not None:
                prompts = [with_term(prompt, i) for i, prompt in enumerate(prompts)]
            doomed = None
            if plan.channel_delete > 0:  # before the bot starts, so that its guild's channels include it
                doomed = DoomedChannel(discord_fake.add_channel("soak-doomed"), plan.channel_delete)
            bot: BotProcess | None = await start_bot(config, discord_fake, env)
            restarts = 0
            stops: list[str] = []
            drained_after: float | None = None
            locks_held: list[str] = []
            locking: asyncio.Task[list[str]] | None = None
            moderating: asyncio.Task[None] | None = None
            pausing: asyncio.Task[None] | None = None
            changing: asyncio.Task[None] | None = None
            room = ServerRoom(discord_fake, plan.server_changes, plan.guild_in_flight or 3, seed=plan.seed)
            try:
                print(
                    f"sending {plan.jobs} commands over {plan.spread:g} s, {plan.kills} kill(s) ...",
                    file=sys.stderr,
                    flush=True,
                )
                actions = MemberActions(
                    discord_fake, plan.cancels, seed=plan.seed, delay=(0.2, plan.high + 1), crosses=True
                )
                members = [discord_fake.member_id] + [discord_fake.snowflakes.next() for _ in range(plan.members - 1)]
                moderator = Moderator(discord_fake, members[1]) if plan.moderation is not None else None
                pauser = Pauser(discord_fake) if plan.pause is not None else None
                reworks = Reworks(discord_fake, plan.reworks, seed=plan.seed, remixes=plan.remixes)
                replies = ReplyEdits(discord_fake, plan.replies, seed=plan.seed, early=plan.early_replies)
                mentions = Mentions(discord_fake, plan.mentions, seed=plan.seed)
                sending = asyncio.create_task(
                    send_through_restarts(
                        discord_fake, prompts, plan, actions, reworks, replies, members, doomed, mentions
                    )
                )
                start = time.monotonic()
                if moderator is not None and plan.moderation is not None:
                    moderating = asyncio.create_task(moderator.act(plan.moderation))
                if pauser is not None and plan.pause is not None:
                    pausing = asyncio.create_task(pauser.act(plan.pause))
                if plan.server_changes:
                    changing = asyncio.create_task(room.act(plan.spread, start))
                deleting = (
                    asyncio.create_task(doomed.delete_at(discord_fake, plan.spread * 3 / 4, start)) if doomed else None
                )
                locking = asyncio.create_task(hold_database_locks(db, plan, start))
                first_fake = fakes[plan.providers[0]]
                events = restart_events(plan.kills, plan.terms)
                outage = asyncio.get_running_loop().call_later(
                    outage_start(plan.spread, plan.outage, len(events)),
                    lambda: first_fake.outage(plan.outage) if plan.outage > 0 else None,
                )
                for n, event in enumerate(events):
                    at = start + plan.spread * (n + 1) / (len(events) + 1)
                    await asyncio.sleep(max(0.0, at - time.monotonic()))
                    assert bot is not None
                    began_stop = time.monotonic()
                    if event == "SIGTERM":
                        await stop_bot(bot, timeout=SHUTDOWN_GRACE + 10)
                        stops.append(stop_verdict(bot, time.monotonic() - began_stop))
                    else:
                        await kill_bot(bot)
                    print(
                        f"  {event} {n + 1} at {began_stop - start:.1f} s"
                        f"{'; ' + stops[-1] if event == 'SIGTERM' else ''}; restarting",
                        file=sys.stderr,
                    )
                    bot = None
                    bot = await start_bot(config, discord_fake, env)
                    restarts += 1
                sent = await sending
                locks_held = await locking
                if moderating is not None:
                    await moderating
                if pausing is not None:
                    await pausing
                if changing is not None:
                    await changing
                outage.cancel()
                if deleting is not None:
                    await deleting
                await actions.finish()
                await reworks.finish()
                await replies.finish()
                await mentions.finish()
                # A command still being answered would count as unanswered, and the drain would end at once.
                with contextlib.suppress(TimeoutError):
                    await discord_fake.wait_for(lambda: all(i.acknowledged for i in sent), timeout=15)
                print(f"draining (up to {plan.drain:g} s) ...", file=sys.stderr, flush=True)
                drained_at = time.monotonic()
                deadline = drained_at + plan.drain
                while time.monotonic() < deadline:
                    if not audit(db, discord_fake, {}, sent + reworks.presses).lost and not replies.problems(db):
                        drained_after = time.monotonic() - drained_at
                        break
                    await asyncio.sleep(0.5)
                if plan.ping_after == 0:
                    # The last ends' pings go just after their rows, one Discord failed after a few seconds: given
                    # that before the bot is stopped (a stop here has no next start to send them).
                    with contextlib.suppress(TimeoutError):
                        await discord_fake.wait_for(lambda: not unpinged(db, discord_fake), timeout=20)
            finally:
                for task in (locking, moderating, pausing, changing):
                    if task is not None and not task.done():
                        task.cancel()
                if bot is not None:
                    await stop_bot(bot)
            record = provider_record(fakes.values())
            verdict = audit(
                db,
                discord_fake,
                record.tasks,
                sent + reworks.presses,
                quotas=True,
                limits=plan.limits(room.made),
                task_prompts=record.task_prompts,
            )
            member_actions = actions.lines(db, record.finished) + reworks.lines(db) + replies.lines(db)
            member_actions += mentions.lines() if plan.mentions else []
            reply_problems = replies.problems(db)
            envelope_problems = reworks.problems()
            moderation = (moderator.lines(start) if moderator is not None else []) + room.lines()
            moderation += pauser.lines(start) if pauser is not None else []
            posted = [r.message for r in replies.posted if r.message is not None]
            moderation_problems = moderator.problems(db, sent + reworks.presses, posted) if moderator else []
            moderation_problems += pauser.problems(db, sent + reworks.presses, posted) if pauser else []
            errors = log_errors(workdir / "bot.log")
            lost_creates = lost_create_line(workdir / "bot.log") if plan.callbacks else ""
            leaks = log_secrets(workdir / "bot.log", (BOT_TOKEN, PROVIDER_KEY, WEBHOOK_HMAC_KEY))
            action_problems = actions.problems(db, record.finished) + providers_not_told(
                db, record.cancels, record.finished
            )
            pinged, ping_problems = ping_audit(discord_fake)
            due, missing = pings_due(db), unpinged(db, discord_fake)
    return Run(
        audit=verdict,
        restarts=restarts,
        stops=stops,
        drained_after=drained_after,
        wall=time.monotonic() - began,
        provider_faults={name: Counter(e.fault for e in f.chaos_events) for name, f in fakes.items()},
        discord_faults=Counter(f.status for f in discord_fake.chaos_faults if not f.carried_out),
        lost_answers=sum(1 for f in discord_fake.chaos_faults if f.carried_out and f.path.endswith("/callback")),
        lost_posts=sum(1 for f in discord_fake.chaos_faults if f.carried_out and not f.path.endswith("/callback")),
        provider_calls={name: sum(1 for r in f.requests if is_api_call(r.path)) for name, f in fakes.items()},
        discord_calls=len(discord_fake.requests),
        member_actions=member_actions,
        action_problems=action_problems,
        reply_problems=reply_problems,
        envelope_problems=envelope_problems,
        mention_problems=mentions.problems(),
        log_errors=errors,
        log_secrets=leaks,
        channel_deleted=f"{doomed.sent} commands sent in it, deleted {doomed.deleted}" if doomed else "",
        db_locks=locks_held,
        callbacks=callback_line(fakes.get("kie")) if plan.callbacks else "",
        lost_creates=lost_creates,
        moderation=moderation,
        moderation_problems=moderation_problems,
        pinged=pinged,
        pings_due=due,
        unpinged=missing,
        ping_problems=ping_problems,
    )


def callback_line(kie: FakeProviderServer[Any] | None) -> str:
    """What kie.ai's callbacks were (by how the fake sent them) and what the bot answered them."""
    if not isinstance(kie, FakeKie):
        return "none (kie is not among the providers)"
    sent = Counter(c.mode.partition(":")[0] for c in kie.callbacks)
    answered = Counter(str(c.status) if c.status is not None else "unreached" for c in kie.callbacks)
    modes = ", ".join(f"{mode} {n}" for mode, n in sorted(sent.items()))
    answers = ", ".join(f"{status} {n}" for status, n in sorted(answered.items()))
    return f"{len(kie.callbacks)} sent ({modes or 'none'}); the bot answered: {answers or 'nothing'}"


def lost_create_line(log: Path) -> str:
    """From the bot's log: kie.ai creates whose answer was lost, and how many of their tasks a callback
    traced back to the job (bot/lost_tasks.py); the rest failed "uncertain" or were cancelled meanwhile."""
    text = log.read_text(errors="replace") if log.exists() else ""
    waited = text.count("never answered its create")
    taken = text.count("'s callback names its task")
    not_asked = text.count("could not ask whose it is")
    return f"{waited} waited for their task's callback, {taken} taken up by one; {not_asked} traces failed"


def report(run: Run, plan: Plan) -> None:
    print(f"machine: {machine()}")
    print(
        f"soak: {plan.jobs} /imagine over {plan.spread:g} s, provider time {plan.low:g}-{plan.high:g} s, "
        f"seed {plan.seed}; deadline {plan.deadline:g} s, request_timeout {plan.request_timeout:g} s, quotas on"
        + (
            f" ({plan.members} members, {plan.quota_daily} units a day and {plan.in_flight} in flight each, "
            f"{plan.waiting} waiting"
            + (f"; the server {plan.guild_in_flight} images in flight" if plan.guild_in_flight else "")
            + (f", {plan.guild_monthly} units a month" if plan.guild_monthly else "")
            + ");"
            if plan.quota_daily is not None
            else ";"
        )
        + f" {plan.images} results; the bot logs at {plan.log_level}"
    )
    print(
        f"providers {' -> '.join(plan.providers)} (failover in that order); {plan.batches:.0%} of the commands "
        f"are batches (count 2-4, {CHOSEN:.0%} of them by choices in braces); {STYLED:.0%} give a style reference "
        "(--sref <an image's link>)"
    )
    if plan.outage > 0:
        began = outage_start(plan.spread, plan.outage, len(restart_events(plan.kills, plan.terms)))
        print(f"outage: {plan.providers[0]} refused every create for {plan.outage:g} s from {began:g} s")
    for name, counted in run.provider_faults.items():
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(counted.items())) or "none"
        print(
            f"{name} chaos {plan.chaos:.0%} of API calls: {sum(counted.values())} faults in "
            f"{run.provider_calls[name]} calls ({faults}; hangs held {plan.hang:g} s)"
        )
    if run.callbacks:
        print(f"kie.ai callbacks (fallback poll every {CALLBACK_FALLBACK_POLL:g} s): {run.callbacks}")
        print(f"kie.ai creates whose answer was lost: {run.lost_creates}")
    if run.db_locks:
        print(f"the database's write lock held by another program at: {', '.join(run.db_locks)}")
    if run.channel_deleted:
        print(f"a second channel ({plan.channel_delete:.0%} of the commands while it lasted): {run.channel_deleted}")
    faults = ", ".join(f"{status} {n}" for status, n in sorted(run.discord_faults.items())) or "none"
    print(
        f"Discord chaos {plan.discord_chaos:.0%} of edits/webhook calls: {sum(run.discord_faults.values())} faults "
        f"({faults}) in {run.discord_calls} REST calls"
    )
    print(
        f"lost answers {plan.lost_answers:.0%} of interaction callbacks and of the bot's posts: {run.lost_answers}"
        f" callbacks and {run.lost_posts} posts carried out by Discord, then answered 5xx"
    )
    drained = f"{run.drained_after:.1f} s" if run.drained_after is not None else f"NOT within {plan.drain:g} s"
    stops = f" ({'; '.join(run.stops)})" if run.stops else ""
    print(
        f"restarts: {run.restarts} ({plan.kills} SIGKILL, {plan.terms} SIGTERM{stops}); drained after the last "
        f"command: {drained}; wall {run.wall:.0f} s"
    )
    for line in run.member_actions + run.moderation:
        print(line)
    after = "the bot's default" if plan.ping_after is None else f"{plan.ping_after:g} s"
    print(f"pings (after {after}): {run.pinged} requests pinged their member; {len(run.ping_problems)} problems")
    if plan.ping_after == 0:
        # Informative, not an invariant: the bot stopped at the end of the run leaves a ping Discord failed unsent
        # until its next start (a kill mid-run is followed by one, whose sweep sends what the kill left unowed).
        print(f"  requests whose end asks for a ping: {run.pings_due}; not pinged: {len(run.unpinged)}")
        for line in run.unpinged:
            print(f"    {line}")
    print()
    for line in run.audit.lines():
        print(line)
    problems = run.problems()
    print()
    if problems:
        print(f"INVARIANTS FAILED ({len(problems)}):")
        for problem in problems[:50]:
            print(f"  {problem}")
        if len(problems) > 50:
            print(f"  ... and {len(problems) - 50} more")
    else:
        print(
            "all invariants hold: 0 lost, 0 created twice, no job took another's task, 0 charged twice, ledger "
            "balanced, every failure explained, every Cancel taken kept and its provider asked to stop, every reply "
            "answered once, no request pinged twice, no error and no credential in the bot's log"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200, help="/imagine commands (200)")
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which they are sent (60)")
    parser.add_argument("--min", type=float, default=1.0, help="shortest provider time, s (1)")
    parser.add_argument("--max", type=float, default=5.0, help="longest provider time, s (5)")
    parser.add_argument("--chaos", type=float, default=0.2, help="share of provider API calls that fail (0.2)")
    parser.add_argument("--discord-chaos", type=float, default=0.1, help="share of edits/webhook calls (0.1)")
    parser.add_argument("--hang", type=float, default=5.0, help="seconds a hung provider answer is held (5)")
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"provider faults drawn, comma-separated, from {', '.join(get_args(Fault))} ({','.join(FAULTS)})",
    )
    parser.add_argument(
        "--retry-after",
        default="1",
        help="the wait a 429 fault asks for, seconds (1; Kie asks none); 10 or more makes creates leave the provider",
    )
    parser.add_argument("--request-timeout", type=float, default=2.0, help="the bot's provider timeout, s (2)")
    parser.add_argument("--kills", type=int, default=2, help="SIGKILL + restart while sending (2)")
    parser.add_argument(
        "--terms", type=int, default=0, help="graceful stops (SIGTERM) + restart while sending, among the kills (0)"
    )
    parser.add_argument(
        "--cancels", type=float, default=0.1, help="share of commands cancelled or deleted by their member (0.1)"
    )
    parser.add_argument("--batches", type=float, default=0.2, help="share of commands asking for count:2-4 (0.2)")
    parser.add_argument(
        "--reworks",
        type=float,
        default=0.1,
        help="share of commands whose image is worked on: Vary, Re-roll, Edit, Re-render, remix (0.1)",
    )
    parser.add_argument(
        "--remixes",
        type=float,
        default=0.3,
        help="share of those Vary, Edit, zoom out and pan steps then reworded by Change prompt under their image (0.3)",
    )
    parser.add_argument(
        "--replies", type=float, default=0.1, help="share of single-image commands whose image gets a reply (0.1)"
    )
    parser.add_argument(
        "--early-replies",
        type=float,
        default=0.3,
        help="share of those replies posted while the image is still being made (0.3)",
    )
    parser.add_argument(
        "--mentions",
        type=float,
        default=0.0,
        help="share of the commands whose member then @mentions the bot with words, live or while it is away (0)",
    )
    parser.add_argument(
        "--lost-answers",
        type=float,
        default=0.05,
        help="share of interaction answers Discord carries out and then answers with a 5xx (0.05)",
    )
    parser.add_argument(
        "--providers",
        default="seaart,kie",
        help=f"providers to run, in failover order, comma-separated, from {', '.join(SOAK_PROVIDERS)} (seaart,kie)",
    )
    parser.add_argument(
        "--outage", type=float, default=10.0, help="seconds the first provider refuses every create (10)"
    )
    parser.add_argument(
        "--channel-delete",
        type=float,
        default=0.0,
        help="share of the commands sent in a second channel, which a moderator deletes three quarters into the"
        " sending (CHANNEL_DELETE; unseen if no bot is connected then): its jobs must end cancelled, uncharged (0)",
    )
    parser.add_argument(
        "--db-locks",
        type=int,
        default=0,
        help="times another program holds the bot database's write lock during the sending (0)",
    )
    parser.add_argument(
        "--db-lock-seconds", type=float, default=8.0, help="how long each --db-locks lock is held, s (8)"
    )
    parser.add_argument(
        "--busy-timeout",
        type=float,
        metavar="S",
        help="[database] busy_timeout_seconds: how long each write waits for a --db-locks lock (the bot's 5 s)",
    )
    parser.add_argument("--members", type=int, default=1, help="members the commands come from, in turns (1)")
    parser.add_argument(
        "--quota-daily", type=int, metavar="UNITS", help="units a member may use a day (default: no limit reached)"
    )
    parser.add_argument(
        "--in-flight", type=int, default=2, help="requests a member may have generating at once, with --quota-daily (2)"
    )
    parser.add_argument(
        "--waiting",
        type=int,
        default=3,
        metavar="N",
        help="requests a member past --in-flight may have waiting their turn, with --quota-daily (3; 0: refused)",
    )
    parser.add_argument(
        "--guild-in-flight", type=int, metavar="N", help="images the server may have generating, with --quota-daily"
    )
    parser.add_argument(
        "--guild-monthly", type=int, metavar="UNITS", help="units the server may use a month, with --quota-daily"
    )
    parser.add_argument(
        "--server-changes",
        type=int,
        default=0,
        metavar="N",
        help="N times while sending, an admin sets the server's images at once (/quota server) to 1 to twice "
        "--guild-in-flight (3 if not given), with --quota-daily (0)",
    )
    parser.add_argument(
        "--moderation",
        type=float,
        metavar="S",
        help="S s into the sending, a moderator blocks a term and bans the second member (needs --members 2+)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        metavar="S",
        help=f"S s into the sending, a moderator pauses image making in the server for {PAUSE_SECONDS:g} s "
        "(/mod pause, then /mod resume): nothing made meanwhile may become a job",
    )
    parser.add_argument(
        "--callbacks",
        action="store_true",
        help="kie.ai calls the bot back when a task ends; some callbacks lost, replayed, forged or late",
    )
    parser.add_argument(
        "--ping-after",
        type=float,
        metavar="S",
        help="[imagine] ping_after_seconds (the bot's default: 45, which a soak's jobs seldom take); 0 pings every end",
    )
    parser.add_argument("--deadline", type=float, default=90.0, help="[jobs] deadline_seconds (90)")
    parser.add_argument("--drain", type=float, default=240.0, help="seconds to let every job end (240)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the chaos and the provider times (1)")
    parser.add_argument("--keep", action="store_true", help="keep the config, log and database")
    parser.add_argument(
        "--images",
        default="gradient",
        choices=("gradient", "noise"),
        help="results: small gradients (gradient) or incompressible PNGs as heavy as real ones (noise: 3 MB at"
        " 1K; Gemini's come as 4 MB of base64 inside its answer)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO"),
        help="the bot's log level (INFO); at DEBUG more of what it does is logged, none of it a credential",
    )
    args = parser.parse_args()
    if args.server_changes and args.quota_daily is None:
        parser.error("--server-changes sets a quota's limit: give --quota-daily too")
    if args.moderation is not None and args.members < 2:
        parser.error("--moderation bans the second member: give --members 2 or more")
    faults = tuple(f.strip() for f in args.faults.split(",") if f.strip())
    if not faults or any(f not in get_args(Fault) for f in faults):
        parser.error(f"--faults: one or more of {', '.join(get_args(Fault))} (got {args.faults!r})")
    providers = tuple(p.strip() for p in args.providers.split(",") if p.strip())
    if not providers or any(p not in SOAK_PROVIDERS for p in providers) or len(set(providers)) != len(providers):
        parser.error(f"--providers: one or more of {', '.join(SOAK_PROVIDERS)}, each once (got {args.providers!r})")
    plan = Plan(
        jobs=args.jobs,
        spread=args.spread,
        low=args.min,
        high=args.max,
        chaos=args.chaos,
        discord_chaos=args.discord_chaos,
        hang=args.hang,
        faults=cast(tuple[Fault, ...], faults),
        retry_after=args.retry_after,
        request_timeout=args.request_timeout,
        kills=args.kills,
        terms=args.terms,
        cancels=args.cancels,
        batches=args.batches,
        reworks=args.reworks,
        remixes=args.remixes,
        replies=args.replies,
        early_replies=args.early_replies,
        lost_answers=args.lost_answers,
        providers=providers,
        outage=args.outage,
        deadline=args.deadline,
        drain=args.drain,
        seed=args.seed,
        keep=args.keep,
        log_level=args.log_level,
        images=args.images,
        channel_delete=args.channel_delete,
        db_locks=args.db_locks,
        db_lock_seconds=args.db_lock_seconds,
        busy_timeout=args.busy_timeout,
        members=args.members,
        quota_daily=args.quota_daily,
        in_flight=args.in_flight,
        waiting=args.waiting,
        moderation=args.moderation,
        pause=args.pause,
        guild_in_flight=args.guild_in_flight,
        guild_monthly=args.guild_monthly,
        callbacks=args.callbacks,
        ping_after=args.ping_after,
        server_changes=args.server_changes,
        mentions=args.mentions,
    )
    run = asyncio.run(run_soak(plan))
    report(run, plan)
    raise SystemExit(1 if run.problems() else 0)


if __name__ == "__main__":
    main()
