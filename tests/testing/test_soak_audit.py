"""The soak's judge (bot/testing/soak.py) catches what it is there to catch: a batch message that does not
show its candidates' ends, more provider tasks than a command made jobs, a Cancel broken for a batch, a
member's reply not answered exactly once (bot/testing/soak_replies.py).

The soak runs (tests/e2e/test_soak.py, bench/soak.py) show it passing a healthy bot; these show each of
its batch and failover checks failing on a run that breaks the rule, so a green soak means something.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from bot.held_jobs import UNCONFIRMED_AT_RESTART
from bot.reference_roles import roles_sentence
from bot.render import COLOUR_DONE, COLOUR_PROGRESS, REFUSED_MARK
from bot.testing.discord import FakeDiscord, FakeInteraction, FakeMessage
from bot.testing.soak import (
    MemberAction,
    MemberActions,
    QuotaRules,
    ServerRoomChange,
    audit,
    batch_verdict,
    log_secrets,
    tasks_per_prompt,
)
from bot.testing.soak_replies import ReplyEdits, SoakReply

_COLUMNS = (
    "id",
    "state",
    "interaction_id",
    "message_id",
    "error_message",
    "error_category",
    "batch_id",
    "batch_index",
    "tried_providers",
    "charge_state",
    "provider_job_id",
    "request_json",
)


def job(
    job_id: str,
    state: str,
    *,
    index: int | None = None,
    error: str | None = None,
    task: str | None = None,
    charge: str | None = None,
) -> dict[str, Any]:
    """A job row; ``charge``: its charge_state (None: quotas were off, as in most of these soaks)."""
    return {
        "id": job_id,
        "state": state,
        "interaction_id": 7,
        "message_id": 70,
        "error_message": error,
        "error_category": "transient" if error else None,
        "batch_id": "b1" if index is not None else None,
        "batch_index": index,
        "tried_providers": "[]",
        "charge_state": charge,
        "provider_job_id": task,
        "request_json": json.dumps({"prompt": "three bananas"}),
    }


def batch_message(lines: list[str], *, images: int, colour: int = COLOUR_DONE.value) -> FakeMessage:
    """A batch's shared message as the fake holds it (the embed as bot/render.py batch_embed draws it)."""
    embed = {"title": "🍌 2 of 3 ready", "color": colour, "fields": [{"name": "Images", "value": "\n".join(lines)}]}
    return FakeMessage(
        id=70,
        channel_id=1,
        content=None,
        embeds=[embed],
        components=[],
        attachments=[{"id": n, "filename": f"{n}.png"} for n in range(images)],
        files=[],
        flags=0,
        ephemeral=False,
        interaction_id=7,
        allowed_mentions=None,
    )


BATCH = [
    job("j1", "delivered", index=1),
    job("j2", "failed", index=2, error="The provider is not answering."),
    job("j3", "delivered", index=3),
]
FINAL_LINES = ["**#1** ✅ ready", "**#2** ❌ failed: The provider is not answering.", "**#3** ✅ ready"]


def test_a_batch_message_showing_every_candidate_s_end_is_final() -> None:
    assert batch_verdict(batch_message(FINAL_LINES, images=2), BATCH) is None


def test_a_batch_message_still_in_progress_or_missing_an_image_is_not() -> None:
    waiting = batch_verdict(batch_message(FINAL_LINES, images=2, colour=COLOUR_PROGRESS.value), BATCH)
    assert waiting is not None and "progress" in waiting
    short = batch_verdict(batch_message(FINAL_LINES, images=1), BATCH)
    assert short == "2 candidate(s) delivered in the database, but the message shows 1 image(s)"


def test_a_candidate_line_that_does_not_say_how_it_ended_is_caught() -> None:
    stale = ["**#1** ✅ ready", "**#2** ⏳ generating", "**#3** ✅ ready"]
    verdict = batch_verdict(batch_message(stale, images=2), BATCH)
    assert verdict is not None and verdict.startswith("candidate #2 is failed in the database")
    missing = batch_verdict(batch_message(FINAL_LINES[:2], images=2), BATCH)
    assert missing == "candidate #3 is not listed"


def write_db(path: Path, rows: list[dict[str, Any]]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE jobs ({', '.join(_COLUMNS)})")
        conn.execute("CREATE TABLE ledger (job_id, kind, units)")
        for row in rows:
            conn.execute(f"INSERT INTO jobs VALUES ({', '.join('?' for _ in _COLUMNS)})", [row[c] for c in _COLUMNS])
    return path


def command(prompt: str) -> FakeInteraction:
    return FakeInteraction(
        id=7,
        token="t",
        type=2,
        user_id=1,
        channel_id=1,
        guild_id=1,
        callbacks=[{"type": 5}],
        original_message_id=70,
        payload={"data": {"options": [{"name": "prompt", "value": prompt}, {"name": "count", "value": 3}]}},
    )


async def test_a_batch_may_have_a_task_per_candidate_and_no_more(tmp_path: Path, discord_fake: FakeDiscord) -> None:
    db = write_db(tmp_path / "bot.sqlite3", BATCH)
    discord_fake.messages[70] = batch_message(FINAL_LINES, images=2)
    sent = [command("three bananas")]
    fine = audit(db, discord_fake, tasks_per_prompt(["three bananas"] * 3), sent, quotas=False)
    assert fine.problems() == [] and fine.candidates == 3 and fine.delivered == 2
    # A fourth task for three jobs: one of them was created twice (at one provider, or at two).
    twice = audit(db, discord_fake, tasks_per_prompt(["three bananas"] * 4), sent, quotas=False)
    assert twice.created_twice == ["'three bananas': 4 tasks for 3 job(s)"]


async def test_a_job_whose_task_was_made_for_another_prompt_took_another_job_s_task(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """A task taken up by the wrong job (a lost create's task traced to another job: bot/lost_tasks.py) is
    found by the prompt the provider made the task for; a job whose task the providers do not list (a
    Gemini call, say) is not judged by it."""
    rows = [job("j1", "delivered", index=1, task="t1"), job("j2", BATCH[1]["state"], index=2, error="x"), BATCH[2]]
    db = write_db(tmp_path / "bot.sqlite3", rows)
    discord_fake.messages[70] = batch_message(["**#1** ✅ ready", "**#2** ❌ failed: x", "**#3** ✅ ready"], images=2)
    sent = [command("three bananas")]
    tasks = tasks_per_prompt(["three bananas", "two lemons"])
    right = audit(db, discord_fake, tasks, sent, quotas=False, task_prompts={"t1": "three bananas"})
    assert right.problems() == [] and right.wrong_task == []
    wrong = audit(db, discord_fake, tasks, sent, quotas=False, task_prompts={"t1": "two lemons"})
    assert wrong.problems() == ["another job's task: job j1 ('three bananas'): its task t1 was made for 'two lemons'"]


async def test_a_job_is_judged_by_its_prompt_as_sent_with_what_its_style_reference_is_for(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """``--sref <link>`` (bot/reference_roles.py): the provider is sent the words and a sentence the row's prompt does
    not hold; the audit judges the job by what was sent, so the soak's style references read as theirs."""
    style = {"url": "https://cdn.example/s.png", "content_type": "image/png", "size": 1, "role": "style"}
    request = json.dumps({"prompt": "three bananas", "reference_images": [style]})
    styled = job("j1", "delivered", index=1, task="t1") | {"request_json": request}
    db = write_db(tmp_path / "bot.sqlite3", [styled, job("j2", BATCH[1]["state"], index=2, error="x"), BATCH[2]])
    discord_fake.messages[70] = batch_message(["**#1** ✅ ready", "**#2** ❌ failed: x", "**#3** ✅ ready"], images=2)
    sent_prompt = f"three bananas. {roles_sentence(['style'])}"
    tasks = tasks_per_prompt([sent_prompt, "three bananas"])
    judged = audit(db, discord_fake, tasks, [command("three bananas")], quotas=False, task_prompts={"t1": sent_prompt})
    assert judged.problems() == [] and judged.wrong_task == []


async def test_a_reservation_held_by_a_job_no_command_made_is_still_reserved(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """A reply's job (no command of the soak's made it) whose image the member already sees, judged before the
    bot recorded its delivery: its reservation is open, and the ledger says so rather than a sum that is off."""
    reply = job("r1", "succeeded") | {"interaction_id": None, "message_id": 71}
    charged = [j | {"charge_state": "committed" if j["state"] == "delivered" else "refunded"} for j in BATCH]
    db = write_db(tmp_path / "bot.sqlite3", [*charged, reply])
    with sqlite3.connect(db) as conn:
        reserved = [(j, "reserve", 1) for j in ("j1", "j2", "j3")]
        settled = [("j1", "commit", 1), ("j2", "refund", -1), ("j3", "commit", 1)]
        conn.executemany("INSERT INTO ledger VALUES (?, ?, ?)", reserved + settled)
    discord_fake.messages[70] = batch_message(FINAL_LINES, images=2)
    sent = [command("three bananas")]
    assert audit(db, discord_fake, {}, sent).problems() == []
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO ledger VALUES ('r1', 'reserve', 1)")
        conn.execute("UPDATE jobs SET charge_state = 'reserved' WHERE id = 'r1'")
    open_reply = audit(db, discord_fake, {}, sent)
    assert open_reply.problems() == ["ledger: reserved 4 + refunded -1 != committed 2 (still reserved: 1)"]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE jobs SET state = 'delivered', charge_state = 'refunded' WHERE id = 'r1'")
        conn.execute("INSERT INTO ledger VALUES ('r1', 'refund', -1)")
    wrong = audit(db, discord_fake, {}, sent)
    assert wrong.problems() == ["ledger: job r1 (delivered): settled as refund -1, expected commit 1"]


async def test_a_command_answered_privately_may_have_rows_taken_back_but_none_shown(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """The database was busy: the member was told so privately, and the rows written after that answer were
    cancelled before they started (cogs/in_time.py). That is final; a row of it delivered or given a message
    is not (the member was told nothing was made)."""
    taken_back = job("j1", "cancelled", error="Cancelled. You were not charged.") | {"message_id": None}
    db = write_db(tmp_path / "bot.sqlite3", [taken_back])
    discord_fake.messages[70] = FakeMessage(
        id=70,
        channel_id=1,
        content="I cannot save this right now: the bot's database is busy",
        embeds=[],
        components=[],
        attachments=[],
        files=[],
        flags=64,
        ephemeral=True,
        interaction_id=7,
        allowed_mentions=None,
    )
    sent = [command("three bananas")]
    assert audit(db, discord_fake, {}, sent, quotas=False).problems() == []
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE jobs SET state = 'delivered', message_id = 70")
    shown = audit(db, discord_fake, {}, sent, quotas=False)
    assert shown.lost == ["job(s) j1 ('three bananas'): answered privately, yet shown"]


DAY = 86_400.0


def entry(user: int, job_id: str, kind: str, units: int, *, day: int = 0) -> dict[str, Any]:
    """A ledger row as bot/store/ledger.py writes it (the columns the replay reads)."""
    at = day * DAY + 100.0
    return {"guild_id": 1, "user_id": user, "job_id": job_id, "kind": kind, "units": units, "window_at": at}


def requests(*jobs: tuple[str, str | None]) -> list[dict[str, Any]]:
    return [{"id": job_id, "batch_id": batch} for job_id, batch in jobs]


def test_a_reservation_past_the_day_s_units_is_caught_and_a_refund_gives_them_back() -> None:
    rules = QuotaRules(daily=2, in_flight=5, waiting=0, deadline=90)
    jobs = requests(("a", None), ("b", None), ("c", None))
    within = [entry(1, "a", "reserve", 1), entry(1, "a", "refund", -1), entry(1, "b", "reserve", 1)]
    within += [entry(1, "c", "reserve", 1), entry(2, "x", "reserve", 2)]  # another member's units are theirs
    assert rules.broken_by(within, jobs) == []
    charged = [entry(1, "a", "reserve", 1), entry(1, "a", "commit", 0), entry(1, "b", "reserve", 1)]
    assert rules.broken_by([*charged, entry(1, "c", "reserve", 1)], jobs) == [
        "member 1: job c took the day's units to 3"
    ]
    # The next day's window starts again from nothing.
    assert rules.broken_by([*charged, entry(1, "c", "reserve", 1, day=1)], jobs) == []


def test_a_reservation_past_the_requests_a_member_may_have_running_is_caught() -> None:
    rules = QuotaRules(daily=100, in_flight=2, waiting=0, deadline=90)
    # Three candidates of one /imagine count:3 are one request; with one more running, that is two.
    jobs = requests(("a1", "A"), ("a2", "A"), ("a3", "A"), ("b", None), ("c", None))
    batch = [entry(1, j, "reserve", 1) for j in ("a1", "a2", "a3")]
    assert rules.broken_by([*batch, entry(1, "b", "reserve", 1)], jobs) == []
    assert rules.broken_by([*batch, entry(1, "b", "reserve", 1), entry(1, "c", "reserve", 1)], jobs) == [
        "member 1: job c reserved with 2 other request(s) generating or waiting"
    ]
    # With one request allowed to wait its turn, c is taken waiting; a fourth is not.
    waits = QuotaRules(daily=100, in_flight=2, waiting=1, deadline=90)
    taken = [*batch, entry(1, "b", "reserve", 1), entry(1, "c", "reserve", 1)]
    assert waits.broken_by(taken, jobs) == []
    assert waits.broken_by([*taken, entry(1, "d", "reserve", 1)], [*jobs, *requests(("d", None))]) == [
        "member 1: job d reserved with 3 other request(s) generating or waiting"
    ]
    # The batch still runs while any candidate does; once all are settled, a new request fits.
    some = [entry(1, "a1", "commit", 0), entry(1, "a2", "refund", -1)]
    assert rules.broken_by([*batch, entry(1, "b", "reserve", 1), *some, entry(1, "c", "reserve", 1)], jobs) != []
    ended = [*some, entry(1, "a3", "commit", 0)]
    assert rules.broken_by([*batch, entry(1, "b", "reserve", 1), *ended, entry(1, "c", "reserve", 1)], jobs) == []


def test_a_request_started_while_its_member_had_their_limit_generating_is_caught() -> None:
    """A request starts when reserved, or when its turn came (its deadline set again); it generates until it
    ends. One that ended still waiting never generated."""
    rules = QuotaRules(daily=100, in_flight=1, deadline=90)

    ledger = [entry(1, j, "reserve", 1) | {"created_at": 100.0} for j in ("a", "b", "c")]
    # a from 100 to 130; b waited, started at 130 as a ended; c was cancelled while waiting.
    fair = [started_job("a", started=100, finished=130), started_job("b", started=130, finished=170)]
    fair.append(started_job("c", started=100, finished=150, waits_for=1))
    assert rules.generating_past(ledger, fair) == []
    early = [started_job("a", started=100, finished=130), started_job("b", started=120, finished=170)]
    assert rules.generating_past(ledger[:2], early) == ["member 1: request b started with 1 other(s) generating"]


def started_job(
    job_id: str, *, started: float, finished: float | None, waits_for: int | None = None, user: int = 1
) -> dict[str, Any]:
    """A jobs row as the audit of starts reads it: started when its deadline, 90 s, was set."""
    row = {"id": job_id, "batch_id": None, "guild_id": 1, "user_id": user, "waits_for": waits_for}
    return row | {"deadline_at": started + 90, "finished_at": finished}


def test_an_image_started_while_its_server_had_its_limit_generating_is_caught() -> None:
    """Each image is one to the server, whoever asked for it; one that waited counts from its start."""
    rules = QuotaRules(daily=100, in_flight=5, guild_in_flight=2, deadline=90)
    ledger = [entry(user, j, "reserve", 1) | {"created_at": 100.0} for user, j in ((1, "a"), (2, "b"), (3, "c"))]
    fair = [started_job("a", started=100, finished=130, user=1), started_job("b", started=100, finished=170, user=2)]
    assert rules.generating_past(ledger, [*fair, started_job("c", started=130, finished=160, user=3)]) == []
    early = [*fair, started_job("c", started=120, finished=160, user=3)]
    assert rules.generating_past(ledger, early) == ["server 1: job c started with 2 other image(s) generating"]


def test_an_image_started_past_the_servers_limit_as_an_admin_changed_it_is_caught() -> None:
    """The server's images at once lowered to 1 (sent at 110, answered at 111) and raised to 3 with no answer (the
    bot killed: it may or may not have been saved): an image started at 120 beside another breaks the limit of 1;
    one started beside two others at 150, after the unanswered raise was sent, may have had a limit of 3. Between a
    change's sending and its answer, either limit may hold."""
    changes = (ServerRoomChange(110, 111, 1), ServerRoomChange(140, None, 3))
    rules = QuotaRules(daily=100, in_flight=5, guild_in_flight=2, deadline=90, server_changes=changes)
    assert [rules.server_limit_at(at) for at in (100, 110.5, 111, 139, 140, 200)] == [2, 2, 1, 1, 3, 3]
    ledger = [entry(user, j, "reserve", 1) | {"created_at": 100.0} for user, j in ((1, "a"), (2, "b"), (3, "c"))]
    first = started_job("a", started=100, finished=200, user=1)
    assert rules.generating_past(ledger[:2], [first, started_job("b", started=120, finished=130, user=2)]) == [
        "server 1: job b started with 1 other image(s) generating"
    ]
    beside = [first, started_job("b", started=145, finished=200, user=2), started_job("c", started=150, finished=160)]
    assert rules.generating_past(ledger, beside) == []


def test_a_reservation_past_the_server_s_month_s_units_is_caught() -> None:
    rules = QuotaRules(daily=100, in_flight=100, guild_in_flight=3, guild_monthly=5, waiting=0, deadline=90)
    jobs = requests(("a1", "A"), ("a2", "A"), ("b", None), ("c", None), ("d", None))
    # Each candidate is one image to the server: a batch of two and one more from another member is three.
    three = [entry(1, "a1", "reserve", 1), entry(1, "a2", "reserve", 1), entry(2, "b", "reserve", 1)]
    # Images generating are judged by their starts (``generating_past``): a reservation may wait its turn.
    ended = [entry(1, "a1", "commit", 1), entry(1, "a2", "refund", -1)]
    assert rules.broken_by([*three, *ended, entry(3, "c", "reserve", 1)], jobs) == []
    # Five units a month over every member: a1 charged, a2 refunded, b and c reserved is three; d's three more is six.
    month = [*three, *ended, entry(3, "c", "reserve", 1), entry(2, "b", "commit", 1), entry(3, "d", "reserve", 3)]
    assert rules.broken_by(month, jobs) == ["server 1: job d took the month's units to 6"]


def test_a_cancel_taken_spares_only_candidates_whose_image_existed_before_it(tmp_path: Path) -> None:
    """One click cancels a batch; a candidate the provider had finished before the click is delivered
    (the bot does not throw an image away), any other delivered candidate breaks the promise."""
    rows = [
        job("j1", "delivered", index=1, task="t1", charge="committed"),
        job("j2", "delivered", index=2, task="t2", charge="committed"),
        job("j3", "cancelled", index=3, error="Cancelled. You were not charged.", task="t3", charge="refunded"),
    ]
    db = write_db(tmp_path / "bot.sqlite3", rows)
    click = FakeInteraction(
        id=8, token="c", type=3, user_id=1, channel_id=1, guild_id=1, callbacks=[{"type": 7}], created_at=10.0
    )
    click.acknowledged_at = 10.2
    actions = MemberActions(FakeDiscord(bot_token="unused"), 1.0, seed=1, delay=(0, 0))
    actions.actions.append(MemberAction(command("three bananas"), "cancel", "clicked", click, at=1000.0))
    # t1 was ready before the click was taken (1000.2), t2 only after it.
    assert actions.problems(db, {"t1": 999.0, "t2": 1001.0}) == ["job j2: Cancel taken, yet delivered and committed"]
    assert actions.problems(db, {"t1": 999.0, "t2": 1000.1}) == []


def reply_answer(message_id: int, reply_id: int, *, image: bool = True) -> FakeMessage:
    """The bot's answer to a member's reply as the fake holds it: done with its image, or in progress."""
    embed = {
        "title": "🍌 Done" if image else "🍌 Generating…",
        "color": (COLOUR_DONE if image else COLOUR_PROGRESS).value,
    }
    return FakeMessage(
        id=message_id,
        channel_id=1,
        content=None,
        embeds=[embed],
        components=[],
        attachments=[{"id": 1, "filename": "1.png"}] if image else [],
        files=[],
        flags=0,
        ephemeral=False,
        interaction_id=None,
        allowed_mentions=None,
        reference={"message_id": str(reply_id), "channel_id": "1"},
    )


def reply_jobs(path: Path, rows: list[tuple[str, str, int | None, str]], error: str | None = None) -> Path:
    """Job rows of replies to message 90: (id, state, message_id, charge_state), each ended with ``error``."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE jobs (id, state, message_id, reply_to_message_id, charge_state, error_message)")
        conn.executemany("INSERT INTO jobs VALUES (?, ?, ?, 90, ?, ?)", [(*row, error) for row in rows])
    return path


def one_reply(discord_fake: FakeDiscord, outcome: str) -> ReplyEdits:
    """The soak's replies: one, message 90, the member's reply to the bot's image 70, posted ``outcome``."""
    replies = ReplyEdits(discord_fake, 0.0, seed=1)
    member_reply = reply_answer(90, 70)
    member_reply.author_id = discord_fake.member_id
    replies.replies.append(SoakReply(command("a banana"), "make it night", outcome=outcome, message=member_reply))
    return replies


def dm_note(discord_fake: FakeDiscord, content: str) -> FakeMessage:
    """A DM from the bot to the member (message 93), as the fake holds it."""
    dm = discord_fake.open_dm(discord_fake.member_id)
    note = reply_answer(93, 0, image=False)
    note.channel_id, note.reference, note.content = int(dm["id"]), None, content
    discord_fake.messages[93] = note
    return note


def test_a_reply_must_be_answered_once_and_every_job_of_it_settled(tmp_path: Path, discord_fake: FakeDiscord) -> None:
    replies = one_reply(discord_fake, "while away")
    # Answered once, delivered there; an earlier job the bot never showed ended refunded: all as it should be.
    discord_fake.messages[91] = reply_answer(91, 90)
    fine = reply_jobs(
        tmp_path / "fine.sqlite3", [("r1", "cancelled", None, "refunded"), ("r2", "delivered", 91, "committed")]
    )
    assert replies.problems(fine) == []
    # The same never-shown job charged; and a job shown in an answer still in progress.
    charged = reply_jobs(
        tmp_path / "charged.sqlite3", [("r1", "cancelled", None, "committed"), ("r2", "delivered", 91, "committed")]
    )
    assert replies.problems(charged) == [
        "reply 90 ('make it night', posted while away): job r1 never shown, yet committed"
    ]
    discord_fake.messages[91] = reply_answer(91, 90, image=False)
    (stale,) = replies.problems(fine)
    assert "the bot's answer is not final: still a progress embed" in stale
    # Answered twice; or never.
    discord_fake.messages[91] = reply_answer(91, 90)
    discord_fake.messages[92] = reply_answer(92, 90)
    assert replies.problems(fine) == [
        "reply 90 ('make it night', posted while away): 2 answer(s) from the bot, 1 job(s) shown"
    ]
    del discord_fake.messages[91], discord_fake.messages[92]
    never = reply_jobs(tmp_path / "never.sqlite3", [])
    assert replies.problems(never) == [
        "reply 90 ('make it night', posted while away): 0 answer(s) from the bot, 0 job(s) shown"
    ]


def test_a_reply_whose_channel_was_deleted_needs_no_answer_but_its_jobs_must_settle(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """The channel went with the reply and whatever the bot had answered in it (bench/soak.py
    --channel-delete, seed 127: an answer made, its reply lost, the resend refused "Unknown Channel", so the
    bot ended the job unshown). Nothing is left to see; the job must still end uncharged."""
    replies = one_reply(discord_fake, "live")
    discord_fake.messages[91] = reply_answer(91, 90)  # made, in the channel about to go
    unshown = reply_jobs(tmp_path / "unshown.sqlite3", [("r1", "cancelled", None, "refunded")])
    assert replies.problems(unshown) == [
        "reply 90 ('make it night', posted live): 1 answer(s) from the bot, 0 job(s) shown"
    ]
    discord_fake.deleted_channels.add(1)
    assert replies.problems(unshown) == []
    charged = reply_jobs(tmp_path / "charged.sqlite3", [("r1", "cancelled", None, "committed")])
    assert replies.problems(charged) == ["reply 90 ('make it night', posted live): job r1 never shown, yet committed"]


def test_a_reply_whose_image_was_deleted_may_be_answered_by_one_private_note(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """The member actions deleted the image before the bot took the reply up: one note naming the reply
    (a DM, or a reply that deleted itself) answers it; none, or a note while the image is there, does not."""
    replies = one_reply(discord_fake, "while away")
    never = reply_jobs(tmp_path / "never.sqlite3", [("r1", "cancelled", None, "refunded")])
    unanswered = ["reply 90 ('make it night', posted while away): 0 answer(s) from the bot, 0 job(s) shown"]
    image = discord_fake.messages[70] = reply_answer(70, 1)
    image.deleted = True
    assert replies.problems(never) == unanswered  # deleted, and nobody told
    dm_note(
        discord_fake, "The image you replied to was deleted ... About your reply: https://discord.com/channels/1/1/90"
    )
    assert replies.problems(never) == []
    image.deleted = False  # the image is there: a note is no answer to an edit
    assert replies.problems(never) == unanswered
    # A note by a reply that deleted itself (the member takes no DMs); a charged job still counts against it.
    image.deleted = True
    del discord_fake.messages[93]
    discord_fake.messages[94] = reply_answer(94, 90, image=False)
    discord_fake.messages[94].deleted = True
    assert replies.problems(never) == []
    charged = reply_jobs(tmp_path / "charged.sqlite3", [("r1", "cancelled", None, "committed")])
    assert replies.problems(charged) == [
        "reply 90 ('make it night', posted while away): job r1 never shown, yet committed"
    ]


def test_a_reply_the_bot_could_not_answer_may_be_answered_by_one_dm_saying_why(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """Discord refused every try of the bot's answer to a reply (or the channel forbids its posts): one DM
    naming the reply and saying it could not be answered settles it, with its job refunded; another DM, or
    that DM beside an answer after all, does not."""
    replies = one_reply(discord_fake, "live")
    never = reply_jobs(tmp_path / "never.sqlite3", [("r1", "cancelled", None, "refunded")])
    unanswered = ["reply 90 ('make it night', posted live): 0 answer(s) from the bot, 0 job(s) shown"]
    assert replies.problems(never) == unanswered
    note = dm_note(discord_fake, "Your quota is used up.\n-# About your reply: https://discord.com/channels/1/1/90")
    assert replies.problems(never) == unanswered  # a note, but not one that says the reply could not be answered
    note.content = (
        "I could not answer your reply: ... not charged.\n-# About your reply: https://discord.com/channels/1/1/90"
    )
    assert replies.problems(never) == [] and replies._settled(replies.posted[0])
    discord_fake.messages[91] = reply_answer(91, 90)  # and an answer too: one of the two is one too many
    assert replies.problems(never) == [
        "reply 90 ('make it night', posted live): 1 answer(s) from the bot, 0 job(s) shown"
    ]
    charged = reply_jobs(tmp_path / "charged.sqlite3", [("r1", "cancelled", None, "committed")])
    del discord_fake.messages[91]
    assert replies.problems(charged) == ["reply 90 ('make it night', posted live): job r1 never shown, yet committed"]


def test_a_credential_in_the_bot_s_log_is_found_and_shown_masked(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.write_text(
        "2026-12-03 04:00:00,000 DEBUG   bot.jobs: job 1 polled\n"
        "2026-12-03 04:00:01,000 DEBUG   httpx: GET https://example.test/v1/x?key=sk-canary-1 200\n"
        "2026-12-03 04:00:02,000 INFO    bot.app: connected as Bananacord\n"
        "Traceback: Authorization: Bot tok-canary-2\n",
        encoding="utf-8",
    )
    found = log_secrets(log, ("sk-canary-1", "tok-canary-2", ""))
    assert found == [
        "2026-12-03 04:00:01,000 DEBUG   httpx: GET https://example.test/v1/x?key=<SECRET> 200",
        "Traceback: Authorization: Bot <SECRET>",
    ]
    assert log_secrets(log, ("not-there",)) == [] and log_secrets(tmp_path / "none.log", ("x",)) == []


def test_a_reply_the_bot_refused_is_answered_by_one_private_note_and_no_job(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """A reply turned down (a quota, a ban, a blocked term: bench/soak.py --quota-daily, seed 131) makes no
    job; the member is told why in one note naming the reply. No note or two is a problem. A job of it that
    never showed may come first (the bot killed before its answer, the restart ending the job and reading the
    reply again: seed 141), charging nothing; one shown, or charged, is a problem."""
    replies = one_reply(discord_fake, "live")
    discord_fake.messages[70] = reply_answer(70, 1)  # the image is there
    nothing = reply_jobs(tmp_path / "nothing.sqlite3", [])
    unanswered = ["reply 90 ('make it night', posted live): 0 answer(s) from the bot, 0 job(s) shown"]
    assert replies.problems(nothing) == unanswered
    note = "You already have 1 request(s) generating (limit 1). About your reply: https://discord.com/channels/1/1/90"
    dm_note(discord_fake, note)
    assert replies.problems(nothing) == []
    made = reply_jobs(tmp_path / "made.sqlite3", [("r1", "cancelled", None, "refunded")])
    assert replies.problems(made) == unanswered  # a job came of it and ended otherwise: a note is no answer
    # Taken, the bot killed before its answer; the restart ended the job unshown, and the reply read again
    # was refused (seed 141): the note answers it, the job charged nothing.
    restarted = reply_jobs(
        tmp_path / "restarted.sqlite3", [("r1", "cancelled", None, "refunded")], UNCONFIRMED_AT_RESTART
    )
    assert replies.problems(restarted) == []
    charged = reply_jobs(tmp_path / "charged.sqlite3", [("r1", "cancelled", None, "committed")], UNCONFIRMED_AT_RESTART)
    assert replies.problems(charged) == ["reply 90 ('make it night', posted live): job r1 never shown, yet committed"]
    discord_fake.messages[94] = reply_answer(94, 90, image=False)  # a second word on it, left in the channel
    assert replies.problems(nothing) == [
        "reply 90 ('make it night', posted live): 1 answer(s) from the bot, 0 job(s) shown"
    ]
    # The same note went to the member minutes before: the reply is marked refused instead, and says nothing.
    del discord_fake.messages[93], discord_fake.messages[94]
    assert replies.problems(nothing) == unanswered
    replies.replies[0].message.reactions.append(REFUSED_MARK)  # type: ignore[union-attr]
    assert replies.problems(nothing) == [] and replies.problems(restarted) == []
    assert replies.problems(made) == unanswered


async def test_a_command_answered_after_discord_s_3_s_is_a_failure_not_unanswered(
    tmp_path: Path, discord_fake: FakeDiscord
) -> None:
    """Where the fake enforces Discord's window (bench/soak.py --db-locks), an answer that came too late
    was refused and the member saw "This interaction failed": a failure of the bot's, not a command that
    died with its process (before, the soak counted both as unanswered and the log had to be read)."""
    db = write_db(tmp_path / "bot.sqlite3", [])
    late = command("a banana")
    late.callbacks, late.original_message_id = [], None
    died = command("another banana")
    died.id, died.callbacks, died.original_message_id = 8, [], None
    verdict = audit(db, discord_fake, {}, [died], quotas=False)
    assert verdict.problems() == [] and verdict.unanswered == 1
    late.late_answers = 1
    verdict = audit(db, discord_fake, {}, [died, late], quotas=False)
    assert verdict.unanswered == 1 and verdict.problems() == [
        "answered after Discord's 3 s: interaction 7 ('a banana')"
    ]
