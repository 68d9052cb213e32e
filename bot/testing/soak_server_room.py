"""An admin changing the server's images generating at once (``/quota server in_flight:``) during a soak
(``bench/soak.py --server-changes N``): raised, the requests waiting for the server's room start at once; lowered
below a waiting batch, the batch ends, uncharged, saying so (bot/waiting_requests.py). The audit
(bot/testing/soak.py ``QuotaRules.server_limit_at``) holds every start to the limit in force then, kills and faults
notwithstanding."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

from bot.testing.discord import FakeDiscord, FakeInteraction
from bot.testing.soak import ServerRoomChange

# Times a change is typed again while no bot is on the gateway to take it.
ATTEMPTS = 6
# How long the admin waits for the bot's answer before taking it as lost (the bot killed meanwhile).
ANSWER_WAIT = 10.0


class ServerRoom:
    def __init__(self, discord_fake: FakeDiscord, changes: int, base: int, *, seed: int) -> None:
        self.discord = discord_fake
        self.changes = changes
        self.base = base
        self.draw = random.Random(f"{seed}-server-room")
        self.made: list[ServerRoomChange] = []
        self.unanswered: list[str] = []

    async def act(self, spread: float, start: float) -> None:
        """``changes`` times, evenly over the sending, set the server's images at once to a seeded 1 to twice the
        configured limit (1 ends any batch waiting for room), waiting for each answer."""
        for n in range(self.changes):
            await asyncio.sleep(max(0.0, start + spread * (n + 0.5) / self.changes - time.monotonic()))
            limit = self.draw.randint(1, 2 * self.base)
            for _ in range(ATTEMPTS):
                asked, sent_at = time.time(), time.monotonic() - start
                try:
                    sent = await self.discord.slash_command(
                        "quota server", {"in_flight": limit}, user_id=self.discord.admin_id
                    )
                except TimeoutError:  # no bot on the gateway for a while: typed again once there is
                    continue
                answered = await self._answered(sent)
                self.made.append(ServerRoomChange(asked, answered, limit))
                if answered is None:
                    # Why, for the report: the command taken by a bot that was then stopped, or one that never answered.
                    self.unanswered.append(
                        f"{limit} sent at {sent_at:.1f} s: {len(sent.callbacks)} answer(s) to the command"
                    )
                break

    async def _answered(self, sent: FakeInteraction) -> float | None:
        """When the admin read the bot's answer (its embed of the server's limits), or None if none came."""

        def shown() -> bool:
            # The answer itself, or, after a "thinking…" (a slow answer deferred: cogs/slow_answers.py), its follow-up.
            ids = [sent.original_message_id or -1, *sent.followup_ids]
            messages = [self.discord.messages.get(message_id) for message_id in ids]
            return any(m is not None and not m.loading and bool(m.embeds) for m in messages)

        with contextlib.suppress(TimeoutError):
            await self.discord.wait_for(shown, timeout=ANSWER_WAIT)
            return time.time()
        return None

    def lines(self) -> list[str]:
        if not self.made:
            return []
        steps = " -> ".join(f"{c.limit}" + ("" if c.answered is not None else " (no answer)") for c in self.made)
        lines = [f"the server's images at once, changed by an admin {len(self.made)} time(s): {self.base} -> {steps}"]
        return lines + [f"  no answer: {why}" for why in self.unanswered]
