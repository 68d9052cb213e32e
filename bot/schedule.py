"""When to ask a provider about a job again: a poll schedule learned from how long jobs take.

A fixed backoff knows nothing about a job's likely length: it polls often while nothing can have
happened yet and rarely just when the image appears. This schedule keeps the recent completion times
of finished jobs per kind (provider, model, resolution, reference count) and, once it has enough:

* polls once early (a fast failure, such as a content block, is reported within seconds),
* then not again until the start of the likely window (the ``low`` quantile of past jobs),
* then every ``dense`` seconds through the window (up to the ``high`` quantile),
* then backs off towards the ceiling, so a job far past its expected time is still polled, more
  rarely, until its deadline.

A kind without ``min_samples`` completions of its own borrows the window of its siblings: the same
provider, model and resolution with any number of references (``sibling_pool``), which take about as
long as each other (resolution and model are what set a job's length; references add seconds). A
server that made a hundred plain 1K images should not poll its first 1K edit as if it knew nothing.
A borrowed window that is wrong costs little: before the window the wait is never longer than the
ceiling, and past it the gaps grow back to the ceiling. With neither, it is exactly the old backoff
(first poll after ``first`` seconds, then x``growth`` up to ``ceiling``), so a new deployment is
never worse than before. Five samples are enough to start: a window drawn from a few that misses a job
costs it at most the ceiling, as the backoff would, and the window widens as samples come; only the
skipping of empty stretches inside it waits for ``gap_samples``, since among five a gap is chance.

What the provider says refines it: the clock starts when the provider reports the job running (time
spent queued says nothing about the model), a progress figure gives a direct estimate of what is left,
and a job whose provider calls back is only polled as a slow fallback. Retry-After and the
per-provider request budget are applied by the runner on top (bot/budget.py).

Pure: no I/O and no clock; the runner feeds it elapsed times and loads/stores the samples.
"""

from __future__ import annotations

import bisect
import zlib
from collections import deque
from dataclasses import dataclass

# Reference counts are grouped: 0, 1, 2-3 and 4+ images take about the same time within a group.
_REFERENCE_GROUPS = ((4, "4+"), (2, "2-3"), (1, "1"), (0, "0"))
# Never plan a poll sooner than this: a schedule that says "now" twice in a row would spin.
MIN_DELAY = 0.05


def job_kind(provider: str, model: str, resolution: str, references: int) -> str:
    """The key completion times are kept under, e.g. ``seaart/nano_banana_2/1K/0``."""
    group = next(label for floor, label in _REFERENCE_GROUPS if references >= floor)
    return f"{provider}/{model}/{resolution}/{group}"


def sibling_pool(kind: str) -> str | None:
    """The key under which every reference group of a kind's provider, model and resolution is also
    kept (``seaart/nano_banana_2/1K/*``); None for a key that is not a job kind's."""
    head, slash, group = kind.rpartition("/")
    if not slash or head.count("/") != 2 or group == "*":
        return None
    return f"{head}/*"


def _own_then_pool(kind: str) -> tuple[str, ...]:
    pool = sibling_pool(kind)
    return (kind,) if pool is None else (kind, pool)


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    """The knobs; ``first``, ``growth`` and ``ceiling`` are also the backoff used before learning."""

    first: float = 3.0
    ceiling: float = 15.0
    growth: float = 1.5
    dense: float = 1.5
    learned: bool = True
    min_samples: int = 5
    # A stretch of the window where no earlier job finished is skipped only with this many samples: among
    # five, a gap is chance; among twenty or more, a lull (the dip between a two-speed provider's humps).
    gap_samples: int = 20
    history: int = 200
    low_quantile: float = 0.02
    high_quantile: float = 0.98
    # A job whose provider calls back is polled only this often (lost callbacks cost time, not images).
    callback_fallback: float = 60.0


class CompletionTimes:
    """The most recent ``history`` completions per kind, each as an interval of seconds from the job's
    clock start: it was still running at ``earliest`` (the last poll before) and done by ``latest``.

    Polling only ever brackets a completion, and while the backoff rules the bracket can be 15 s wide.
    Keeping the bracket, not a guess inside it, keeps coarse early samples from misleading the schedule:
    the window opens at the earliest any job may have finished and closes at the latest, and a stretch
    counts as empty only if no bracket reaches into it. A callback gives an exact time (both ends equal).
    """

    def __init__(self, history: int = 200) -> None:
        self.history = history
        self._recent: dict[str, deque[tuple[float, float]]] = {}
        self._sorted: dict[str, tuple[list[float], list[float], list[float]]] = {}

    def add(self, kind: str, earliest: float, latest: float | None = None) -> None:
        """One completion, kept under its kind and under its kind's ``sibling_pool``."""
        latest = earliest if latest is None else latest
        if earliest < 0 or latest < earliest:
            return
        for key in _own_then_pool(kind):
            recent = self._recent.setdefault(key, deque(maxlen=self.history))
            recent.append((earliest, latest))
            self._sorted.pop(key, None)

    def count(self, kind: str) -> int:
        return len(self._recent.get(kind, ()))

    def _views(self, kind: str) -> tuple[list[float], list[float], list[float]]:
        """Sorted earliest ends, latest ends and midpoints; cached until the next ``add``."""
        cached = self._sorted.get(kind)
        if cached is None:
            pairs = self._recent.get(kind, ())
            cached = (
                sorted(e for e, _ in pairs),
                sorted(la for _, la in pairs),
                sorted((e + la) / 2 for e, la in pairs),
            )
            self._sorted[kind] = cached
        return cached

    def _quantile(self, values: list[float], q: float) -> float:
        if not values:
            raise ValueError("no completion times")
        position = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
        return values[position]

    def opens(self, kind: str, q: float) -> float:
        """Where the window opens: the ``q`` quantile of the earliest each job may have finished."""
        return self._quantile(self._views(kind)[0], q)

    def closes(self, kind: str, q: float) -> float:
        """Where it closes: the ``q`` quantile of the latest each job can have finished."""
        return self._quantile(self._views(kind)[1], q)

    def cdf(self, kind: str, seconds: float) -> float:
        """The share of past jobs of this kind that had (most likely) finished by ``seconds``."""
        middles = self._views(kind)[2]
        if not middles:
            return 0.0
        return bisect.bisect_right(middles, seconds) / len(middles)

    def middle(self, kind: str, q: float) -> float:
        """The ``q`` quantile of when past jobs of this kind most likely finished (bracket midpoints)."""
        return self._quantile(self._views(kind)[2], q)

    def next_mass(self, kind: str, start: float, end: float) -> float:
        """Where, from ``start`` on, an earlier job may next have finished: ``start`` if any bracket
        reaches into [start, end]; otherwise the earliest bracket beginning after ``end`` (``inf`` if
        none does)."""
        ahead = float("inf")
        for earliest, latest in self._recent.get(kind, ()):
            if earliest <= end and latest >= start:
                return start
            if earliest > end:
                ahead = min(ahead, earliest)
        return ahead


def backoff_pace(job_id: str) -> float:
    """A job's pace through the backoff: each wait times 0.5-1.0, fixed by its id (so across restarts).

    Before a kind is learned, every job of it would be asked about at the same offsets from its start
    (3, 7.5, 14.25, 24.4, 39.6 s, ...): jobs sent together are polled together and then not for up to
    ``ceiling`` seconds, so the first of them to finish are seen up to that late, the kind is learned
    that late, and every job that finished meanwhile is found, and delivered, in one burst (bench/load.py:
    1,000 jobs of 30-60 s sent over 10 s; the kind learned about 43 s in, not 32). Spread over half to
    all of each wait, some job of a burst is asked about at nearly every moment, so the first to finish
    are seen within about a second. A job alone waits no longer than before (never above the ceiling);
    it costs up to a third more polls, and only until the kind is learned."""
    return 0.5 + 0.5 * zlib.crc32(job_id.encode()) / 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class PollState:
    """What the runner knows about one job when it asks for the next poll."""

    kind: str
    elapsed: float  # seconds since the job's clock started (submit, or running when the provider says)
    polls: int  # status requests answered so far
    queued: bool = False
    progress: float | None = None  # 0..1 where the provider reports one
    queue_position: int | None = None
    callback: bool = False  # the provider will call back when the job ends
    pace: float = 1.0  # this job's share of each backoff wait (backoff_pace)


class PollSchedule:
    """Turns a PollState into the seconds to wait before the next status request."""

    def __init__(self, settings: ScheduleSettings, times: CompletionTimes) -> None:
        self.settings = settings
        self.times = times

    def source(self, kind: str) -> str | None:
        """Whose completion times plan a job of ``kind``: its own once it has ``min_samples`` of them,
        else its siblings' pool if that has, else None (the backoff)."""
        if not self.settings.learned:
            return None
        for key in _own_then_pool(kind):
            if self.times.count(key) >= self.settings.min_samples:
                return key
        return None

    def learned_for(self, kind: str) -> bool:
        return self.source(kind) is not None

    def typical(self, kind: str) -> tuple[float, float] | None:
        """How long most jobs of this kind run (the middle 80%, in seconds), once learned; for members."""
        source = self.source(kind)
        if source is None:
            return None
        return self.times.middle(source, 0.1), self.times.middle(source, 0.9)

    def backoff(self, polls: int, pace: float = 1.0) -> float:
        """The schedule before learning: ``first``, ``first``, then x``growth`` per poll up to ``ceiling``,
        each wait times the job's ``pace`` (backoff_pace) while it learns; the plain backoff
        (``learned`` off) is the same for every job, as configured."""
        s = self.settings
        return float(min(s.first * s.growth ** max(0, polls - 1), s.ceiling)) * (pace if s.learned else 1.0)

    def next_delay(self, state: PollState) -> float:
        s = self.settings
        if state.callback:
            return max(MIN_DELAY, self._fallback(state))
        if state.queued:
            # The model has not started: the window means nothing yet. A queue position stretches the
            # wait (each place ahead is another job to run first); otherwise keep the backoff's pace.
            places = state.queue_position or 0
            base = self.backoff(state.polls, state.pace) if places == 0 else s.dense * (1 + places)
            return max(MIN_DELAY, min(base, s.ceiling))
        source = self.source(state.kind)
        if source is None:
            return self.backoff(state.polls, state.pace)
        if state.progress is not None and 0.05 <= state.progress < 1 and state.elapsed > 0:
            # The provider's own estimate: at this pace, what is left takes elapsed * (1 - p) / p.
            left = state.elapsed * (1 - state.progress) / state.progress
            return min(max(left * 0.8, s.dense), s.ceiling)
        low = self.times.opens(source, s.low_quantile)
        high = self.times.closes(source, s.high_quantile)
        t = state.elapsed
        if t < low:
            early = min(s.first, low / 2)
            if state.polls == 0 and t < early:
                return max(MIN_DELAY, early - t)
            # Never longer than the ceiling, though: a job may finish sooner than any before it.
            return min(max(MIN_DELAY, low - t), s.ceiling)
        if t <= high:
            # Every `dense` seconds where jobs finish; across a stretch where no earlier job can have
            # finished (between the two humps of a two-speed provider, say), straight to the next one.
            if self.times.count(source) < s.gap_samples:
                return s.dense
            ahead = self.times.next_mass(source, t, t + s.dense)
            if ahead <= t + s.dense:
                return s.dense
            if ahead != float("inf"):
                return min(ahead - t, s.ceiling)
        # Past nearly every earlier job: stretch the gap with the overrun, up to the ceiling.
        return min(max(s.dense, (t - high) / 2), s.ceiling)

    def _fallback(self, state: PollState) -> float:
        s = self.settings
        if state.polls > 0:
            return s.callback_fallback
        # The first fallback poll comes after nearly every job of this kind would have called back.
        known = next((key for key in _own_then_pool(state.kind) if self.times.count(key)), None)
        expected_end = self.times.closes(known, s.high_quantile) * 1.5 if known is not None else 0
        return max(s.callback_fallback, expected_end) - state.elapsed

    def done_chance(self, kind: str, *, last_elapsed: float, now_elapsed: float) -> float:
        """How likely the job finished since its last poll, given it had not then (0..1).

        Used to choose which due jobs to poll first when the request budget binds. Without learned
        times, the longer a job has gone unpolled the likelier it changed: a gentle increasing score.
        """
        source = self.source(kind)
        if source is None:
            gap = max(0.0, now_elapsed - last_elapsed)
            return gap / (gap + self.settings.ceiling)
        before = self.times.cdf(source, last_elapsed)
        now = self.times.cdf(source, now_elapsed)
        if before >= 1.0:
            return 0.5  # past every earlier job: unknown, neither first nor last
        return (now - before) / (1.0 - before)
